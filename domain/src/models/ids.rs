//! Integer identifiers of the stored entities, one type each so they cannot be mixed up.

use std::fmt;
use std::str::FromStr;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(i64);

        impl $name {
            /// Wraps a raw id as read from storage or from a URL path.
            #[must_use]
            pub const fn new(raw: i64) -> Self {
                Self(raw)
            }

            /// The raw integer, for storage and URLs.
            #[must_use]
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    };
}

id_type!(
    /// Identifies a user of the service.
    UserId
);
id_type!(
    /// Identifies an ACME account registered through the service.
    AccountId
);
id_type!(
    /// Identifies an order.
    OrderId
);
id_type!(
    /// Identifies a stored certificate.
    CertificateId
);
id_type!(
    /// Identifies a stored lifecycle event (and its webhook deliveries).
    EventId
);
id_type!(
    /// Identifies a domain grant of a user.
    GrantId
);
id_type!(
    /// Identifies a named API key.
    ApiKeyId
);
id_type!(
    /// Identifies an entry of the audit log.
    AuditId
);

/// Identifies one worker (one process or task) that claims orders.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkerId(String);

impl WorkerId {
    /// Wraps a worker name, for example `hostname:pid`.
    #[must_use]
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The worker name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One page of a list: at most `limit` items with ids greater than `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    limit: u32,
    after: Option<i64>,
}

impl Page {
    /// The largest page a caller may ask for.
    pub const MAX_LIMIT: u32 = 1000;
    /// The page size used when the caller names none.
    pub const DEFAULT_LIMIT: u32 = 100;

    /// A page of `limit` items (clamped to `1..=MAX_LIMIT`) after the id `after`.
    #[must_use]
    pub fn new(limit: Option<u32>, after: Option<i64>) -> Self {
        let limit = limit
            .unwrap_or(Self::DEFAULT_LIMIT)
            .clamp(1, Self::MAX_LIMIT);
        Self { limit, after }
    }

    /// The page size.
    #[must_use]
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The id after which this page starts.
    #[must_use]
    pub fn after(&self) -> Option<i64> {
        self.after
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::new(None, None)
    }
}

/// A page of results and whether more rows follow it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    /// The items of this page, ordered by id.
    pub items: Vec<T>,
    /// True when rows exist after the last item of this page.
    pub has_more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_limit_is_clamped() {
        assert_eq!(Page::new(Some(0), None).limit(), 1);
        assert_eq!(Page::new(Some(5000), None).limit(), Page::MAX_LIMIT);
        assert_eq!(Page::new(None, Some(7)).limit(), Page::DEFAULT_LIMIT);
        assert_eq!(Page::new(None, Some(7)).after(), Some(7));
    }

    #[test]
    fn ids_parse_and_display() {
        let id: OrderId = "42".parse().expect("42 is an id");
        assert_eq!(id.get(), 42);
        assert_eq!(id.to_string(), "42");
        assert!("x".parse::<OrderId>().is_err());
    }
}
