//! Who may do what: the name patterns granted to users, named API keys and their scopes,
//! and the entries of the audit log.

use super::{ApiKeyId, AuditId, DomainName, DomainNameError, GrantId, OrderId, UserId};
use std::fmt;
use time::OffsetDateTime;

/// A set of names a user may order certificates for.
///
/// - `example.com`: exactly that name;
/// - `*.example.com`: the wildcard `*.example.com` and every name one label below
///   `example.com` (`www.example.com`, not `example.com`, not `a.b.example.com`);
/// - `.example.com`: `example.com` itself and every name and wildcard below it, at any
///   depth.
///
/// Patterns are normalised like [`DomainName`] (lower case, IDNA names as punycode), so
/// `.bücher.example` and `.xn--bcher-kva.example` are the same grant.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamePattern {
    kind: PatternKind,
    /// The name without its `*.` or `.` prefix, normalised.
    base: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum PatternKind {
    Exact,
    OneLabel,
    AnyDepth,
}

/// Why a string is not a name pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamePatternError {
    #[error("{0}")]
    /// The name part is not a valid domain name.
    Name(#[from] DomainNameError),
    #[error("use `*.example.com` for one label or `.example.com` for any depth")]
    /// A misplaced `*` or dot: use `*.example.com` for one label or `.example.com` for any depth.
    Malformed,
}

impl NamePattern {
    /// Parses `example.com`, `*.example.com` or `.example.com`.
    ///
    /// # Errors
    ///
    /// The rule of [`DomainName::parse`] the name breaks (a pattern needs at least two
    /// labels below its prefix, so `.com` is refused), or a misplaced `*`.
    pub fn parse(input: &str) -> Result<Self, NamePatternError> {
        let input = input.trim();
        let (kind, rest) = if let Some(rest) = input.strip_prefix("*.") {
            (PatternKind::OneLabel, rest)
        } else if let Some(rest) = input.strip_prefix('.') {
            (PatternKind::AnyDepth, rest)
        } else {
            (PatternKind::Exact, input)
        };
        if rest.starts_with('.') || rest.starts_with('*') || rest.chars().any(char::is_whitespace) {
            return Err(NamePatternError::Malformed);
        }
        let name = DomainName::parse(rest)?;
        if name.is_wildcard() {
            return Err(NamePatternError::Malformed);
        }
        Ok(Self {
            kind,
            base: name.as_str().to_owned(),
        })
    }

    /// True when the pattern covers `name` (which may be a wildcard).
    #[must_use]
    pub fn matches(&self, name: &DomainName) -> bool {
        let suffix = format!(".{}", self.base);
        match self.kind {
            PatternKind::Exact => !name.is_wildcard() && name.as_str() == self.base,
            PatternKind::OneLabel => {
                if name.is_wildcard() {
                    name.base() == self.base
                } else {
                    name.as_str()
                        .strip_suffix(&suffix)
                        .is_some_and(|label| !label.contains('.'))
                }
            }
            PatternKind::AnyDepth => name.base() == self.base || name.base().ends_with(&suffix),
        }
    }

    /// The first of `names` that no pattern of `patterns` covers.
    #[must_use]
    pub fn first_uncovered<'a>(
        patterns: &[NamePattern],
        names: &'a [DomainName],
    ) -> Option<&'a DomainName> {
        names
            .iter()
            .find(|name| !patterns.iter().any(|p| p.matches(name)))
    }

    /// The pattern as text: `example.com`, `*.example.com` or `.example.com`.
    #[must_use]
    pub fn as_string(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PatternKind::Exact => f.write_str(&self.base),
            PatternKind::OneLabel => write!(f, "*.{}", self.base),
            PatternKind::AnyDepth => write!(f, ".{}", self.base),
        }
    }
}

impl fmt::Debug for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NamePattern({self})")
    }
}

/// A pattern granted to a user.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainGrant {
    /// Assigned by the repository.
    pub id: GrantId,
    /// The user the pattern is granted to.
    pub user_id: UserId,
    /// The names it covers.
    pub pattern: NamePattern,
    /// When it was granted.
    pub created_at: OffsetDateTime,
}

/// What a named API key may do, beyond being its user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiKeyScope {
    /// Only reads (`GET`): no orders, no revocations, no changes.
    pub read_only: bool,
    /// Only these orders (and their certificates); any of the user's when `None`.
    pub orders: Option<Vec<OrderId>>,
    /// Only names these patterns cover (on top of the user's grants); any when `None`.
    pub domains: Option<Vec<NamePattern>>,
}

