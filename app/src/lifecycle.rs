//! The lifecycle tasks of `serve`: delivering the webhook outbox, raising expiry
//! warnings, and the Prometheus metrics page. Each only calls the domain or reads the
//! store; the policies live in the domain.

use acmeport_domain::ports::WebhookSender;
use acmeport_domain::{metrics as names, Acmeport, WorkerId};
use acmeport_http::MetricsSource;
use acmeport_store::Store;
use async_trait::async_trait;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

/// Delivers due webhook events until `stop`; after a full batch it looks again at once,
/// otherwise it waits `poll`. Every `expiry_scan` it raises the expiry warnings that are
/// due. Events survive restarts in the outbox: a crash between an event and its delivery
/// only delays it.
pub async fn run_deliveries(
    service: Acmeport,
    sender: Arc<dyn WebhookSender>,
    id: WorkerId,
    poll: Duration,
    expiry_scan: Duration,
    mut stop: watch::Receiver<bool>,
) {
    tracing::info!(worker = %id, "webhook delivery started");
    let batch = service.settings().lifecycle.delivery.batch as usize;
    let mut next_scan = tokio::time::Instant::now();
    loop {
        if *stop.borrow() {
            break;
        }
        if tokio::time::Instant::now() >= next_scan {
            match service.scan_expiring().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(events = n, "expiry warnings raised"),
                Err(e) => tracing::warn!(error = %e, "expiry scan failed"),
            }
            next_scan = tokio::time::Instant::now() + expiry_scan;
        }
        let full = tokio::select! {
            biased;
            _ = stop.changed() => break,
            result = service.deliver_events(&id, sender.as_ref()) => match result {
                Ok(handled) => handled >= batch,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook delivery pass failed");
                    false
                }
            },
        };
        if !full {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
    tracing::info!(worker = %id, "webhook delivery stopped");
}

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
