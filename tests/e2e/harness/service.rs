//! The real `acmeport` binary as a child process: built once per test run, started with a
//! configuration file, its log kept for failure messages, and killed with SIGKILL when a
//! test wants a crash; plus a small REST client for it.
//!
//! Where the binary comes from: Cargo builds a package's binaries only for that package's
//! own integration tests, and sets `CARGO_BIN_EXE_<name>` only there. This crate merely
//! depends on the `acmeport-server` library, so `cargo test -p acmeport-tests` does not build
//! `target/debug/acmeport`, and `cargo test --workspace` builds it only because `app/`
//! happens to have integration tests. A path guessed next to the test executable could
//! be missing or stale. So the first test that needs the binary asks cargo for it:
//! `cargo test --workspace --no-run` with the cargo, profile and target directory of this
//! run (the outer cargo holds no lock while tests run), and takes the path of the
//! `acmeport` executable from cargo's JSON messages.
//!
//! Why that command and not `cargo build -p acmeport-server`: features are unified over the
//! packages a command selects (and dev-dependencies count only when tests are built), so
//! `cargo build -p acmeport-server` resolves different features than `cargo test --workspace`
//! and rebuilds most of the dependency graph a second time (measured: over 10 minutes on
//! a 2-core machine). `cargo test --workspace --no-run` is exactly what the README's test
//! command (`scripts/test.sh`) builds before it runs anything, so there it only checks
//! fingerprints (a second or two) and returns the very binary cargo just built. A
//! narrower run (`cargo test -p acmeport-tests`) builds the workspace's test targets once.
//! `ACMEPORT_TEST_BIN` names a prebuilt binary instead (packaging, CI caches).

use std::io::{BufRead as _, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long building the binary may take on a loaded machine.
const BUILD_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// How long `acmeport serve` may take to bind its listeners (it migrates first).
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How many log lines a failing test shows per process.
const LOG_TAIL: usize = 200;

/// The `acmeport` binary of this workspace, built when missing or stale.
///
/// # Panics
///
/// When it cannot be built; the message carries cargo's output.
pub fn binary() -> PathBuf {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(locate_or_build)
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn locate_or_build() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("ACMEPORT_TEST_BIN") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "ACMEPORT_TEST_BIN={} is not a file",
                path.display()
            ))
        };
    }
    // `CARGO` is set for processes cargo runs; the compile-time value is the fallback
    // when the test executable is started by hand.
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(Into::into))
        .unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut command = Command::new(&cargo);
    for (name, _) in std::env::vars_os() {
        if set_by_cargo_for_tests(&name.to_string_lossy()) {
            command.env_remove(&name);
        }
    }
    command
        .args(["test", "--workspace", "--no-run", "--offline"])
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["--message-format", "json-render-diagnostics"]);
    command.args(profile_args());
    let started = Instant::now();
    let output = output_within(&mut command, BUILD_TIMEOUT)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "`{} test --workspace --no-run` failed ({}):\n{stderr}",
            cargo.to_string_lossy(),
            output.status
        ));
    }
    let executable = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact"
                && m["target"]["name"] == "acmeport"
                && m["profile"]["test"] == false
        })
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "bin"))
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| {
            format!("cargo built no `acmeport` executable; its output:\n{stdout}\n{stderr}")
        })?;
    eprintln!(
        "using {} (cargo build took {:.1} s)",
        executable.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(executable)
}

/// Variables cargo sets for the test process it runs. They must not reach the inner
/// cargo: build scripts watch some of them (ring's watches `CARGO_MANIFEST_DIR`), so a
/// build seeing this crate's values would rebuild most of the graph, and the next
/// ordinary `cargo test` would rebuild it back.
fn set_by_cargo_for_tests(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_EXE_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "OUT_DIR"
        )
}

/// The profile this test executable was built with, read from its path
/// (`<target>/<profile dir>/deps/e2e-<hash>`), as cargo arguments.
fn profile_args() -> Vec<String> {
    let exe = std::env::current_exe().unwrap_or_default();
    let deps = exe.parent();
    if deps.and_then(Path::file_name).is_none_or(|n| n != "deps") {
        return Vec::new();
    }
    match deps
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
    {
        None | Some("debug") => Vec::new(),
        Some("release") => vec!["--release".into()],
        Some(other) => vec!["--profile".into(), other.into()],
    }
}

