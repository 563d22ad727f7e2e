//! Pebble (the ACME test CA) and pebble-challtestsrv (its mock DNS server), each started
//! per test on free loopback ports and killed when dropped.

use acmeport_acme::AcmeClientConfig;
use acmeport_domain::DirectoryUrl;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a program may take to say it is ready.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How often a start is tried again when a free port was taken in the meantime.
const START_ATTEMPTS: usize = 3;

/// A free TCP port on 127.0.0.1 (the OS picks it; it is free again once returned).
pub fn free_tcp_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("the OS gives a free port")
        .port()
}

/// A port free for both UDP and TCP on 127.0.0.1, as a DNS server needs.
fn free_dns_port() -> u16 {
    loop {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("free UDP port");
        let port = udp.local_addr().expect("bound").port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
}

/// A child process whose output is collected, killed (and its log shown when the test
/// failed) on drop.
struct Process {
    name: &'static str,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts the program and waits until a line of its output contains `ready`.
    fn spawn(
        name: &'static str,
        command: &mut Command,
        ready: &'static str,
    ) -> Result<Self, String> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {name} (is it installed? see TESTING.md): {e}"))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        drain(stdout, ready, tx.clone(), Arc::clone(&log));
        drain(stderr, ready, tx, Arc::clone(&log));
        let mut process = Self { name, child, log };
        match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(()) => Ok(process),
            Err(e) => {
                let _ = process.child.kill();
                let _ = process.child.wait();
                Err(format!(
                    "{name} did not become ready ({e}); its output:\n{}",
                    process.output()
                ))
            }
        }
    }

    fn output(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }
}

/// Copies a pipe into the log until it closes (so the child never blocks on a full pipe),
/// and signals when the ready line appears.
fn drain(
    pipe: impl Read + Send + 'static,
    ready: &'static str,
    tx: mpsc::Sender<()>,
    log: Arc<Mutex<Vec<String>>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if line.contains(ready) {
                let _ = tx.send(());
            }
            log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let output = self.output();
            let lines: Vec<&str> = output.lines().collect();
            let tail = &lines[lines.len().saturating_sub(150)..];
            eprintln!(
                "----- last output of {} -----\n{}",
                self.name,
                tail.join("\n")
            );
        }
    }
}

/// pebble-challtestsrv as a DNS server that answers every A query with 127.0.0.1 (its
/// HTTP responders are off, so they take no ports).
pub struct ChallTestSrv {
    _process: Process,
    /// The DNS server (UDP and TCP).
    pub dns: SocketAddr,
}

impl ChallTestSrv {
    /// Starts one on free ports and waits until it answers DNS.
    pub async fn start() -> Self {
        tokio::task::spawn_blocking(|| {
            let mut last = String::new();
            for _ in 0..START_ATTEMPTS {
                let dns = SocketAddr::from((Ipv4Addr::LOCALHOST, free_dns_port()));
                let management = SocketAddr::from((Ipv4Addr::LOCALHOST, free_tcp_port()));
                let started = Process::spawn(
                    "pebble-challtestsrv",
                    Command::new("pebble-challtestsrv").args([
                        "-defaultIPv4",
                        "127.0.0.1",
                        "-defaultIPv6",
                        "",
                        "-dns01",
                        &dns.to_string(),
                        "-management",
                        &management.to_string(),
                        "-http01",
                        "",
                        "-https01",
                        "",
                        "-tlsalpn01",
                        "",
                    ]),
                    "Starting management server",
                );
                match started {
                    Ok(process) if answers_dns(dns) => {
                        return Self {
                            _process: process,
                            dns,
                        }
                    }
                    Ok(process) => last = format!("no DNS answer on {dns}:\n{}", process.output()),
                    Err(e) => last = e,
                }
            }
            panic!("pebble-challtestsrv could not be started: {last}");
        })
        .await
        .expect("start task")
    }
}

