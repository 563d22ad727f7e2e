//! The background workers: each loops over `Acmeport::work_one`, which runs a due order's
//! steps until the order settles or has to wait. With nothing due, a worker sleeps until
//! the next due time (at most the poll interval, which also finds orders another
//! instance made due) unless a new order wakes it.

use acmeport_domain::service::WorkError;
use acmeport_domain::{Acmeport, WorkerId};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// A name unique to this worker among all instances: host, process and index.
#[must_use]
pub fn worker_id(index: usize) -> WorkerId {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "acmeport".to_owned());
    WorkerId::new(format!("{host}:{}:{index}", std::process::id()))
}

/// Runs one worker until `stop` turns true.
///
/// Stopping drops the order being worked at once: every finished step is already
/// committed, and the lease lapses so that this or another instance resumes the order
/// from its last step. Nothing is lost, only the step in flight is repeated.
pub async fn run(
    service: Acmeport,
    id: WorkerId,
    poll: Duration,
    new_work: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    tracing::info!(worker = %id, "worker started");
    loop {
        if *stop.borrow() {
            break;
        }
        let idle = tokio::select! {
            biased;
            _ = stop.changed() => break,
            result = service.work_one(&id) => match result {
                // More orders may be waiting: look again at once.
                Ok(Some(_)) => false,
                Ok(None) => true,
                Err(WorkError::LeaseLost) => {
                    tracing::info!(worker = %id, "another worker took the order over");
                    false
                }
                Err(WorkError::Stale) => {
                    tracing::info!(worker = %id, "the order changed while it was worked; it is worked again from its fresh state");
                    false
                }
                Err(e) => {
                    tracing::warn!(worker = %id, error = %e, "working an order failed; retrying after the poll interval");
                    true
                }
            },
        };
        if idle {
            let pause = until_next_due(&service, poll).await;
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                () = new_work.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
    tracing::info!(worker = %id, "worker stopped");
}

/// How long an idle worker sleeps: until the earliest due order, at most `poll`.
async fn until_next_due(service: &Acmeport, poll: Duration) -> Duration {
    match service.next_due().await {
        Ok(Some(due)) => {
            let left = due - time::OffsetDateTime::now_utc();
            left.try_into()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(5), poll)
        }
        Ok(None) => poll,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the next due time");
            poll
        }
    }
}
