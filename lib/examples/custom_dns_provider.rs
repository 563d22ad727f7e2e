//! Issues a certificate with DNS-01 through a DNS provider of your own: here, an
//! in-house HTTP API that adds and removes one TXT value per call
//! (`POST <api>/records` and `DELETE <api>/records`, body `{"name": ..., "value": ...}`).
//! Replace the two calls with whatever your DNS speaks.
//!
//! ```sh
//! DNS_API=https://dns.internal.example/v1 EMAIL=you@example.com NAMES=app.example.com \
//!   cargo run -p acmeport --example custom_dns_provider
//! ```

use acmeport::{Builder, DnsError, DnsProvider, OrderRequest, TxtRecord};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// The provider: one HTTP call per record change.
struct InHouseDns {
    api: String,
    http: reqwest::Client,
}

impl InHouseDns {
    async fn call(&self, method: reqwest::Method, record: &TxtRecord) -> Result<(), DnsError> {
        let response = self
            .http
            .request(method, format!("{}/records", self.api))
            .json(&serde_json::json!({ "name": record.name, "value": record.value }))
            .send()
            .await
            // Network failures are transient: the workflow retries them.
            .map_err(|e| DnsError::Transport(Box::new(e)))?;
        match response.status().as_u16() {
            // 404 on delete: the value is gone already, which is what was asked.
            200..=299 | 404 => Ok(()),
            401 | 403 => Err(DnsError::Unauthorized(format!(
                "HTTP {}",
                response.status()
            ))),
            500..=599 => Err(DnsError::Transport(
                format!("HTTP {}", response.status()).into(),
            )),
            // Anything else is a refusal: the order fails with this reason.
            _ => Err(DnsError::Rejected(format!(
                "HTTP {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            ))),
        }
    }
}

/// The contract: add this value and keep the others of the same name; remove only this
/// value; presenting twice and removing what is gone both succeed.
#[async_trait]
impl DnsProvider for InHouseDns {
    async fn present(&self, record: &TxtRecord) -> Result<(), DnsError> {
        self.call(reqwest::Method::POST, record).await
    }

    async fn cleanup(&self, record: &TxtRecord) -> Result<(), DnsError> {
        self.call(reqwest::Method::DELETE, record).await
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let var = |name: &str| std::env::var(name).map_err(|_| anyhow::anyhow!("set {name}"));
    let dns = InHouseDns {
        api: var("DNS_API")?,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
    };
    let engine = Builder::new()
        .directory(acmeport::LETS_ENCRYPT_STAGING)?
        .sqlite("acmeport.db")
        .dns_provider("in-house", Arc::new(dns))?
        .default_dns_provider("in-house")?
        .build()
        .await?;
    let background = engine.start();

    let account = engine.register_account(&var("EMAIL")?).await?;
    let names: Vec<String> = var("NAMES")?.split(',').map(str::to_owned).collect();
    let order = engine.order(OrderRequest::new(&account, &names)?).await?;
    let issued = engine.certificate(order.id()).await?;
    std::fs::write("fullchain.pem", issued.fullchain_pem())?;
    std::fs::write("privkey.pem", issued.key_pem().unwrap_or_default())?;
    println!("wrote fullchain.pem and privkey.pem");

    background.stop(Duration::from_secs(30)).await;
    Ok(())
}