impl ApiKeyScope {
    /// True for a key limited in no way.
    #[must_use]
    pub fn is_unrestricted(&self) -> bool {
        !self.read_only && self.orders.is_none() && self.domains.is_none()
    }

    /// True when the key may touch `order`.
    #[must_use]
    pub fn allows_order(&self, order: OrderId) -> bool {
        self.orders.as_ref().is_none_or(|ids| ids.contains(&order))
    }
}

/// The stored digest of an API key's secret (never the secret itself).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyDigest(String);

impl ApiKeyDigest {
    /// Wraps a digest produced by a [`crate::ports::ApiKeySecrets`].
    #[must_use]
    pub fn new(digest: impl Into<String>) -> Self {
        Self(digest.into())
    }

    /// The digest text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeyDigest(***)")
    }
}

/// A named API key of a user, for machines.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    /// Assigned by the repository.
    pub id: ApiKeyId,
    /// The user the key acts as.
    pub user_id: UserId,
    /// Its name, unique among the user's keys.
    pub name: String,
    /// What it may do.
    pub scope: ApiKeyScope,
    /// The digest of its secret (the secret itself is never stored).
    pub digest: ApiKeyDigest,
    /// When it stops working; never when `None`.
    pub expires_at: Option<OffsetDateTime>,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// An API key to be stored; the repository assigns the id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    /// The user the key acts as.
    pub user_id: UserId,
    /// Its name, unique among the user's keys.
    pub name: String,
    /// What it may do.
    pub scope: ApiKeyScope,
    /// The digest of its secret (the secret itself is never stored).
    pub digest: ApiKeyDigest,
    /// When it stops working; never when `None`.
    pub expires_at: Option<OffsetDateTime>,
    /// When it is created.
    pub created_at: OffsetDateTime,
}

/// Who is calling: a user, through their password or token, or through one of their API
/// keys (whose scope then limits what they may do).
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The user acting.
    pub user: User,
    /// The scope of the API key used, `None` for a password or token.
    pub key: Option<(ApiKeyId, ApiKeyScope)>,
}

use super::User;

impl Principal {
    /// A user acting with their full rights.
    #[must_use]
    pub fn user(user: User) -> Self {
        Self { user, key: None }
    }

    /// The scope in force: unrestricted for a password or token.
    #[must_use]
    pub fn scope(&self) -> Option<&ApiKeyScope> {
        self.key.as_ref().map(|(_, s)| s)
    }
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditAction {
    /// A login with a wrong username, password or token.
    LoginFailed,
    /// An admin created a user.
    UserCreated,
    /// An admin changed a user (admin or disabled flag).
    UserUpdated,
    /// An admin deleted a user.
    UserDeleted,
    /// A password was changed.
    PasswordChanged,
    /// A name pattern was granted.
    GrantAdded,
    /// A grant was removed.
    GrantRemoved,
    /// An API key was created.
    ApiKeyCreated,
    /// An API key was revoked.
    ApiKeyRevoked,
    /// An ACME account was registered.
    AccountRegistered,
    /// An ACME account was deactivated.
    AccountDeactivated,
    /// An ACME account's key was rolled over.
    AccountKeyRolled,
    /// An order was created.
    OrderCreated,
    /// An order was reissued.
    OrderReissued,
    /// A certificate was downloaded with its private key.
    CertificateDownloaded,
    /// A certificate was revoked.
    CertificateRevoked,
    /// A certificate was purged (revoked if valid, then deleted).
    CertificatePurged,
}

impl AuditAction {
    /// Every action, for parsing stored values.
    pub const ALL: [AuditAction; 17] = [
        Self::LoginFailed,
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDeleted,
        Self::PasswordChanged,
        Self::GrantAdded,
        Self::GrantRemoved,
        Self::ApiKeyCreated,
        Self::ApiKeyRevoked,
        Self::AccountRegistered,
        Self::AccountDeactivated,
        Self::AccountKeyRolled,
        Self::OrderCreated,
        Self::OrderReissued,
        Self::CertificateDownloaded,
        Self::CertificateRevoked,
        Self::CertificatePurged,
    ];