/// Runs `command` to completion, killing it after `timeout`.
fn output_within(command: &mut Command, timeout: Duration) -> Result<std::process::Output, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let stdout = collect(child.stdout.take().expect("piped"));
    let stderr = collect(child.stderr.take().expect("piped"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{command:?} did not finish within {} s; its output:\n{}",
                    timeout.as_secs(),
                    String::from_utf8_lossy(&stderr.join().unwrap_or_default())
                ));
            }
            Err(e) => return Err(format!("waiting for {command:?}: {e}")),
        }
    };
    Ok(std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn collect(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

/// A command line for the binary with `--config`, and an environment free of the
/// caller's `ACMEPORT_*` and `RUST_LOG` variables, so only the test's settings apply.
fn command(config: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(binary());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ACMEPORT_") {
            command.env_remove(&name);
        }
    }
    command
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .arg("--config")
        .arg(config);
    command
}

/// Runs a one-shot command (`user add`, `migrate`) and returns its status and output.
pub async fn run(config: &Path, args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String) {
    let mut command = command(config, env);
    command.args(args);
    let shown = format!("acmeport {}", args.join(" "));
    tokio::task::spawn_blocking(move || {
        let output = output_within(&mut command, START_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status, text)
    })
    .await
    .unwrap_or_else(|e| panic!("{shown}: {e}"))
}

/// A running `acmeport serve`, killed (its log shown when the test failed) on drop.
pub struct ServeProcess {
    name: String,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    api: SocketAddr,
}

impl ServeProcess {
    /// Starts `acmeport --config <config> serve` with `env` added, and waits until its
    /// API answers `/readyz`. The configuration must set `log.format = "json"`: the API
    /// address (port 0 in tests) is read from the "serving the API" line.
    pub async fn start(name: &str, config: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = command(config, env);
        command.arg("serve");
        let label = name.to_owned();
        let (child, log, api) = tokio::task::spawn_blocking(move || spawn_serve(&label, command))
            .await
            .expect("start task");
        let process = Self {
            name: name.to_owned(),
            child,
            log,
            api,
        };
        process.wait_ready().await;
        process
    }

    async fn wait_ready(&self) {
        let http = reqwest::Client::new();
        let url = format!("{}/readyz", self.url());
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match http.get(&url).timeout(Duration::from_secs(5)).send().await {
                Ok(r) if r.status().is_success() => return,
                _ if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => panic!(
                    "{} never answered {url} with 200 (last: {other:?}); its log:\n{}",
                    self.name,
                    self.log_tail(LOG_TAIL)
                ),
            }
        }
    }

    /// `http://<api address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// The process id: part of every worker id of this instance.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether `worker` (`host:pid:index`) is one of this process's workers.
    pub fn owns(&self, worker: &str) -> bool {
        worker_pid(worker) == Some(self.pid())
    }

    /// `kill -9`: the process gets no chance to finish anything.
    pub fn kill9(&mut self) {
        use std::os::unix::process::ExitStatusExt as _;
        // On Unix `Child::kill` sends SIGKILL.
        self.child
            .kill()
            .unwrap_or_else(|e| panic!("cannot kill {}: {e}", self.name));
        let status = self.child.wait().expect("wait for the killed process");
        assert_eq!(
            status.signal(),
            Some(9),
            "{} should have died of SIGKILL, ended with {status}",
            self.name
        );
    }

    /// `kill -TERM` and wait up to `within` for the process to exit; its exit status.
    pub async fn terminate(&mut self, within: Duration) -> ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {} failed", self.child.id());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the process") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {within:?} of SIGTERM; its log:\n{}",
                self.name,
                self.log_tail(LOG_TAIL)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last `lines` lines of its log, readable.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let tail = &log[log.len().saturating_sub(lines)..];
        format!(
            "----- {} (pid {}) -----\n{}",
            self.name,
            self.child.id(),
            tail.join("\n")
        )
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail(LOG_TAIL));
        }
    }
}

/// The pid in a worker id `host:pid:index`.
pub fn worker_pid(worker: &str) -> Option<u32> {
    let mut parts = worker.rsplitn(3, ':');
    parts.next()?;
    parts.next()?.parse().ok()
}

