//! The running service: listeners, workers and graceful shutdown. Tests start exactly
//! this, on port 0.

use crate::config::Config;
use crate::error::StartError;
use crate::lifecycle;
use crate::wiring::{self, Dns};
use acmeport::Engine;
use acmeport_domain::Acmeport;
use acmeport_http::{Api, HttpConfig, MetricsEndpoint, PublicUrl};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long servers and workers get to finish after a stop before they are abandoned.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// Stops a running [`Application`] (as SIGTERM would).
#[derive(Clone)]
pub struct StopHandle(Arc<watch::Sender<bool>>);

impl StopHandle {
    /// Asks the application to stop.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// The service with its listeners bound, ready to run.
pub struct Application {
    engine: Engine,
    api: Api,
    public_url: PublicUrl,
    api_listener: TcpListener,
    challenge_listener: Option<TcpListener>,
    stop: Arc<watch::Sender<bool>>,
    metrics_listener: Option<(TcpListener, MetricsEndpoint)>,
    api_limits: acmeport_http::ListenerLimits,
    challenge_limits: acmeport_http::ListenerLimits,
}

async fn bind(key: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { key, addr, source })
}

impl Application {
    /// Connects storage (migrating it), builds every adapter, creates the configured
    /// first admin if no user exists, and binds the listeners (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// [`StartError`] naming the key, address or adapter at fault.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        config.validate()?;
        if config.auth.token_secret.is_none() {
            tracing::warn!(
                "no auth.token_secret configured: API tokens are signed with a random key and \
                 stop working when this process restarts"
            );
        }
        let wired = wiring::wire(&config, Dns::Configured, true).await?;
        bootstrap(&config, &wired.service).await?;

        let api_listener = bind("api.listen", config.api.listen).await?;
        let bound = api_listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                key: "api.listen",
                addr: config.api.listen,
                source,
            })?;
        let challenge_listener = if config.challenge.enabled {
            Some(bind("challenge.listen", config.challenge.listen).await?)
        } else {
            None
        };
        let public_url = config.public_url(bound)?;
        let engine = wired.engine;
        let mut api = engine
            .api(HttpConfig {
                public_url: public_url.clone(),
                body_limit: config.api.body_limit,
            })
            .with_login_limits(config.auth.login_limits());
        // Counting starts now, whether or not the page is served.
        lifecycle::install_metrics();
        let metrics = MetricsEndpoint::new(
            Arc::new(lifecycle::StoreMetrics::new(wired.store.clone())),
            config.metrics.token.as_ref().map(|t| t.to_secret_string()),
        );
        if config.metrics.token.is_some() {
            api = api.with_metrics(metrics.clone());
        }
        let metrics_listener = match config.metrics.listen {
            Some(addr) => Some((bind("metrics.listen", addr).await?, metrics)),
            None => None,
        };
        let (stop, _) = watch::channel(false);
        Ok(Self {
            engine,
            api,
            public_url,
            api_listener,
            challenge_listener,
            stop: Arc::new(stop),
            metrics_listener,
            api_limits: config.api.limits(),
            challenge_limits: config.challenge.limits(),
        })
    }

    /// The address of the metrics listener, when `metrics.listen` is set.
    #[must_use]
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|(l, _)| l.local_addr().ok())
    }

    /// The address the API listens on.
    #[must_use]
    pub fn api_address(&self) -> SocketAddr {
        self.api_listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The address the HTTP-01 responder listens on, when enabled.
    #[must_use]
    pub fn challenge_address(&self) -> Option<SocketAddr> {
        self.challenge_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The base URL of `Location` headers.
    #[must_use]
    pub fn public_url(&self) -> &PublicUrl {
        &self.public_url
    }

    /// The service, for library use next to the HTTP API.
    #[must_use]
    pub fn service(&self) -> &Acmeport {
        self.engine.service()
    }

    /// The engine under the service (the facade an embedder builds).
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A handle that stops [`Self::run_until_stopped`].
    #[must_use]
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    /// Serves the API and HTTP-01 challenges and runs the workers until SIGTERM, SIGINT
    /// or [`StopHandle::stop`]. Then the listeners stop accepting, requests in flight
    /// finish, and workers drop their orders between two committed steps, to be resumed
    /// by the next start (or another instance) once their lease lapses.
    pub async fn run_until_stopped(self) {
        let mut tasks = JoinSet::new();
        let stop_rx = self.stop.subscribe();
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };

        tracing::info!(address = %self.api_address(), public_url = %self.public_url, "serving the API");
        tasks.spawn(acmeport_http::serve_with_limits(
            self.api_listener,
            self.api,
            self.api_limits,
            stopped(stop_rx.clone()),
        ));
        if let Some(listener) = self.challenge_listener {
            let tokens = self.engine.service().ports().tokens.clone();
            tasks.spawn(acmeport_http::challenge::serve_challenges_with_limits(
                listener,
                tokens,
                self.challenge_limits,
                stopped(stop_rx.clone()),
            ));
        }
        if let Some((listener, endpoint)) = self.metrics_listener {
            tasks.spawn(acmeport_http::serve_metrics(
                listener,
                endpoint,
                stopped(stop_rx.clone()),
            ));
        }
        // The workers and the webhook delivery.
        let background = self.engine.start();

        let stop = self.stop.clone();
        tokio::select! {
            () = stopped(stop_rx.clone()) => {}
            () = shutdown_signal() => {
                tracing::info!("shutdown signal received");
                stop.send_replace(true);
            }
        }
        tracing::info!("stopping: finishing requests in flight");
        let listeners = async {
            let drained = tokio::time::timeout(STOP_GRACE, async {
                while tasks.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                tracing::warn!("stop grace period over; abandoning the remaining tasks");
                tasks.abort_all();
            }
        };
        tokio::join!(listeners, background.stop(STOP_GRACE));
        tracing::info!("stopped");
    }
}

/// Creates `[bootstrap]`'s admin when no user exists, or says how to create one.
async fn bootstrap(config: &Config, service: &Acmeport) -> Result<(), StartError> {
    let empty = service
        .has_no_users()
        .await
        .map_err(|e| StartError::Storage {
            what: "cannot count users".into(),
            source: Box::new(e),
        })?;
    if !empty {
        return Ok(());
    }
    match config.bootstrap_admin()? {
        Some((name, password)) => {
            service
                .add_user(name.clone(), &password, true)
                .await
                .map_err(|e| StartError::Service(Box::new(e)))?;
            tracing::info!(user.name = %name, "created the first admin from [bootstrap]");
        }
        None => eprintln!("{}", first_admin_hint()),
    }
    Ok(())
}

/// What to do on a first start without users.
#[must_use]
pub fn first_admin_hint() -> String {
    "acmeport has no users yet. Create the first admin with\n\
     \n    ACMEPORT_PASSWORD='<a password>' acmeport user add <name> --admin\n\
     \n(with --config if you use one), or set [bootstrap] admin_username and \
     admin_password in the configuration."
        .to_owned()
}

/// SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
