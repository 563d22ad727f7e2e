//! Issues a certificate for names in a Route53 hosted zone (wildcards included) and
//! keeps renewing it until Ctrl-C.
//!
//! Credentials come from the AWS default chain (environment, profile, instance role),
//! or from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` given as static keys here; the
//! IAM permissions are in `docs/dns-providers.md`.
//!
//! ```sh
//! EMAIL=you@example.com NAMES=example.com,*.example.com \
//! HOSTED_ZONE_ID=Z0123456789EXAMPLE DATABASE=./acme.db \
//!   cargo run -p acmeport --example route53
//! ```

use acmeport::route53::{Route53Settings, StaticCredentials};
use acmeport::{Builder, OrderRequest, Secret};
use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let var = |name: &str| std::env::var(name).ok();
    let required = |name: &str| var(name).ok_or_else(|| anyhow::anyhow!("set {name}"));

    let settings = Route53Settings {
        hosted_zone_id: var("HOSTED_ZONE_ID"),
        // Static keys when given; the default chain otherwise.
        credentials: match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => Some(StaticCredentials {
                access_key_id: id,
                secret_access_key: Secret::new(secret),
                session_token: var("AWS_SESSION_TOKEN").map(Secret::new),
            }),
            _ => None,
        },
        // LocalStack or moto instead of AWS.
        endpoint_url: var("ROUTE53_ENDPOINT"),
        ..Route53Settings::default()
    };
    let engine = Builder::new()
        .directory(
            &var("ACME_DIRECTORY").unwrap_or_else(|| acmeport::LETS_ENCRYPT_STAGING.to_owned()),
        )?
        .sqlite(var("DATABASE").unwrap_or_else(|| "acmeport.db".to_owned()))
        .route53("aws", settings)?
        .default_dns_provider("aws")?
        .build()
        .await?;
    let background = engine.start();

    let account = engine.register_account(&required("EMAIL")?).await?;
    let names: Vec<String> = required("NAMES")?.split(',').map(str::to_owned).collect();
    // Ordering the same names again returns the stored order: a restarted program
    // picks up its certificate (and its renewals) where it left them.
    let order = engine.order(OrderRequest::new(&account, &names)?).await?;
    let issued = engine.certificate(order.id()).await?;
    std::fs::write("fullchain.pem", issued.fullchain_pem())?;
    std::fs::write("privkey.pem", issued.key_pem().unwrap_or_default())?;
    println!(
        "wrote fullchain.pem and privkey.pem; renewal planned at {:?}; Ctrl-C stops",
        issued.certificate.renewal.as_ref().map(|plan| plan.at)
    );

    tokio::signal::ctrl_c().await?;
    background.stop(Duration::from_secs(30)).await;
    Ok(())
}
