//! Request and response bodies. Domain types are not `Serialize`; these are their JSON
//! counterparts, and the OpenAPI document is generated from them.
//!
//! Request DTOs carry plain JSON types so that serde reports wrong types by field name;
//! their `try_into_domain()` then parses each value into its domain newtype and names the
//! field whose value is refused.

mod accounts;
pub(crate) use accounts::EAB_KEY_PATTERN;
mod certificates;
mod events;
mod orders;
mod security;
mod users;

pub(crate) use accounts::{AccountResponse, RegisterAccountRequest};
pub(crate) use certificates::{CertificateResponse, CertificateSummary, RevokeRequest};
pub(crate) use events::EventResponse;
pub(crate) use orders::{CreateOrderRequest, OrderResponse, UpdateOrderRequest};
pub(crate) use security::{
    AuditResponse, CreateKeyRequest, CreatedKeyResponse, GrantRequest, GrantResponse, KeyResponse,
    PasswordRequest, UpdateUserRequest, UserDetail,
};
pub(crate) use users::{CreateUserRequest, ResourceResponse, TokenResponse, UserResponse};

use crate::error::ApiError;
use acmeport_domain::{CountryCode, CsrSubject, SubjectField};
use serde::ser::SerializeMap as _;
use serde::{Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A status text: the body of errors and of actions that return nothing else.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusResponse {
    /// A human readable status or reason.
    #[schema(example = "order not found")]
    pub status: String,
}

impl StatusResponse {
    pub(crate) fn new(status: impl Into<String>) -> Self {
        Self {
            status: status.into(),
        }
    }
}

/// The answer to creating something (or finding it already there): its id and status.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedResponse {
    #[schema(example = 7)]
    pub id: i64,
    #[schema(example = "pending")]
    pub status: String,
}

/// A list as a JSON object keyed by id (`{"7": {...}, "9": {...}}`), in id order.
pub(crate) struct Keyed<T>(pub Vec<(i64, T)>);

impl<T: Serialize> Serialize for Keyed<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (id, item) in &self.0 {
            map.serialize_entry(&id.to_string(), item)?;
        }
        map.end()
    }
}

/// RFC 3339 text of a timestamp.
pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// Parses an optional field with `parse`, naming the field when it is refused.
pub(crate) fn optional<T, E: std::fmt::Display>(
    field: &str,
    value: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, ApiError> {
    value
        .map(|v| parse(v).map_err(|e| ApiError::bad_request(format!("{field}: {e}"))))
        .transpose()
}

/// The CSR subject fields shared by account and order requests.
pub(crate) fn subject(
    organization: Option<&str>,
    organizational_unit: Option<&str>,
    country: Option<&str>,
    state: Option<&str>,
    location: Option<&str>,
) -> Result<CsrSubject, ApiError> {
    Ok(CsrSubject {
        organization: optional("organization", organization, SubjectField::parse)?,
        organizational_unit: optional(
            "organizational_unit",
            organizational_unit,
            SubjectField::parse,
        )?,
        country: optional("country", country, CountryCode::parse)?,
        state: optional("state", state, SubjectField::parse)?,
        locality: optional("location", location, SubjectField::parse)?,
    })
}

/// The subject fields of a response.
pub(crate) struct SubjectView {
    pub organization: Option<String>,
    pub organizational_unit: Option<String>,
    pub country: Option<String>,
    pub state: Option<String>,
    pub location: Option<String>,
}

impl From<&CsrSubject> for SubjectView {
    fn from(s: &CsrSubject) -> Self {
        Self {
            organization: s.organization.as_ref().map(|v| v.as_str().to_owned()),
            organizational_unit: s
                .organizational_unit
                .as_ref()
                .map(|v| v.as_str().to_owned()),
            country: s.country.as_ref().map(|v| v.as_str().to_owned()),
            state: s.state.as_ref().map(|v| v.as_str().to_owned()),
            location: s.locality.as_ref().map(|v| v.as_str().to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_objects_keyed_by_id_in_id_order() {
        let list = Keyed(vec![(9, "a"), (10, "b")]);
        assert_eq!(
            serde_json::to_string(&list).expect("serializes"),
            r#"{"9":"a","10":"b"}"#
        );
    }

    #[test]
    fn subject_errors_name_the_field() {
        let err = subject(None, None, Some("Germany"), None, None).expect_err("not two letters");
        assert!(err.to_string().starts_with("country: "), "{err}");
        let err = subject(None, None, None, None, Some(" ")).expect_err("empty");
        assert!(err.to_string().starts_with("location: "), "{err}");
        let s = subject(Some("Acme"), None, Some("de"), None, Some("Berlin")).expect("valid");
        assert_eq!(s.country.expect("set").as_str(), "DE");
    }
}
