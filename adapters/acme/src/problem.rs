//! ACME problem documents made readable, and instant-acme errors translated into the
//! port's [`AcmeError`].

use crate::https::HttpFailure;
use acmeport_domain::ports::AcmeError;
use instant_acme::{AuthorizationState, AuthorizationStatus, ChallengeType, Identifier, Problem};

/// The namespace of RFC 8555 error types; dropped for display (`unauthorized` reads better
/// than the URN).
const ERROR_NS: &str = "urn:ietf:params:acme:error:";

/// A failure inside an operation: from instant-acme (still to be classified, so that
/// `badNonce` can be retried), already the port's error, or a request the server did not
/// carry out although it raised no error (retried as well).
pub(crate) enum Failure {
    Acme(instant_acme::Error),
    Port(AcmeError),
    NotApplied(&'static str),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Acme(instant_acme::Error::Api(problem)) => f.write_str(&describe(problem)),
            Self::Acme(e) => e.fmt(f),
            Self::Port(e) => e.fmt(f),
            Self::NotApplied(what) => f.write_str(what),
        }
    }
}

impl From<instant_acme::Error> for Failure {
    fn from(e: instant_acme::Error) -> Self {
        // Every error of an ACME call passes here once, so each problem document the
        // server sends (including the `badNonce` ones retried) is counted once.
        if let Some(kind) = problem_type(&e) {
            acmeport_domain::metrics::acme_problem(kind);
        }
        Self::Acme(e)
    }
}

impl From<AcmeError> for Failure {
    fn from(e: AcmeError) -> Self {
        Self::Port(e)
    }
}

impl Failure {
    /// True for failures that a new attempt of the whole (idempotent) operation can cure.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Self::Acme(e) => problem_type(e) == Some("badNonce"),
            Self::NotApplied(_) => true,
            Self::Port(_) => false,
        }
    }

    pub(crate) fn into_port(self) -> AcmeError {
        match self {
            Self::Port(e) => e,
            Self::Acme(e) => translate(e),
            Self::NotApplied(what) => AcmeError::Rejected(what.to_owned()),
        }
    }
}

/// The short problem type (`badNonce`, `unauthorized`, ...) of an API error.
pub(crate) fn problem_type(error: &instant_acme::Error) -> Option<&str> {
    match error {
        instant_acme::Error::Api(problem) => problem
            .r#type
            .as_deref()
            .map(|t| t.strip_prefix(ERROR_NS).unwrap_or(t)),
        _ => None,
    }
}

/// Translates an instant-acme error at the seam.
pub(crate) fn translate(error: instant_acme::Error) -> AcmeError {
    match error {
        instant_acme::Error::Api(problem) => {
            if problem.r#type.as_deref() == Some("urn:ietf:params:acme:error:alreadyRevoked") {
                AcmeError::AlreadyRevoked
            } else if problem.r#type.as_deref() == Some("urn:ietf:params:acme:error:rateLimited") {
                AcmeError::RateLimited {
                    detail: describe(&problem),
                    retry_after: None,
                }
            } else {
                AcmeError::Rejected(describe(&problem))
            }
        }
        instant_acme::Error::Timeout(_) => {
            AcmeError::Timeout("the ACME server did not reach the expected state".into())
        }
        instant_acme::Error::KeyRejected | instant_acme::Error::Crypto => {
            AcmeError::Credentials("the account key cannot be used".into())
        }
        instant_acme::Error::Other(e) => {
            if let Some(refused) = refused_host(e.as_ref()) {
                // A directory that is (or resolves to) a non-public address is the
                // caller's mistake or attack, not an outage.
                return AcmeError::Rejected(refused);
            }
            match e.downcast::<HttpFailure>() {
                Ok(failure) => match *failure {
                    HttpFailure::RateLimited {
                        detail,
                        retry_after,
                    } => AcmeError::RateLimited {
                        detail,
                        retry_after,
                    },
                    other => AcmeError::Transport(Box::new(other)),
                },
                Err(e) => AcmeError::Transport(e),
            }
        }
        other => match refused_host(&other) {
            Some(refused) => AcmeError::Rejected(refused),
            None => AcmeError::Transport(Box::new(other)),
        },
    }
}

/// The reason, when a connection was refused by [`crate::guard`].
fn refused_host(error: &(dyn std::error::Error + Send + Sync + 'static)) -> Option<String> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<crate::guard::NonPublicHost>() {
            return Some(refused.to_string());
        }
        // An io::Error's source() skips the error it wraps; look inside.
        if let Some(refused) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<crate::guard::NonPublicHost>())
        {
            return Some(refused.to_string());
        }
        current = e.source();
    }
    None
}

