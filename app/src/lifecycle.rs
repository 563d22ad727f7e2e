//! The Prometheus metrics page of `serve`: the recorder and the gauges read from the
//! store at each scrape. (Delivering the webhook outbox and raising expiry warnings are
//! the facade's background work.)

use acmeport_domain::metrics as names;
use acmeport_http::MetricsSource;
use acmeport_store::Store;
use async_trait::async_trait;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// The process-wide Prometheus recorder, installed on first use (a process has one
/// global recorder; tests start several applications in one process).
fn recorder() -> &'static Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(names::ISSUANCE_DURATION.to_owned()),
                names::DURATION_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(names::PROPAGATION_WAIT.to_owned()),
                    names::DURATION_BUCKETS,
                )
            });
        match builder.map(PrometheusBuilder::install_recorder) {
            Ok(Ok(handle)) => {
                names::describe();
                metrics_process::Collector::default().describe();
                Some(handle)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot install the metrics recorder");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "invalid metrics buckets");
                None
            }
        }
    })
}

/// Installs the metrics recorder, so that what happens from now on is counted.
pub fn install_metrics() {
    let _ = recorder();
}

/// The metrics page: the recorded counters and histograms, plus gauges read from the
/// database at each scrape (orders by status, certificates by days to expiry) and the
/// process metrics.
pub struct StoreMetrics {
    store: Store,
    process: metrics_process::Collector,
}

impl StoreMetrics {
    /// Metrics over `store`; installs the recorder.
    #[must_use]
    pub fn new(store: Store) -> Self {
        install_metrics();
        Self {
            store,
            process: metrics_process::Collector::default(),
        }
    }
}

#[async_trait]
impl MetricsSource for StoreMetrics {
    async fn render(&self) -> String {
        let Some(handle) = recorder() else {
            return String::new();
        };
        match self.store.order_counts().await {
            Ok(counts) => names::set_orders(&counts),
            Err(e) => tracing::warn!(error = %e, "cannot count orders for the metrics"),
        }
        match self
            .store
            .certificate_expiry_counts(time::OffsetDateTime::now_utc())
            .await
        {
            Ok(counts) => names::set_certificates_by_expiry(&counts),
            Err(e) => tracing::warn!(error = %e, "cannot count certificates for the metrics"),
        }
        self.process.collect();
        handle.run_upkeep();
        handle.render()
    }
}
