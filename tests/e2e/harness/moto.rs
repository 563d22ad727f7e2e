//! moto's server emulating the Route53 API, one per test, and an SDK client for it.

use super::free_port;
use anyhow::{bail, Context};
use aws_sdk_route53::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_route53::Client;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Static keys moto accepts (it checks none).
pub const ACCESS_KEY: &str = "AKIAACMEPORTTEST";
pub const SECRET_KEY: &str = "acmeport-test-secret";
pub const REGION: &str = "us-east-1";

/// A running `moto_server`, killed on drop.
pub struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    pub async fn start() -> anyhow::Result<Self> {
        let port = free_port();
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting moto_server (pip install 'moto[server]')")?;
        let started = Instant::now();
        // moto prints nothing reliable when ready; it is ready when it accepts HTTP.
        while started.elapsed() < Duration::from_secs(30) {
            if let Some(status) = child.try_wait()? {
                bail!("moto_server exited with {status} before serving on port {port}");
            }
            if reqwest::get(format!("http://127.0.0.1:{port}/moto-api/"))
                .await
                .is_ok()
            {
                return Ok(Self { child, port });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill().await;
        bail!("moto_server did not answer on port {port} within 30 s")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An SDK client for this server, to set up and inspect zones.
    pub fn client(&self) -> Client {
        let config = aws_sdk_route53::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
            .endpoint_url(self.url())
            .build();
        Client::from_conf(config)
    }

    /// Creates a public hosted zone and returns its id (without `/hostedzone/`).
    pub async fn create_zone(&self, name: &str) -> anyhow::Result<String> {
        let answer = self
            .client()
            .create_hosted_zone()
            .name(name)
            .caller_reference(format!("acmeport-{name}-{}", self.port))
            .send()
            .await
            .context("CreateHostedZone at moto")?;
        let id = answer
            .hosted_zone()
            .context("no hosted zone in the answer")?
            .id();
        Ok(id.trim_start_matches("/hostedzone/").to_owned())
    }

    /// The TXT values (unquoted, sorted) of `name` in the zone.
    pub async fn txt(&self, zone_id: &str, name: &str) -> Vec<String> {
        let answer = self
            .client()
            .list_resource_record_sets()
            .hosted_zone_id(zone_id)
            .send()
            .await
            .expect("ListResourceRecordSets at moto");
        let wanted = format!("{}.", name.trim_end_matches('.'));
        let mut values: Vec<String> = answer
            .resource_record_sets()
            .iter()
            .filter(|set| set.name() == wanted && set.r#type().as_str() == "TXT")
            .flat_map(|set| set.resource_records().iter().map(|r| r.value().to_owned()))
            .map(|value| {
                assert!(
                    value.starts_with('"') && value.ends_with('"'),
                    "Route53 TXT values must be quoted, found {value}"
                );
                value.trim_matches('"').to_owned()
            })
            .collect();
        values.sort();
        values
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