type Spawned = (Child, Arc<Mutex<Vec<String>>>, SocketAddr);

fn spawn_serve(name: &str, mut command: Command) -> Spawned {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name} ({:?}): {e}", binary()));
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    drain(
        child.stdout.take().expect("piped"),
        tx.clone(),
        Arc::clone(&log),
    );
    drain(child.stderr.take().expect("piped"), tx, Arc::clone(&log));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(address) => return (child, log, address),
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                if let Ok(Some(status)) = child.try_wait() {
                    // Give the drain threads a moment to collect the last lines.
                    std::thread::sleep(Duration::from_millis(200));
                    panic!(
                        "{name} exited with {status} before serving; its output:\n{}",
                        log.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
                    );
                }
            }
            Err(e) => {
                let _ = child.kill();
                let status = child.wait();
                let why = match e {
                    mpsc::RecvTimeoutError::Timeout => {
                        format!(
                            "did not log \"serving the API\" within {} s",
                            START_TIMEOUT.as_secs()
                        )
                    }
                    mpsc::RecvTimeoutError::Disconnected => {
                        format!("closed its output before serving ({status:?})")
                    }
                };
                panic!(
                    "{name} {why}; its output:\n{}",
                    log.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
                );
            }
        }
    }
}

/// Copies a pipe into the log (rendering JSON log lines readably) until it closes, so
/// the child never blocks on a full pipe, and reports the API address once logged.
fn drain(
    pipe: impl Read + Send + 'static,
    tx: mpsc::Sender<SocketAddr>,
    log: Arc<Mutex<Vec<String>>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let rendered = match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(json) => {
                    if json["fields"]["message"] == "serving the API" {
                        if let Some(address) = json["fields"]["address"]
                            .as_str()
                            .and_then(|a| a.parse().ok())
                        {
                            let _ = tx.send(address);
                        }
                    }
                    render(&json)
                }
                Err(_) => line,
            };
            log.lock().unwrap_or_else(|e| e.into_inner()).push(rendered);
        }
    });
}

/// `time LEVEL target: message key=value ... [span fields]` from a JSON log line.
fn render(json: &serde_json::Value) -> String {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = format!(
        "{} {:>5} {}:",
        json["timestamp"].as_str().unwrap_or_default(),
        json["level"].as_str().unwrap_or_default(),
        json["target"].as_str().unwrap_or_default()
    );
    if let Some(fields) = json["fields"].as_object() {
        if let Some(message) = fields.get("message") {
            out.push(' ');
            out.push_str(&text(message));
        }
        for (key, value) in fields.iter().filter(|(k, _)| *k != "message") {
            out.push_str(&format!(" {key}={}", text(value)));
        }
    }
    if let Some(span) = json["span"].as_object() {
        for (key, value) in span.iter().filter(|(k, _)| *k != "name") {
            out.push_str(&format!(" [{key}={}]", text(value)));
        }
    }
    out
}

/// The REST API of one running instance, as a user with a password.
pub struct ApiClient {
    base: String,
    username: String,
    password: String,
    http: reqwest::Client,
}

impl ApiClient {
    pub fn new(process: &ServeProcess, username: &str, password: &str) -> Self {
        Self {
            base: process.url(),
            username: username.to_owned(),
            password: password.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("HTTP client"),
        }
    }

    /// `POST <path>` with a JSON body: the status and the JSON answer.
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        self.send(request, &format!("POST {path}")).await
    }

    /// `DELETE <path>` with a JSON body: the status and the JSON answer.
    pub async fn delete_with_body(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let request = self.http.delete(format!("{}{path}", self.base)).json(body);
        self.send(request, &format!("DELETE {path}")).await
    }

    /// `GET <path>`: the status and the JSON answer.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request, &format!("GET {path}")).await
    }

    /// `<method> <path>` (`COPY`, `PURGE`, ...) with an optional JSON body: the status and
    /// the JSON answer (`null` for an empty body).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method name");
        let what = format!("{method} {path}");
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request, &what).await
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> (u16, serde_json::Value) {
        let response = request
            .basic_auth(&self.username, Some(&self.password))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what} at {}: {e}", self.base));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if text.is_empty() {
            return (status, serde_json::Value::Null);
        }
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{what} answered {status} with non-JSON ({e}): {text}"));
        (status, json)
    }
}