/// True once the server answers an A query over UDP. The server logs before its
/// listener runs, so this closes the gap instead of sleeping.
fn answers_dns(server: SocketAddr) -> bool {
    // A minimal query: id 0x1234, recursion desired, one question `probe.test A IN`.
    let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["probe", "test"] {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let Ok(socket) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = [0u8; 512];
    (0..50).any(|_| {
        socket.send_to(&query, server).is_ok()
            && matches!(socket.recv(&mut buf), Ok(n) if n >= 12 && buf[..2] == [0x12, 0x34])
    })
}

/// How a Pebble is started.
#[derive(Debug, Clone)]
pub struct PebbleOptions {
    /// Environment for Pebble; `PEBBLE_VA_NOSLEEP=1` by default.
    pub env: Vec<(String, String)>,
    /// `-strict`: enforce more of RFC 8555.
    pub strict: bool,
    /// `-dnsserver`: where Pebble resolves names it validates.
    pub dns_server: Option<SocketAddr>,
    /// The port Pebble fetches HTTP-01 responses from (`httpPort`).
    pub http_port: u16,
    /// External Account Binding keys (kid, base64url HMAC key); when not empty, EAB is
    /// required.
    pub eab_keys: Vec<(String, String)>,
    /// `certificateValidityPeriod`: short-lived certificates for renewal tests.
    pub certificate_validity_secs: Option<u64>,
}

impl Default for PebbleOptions {
    fn default() -> Self {
        Self {
            env: vec![("PEBBLE_VA_NOSLEEP".into(), "1".into())],
            strict: false,
            dns_server: None,
            http_port: 5002,
            eab_keys: Vec::new(),
            certificate_validity_secs: None,
        }
    }
}

impl PebbleOptions {
    /// Adds an environment variable for Pebble (for example `PEBBLE_WFE_NONCEREJECT`).
    #[must_use]
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// A running Pebble with its own throwaway TLS CA, killed on drop.
pub struct Pebble {
    _process: Process,
    _dir: tempfile::TempDir,
    /// `https://127.0.0.1:P/dir`.
    pub directory: DirectoryUrl,
    /// `https://127.0.0.1:M`, the management API.
    pub management: String,
    /// The CA that signed Pebble's own HTTPS certificate (not the issuing root).
    pub tls_ca_pem: String,
    http: reqwest::Client,
}

impl Pebble {
    /// Starts a Pebble and waits until its directory answers.
    pub async fn start(options: PebbleOptions) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let tls_ca_pem = write_tls_files(dir.path());
        let http = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(tls_ca_pem.as_bytes()).expect("CA PEM"),
            )
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, free_tcp_port()));
            let management = SocketAddr::from((Ipv4Addr::LOCALHOST, free_tcp_port()));
            let config = dir.path().join("pebble.json");
            std::fs::write(
                &config,
                pebble_config(dir.path(), listen, management, &options),
            )
            .expect("write Pebble config");
            let mut command = Command::new("pebble");
            command.arg("-config").arg(&config);
            if let Some(dns) = options.dns_server {
                command.arg("-dnsserver").arg(dns.to_string());
            }
            if options.strict {
                command.arg("-strict");
            }
            command.envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let started = tokio::task::spawn_blocking(move || {
                Process::spawn("pebble", &mut command, "ACME directory available at")
            })
            .await
            .expect("start task");
            let process = match started {
                Ok(process) => process,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let pebble = Self {
                _process: process,
                _dir: dir,
                directory: DirectoryUrl::parse(&format!("https://{listen}/dir"))
                    .expect("directory URL"),
                management: format!("https://{management}"),
                tls_ca_pem,
                http,
            };
            pebble.wait_for_directory().await;
            return pebble;
        }
        panic!("Pebble could not be started: {last}");
    }

    /// Pebble logs its address just before it listens: poll the directory briefly.
    async fn wait_for_directory(&self) {
        for _ in 0..100 {
            if let Ok(response) = self.http.get(self.directory.as_str()).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("Pebble's directory {} never answered", self.directory);
    }

    /// An ACME client configuration that trusts this Pebble (and nothing else).
    pub fn acme_config(&self) -> AcmeClientConfig {
        AcmeClientConfig {
            extra_roots_pem: vec![self.tls_ca_pem.clone()],
            webpki_roots: false,
            // Pebble listens on loopback: allowed explicitly, as a private CA would be.
            allowed_private_hosts: vec!["127.0.0.1".to_owned()],
            ..AcmeClientConfig::default()
        }
    }

    /// The root that issues this Pebble's certificates (new at every start).
    pub async fn root_pem(&self) -> String {
        self.management_get("/roots/0").await
    }

    /// Pebble's view of a certificate: `{"Status": "Valid"|"Revoked", ...}`.
    pub async fn cert_status(&self, serial_hex: &str) -> serde_json::Value {
        let body = self
            .management_get(&format!("/cert-status-by-serial/{serial_hex}"))
            .await;
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("cert status JSON ({e}): {body}"))
    }

    async fn management_get(&self, path: &str) -> String {
        let url = format!("{}{path}", self.management);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(
            response.status().is_success(),
            "GET {url} answered {}",
            response.status()
        );
        response.text().await.expect("body")
    }
}

fn pebble_config(
    dir: &std::path::Path,
    listen: SocketAddr,
    management: SocketAddr,
    options: &PebbleOptions,
) -> String {
    let eab: serde_json::Map<String, serde_json::Value> = options
        .eab_keys
        .iter()
        .map(|(kid, key)| (kid.clone(), serde_json::Value::String(key.clone())))
        .collect();
    let mut config = serde_json::json!({
        "pebble": {
            "listenAddress": listen.to_string(),
            "managementListenAddress": management.to_string(),
            "certificate": dir.join("cert.pem"),
            "privateKey": dir.join("key.pem"),
            "httpPort": options.http_port,
            // Pebble only connects to this port for TLS-ALPN-01, which no test uses.
            "tlsPort": free_tcp_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": !options.eab_keys.is_empty(),
            "externalAccountMACKeys": eab,
        }
    });
    if let Some(secs) = options.certificate_validity_secs {
        config["pebble"]["certificateValidityPeriod"] = secs.into();
    }
    config.to_string()
}

/// A throwaway TLS CA and a leaf it signed for `localhost` / 127.0.0.1, all PEM: what a
/// loopback HTTPS server (Pebble, a stub in front of it) presents and its client trusts.
pub struct LoopbackTls {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl LoopbackTls {
    /// A new CA and leaf.
    pub fn generate() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::default();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "acmeport test TLS CA");
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, &ca_key);

        let leaf_key = KeyPair::generate().expect("leaf key");
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf params");
        leaf.subject_alt_names
            .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
        let leaf_cert = leaf
            .signed_by(&leaf_key, &issuer)
            .expect("leaf certificate");
        Self {
            ca_pem: ca_cert.pem(),
            cert_pem: leaf_cert.pem(),
            key_pem: leaf_key.serialize_pem(),
        }
    }
}

/// A throwaway CA and a leaf for Pebble's HTTPS; returns the CA's PEM.
fn write_tls_files(dir: &std::path::Path) -> String {
    let tls = LoopbackTls::generate();
    std::fs::write(dir.join("cert.pem"), &tls.cert_pem).expect("write cert");
    std::fs::write(dir.join("key.pem"), &tls.key_pem).expect("write key");
    tls.ca_pem
}
