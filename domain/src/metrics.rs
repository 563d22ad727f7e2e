//! The service's metric names and the calls that record them, through the `metrics`
//! facade.
//!
//! `metrics` is a pure facade like `tracing`: it does no I/O and records nothing until
//! the binary installs a recorder (the Prometheus exporter in `app`), so the domain and
//! the adapters record where things happen. Every name lives here, so that the README's
//! list and the exporter's descriptions cannot drift from the code.

use std::time::Duration;

/// Gauge: orders by `status` (`pending`, `valid`, `invalid`, `revoked`), read from the
/// database at each scrape.
pub const ORDERS: &str = "acmeport_orders";
/// Histogram (seconds): from the start of an issuance attempt to its stored certificate.
pub const ISSUANCE_DURATION: &str = "acmeport_issuance_duration_seconds";
/// Counter: renewals that stored a new certificate.
pub const RENEWALS_DONE: &str = "acmeport_renewals_total";
/// Counter: renewal attempts that failed.
pub const RENEWALS_FAILED: &str = "acmeport_renewal_failures_total";
/// Counter: problem documents received from ACME servers, by `type`.
pub const ACME_PROBLEMS: &str = "acmeport_acme_problems_total";
/// Histogram (seconds): waiting for DNS-01 records to reach every authoritative server.
pub const PROPAGATION_WAIT: &str = "acmeport_dns_propagation_wait_seconds";
/// Counter: webhook delivery attempts per endpoint, by `result` (`delivered`, `failed`,
/// `gave_up`).
pub const WEBHOOK_DELIVERIES: &str = "acmeport_webhook_deliveries_total";
/// Gauge: valid certificates by `days` left before `not_after` (`expired`, `0-7`,
/// `7-14`, `14-30`, `30+`), read from the database at each scrape.
pub const CERTIFICATES_BY_EXPIRY: &str = "acmeport_certificates";
/// Counter: lifecycle events stored, by `event`.
pub const EVENTS: &str = "acmeport_events_total";

/// The histogram buckets (seconds) of [`ISSUANCE_DURATION`] and [`PROPAGATION_WAIT`].
pub const DURATION_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// The expiry bands of [`CERTIFICATES_BY_EXPIRY`]: label and upper bound in days.
pub const EXPIRY_BANDS: &[(&str, i64)] = &[
    ("expired", 0),
    ("0-7", 7),
    ("7-14", 14),
    ("14-30", 30),
    ("30+", i64::MAX),
];

/// Registers the help text of every metric with the installed recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(ORDERS, "Orders by status");
    describe_histogram!(
        ISSUANCE_DURATION,
        Unit::Seconds,
        "Time from the start of an issuance attempt to its stored certificate"
    );
    describe_counter!(RENEWALS_DONE, "Renewals that stored a new certificate");
    describe_counter!(RENEWALS_FAILED, "Renewal attempts that failed");
    describe_counter!(ACME_PROBLEMS, "ACME problem documents received, by type");
    describe_histogram!(
        PROPAGATION_WAIT,
        Unit::Seconds,
        "Time DNS-01 records took to reach every authoritative nameserver"
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "Webhook delivery attempts per endpoint, by result"
    );
    describe_gauge!(
        CERTIFICATES_BY_EXPIRY,
        "Valid certificates by days left before not_after"
    );
    describe_counter!(EVENTS, "Lifecycle events stored, by event");
}

/// An issuance attempt stored its certificate after `elapsed`.
pub fn issuance_finished(elapsed: Duration) {
    metrics::histogram!(ISSUANCE_DURATION).record(elapsed.as_secs_f64());
}

/// DNS-01 records took `elapsed` to propagate.
pub fn propagation_waited(elapsed: Duration) {
    metrics::histogram!(PROPAGATION_WAIT).record(elapsed.as_secs_f64());
}

/// A renewal stored a new certificate.
pub fn renewal_done() {
    metrics::counter!(RENEWALS_DONE).increment(1);
}

/// A renewal attempt failed.
pub fn renewal_failed() {
    metrics::counter!(RENEWALS_FAILED).increment(1);
}

/// An ACME server answered with a problem of `problem_type` (the URN's last part, for
/// example `rateLimited`).
pub fn acme_problem(problem_type: &str) {
    let short = problem_type
        .rsplit(':')
        .next()
        .unwrap_or(problem_type)
        .to_owned();
    metrics::counter!(ACME_PROBLEMS, "type" => short).increment(1);
}

/// One webhook delivery attempt ended with `result`.
pub(crate) fn webhook_delivery(result: &'static str) {
    metrics::counter!(WEBHOOK_DELIVERIES, "result" => result).increment(1);
}

/// An event of `kind` was stored (called by the storage adapter, which knows whether
/// the event was new).
pub fn event_stored(kind: crate::models::EventKind) {
    metrics::counter!(EVENTS, "event" => kind.as_str()).increment(1);
}

/// The gauge values of [`ORDERS`], from counts by status.
pub fn set_orders(counts: &[(String, u64)]) {
    for (status, n) in counts {
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!(ORDERS, "status" => status.clone()).set(*n as f64);
    }
}

/// The gauge values of [`CERTIFICATES_BY_EXPIRY`], from counts per band of
/// [`EXPIRY_BANDS`] (in that order).
pub fn set_certificates_by_expiry(counts: &[u64]) {
    for ((band, _), n) in EXPIRY_BANDS.iter().zip(counts) {
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!(CERTIFICATES_BY_EXPIRY, "days" => *band).set(*n as f64);
    }
}
