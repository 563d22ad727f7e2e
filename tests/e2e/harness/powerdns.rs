//! PowerDNS Authoritative (`pdns_server`, SQLite backend) with its HTTP API on loopback,
//! one per test.
//!
//! The database is created from the schema the Debian package ships, the zones with
//! `pdnsutil` (each with `ns1` at 127.0.0.1 as its only nameserver), then the server runs
//! in the foreground with `api=yes` and a random API key.

use super::free_port;
use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Where Debian's `pdns-backend-sqlite3` puts its schema.
const SCHEMA: &str = "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql";

/// A running `pdns_server`, killed on drop.
pub struct PowerDns {
    child: Child,
    dns_port: u16,
    api_port: u16,
    api_key: String,
    dir: tempfile::TempDir,
}

impl PowerDns {
    /// PowerDNS serving `example.test`.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_zones(&["example.test"]).await
    }

    /// PowerDNS serving these zones.
    pub async fn start_zones(zones: &[&str]) -> anyhow::Result<Self> {
        let mut last_error = None;
        // A probed free port can be taken before pdns binds it: try again.
        for _ in 0..3 {
            match Self::try_start(zones).await {
                Ok(pdns) => return Ok(pdns),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    async fn try_start(zones: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("temporary directory for pdns")?;
        let root = dir.path();
        let db = root.join("pdns.sqlite3");
        let schema = std::fs::read_to_string(SCHEMA)
            .with_context(|| format!("reading {SCHEMA} (apt-get install pdns-backend-sqlite3)"))?;
        run(
            Command::new("sqlite3").arg(&db).arg(schema),
            "sqlite3 (apt-get install sqlite3)",
        )
        .await?;
        let dns_port = free_port();
        let api_port = free_port();
        let api_key: String = format!("pdns-key-{:016x}", rand::random::<u64>());
        std::fs::write(
            root.join("pdns.conf"),
            format!(
                "launch=gsqlite3\ngsqlite3-database={db}\nlocal-address=127.0.0.1\n\
                 local-port={dns_port}\nsocket-dir={root}\ndaemon=no\nguardian=no\n\
                 api=yes\napi-key={api_key}\nwebserver=yes\nwebserver-address=127.0.0.1\n\
                 webserver-port={api_port}\nwebserver-allow-from=127.0.0.0/8\n\
                 disable-syslog=yes\nloglevel=4\n",
                db = db.display(),
                root = root.display(),
            ),
        )
        .context("writing pdns.conf")?;
        let config_dir = format!("--config-dir={}", root.display());
        for zone in zones {
            run(
                Command::new("pdnsutil").args([
                    &config_dir,
                    "create-zone",
                    zone,
                    &format!("ns1.{zone}"),
                ]),
                "pdnsutil create-zone",
            )
            .await?;
            for (name, kind, content) in [("ns1", "A", "127.0.0.1"), ("@", "A", "127.0.0.1")] {
                run(
                    Command::new("pdnsutil").args([
                        &config_dir,
                        "add-record",
                        zone,
                        name,
                        kind,
                        content,
                    ]),
                    "pdnsutil add-record",
                )
                .await?;
            }
        }
        let log = std::fs::File::create(root.join("pdns.log")).context("pdns log file")?;
        let mut child = Command::new(pdns_binary())
            .arg(&config_dir)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting pdns_server (apt-get install pdns-server pdns-backend-sqlite3)")?;
        let started = Instant::now();
        let http = reqwest::Client::new();
        // Ready when the API answers with the key.
        while started.elapsed() < Duration::from_secs(15) {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "pdns_server exited with {status}; its log:\n{}",
                    read_log(root)
                );
            }
            let ok = http
                .get(format!(
                    "http://127.0.0.1:{api_port}/api/v1/servers/localhost"
                ))
                .header("X-API-Key", &api_key)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(Self {
                    child,
                    dns_port,
                    api_port,
                    api_key,
                    dir,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill().await;
        bail!(
            "pdns_server did not answer on API port {api_port} within 15 s; its log:\n{}",
            read_log(root)
        )
    }

    /// The DNS listener (TCP and UDP).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.dns_port))
    }

    /// The web server base URL of the API.
    pub fn api_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// pdns_server's log so far.
    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }

    /// The TXT values on `name` as PowerDNS serves them over DNS, sorted.
    pub async fn txt(&self, name: &str) -> Vec<String> {
        super::dns::txt_at(self.addr(), name).await
    }
}

impl Drop for PowerDns {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("pdns.log")).unwrap_or_default()
}

fn pdns_binary() -> &'static str {
    if Path::new("/usr/sbin/pdns_server").exists() {
        "/usr/sbin/pdns_server"
    } else {
        "pdns_server"
    }
}
