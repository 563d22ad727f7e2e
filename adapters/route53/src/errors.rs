//! Translation of SDK errors into [`DnsError`]s with Route53's error code and message.

use acmeport_domain::ports::DnsError;
use aws_sdk_route53::config::http::HttpResponse;
use aws_sdk_route53::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Error codes that mean "try again later" rather than "this request is wrong".
const TEMPORARY_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
];

/// A translated error, keeping apart the one the provider retries itself.
#[derive(Debug)]
pub(crate) enum Translated {
    /// Route53 is still applying an earlier change to the same set.
    PriorRequestNotComplete(DnsError),
    Other(DnsError),
}

impl Translated {
    pub(crate) fn into_dns_error(self) -> DnsError {
        match self {
            Self::PriorRequestNotComplete(e) | Self::Other(e) => e,
        }
    }
}

impl From<DnsError> for Translated {
    fn from(error: DnsError) -> Self {
        match &error {
            DnsError::Transport(source)
                if source.to_string().starts_with("PriorRequestNotComplete") =>
            {
                Self::PriorRequestNotComplete(error)
            }
            _ => Self::Other(error),
        }
    }
}

/// Permanent service errors become [`DnsError::Rejected`] ("AccessDenied: ..."); what is
/// left after the SDK's retries of throttling and 5xx answers, and network failures,
/// become [`DnsError::Transport`].
pub(crate) fn translate<E>(error: SdkError<E, HttpResponse>, name: &str) -> DnsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("UnknownError").to_owned();
            let message = service.err().message().unwrap_or("no message").to_owned();
            let text = format!("{code}: {message}");
            if code == "NoSuchHostedZone" {
                DnsError::ZoneNotFound(format!("{name} ({text})"))
            } else if code == "PriorRequestNotComplete"
                || TEMPORARY_CODES.contains(&code.as_str())
                || status >= 500
            {
                DnsError::Transport(format!("{text} (HTTP {status})").into())
            } else {
                DnsError::Rejected(format!("Route53 {text}"))
            }
        }
        _ => DnsError::Transport(DisplayErrorContext(&error).to_string().into()),
    }
}

pub(crate) fn build_error(error: BuildError) -> DnsError {
    DnsError::Transport(Box::new(error))
}
