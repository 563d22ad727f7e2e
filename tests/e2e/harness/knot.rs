//! Knot DNS (`knotd`) with an updatable zone and a TSIG key, one per test: the second
//! RFC 2136 server the provider is proven against, beside BIND.
//!
//! The zone `example.test` has `$TTL 60`, an SOA, `ns1` at 127.0.0.1 as its only
//! nameserver, and accepts updates signed with the [`KEY_NAME`] key (hmac-sha256).

use super::free_port;
use anyhow::{bail, Context};
use base64::Engine;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// The TSIG key name configured in every instance.
pub const KEY_NAME: &str = "acmeport";

/// A running `knotd`, killed on drop.
pub struct Knot {
    child: Child,
    port: u16,
    secret: String,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Knot {
    /// Knot serving `example.test`.
    pub async fn start() -> anyhow::Result<Self> {
        let mut last_error = None;
        for _ in 0..3 {
            match Self::try_start().await {
                Ok(knot) => return Ok(knot),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    async fn try_start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("temporary directory for knotd")?;
        let root = dir.path().display().to_string();
        let port = free_port();
        let secret = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        std::fs::create_dir_all(dir.path().join("db")).context("knot database directory")?;
        std::fs::write(
            dir.path().join("example.test.zone"),
            "$TTL 60\n$ORIGIN example.test.\n\
             @ IN SOA ns1.example.test. hostmaster.example.test. (1 3600 600 86400 60)\n\
             @ IN NS ns1.example.test.\n\
             ns1 IN A 127.0.0.1\n\
             @ IN A 127.0.0.1\n",
        )
        .context("writing the zone file")?;
        let conf = format!(
            r#"server:
    rundir: "{root}"
    listen: 127.0.0.1@{port}
database:
    storage: "{root}/db"
log:
  - target: stderr
    any: info
key:
  - id: {KEY_NAME}
    algorithm: hmac-sha256
    secret: {secret}
acl:
  - id: update
    key: {KEY_NAME}
    action: update
zone:
  - domain: example.test
    storage: "{root}"
    file: "example.test.zone"
    acl: update
"#
        );
        let conf_path = dir.path().join("knot.conf");
        std::fs::write(&conf_path, conf).context("writing knot.conf")?;
        let mut child = Command::new(knotd_binary())
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting knotd (apt-get install knot)")?;
        let stderr = child.stderr.take().context("knotd's stderr")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = oneshot::channel();
        let lines = log.clone();
        // Drains the log for the whole run and reports the line that says it serves.
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if line.contains("server started") {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
                lines.lock().expect("log lock").push(line);
            }
        });
        match tokio::time::timeout(Duration::from_secs(15), ready_rx).await {
            Ok(Ok(())) => {}
            _ => {
                let _ = child.kill().await;
                let log = log.lock().expect("log lock").join("\n");
                bail!("knotd did not start on port {port}; its log:\n{log}")
            }
        }
        let knot = Self {
            child,
            port,
            secret,
            log,
            _dir: dir,
        };
        // "server started" comes before the listeners take queries; wait for an answer.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(knot.addr()).await.is_ok() {
                return Ok(knot);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!(
            "knotd does not accept TCP on port {port}; its log:\n{}",
            knot.log()
        )
    }

    /// Where it listens (TCP and UDP).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The base64 secret of the [`KEY_NAME`] key.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// knotd's log so far, for failure messages.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }

    /// The TXT values on `name`, asked directly, sorted.
    pub async fn txt(&self, name: &str) -> Vec<String> {
        super::dns::txt_at(self.addr(), name).await
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn knotd_binary() -> &'static str {
    if Path::new("/usr/sbin/knotd").exists() {
        "/usr/sbin/knotd"
    } else {
        "knotd"
    }
}
