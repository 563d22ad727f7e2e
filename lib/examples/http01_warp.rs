//! Issues a certificate with HTTP-01, the challenge responder mounted in a small warp
//! server next to the program's own routes, and writes the PEM files.
//!
//! The CA connects to port 80 of every name, so run it where those names point:
//!
//! ```sh
//! ACME_DIRECTORY=https://acme-staging-v02.api.letsencrypt.org/directory \
//! EMAIL=you@example.com NAMES=example.com,www.example.com LISTEN=0.0.0.0:80 \
//!   cargo run -p acmeport --example http01_warp
//! ```
//!
//! `ACME_ROOT_PEM` names a PEM file of extra roots for the CA's HTTPS (a private CA).

use acmeport::{Builder, IssuedCertificate, OrderRequest};
use std::net::SocketAddr;
use std::time::Duration;
use warp::Filter as _;

/// What to order, and where.
pub struct Options {
    /// The ACME directory.
    pub directory: String,
    /// Extra roots (PEM) for the CA's HTTPS, for a private CA.
    pub extra_root_pem: Option<String>,
    /// The account's e-mail.
    pub email: String,
    /// The names of the certificate.
    pub names: Vec<String>,
    /// Where the warp server listens (port 80 of the names, as the CA sees it).
    pub listen: SocketAddr,
}

/// Builds the engine, serves the responder and a route of the program's own, orders,
/// and returns the certificate once issued; stops everything gracefully.
pub async fn run(options: Options) -> anyhow::Result<IssuedCertificate> {
    let mut builder = Builder::new()
        .directory(&options.directory)?
        .temporary_storage();
    if let Some(pem) = options.extra_root_pem {
        builder = builder.trust_root_pem(pem);
    }
    let engine = builder.build().await?;
    let background = engine.start();

    // The program's own route, and the responder in front of it.
    let hello = warp::path!("hello").map(|| "hello from the embedding program\n");
    let routes = engine.http01().warp_filter().or(hello);
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        warp::serve(routes)
            .incoming(listener)
            .graceful(async {
                let _ = stopped.await;
            })
            .run(),
    );

    let account = engine.register_account(&options.email).await?;
    let order = engine
        .order(OrderRequest::new(&account, &options.names)?.http01())
        .await?;
    let issued = engine.certificate(order.id()).await;

    let _ = stop_server.send(());
    let _ = server.await;
    background.stop(Duration::from_secs(10)).await;
    Ok(issued?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
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
        listen: var("LISTEN")
            .unwrap_or_else(|_| "0.0.0.0:80".to_owned())
            .parse()?,
    };
    let issued = run(options).await?;
    std::fs::write("fullchain.pem", issued.fullchain_pem())?;
    std::fs::write("privkey.pem", issued.key_pem().unwrap_or_default())?;
    println!(
        "wrote fullchain.pem and privkey.pem (valid until {})",
        issued.certificate.info.not_after
    );
    Ok(())
}
