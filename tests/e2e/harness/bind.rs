//! BIND 9 (`named -g`) with updatable zones and a TSIG key, one per test.
//!
//! Each zone has `$TTL 60`, an SOA, `ns1` as its only nameserver at 127.0.0.1, and
//! `@`/`*` A records at 127.0.0.1, so every test name also resolves for HTTP-01 when
//! Pebble uses this server as its `-dnsserver`.

use super::free_port;
use anyhow::{bail, Context};
use base64::Engine;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// The TSIG key name configured in every instance.
pub const KEY_NAME: &str = "acmeport";

/// One zone to serve: its name and extra lines for its zone file.
pub struct Zone {
    pub name: String,
    pub extra: String,
}

impl Zone {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            extra: String::new(),
        }
    }

    /// Adds a zone-file line (relative names are in the zone).
    pub fn with(mut self, line: &str) -> Self {
        self.extra.push_str(line);
        self.extra.push('\n');
        self
    }
}

/// A running `named`, killed on drop.
pub struct Bind {
    child: Child,
    port: u16,
    secret: String,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Bind {
    /// BIND serving `example.test`.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_zones(vec![Zone::new("example.test")]).await
    }

    /// BIND serving these zones, all updatable with the [`KEY_NAME`] key.
    pub async fn start_zones(zones: Vec<Zone>) -> anyhow::Result<Self> {
        let mut last_error = None;
        // The free port can be taken between the probe and named's bind: try again.
        for _ in 0..3 {
            match Self::try_start(&zones).await {
                Ok(bind) => return Ok(bind),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    async fn try_start(zones: &[Zone]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("temporary directory for named")?;
        let port = free_port();
        let secret = base64::engine::general_purpose::STANDARD.encode(rand_bytes());
        let root = dir.path().display().to_string();
        let mut conf = format!(
            r#"options {{
  directory "{root}"; pid-file "{root}/named.pid"; session-keyfile "{root}/session.key";
  managed-keys-directory "{root}";
  listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};
  recursion no; dnssec-validation no; notify no;
}};
controls {{ }};
key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{secret}"; }};
"#
        );
        for zone in zones {
            let name = &zone.name;
            let file = format!("{root}/{name}.zone");
            std::fs::write(
                &file,
                format!(
                    "$TTL 60\n$ORIGIN {name}.\n\
                     @ IN SOA ns1.{name}. hostmaster.{name}. (1 3600 600 86400 60)\n\
                     @ IN NS ns1.{name}.\n\
                     ns1 IN A 127.0.0.1\n\
                     @ IN A 127.0.0.1\n\
                     * IN A 127.0.0.1\n{}",
                    zone.extra
                ),
            )
            .context("writing a zone file")?;
            writeln!(
                conf,
                r#"zone "{name}" {{ type primary; file "{file}"; allow-update {{ key "{KEY_NAME}"; }}; }};"#
            )?;
        }
        let conf_path = dir.path().join("named.conf");
        std::fs::write(&conf_path, conf).context("writing named.conf")?;

        let mut child = Command::new(named_binary())
            .args(["-g", "-u", "root", "-c"])
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting named (apt-get install bind9)")?;
        let stderr = child.stderr.take().context("named's stderr")?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = oneshot::channel();
        let lines = log.clone();
        // Drains named's log for the whole run (a full pipe would stall it) and reports
        // the line that says it is serving.
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                // Not `contains`: the first lines say "running on Linux" and "running as".
                if line.trim_end().ends_with(" running") {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
                lines.lock().expect("log lock").push(line);
            }
        });
        match tokio::time::timeout(Duration::from_secs(15), ready_rx).await {
            Ok(Ok(())) => Ok(Self {
                child,
                port,
                secret,
                log,
                _dir: dir,
            }),
            _ => {
                let _ = child.kill().await;
                let log = log.lock().expect("log lock").join("\n");
                bail!("named did not report running on port {port}; its log:\n{log}")
            }
        }
    }

    /// Where it listens (TCP and UDP).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The base64 secret of the [`KEY_NAME`] key.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// named's log so far, for failure messages.
    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }

    /// The TXT values on `name`, asked directly (no recursion, no cache), sorted.
    pub async fn txt(&self, name: &str) -> Vec<String> {
        super::dns::txt_at(self.addr(), name).await
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn named_binary() -> &'static str {
    // Debian puts named in /usr/sbin, which a non-login PATH may lack.
    if std::path::Path::new("/usr/sbin/named").exists() {
        "/usr/sbin/named"
    } else {
        "named"
    }
}

fn rand_bytes() -> [u8; 32] {
    rand::random()
}
