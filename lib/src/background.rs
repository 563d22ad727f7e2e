//! The background work of an [`Engine`](crate::Engine), as tasks on the caller's tokio
//! runtime: the order workers (issuance and renewals are the same workflow) and the
//! lifecycle task (expiry warnings, webhook delivery). [`Background::stop`] ends them
//! gracefully.
//!
//! Each worker loops over [`Acmeport::work_one`], which runs a due order's steps until
//! the order settles or has to wait. With nothing due, a worker sleeps until the next
//! due time (at most the poll interval, which also finds orders another instance made
//! due) unless a new order wakes it.

use acmeport_domain::ports::WebhookSender;
use acmeport_domain::service::WorkError;
use acmeport_domain::{Acmeport, OrderId, WorkerId};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinSet;

/// How the background tasks run; set through the [`Builder`](crate::Builder).
#[derive(Clone)]
pub(crate) struct BackgroundSettings {
    pub workers: usize,
    pub poll: Duration,
    pub delivery_poll: Duration,
    pub expiry_scan: Duration,
    pub webhooks: Arc<dyn WebhookSender>,
}

/// The signals shared by the engine and its workers.
#[derive(Clone)]
pub(crate) struct Signals {
    /// Wakes an idle worker when an order becomes due at once.
    pub new_work: Arc<Notify>,
    /// The id of every order a worker let go of (settled or waiting), for order events.
    pub worked: broadcast::Sender<OrderId>,
}

/// Asks running background tasks to stop; cheap to clone, usable from anywhere.
#[derive(Clone, Debug)]
pub struct StopHandle(Arc<watch::Sender<bool>>);

impl StopHandle {
    /// Asks the tasks to stop; [`Background::stop`] or [`Background::wait`] waits for
    /// them.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    /// True once a stop was asked for.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }
}

/// The running background tasks of an engine.
///
/// Stopping drops the order being worked at once: every finished step is already
/// committed, and the lease lapses so that the next start (or another instance on the
/// same database) resumes the order from its last step. Dropping a `Background` without
/// stopping it leaves the tasks running until the runtime shuts down.
pub struct Background {
    tasks: JoinSet<()>,
    stop: StopHandle,
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background")
            .field("tasks", &self.tasks.len())
            .field("stopped", &self.stop.is_stopped())
            .finish()
    }
}

impl Background {
    pub(crate) fn spawn(
        service: &Acmeport,
        settings: &BackgroundSettings,
        signals: &Signals,
    ) -> Self {
        let (stop, _) = watch::channel(false);
        let stop = Arc::new(stop);
        let mut tasks = JoinSet::new();
        tasks.spawn(run_lifecycle(
            service.clone(),
            settings.webhooks.clone(),
            WorkerId::new(format!("{}:webhooks", worker_id(0))),
            settings.delivery_poll,
            settings.expiry_scan,
            stop.subscribe(),
        ));
        for index in 0..settings.workers {
            tasks.spawn(run_worker(
                service.clone(),
                worker_id(index),
                settings.poll,
                signals.clone(),
                stop.subscribe(),
            ));
        }
        Self {
            tasks,
            stop: StopHandle(stop),
        }
    }

    /// A handle that stops the tasks from elsewhere (a signal handler, another task).
    #[must_use]
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Stops the tasks and waits for them, at most `grace`; tasks still running then
    /// are aborted (their orders are resumed from the last committed step). True when
    /// every task finished within `grace`.
    pub async fn stop(self, grace: Duration) -> bool {
        self.stop.stop();
        self.wait(grace).await
    }

    /// Waits until the tasks end after a [`StopHandle::stop`], at most `grace` from the
    /// moment the stop is asked for; then aborts the rest. True when every task finished
    /// in time.
    pub async fn wait(mut self, grace: Duration) -> bool {
        let mut stopped = self.stop.0.subscribe();
        let _ = stopped.wait_for(|stop| *stop).await;
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("stop grace period over; aborting the remaining background tasks");
            self.tasks.abort_all();
            return false;
        }
        true
    }
}

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
async fn run_worker(
    service: Acmeport,
    id: WorkerId,
    poll: Duration,
    signals: Signals,
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
                Ok(Some(order)) => {
                    // Nobody listening is fine: order events then poll.
                    let _ = signals.worked.send(order);
                    false
                }
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
                () = signals.new_work.notified() => {}
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
            let left = due - service.ports().clock.now();
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

/// Delivers due webhook events until `stop`; after a full batch it looks again at once,
/// otherwise it waits `poll`. Every `expiry_scan` it raises the expiry warnings that are
/// due. Events survive restarts in the outbox: a crash between an event and its delivery
/// only delays it.
async fn run_lifecycle(
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

/// The webhook sender of an engine without webhooks: no endpoint wants any event, so
/// events are marked `skipped` as they come.
pub(crate) struct NoWebhooks;

#[async_trait::async_trait]
impl WebhookSender for NoWebhooks {
    fn endpoints(&self) -> Vec<acmeport_domain::ports::WebhookEndpoint> {
        Vec::new()
    }

    async fn send(
        &self,
        _endpoint: &str,
        _event: &acmeport_domain::StoredEvent,
    ) -> Result<(), acmeport_domain::ports::WebhookError> {
        Ok(())
    }
}
