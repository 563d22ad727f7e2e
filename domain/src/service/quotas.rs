//! Per-user quotas: ACME accounts, orders in flight, names per order and new orders per
//! hour, so that one user can neither queue hours of work ahead of everyone nor spend the
//! CA's per-address account limit.

use super::Acmeport;
use crate::models::{Identifiers, UserId};
use crate::ports::{RepoError, UsageCounter};
use std::sync::Arc;
use std::time::Duration;

/// The limits; `0` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// ACME accounts one user may register (deactivated ones count).
    pub accounts_per_user: u32,
    /// Orders one user may have pending at once.
    pub orders_in_flight_per_user: u32,
    /// Names one order may hold.
    pub names_per_order: u32,
    /// New orders one user may create per hour (reissues do not count).
    pub orders_per_hour_per_user: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            accounts_per_user: 10,
            orders_in_flight_per_user: 100,
            names_per_order: 100,
            orders_per_hour_per_user: 300,
        }
    }
}

/// Which limit was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuotaKind {
    /// [`Quotas::accounts_per_user`].
    AccountsPerUser,
    /// [`Quotas::orders_in_flight_per_user`].
    OrdersInFlightPerUser,
    /// A property of the request itself, not of the user's history: a 400, not a 429.
    NamesPerOrder,
    /// [`Quotas::orders_per_hour_per_user`].
    OrdersPerHourPerUser,
}

impl QuotaKind {
    /// The configuration key of the limit.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::AccountsPerUser => "quotas.accounts_per_user",
            Self::OrdersInFlightPerUser => "quotas.orders_in_flight_per_user",
            Self::NamesPerOrder => "quotas.names_per_order",
            Self::OrdersPerHourPerUser => "quotas.orders_per_hour_per_user",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::AccountsPerUser => "ACME accounts per user",
            Self::OrdersInFlightPerUser => "pending orders per user",
            Self::NamesPerOrder => "names per order",
            Self::OrdersPerHourPerUser => "new orders per hour per user",
        }
    }
}

/// A quota was hit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("quota exceeded: at most {max} {what} ({key})", what = .kind.what(), key = .kind.key())]
pub struct QuotaExceeded {
    /// Which limit.
    pub kind: QuotaKind,
    /// The limit's value.
    pub max: u32,
    /// When trying again may succeed, if known (the hourly limit).
    pub retry_after: Option<Duration>,
}

/// Quotas and the counter they are checked with.
#[derive(Clone)]
pub(crate) struct QuotaCheck {
    quotas: Quotas,
    usage: Arc<dyn UsageCounter>,
}

/// A failed quota check: the quota, or storage.
#[derive(Debug)]
pub(crate) enum QuotaFailure {
    Exceeded(QuotaExceeded),
    Repo(RepoError),
}

impl From<RepoError> for QuotaFailure {
    fn from(e: RepoError) -> Self {
        Self::Repo(e)
    }
}

fn over(count: u64, max: u32) -> bool {
    max != 0 && count >= u64::from(max)
}

impl Acmeport {
    /// Enforces per-user quotas, counted by `usage`. Without it, nothing is limited.
    #[must_use]
    pub fn with_quotas(mut self, quotas: Quotas, usage: Arc<dyn UsageCounter>) -> Self {
        self.quotas = Some(QuotaCheck { quotas, usage });
        self
    }

    /// Refuses one more ACME account when the user has reached the limit.
    pub(crate) async fn check_account_quota(&self, user: UserId) -> Result<(), QuotaFailure> {
        let Some(check) = &self.quotas else {
            return Ok(());
        };
        let max = check.quotas.accounts_per_user;
        if over(check.usage.accounts(user).await?, max) {
            return Err(QuotaFailure::Exceeded(QuotaExceeded {
                kind: QuotaKind::AccountsPerUser,
                max,
                retry_after: None,
            }));
        }
        Ok(())
    }

    /// Refuses an order with too many names (`new` is false for a reissue, which only
    /// counts as in flight).
    pub(crate) async fn check_order_quota(
        &self,
        user: UserId,
        identifiers: &Identifiers,
        new: bool,
    ) -> Result<(), QuotaFailure> {
        let Some(check) = &self.quotas else {
            return Ok(());
        };
        let q = check.quotas;
        let names = identifiers.as_slice().len() as u64;
        if q.names_per_order != 0 && names > u64::from(q.names_per_order) {
            return Err(QuotaFailure::Exceeded(QuotaExceeded {
                kind: QuotaKind::NamesPerOrder,
                max: q.names_per_order,
                retry_after: None,
            }));
        }
        if over(
            check.usage.orders_in_flight(user).await?,
            q.orders_in_flight_per_user,
        ) {
            return Err(QuotaFailure::Exceeded(QuotaExceeded {
                kind: QuotaKind::OrdersInFlightPerUser,
                max: q.orders_in_flight_per_user,
                retry_after: None,
            }));
        }
        if new {
            let hour = Duration::from_secs(3600);
            let since = self.now() - hour;
            if over(
                check.usage.orders_since(user, since).await?,
                q.orders_per_hour_per_user,
            ) {
                return Err(QuotaFailure::Exceeded(QuotaExceeded {
                    kind: QuotaKind::OrdersPerHourPerUser,
                    max: q.orders_per_hour_per_user,
                    // The oldest order of the hour leaves the window within the hour.
                    retry_after: Some(Duration::from_secs(60)),
                }));
            }
        }
        Ok(())
    }
}
