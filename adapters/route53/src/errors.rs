//! Translation of SDK errors into [`DnsError`]s with Route53's error code and message.

use acmeport_domain::ports::DnsError;
use acmeport_domain::redact_provider_text;
use aws_sdk_route53::config::http::HttpResponse;
use aws_sdk_route53::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Error codes that mean "try again later" rather than "this request is wrong".
/// The SDK retries these (and 5xx) itself; they only reach us once its attempts are
/// spent.
const TEMPORARY_CODES: &[&str] = &[
    "Throttling",
    "PriorRequestNotComplete",
    "ThrottlingException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
];

/// Error codes that mean the keys are wrong, expired or lack a permission.
const AUTH_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "ExpiredToken",
    "InvalidSignatureException",
];

/// The texts are passed through [`redact_provider_text`].
/// Refused credentials become [`DnsError::Unauthorized`]; other permanent service errors
/// become [`DnsError::Rejected`] ("Route53 InvalidInput: ...");
/// what is left after the SDK's retries of throttling and 5xx answers, and network
/// failures, become [`DnsError::Transport`].
pub(crate) fn translate<E>(error: SdkError<E, HttpResponse>, name: &str) -> DnsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    // Users read these texts in their orders: no ARNs, account ids or zone ids.
    let SdkError::ServiceError(service) = &error else {
        let text = redact_provider_text(&DisplayErrorContext(&error).to_string());
        return DnsError::Transport(text.into());
    };
    let status = service.raw().status().as_u16();
    let code = service.err().code().unwrap_or("UnknownError");
    let message = service.err().message().unwrap_or("no message");
    let text = redact_provider_text(&format!("Route53 {code}: {message} (HTTP {status})"));
    match code {
        "NoSuchHostedZone" => DnsError::ZoneNotFound(format!("{name} ({text})")),
        _ if AUTH_CODES.contains(&code) || status == 401 || status == 403 => {
            DnsError::Unauthorized(text)
        }
        _ if TEMPORARY_CODES.contains(&code) || status >= 500 => DnsError::Transport(text.into()),
        _ => DnsError::Rejected(text),
    }
}

pub(crate) fn build_error(error: BuildError) -> DnsError {
    DnsError::Transport(Box::new(error))
}
