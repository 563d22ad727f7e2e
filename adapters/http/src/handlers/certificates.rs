//! Certificates.

use crate::dto::{CertificateResponse, CertificateSummary, RevokeRequest, StatusResponse};
use crate::error::ApiError;
use crate::pagination;
use crate::reply;
use crate::routes::Api;
use acmeport_domain::{CertificateId, Page, Principal, User};
use warp::http::StatusCode;
use warp::reply::Response;

/// One of the caller's certificates, with its private key when the service holds it.
#[utoipa::path(
    get, path = "/api/certificate/{id}", tag = "certificates",
    params(("id" = i64, Path, description = "Certificate id")),
    responses(
        (status = 200, description = "The certificate", body = CertificateResponse),
        (status = 400, description = "No such certificate of the caller", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn get(id: i64, api: Api, caller: Principal) -> Result<Response, ApiError> {
    let certificate = api
        .service()
        .download_certificate(&caller, CertificateId::new(id))
        .await?;
    Ok(reply::no_store(reply::json(
        StatusCode::OK,
        &CertificateResponse::from(&certificate),
    )))
}

/// The caller's certificates keyed by id, without private keys.
#[utoipa::path(
    get, path = "/api/certificate", tag = "certificates",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 100)"),
        ("after" = Option<i64>, Query, description = "Only ids greater than this"),
    ),
    responses(
        (status = 200, description = "Certificates keyed by id", body = HashMap<String, CertificateSummary>,
            headers(("Link" = String, description = "`<...>; rel=\"next\"` when more pages follow"))),
        (status = 400, description = "Invalid limit or after", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn list(api: Api, user: User, page: Page) -> Result<Response, ApiError> {
    let listing = api.service().list_certificates(&user, page).await?;
    Ok(pagination::keyed_response(
        api.public_url(),
        "/api/certificate",
        page,
        &listing,
        |c| (c.id.get(), CertificateSummary::from(c)),
    ))
}

/// Revokes the certificate at the ACME server, for the reason the optional body gives.
#[utoipa::path(
    delete, path = "/api/certificate/{id}", tag = "certificates",
    params(("id" = i64, Path, description = "Certificate id")),
    request_body(content = Option<RevokeRequest>, description = "Optional: the revocation reason (default `unspecified`)"),
    responses(
        (status = 200, description = "Revoked", body = StatusResponse),
        (status = 400, description = "No such certificate of the caller, already revoked, an unknown reason, or the ACME server refused", body = StatusResponse),
        (status = 413, description = "Body larger than the configured limit", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
        (status = 502, description = "The ACME server could not be reached", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn revoke(
    id: i64,
    api: Api,
    user: User,
    body: Option<RevokeRequest>,
) -> Result<Response, ApiError> {
    let reason = body.unwrap_or_default().try_into_domain()?;
    let certificate = api
        .service()
        .revoke_certificate(&user, CertificateId::new(id), reason)
        .await?;
    Ok(reply::json(
        StatusCode::OK,
        &StatusResponse::new(certificate.status.as_str()),
    ))
}

/// `PURGE`: revokes the certificate unless already revoked (for the reason the optional
/// body gives), then deletes it and its key.
#[utoipa::path(
    trace, path = "/api/certificate/{id}", tag = "certificates", operation_id = "purge_certificate",
    params(("id" = i64, Path, description = "Certificate id")),
    request_body(content = Option<RevokeRequest>, description = "Optional: the revocation reason (default `unspecified`)"),
    responses(
        (status = 200, description = "Revoked and deleted", body = StatusResponse),
        (status = 400, description = "No such certificate of the caller, an unknown reason, or the ACME server refused", body = StatusResponse),
        (status = 413, description = "Body larger than the configured limit", body = StatusResponse),
        (status = 401, description = "Missing or wrong credentials", body = StatusResponse),
        (status = 502, description = "The ACME server could not be reached", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn purge(
    id: i64,
    api: Api,
    user: User,
    body: Option<RevokeRequest>,
) -> Result<Response, ApiError> {
    let reason = body.unwrap_or_default().try_into_domain()?;
    api.service()
        .purge_certificate(&user, CertificateId::new(id), reason)
        .await?;
    Ok(reply::json(StatusCode::OK, &StatusResponse::new("purged")))
}

/// `POST /api/certificate/<id>/purge`: the alias of `PURGE /api/certificate/<id>` for
/// clients that only speak the standard methods; the same handler, the same answers.
#[utoipa::path(
    post, path = "/api/certificate/{id}/purge", tag = "certificates", operation_id = "purge",
    params(("id" = i64, Path, description = "Certificate id")),
    request_body(content = Option<RevokeRequest>, description = "Optional: the revocation reason (default `unspecified`)"),
    responses(
        (status = 200, description = "Revoked and deleted", body = StatusResponse),
        (status = 400, description = "No such certificate of the caller, an unknown reason, or the ACME server refused", body = StatusResponse),
    ),
    security(("basic" = []))
)]
pub(crate) async fn purge_by_post(
    id: i64,
    api: Api,
    user: User,
    body: Option<RevokeRequest>,
) -> Result<Response, ApiError> {
    purge(id, api, user, body).await
}
