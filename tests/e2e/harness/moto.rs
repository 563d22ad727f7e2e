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
    /// Where moto's recorder appends every request, when recording.
    recording: Option<tempfile::TempDir>,
}

/// One change of a `ChangeResourceRecordSets` call, as moto received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordChange {
    /// `UPSERT`, `CREATE` or `DELETE`.
    pub action: String,
    /// The record set's name, as sent.
    pub name: String,
    /// The values, as sent (quoted).
    pub values: Vec<String>,
}

impl Moto {
    pub async fn start() -> anyhow::Result<Self> {
        Self::spawn(None).await
    }

    /// Starts moto with its request recorder on, so [`Self::changes`] can tell which
    /// record changes this server received (moto keeps no history of record sets).
    pub async fn start_recording() -> anyhow::Result<Self> {
        Self::spawn(Some(tempfile::tempdir().context("recording directory")?)).await
    }

    async fn spawn(recording: Option<tempfile::TempDir>) -> anyhow::Result<Self> {
        let port = free_port();
        let mut command = Command::new("moto_server");
        if let Some(dir) = &recording {
            command
                .env("MOTO_ENABLE_RECORDING", "True")
                .env("MOTO_RECORDER_FILEPATH", dir.path().join("requests.jsonl"));
        }
        let mut child = command
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
                return Ok(Self {
                    child,
                    port,
                    recording,
                });
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

impl Moto {
    /// The TXT record sets of the zone, as (name, values), sorted by name.
    pub async fn txt_sets(&self, zone_id: &str) -> Vec<(String, Vec<String>)> {
        let answer = self
            .client()
            .list_resource_record_sets()
            .hosted_zone_id(zone_id)
            .send()
            .await
            .expect("ListResourceRecordSets at moto");
        let mut sets: Vec<(String, Vec<String>)> = answer
            .resource_record_sets()
            .iter()
            .filter(|set| set.r#type().as_str() == "TXT")
            .map(|set| {
                let values = set
                    .resource_records()
                    .iter()
                    .map(|r| r.value().to_owned())
                    .collect();
                (set.name().to_owned(), values)
            })
            .collect();
        sets.sort();
        sets
    }

    /// Every record change this server received through `ChangeResourceRecordSets`, in
    /// order. Needs [`Self::start_recording`].
    pub fn changes(&self) -> Vec<RecordChange> {
        use base64::Engine as _;
        let dir = self
            .recording
            .as_ref()
            .expect("changes() needs a Moto started with start_recording()");
        let log = std::fs::read_to_string(dir.path().join("requests.jsonl")).unwrap_or_default();
        let mut changes = Vec::new();
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            let entry: serde_json::Value =
                serde_json::from_str(line).expect("moto's recording is JSON lines");
            let url = entry["url"].as_str().unwrap_or_default();
            let path = url.split('?').next().unwrap_or_default();
            if entry["method"] != "POST" || !path.trim_end_matches('/').ends_with("/rrset") {
                continue;
            }
            let body = entry["body"].as_str().unwrap_or_default();
            let body = if entry["body_encoded"] == true {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .expect("recorded body is base64");
                String::from_utf8(bytes).expect("a change batch is UTF-8 XML")
            } else {
                body.to_owned()
            };
            changes.extend(parse_changes(&body));
        }
        changes
    }
}

/// The `<Change>` elements of a `ChangeResourceRecordSetsRequest` body. The body is the
/// SDK's own simple XML, so plain scanning suffices and keeps an XML parser out of the
/// test crate.
fn parse_changes(xml: &str) -> Vec<RecordChange> {
    fn texts<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        let mut found = Vec::new();
        let mut rest = xml;
        while let Some(start) = rest.find(&open) {
            let after = &rest[start + open.len()..];
            let Some(end) = after.find(&close) else { break };
            found.push(&after[..end]);
            rest = &after[end + close.len()..];
        }
        found
    }
    let unescape = |s: &str| s.replace("&quot;", "\"").replace("&amp;", "&");
    texts(xml, "Change")
        .into_iter()
        .map(|change| RecordChange {
            action: texts(change, "Action")
                .first()
                .copied()
                .unwrap_or_default()
                .to_owned(),
            name: texts(change, "Name")
                .first()
                .copied()
                .unwrap_or_default()
                .to_owned(),
            values: texts(change, "Value").into_iter().map(unescape).collect(),
        })
        .collect()
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