/// A problem document as one line: `type: detail`, then each subproblem as
/// `; identifier: type: detail`.
pub(crate) fn describe(problem: &Problem) -> String {
    let mut text = headline(problem.r#type.as_deref(), problem.detail.as_deref());
    for sub in &problem.subproblems {
        text.push_str("; ");
        if let Some(identifier) = &sub.identifier {
            text.push_str(&identifier_text(identifier));
            text.push_str(": ");
        }
        text.push_str(&headline(sub.r#type.as_deref(), sub.detail.as_deref()));
    }
    text
}

/// Why an authorization is not valid: its identifier, then each failed challenge's
/// problem, or its status when no challenge says more.
pub(crate) fn describe_authorization(authz: &AuthorizationState) -> String {
    let identifier = authz.identifier().to_string();
    let failures: Vec<String> = authz
        .challenges
        .iter()
        .filter_map(|c| {
            c.error
                .as_ref()
                .map(|p| format!("{} challenge: {}", challenge_name(&c.r#type), describe(p)))
        })
        .collect();
    if failures.is_empty() {
        format!(
            "{identifier}: authorization is {}",
            authorization_status(authz.status)
        )
    } else {
        format!("{identifier}: {}", failures.join(", "))
    }
}

pub(crate) fn authorization_status(status: AuthorizationStatus) -> &'static str {
    match status {
        AuthorizationStatus::Pending => "pending",
        AuthorizationStatus::Valid => "valid",
        AuthorizationStatus::Invalid => "invalid",
        AuthorizationStatus::Revoked => "revoked",
        AuthorizationStatus::Expired => "expired",
        AuthorizationStatus::Deactivated => "deactivated",
    }
}

fn challenge_name(kind: &ChallengeType) -> &str {
    match kind {
        ChallengeType::Http01 => "http-01",
        ChallengeType::Dns01 => "dns-01",
        ChallengeType::TlsAlpn01 => "tls-alpn-01",
        ChallengeType::DeviceAttest01 => "device-attest-01",
        ChallengeType::Unknown(name) => name,
        _ => "unknown",
    }
}

fn identifier_text(identifier: &Identifier) -> String {
    identifier.authorized(false).to_string()
}

fn headline(kind: Option<&str>, detail: Option<&str>) -> String {
    let kind = kind.map(|k| k.strip_prefix(ERROR_NS).unwrap_or(k));
    match (kind, detail) {
        (Some(kind), Some(detail)) => format!("{kind}: {detail}"),
        (Some(kind), None) => kind.to_owned(),
        (None, Some(detail)) => detail.to_owned(),
        (None, None) => "no reason given".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(json: &str) -> Problem {
        serde_json::from_str(json).expect("problem JSON")
    }

    #[test]
    fn problems_read_as_type_and_detail_with_subproblems() {
        let p = problem(
            r#"{"type":"urn:ietf:params:acme:error:rejectedIdentifier",
                "detail":"some names are forbidden","status":400,
                "subproblems":[
                  {"type":"urn:ietf:params:acme:error:rejectedIdentifier",
                   "detail":"policy forbids this name",
                   "identifier":{"type":"dns","value":"bad.example"}},
                  {"detail":"no type here"}]}"#,
        );
        assert_eq!(
            describe(&p),
            "rejectedIdentifier: some names are forbidden; \
             bad.example: rejectedIdentifier: policy forbids this name; no type here"
        );
        assert_eq!(describe(&problem("{}")), "no reason given");
    }

    #[test]
    fn already_revoked_and_bad_nonce_are_recognised() {
        let revoked = instant_acme::Error::Api(problem(
            r#"{"type":"urn:ietf:params:acme:error:alreadyRevoked","detail":"x"}"#,
        ));
        assert!(matches!(translate(revoked), AcmeError::AlreadyRevoked));
        let nonce = Failure::Acme(instant_acme::Error::Api(problem(
            r#"{"type":"urn:ietf:params:acme:error:badNonce","detail":"stale"}"#,
        )));
        assert!(nonce.is_retryable());
        let other = Failure::Acme(instant_acme::Error::Api(problem(
            r#"{"type":"urn:ietf:params:acme:error:unauthorized","detail":"Account is not valid"}"#,
        )));
        assert!(!other.is_retryable());
        match other.into_port() {
            AcmeError::Rejected(text) => {
                assert_eq!(text, "unauthorized: Account is not valid");
            }
            e => panic!("expected Rejected, got {e:?}"),
        }
    }
}