    /// The stored and shown name (`order.created`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginFailed => "login.failed",
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::UserDeleted => "user.deleted",
            Self::PasswordChanged => "user.password_changed",
            Self::GrantAdded => "grant.added",
            Self::GrantRemoved => "grant.removed",
            Self::ApiKeyCreated => "api_key.created",
            Self::ApiKeyRevoked => "api_key.revoked",
            Self::AccountRegistered => "account.registered",
            Self::AccountDeactivated => "account.deactivated",
            Self::AccountKeyRolled => "account.key_rolled",
            Self::OrderCreated => "order.created",
            Self::OrderReissued => "order.reissued",
            Self::CertificateDownloaded => "certificate.downloaded",
            Self::CertificateRevoked => "certificate.revoked",
            Self::CertificatePurged => "certificate.purged",
        }
    }

    /// The action with this name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// One audit entry to record. `detail` is a short readable text chosen by the service;
/// it never holds a secret (no password, token, key or API key secret).
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// When it happened.
    pub at: OffsetDateTime,
    /// The acting user; `None` for the command line or a failed login.
    pub actor: Option<UserId>,
    /// The API key used, if any.
    pub api_key: Option<ApiKeyId>,
    /// What was done.
    pub action: AuditAction,
    /// What was acted on (`user 7`, `order 12`, a login name for a failed login).
    pub target: String,
    /// A short readable text; never a secret.
    pub detail: String,
}

/// A recorded audit entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Assigned by the audit log, increasing.
    pub id: AuditId,
    /// The entry as recorded.
    pub entry: NewAuditEntry,
}

/// Which audit entries to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only entries whose actor is this user.
    pub actor: Option<UserId>,
    /// Only entries at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only entries before this time.
    pub until: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> NamePattern {
        NamePattern::parse(s).expect(s)
    }

    fn n(s: &str) -> DomainName {
        DomainName::parse(s).expect(s)
    }

    #[test]
    fn exact_patterns_cover_one_name() {
        assert!(p("example.com").matches(&n("example.com")));
        assert!(p("Example.COM.").matches(&n("example.com")));
        assert!(!p("example.com").matches(&n("www.example.com")));
        assert!(!p("example.com").matches(&n("*.example.com")));
    }

    #[test]
    fn one_label_patterns_cover_one_level_and_the_wildcard() {
        let pattern = p("*.example.com");
        assert!(pattern.matches(&n("www.example.com")));
        assert!(pattern.matches(&n("*.example.com")));
        assert!(!pattern.matches(&n("example.com")));
        assert!(!pattern.matches(&n("a.b.example.com")));
        assert!(!pattern.matches(&n("*.b.example.com")));
        assert!(!pattern.matches(&n("wwwexample.com")));
    }

    #[test]
    fn any_depth_patterns_cover_the_apex_and_everything_below() {
        let pattern = p(".example.com");
        for name in [
            "example.com",
            "www.example.com",
            "a.b.example.com",
            "*.example.com",
            "*.b.example.com",
        ] {
            assert!(pattern.matches(&n(name)), "{name}");
        }
        for name in ["badexample.com", "example.com.evil.org", "com.example"] {
            assert!(!pattern.matches(&n(name)), "{name}");
        }
    }

    #[test]
    fn idna_patterns_are_normalised_like_names() {
        let pattern = p(".Bücher.example");
        assert_eq!(pattern.to_string(), ".xn--bcher-kva.example");
        assert!(pattern.matches(&n("www.bücher.example")));
        assert!(pattern.matches(&n("xn--bcher-kva.example")));
        assert_eq!(pattern, p(".xn--bcher-kva.example"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "",
            ".",
            "*.",
            ".com",
            "*.com",
            "..example.com",
            "*.*.example.com",
            "a.*.example.com",
            "**.example.com",
            ". example.com",
        ] {
            assert!(NamePattern::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn the_first_uncovered_name_is_named() {
        let grants = [p("example.com"), p("*.example.com")];
        let names = [
            n("example.com"),
            n("www.example.com"),
            n("a.b.example.com"),
            n("x.org"),
        ];
        assert_eq!(
            NamePattern::first_uncovered(&grants, &names).map(DomainName::as_str),
            Some("a.b.example.com")
        );
        assert_eq!(NamePattern::first_uncovered(&grants, &names[..2]), None);
    }

    #[test]
    fn audit_actions_round_trip() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(AuditAction::parse("nope"), None);
    }
}
