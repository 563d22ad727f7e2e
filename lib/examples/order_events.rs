//! Orders a certificate with DNS-01 through an RFC 2136 server (BIND, Knot, PowerDNS)
//! and reacts to the order's events as they come: progress is logged, a valid
//! certificate is written to disk, a failure is reported with the CA's reason.
//!
//! ```sh
//! ACME_DIRECTORY=https://acme-staging-v02.api.letsencrypt.org/directory \
//! EMAIL=you@example.com NAMES=example.com,*.example.com \
//! DNS_SERVER=192.0.2.53:53 TSIG_KEY=acmeport TSIG_SECRET=<base64> \
//!   cargo run -p acmeport --example order_events
//! ```

use acmeport::rfc2136::Rfc2136Settings;
use acmeport::{Builder, Engine, OrderEvent, OrderRequest, PropagationCheckSettings, Secret};
use futures::StreamExt as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What to order, through which server.
pub struct Options {
    /// The ACME directory.
    pub directory: String,
    /// Extra roots (PEM) for the CA's HTTPS, for a private CA.
    pub extra_root_pem: Option<String>,
    /// The account's e-mail.
    pub email: String,
    /// The names of the certificate (wildcards allowed).
    pub names: Vec<String>,
    /// The primary server accepting updates.
    pub dns_server: SocketAddr,
    /// The TSIG key name and secret (base64, HMAC-SHA256).
    pub tsig: (String, String),
    /// The servers asked whether the records are served; `None` finds the zone's
    /// nameservers through the system's resolvers.
    pub check_servers: Option<Vec<SocketAddr>>,
    /// Where `fullchain.pem` and `privkey.pem` are written.
    pub out_dir: PathBuf,
}

/// What the program saw, in order.
pub type Seen = Vec<OrderEvent>;

/// Builds the engine, orders, and handles every event of the order until it settles.
pub async fn run(options: Options) -> anyhow::Result<Seen> {
    let (key_name, secret) = options.tsig;
    let mut builder = Builder::new()
        .directory(&options.directory)?
        .temporary_storage()
        .rfc2136(
            "primary",
            Rfc2136Settings::new(options.dns_server, key_name, Secret::new(secret)),
        )?
        .default_dns_provider("primary")?;
    if let Some(servers) = options.check_servers {
        let mut check = PropagationCheckSettings::new(servers.clone());
        check.authoritative_servers = servers;
        builder = builder.propagation_check(check);
    }
    if let Some(pem) = options.extra_root_pem {
        builder = builder.trust_root_pem(pem);
    }
    let engine = builder.build().await?;
    let background = engine.start();

    let account = engine.register_account(&options.email).await?;
    let order = engine
        .order(OrderRequest::new(&account, &options.names)?)
        .await?;
    let seen = follow(&engine, order.id(), &options.out_dir).await;

    background.stop(Duration::from_secs(10)).await;
    seen
}

/// Reacts to each event of the order until the last one.
async fn follow(
    engine: &Engine,
    order: acmeport::OrderId,
    out_dir: &std::path::Path,
) -> anyhow::Result<Seen> {
    let mut seen = Vec::new();
    let events = engine.order_events(order);
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        let event = event?;
        match &event {
            OrderEvent::Progress { step, detail } => {
                println!(
                    "order {order}: {step}{}",
                    detail
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                );
            }
            OrderEvent::Valid { certificate } => {
                let issued = engine.certificate_by_id(*certificate).await?;
                std::fs::write(out_dir.join("fullchain.pem"), issued.fullchain_pem())?;
                std::fs::write(
                    out_dir.join("privkey.pem"),
                    issued.key_pem().unwrap_or_default(),
                )?;
                println!(
                    "order {order}: valid; wrote {}",
                    out_dir.join("fullchain.pem").display()
                );
            }
            OrderEvent::Invalid { error } => println!("order {order} failed: {error}"),
            OrderEvent::Revoked => println!("order {order}: its certificate was revoked"),
            _ => {}
        }
        seen.push(event);
    }
    Ok(seen)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let var = |name: &str| std::env::var(name).map_err(|_| anyhow::anyhow!("set {name}"));
    let options = Options {
        directory: var("ACME_DIRECTORY")
            .unwrap_or_else(|_| acmeport::LETS_ENCRYPT_STAGING.to_owned()),
        extra_root_pem: match std::env::var("ACME_ROOT_PEM") {
            Ok(path) => Some(std::fs::read_to_string(path)?),
            Err(_) => None,
        },
        email: var("EMAIL")?,
        names: var("NAMES")?.split(',').map(str::to_owned).collect(),
        dns_server: var("DNS_SERVER")?.parse()?,
        tsig: (var("TSIG_KEY")?, var("TSIG_SECRET")?),
        check_servers: None,
        out_dir: PathBuf::from("."),
    };
    let seen = run(options).await?;
    match seen.last() {
        Some(OrderEvent::Valid { .. }) => Ok(()),
        last => anyhow::bail!("the order did not end valid: {last:?}"),
    }
}
