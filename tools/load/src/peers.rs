//! Pebble (with a throwaway TLS CA) and BIND 9 (one updatable zone with a TSIG key), on
//! free loopback ports, killed on drop. The same setup as the end-to-end harness
//! (`tests/e2e/harness/pebble.rs`, `bind.rs`), without the test-only helpers.

use anyhow::{bail, Context};
use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The zone BIND serves; every name in it resolves to 127.0.0.1.
pub const ZONE: &str = "example.test";
/// The TSIG key name BIND accepts updates with.
pub const KEY_NAME: &str = "acmeport";

/// A free TCP port on 127.0.0.1.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("the OS gives a free port")
        .port()
}

/// A port free for both TCP and UDP on 127.0.0.1, as a DNS server needs.
fn free_dns_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("free UDP port");
        let port = udp.local_addr().expect("bound").port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both TCP and UDP after 50 tries");
}

/// Waits (bounded) until a line of `pipe` (a child's output) satisfies `ready`, then keeps
/// draining it into `log` so that the child never blocks on a full pipe.
async fn wait_ready(
    pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    ready: fn(&str) -> bool,
    log: PathBuf,
    timeout: Duration,
) -> anyhow::Result<()> {
    let stderr = pipe;
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        let mut lines = BufReader::new(stderr).lines();
        let mut out = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if ready(&line) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(());
                }
            }
            out.push(line);
            if out.len() % 200 == 0 {
                let _ = std::fs::write(&log, out.join("\n"));
            }
        }
        let _ = std::fs::write(&log, out.join("\n"));
    });
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(())) => Ok(()),
        _ => bail!("not ready within {timeout:?}"),
    }
}

/// A running `named` serving [`ZONE`].
pub struct Bind {
    _child: Child,
    pub addr: SocketAddr,
    /// The base64 secret of the [`KEY_NAME`] key.
    pub secret: String,
}

impl Bind {
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let mut last = None;
        for _ in 0..3 {
            match Self::try_start(dir).await {
                Ok(bind) => return Ok(bind),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("one attempt"))
    }

    async fn try_start(dir: &Path) -> anyhow::Result<Self> {
        let port = free_dns_port();
        let secret = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        let root = dir.display();
        let conf = format!(
            r#"options {{
  directory "{root}"; pid-file "{root}/named.pid"; session-keyfile "{root}/session.key";
  managed-keys-directory "{root}";
  listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};
  recursion no; dnssec-validation no; notify no;
}};
controls {{ }};
key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{secret}"; }};
zone "{ZONE}" {{ type primary; file "{root}/{ZONE}.zone"; allow-update {{ key "{KEY_NAME}"; }}; }};
"#
        );
        std::fs::write(
            dir.join(format!("{ZONE}.zone")),
            format!(
                "$TTL 60\n$ORIGIN {ZONE}.\n\
                 @ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. (1 3600 600 86400 60)\n\
                 @ IN NS ns1.{ZONE}.\n\
                 ns1 IN A 127.0.0.1\n\
                 @ IN A 127.0.0.1\n\
                 * IN A 127.0.0.1\n"
            ),
        )?;
        let conf_path = dir.join("named.conf");
        std::fs::write(&conf_path, conf)?;
        let named = if Path::new("/usr/sbin/named").exists() {
            "/usr/sbin/named"
        } else {
            "named"
        };
        let mut child = Command::new(named)
            .args(["-g", "-u", "root", "-c"])
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting named (apt-get install bind9)")?;
        // Not `contains`: the first lines say "running on Linux" and "running as".
        wait_ready(
            child.stderr.take().context("named's stderr")?,
            |line| line.trim_end().ends_with(" running"),
            dir.join("named.log"),
            Duration::from_secs(15),
        )
        .await
        .with_context(|| format!("named on port {port}"))?;
        Ok(Self {
            _child: child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            secret,
        })
    }
}

/// A running Pebble.
pub struct Pebble {
    _child: Child,
    /// `https://127.0.0.1:P/dir`.
    pub directory: String,
    /// The CA of Pebble's own HTTPS certificate, as a file (what clients must trust).
    pub tls_ca_path: PathBuf,
    pub tls_ca_pem: String,
}

impl Pebble {
    /// Starts Pebble with `PEBBLE_VA_NOSLEEP=1`, resolving names at `dns` and fetching
    /// HTTP-01 answers from `http_port`.
    pub async fn start(dir: &Path, dns: SocketAddr, http_port: u16) -> anyhow::Result<Self> {
        let tls_ca_pem = write_tls_files(dir)?;
        let tls_ca_path = dir.join("pebble-tls-ca.pem");
        std::fs::write(&tls_ca_path, &tls_ca_pem)?;
        let mut last = None;
        for _ in 0..3 {
            let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, free_tcp_port()));
            let config = dir.join("pebble.json");
            std::fs::write(
                &config,
                serde_json::json!({"pebble": {
                    "listenAddress": listen.to_string(),
                    "managementListenAddress": format!("127.0.0.1:{}", free_tcp_port()),
                    "certificate": dir.join("cert.pem"),
                    "privateKey": dir.join("key.pem"),
                    "httpPort": http_port,
                    "tlsPort": free_tcp_port(),
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": false,
                }})
                .to_string(),
            )?;
            let mut child = Command::new("pebble")
                .arg("-config")
                .arg(&config)
                .arg("-dnsserver")
                .arg(dns.to_string())
                .env("PEBBLE_VA_NOSLEEP", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("starting pebble (apt-get install pebble)")?;
            // Pebble logs to standard output.
            match wait_ready(
                child.stdout.take().context("pebble's stdout")?,
                |line| line.contains("ACME directory available at"),
                dir.join("pebble.log"),
                Duration::from_secs(20),
            )
            .await
            {
                Ok(()) => {
                    let pebble = Self {
                        _child: child,
                        directory: format!("https://{listen}/dir"),
                        tls_ca_path,
                        tls_ca_pem,
                    };
                    pebble.wait_for_directory().await?;
                    return Ok(pebble);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("one attempt")).context("pebble")
    }

    /// Pebble logs its address just before it listens: poll the directory briefly.
    async fn wait_for_directory(&self) -> anyhow::Result<()> {
        let http = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.tls_ca_pem.as_bytes())?)
            .timeout(Duration::from_secs(5))
            .build()?;
        for _ in 0..100 {
            if let Ok(response) = http.get(&self.directory).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("Pebble's directory {} never answered", self.directory)
    }
}

/// A throwaway CA and a leaf for `localhost` / 127.0.0.1 for Pebble's HTTPS; returns the
/// CA's PEM.
fn write_tls_files(dir: &Path) -> anyhow::Result<String> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "acmeport load TLS CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, &ca_key);
    let leaf_key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()])?;
    leaf.subject_alt_names
        .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    std::fs::write(dir.join("cert.pem"), leaf_cert.pem())?;
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem())?;
    Ok(ca_cert.pem())
}
