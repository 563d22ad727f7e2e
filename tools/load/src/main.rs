//! acmeport's load tool: issues certificates through a release-built `acmeport serve` on
//! its default settings (SQLite) against Pebble and BIND 9 on loopback, measures
//! throughput, latency, server CPU and memory, drives the authenticated read path, then
//! issues the same number of certificates with lego against the same peers and prints the
//! ratios. Every loop is bounded; everything listens on 127.0.0.1 only.
//!
//! `scripts/perf.sh` runs it with the benchmarks; `--help` lists the knobs.

mod peers;
mod proc;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use peers::{Bind, Pebble, KEY_NAME, ZONE};
use proc::percentile_ms;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::Command;
use tokio::sync::Semaphore;

/// The user the tool creates and orders as.
const USER: &str = "load";
const PASSWORD: &str = "load-password-1";
const ADMIN_PASSWORD: &str = "load-admin-password";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mix {
    /// DNS-01 through RFC 2136 (BIND) only.
    Dns,
    /// HTTP-01 through the built-in responder only.
    Http,
    /// Alternately DNS-01 and HTTP-01.
    Mixed,
}

/// Measures acmeport against lego on loopback.
#[derive(Debug, Parser)]
#[command(name = "acmeport-load")]
struct Args {
    /// Certificates to issue in the batch (and with lego).
    #[arg(long, default_value_t = 100)]
    orders: usize,
    /// Orders in flight at once [default: all of them].
    #[arg(long)]
    concurrency: Option<usize>,
    /// Challenge types of the batch.
    #[arg(long, value_enum, default_value = "mixed")]
    challenge: Mix,
    /// Orders posted one at a time before the batch, for the single-order latency.
    #[arg(long, default_value_t = 6)]
    single: usize,
    /// How often the tool asks for an order's status during the batch, milliseconds.
    #[arg(long, default_value_t = 100)]
    poll_ms: u64,
    /// Seconds of each read scenario.
    #[arg(long, default_value_t = 3)]
    read_secs: u64,
    /// Concurrent connections of the read scenarios.
    #[arg(long, default_value_t = 32)]
    read_connections: usize,
    /// lego processes in parallel.
    #[arg(long, default_value_t = 8)]
    lego_processes: usize,
    /// Skip the lego run.
    #[arg(long)]
    no_lego: bool,
    /// The acmeport binary [default: `acmeport` next to this program].
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Where the results go as JSON.
    #[arg(long, default_value = "target/perf/load.json")]
    json: PathBuf,
    /// Give up on the batch (and on lego) after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Keep the working directory (configuration, logs, database) and print its path.
    #[arg(long)]
    keep: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Next to this program, as `cargo build --release -p acmeport-server -p acmeport-load` puts it.
    let binary = match args.binary.clone() {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("the tool's directory")?
            .join("acmeport"),
    };
    if !binary.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p acmeport-server`",
            binary.display()
        );
    }
    let keygen_ms = rsa_keygen_ms(16);
    println!("RSA-2048 key generation in this process: {keygen_ms:.1} ms CPU (mean of 16)");

    let work = tempfile::Builder::new().prefix("acmeport-load").tempdir()?;
    let dir = work.path().to_path_buf();
    for sub in ["bind", "pebble", "acmeport", "lego"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let bind = Bind::start(&dir.join("bind")).await.context("BIND")?;
    let challenge_port = peers::free_tcp_port();
    let pebble = Pebble::start(&dir.join("pebble"), bind.addr, challenge_port).await?;
    let server = Server::start(
        &binary,
        &dir.join("acmeport"),
        &bind,
        &pebble,
        challenge_port,
    )
    .await?;
    println!(
        "peers up: BIND {}, Pebble {}, acmeport pid {} on {}",
        bind.addr, pebble.directory, server.pid, server.base
    );
    let api = server.setup().await?;

    let mut report = json!({
        "orders": args.orders,
        "challenge": format!("{:?}", args.challenge).to_lowercase(),
        "rsa2048_keygen_ms": keygen_ms,
    });

    // One order at a time: the latency of an order on an idle instance.
    let mut single = Vec::new();
    for i in 0..args.single {
        let kind = if i % 2 == 0 { "dns" } else { "http" };
        let (seconds, status) = api
            .order_until_done(
                &format!("single{i}"),
                kind,
                Duration::from_millis(20),
                args.timeout_secs,
            )
            .await?;
        if status != "valid" {
            bail!("single order {i} ({kind}) ended {status}");
        }
        single.push(seconds);
    }
    single.sort_by(f64::total_cmp);
    report["single_p50_ms"] = json!(percentile_ms(&single, 50.0));
    println!(
        "single order POST-to-valid: p50 {:.0} ms",
        percentile_ms(&single, 50.0)
    );

    let batch = run_batch(&api, &args, server.pid).await?;
    report["batch"] = batch.clone();
    let reads = run_reads(&api, &args, server.pid).await?;
    report["reads"] = reads;
    report["server_peak_rss_mib"] = json!(proc::peak_rss_mib(server.pid));

    let ours_cps = batch["certs_per_s"].as_f64().unwrap_or(f64::NAN);
    let ours_cpu = batch["server_cpu_s_per_cert"].as_f64().unwrap_or(f64::NAN);
    report["cpu_per_cert_over_keygen"] = json!(ours_cpu * 1000.0 / keygen_ms);
    if !args.no_lego {
        let lego = run_lego(&args, &dir.join("lego"), &bind, &pebble).await?;
        let lego_cps = lego["certs_per_s"].as_f64().unwrap_or(f64::NAN);
        let lego_cpu = lego["client_cpu_s_per_cert"].as_f64().unwrap_or(f64::NAN);
        report["lego"] = lego;
        report["ratio_certs_per_s"] = json!(ours_cps / lego_cps);
        report["ratio_cpu_per_cert"] = json!(ours_cpu / lego_cpu);
    }
    drop(server);
    print_table(&report);
    if let Some(parent) = args.json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&report)?)?;
    println!("JSON: {}", args.json.display());
    if args.keep {
        println!("working directory kept: {}", work.keep().display());
    }
    Ok(())
}

/// Mean CPU time of generating one RSA-2048 key in this process, milliseconds (CPU, not
/// wall time, so that other load on the machine does not inflate the floor).
fn rsa_keygen_ms(n: u32) -> f64 {
    let cpu0 = proc::cpu_seconds(std::process::id());
    for _ in 0..n {
        rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            .expect("RSA-2048 key");
    }
    (proc::cpu_seconds(std::process::id()) - cpu0) * 1000.0 / f64::from(n)
}

/// The running `acmeport serve`, killed on drop.
struct Server {
    child: tokio::process::Child,
    pid: u32,
    base: String,
}

impl Server {
    /// Starts the binary with the default settings except what must differ here: data
    /// directory, Pebble's directory and TLS root, listeners on free ports, the RFC 2136
    /// provider for BIND and the propagation check pointed at BIND, a bootstrap admin.
    async fn start(
        binary: &Path,
        dir: &Path,
        bind: &Bind,
        pebble: &Pebble,
        challenge_port: u16,
    ) -> anyhow::Result<Self> {
        let api_port = peers::free_tcp_port();
        let dns = bind.addr;
        let config = format!(
            r#"data_dir = "{data}"

[api]
listen = "127.0.0.1:{api_port}"

[challenge]
listen = "127.0.0.1:{challenge_port}"

[acme]
directory = "{directory}"
extra_roots = ["{root}"]
webpki_roots = false

[dns]
default = "bind"

[dns.providers.bind]
kind = "rfc2136"
server = "{dns}"
key_name = "{KEY_NAME}"
secret = "{secret}"
zone = "{ZONE}"

[dns.propagation]
resolvers = ["{dns}"]
authoritative_port = {port}

[bootstrap]
admin_username = "admin"
admin_password = "{ADMIN_PASSWORD}"
"#,
            data = dir.join("data").display(),
            directory = pebble.directory,
            root = pebble.tls_ca_path.display(),
            secret = bind.secret,
            port = dns.port(),
        );
        let config_path = dir.join("acmeport.toml");
        std::fs::write(&config_path, config)?;
        // The log goes to a file, as under a service manager: not a terminal.
        let log = std::fs::File::create(dir.join("server.log"))?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config_path)
            .arg("serve")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("server pid")?;
        let server = Self {
            child,
            pid,
            base: format!("http://127.0.0.1:{api_port}"),
        };
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = http.get(format!("{}/healthz", server.base)).send().await {
                if r.status().is_success() {
                    return Ok(server);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "acmeport did not answer /healthz; its log is {}",
            dir.join("server.log").display()
        )
    }

    /// Creates the user, its token and its ACME account.
    async fn setup(&self) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .timeout(Duration::from_secs(30))
            .build()?;
        let created = http
            .post(format!("{}/api/users", self.base))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&json!({"username": USER, "password": PASSWORD}))
            .send()
            .await?;
        if !created.status().is_success() {
            bail!("POST /api/users answered {}", created.status());
        }
        let user: Value = created.json().await?;
        let user_id = user["id"].as_i64().context("user id")?;
        // Users order only names granted to them: the load user gets the test zone.
        let granted = http
            .post(format!("{}/api/users/{user_id}/domains", self.base))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .json(&json!({"pattern": format!(".{ZONE}")}))
            .send()
            .await?;
        if !granted.status().is_success() {
            bail!(
                "POST /api/users/{user_id}/domains answered {}: {}",
                granted.status(),
                granted.text().await.unwrap_or_default()
            );
        }
        let token: Value = http
            .get(format!("{}/api/token", self.base))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = token["token"].as_str().context("token")?.to_owned();
        let account: Value = http
            .post(format!("{}/api/acme", self.base))
            .basic_auth(&token, Some(""))
            .json(&json!({"email": "load@example.test"}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let account = account["id"].as_i64().context("account id")?;
        Ok(Api {
            http,
            requests: Arc::new(Semaphore::new(BATCH_CONNECTIONS)),
            base: self.base.clone(),
            token,
            account,
            run: rand::random::<u32>(),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Requests of the batch at once; see [`Api::requests`].
const BATCH_CONNECTIONS: usize = 48;

/// The API as the load user sees it.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    /// Requests (so connections) of the batch at once: below the server's default
    /// `listeners.max_connections_per_address` (64), which refuses more from one address.
    /// Orders in flight are not limited by it; each request takes milliseconds.
    requests: Arc<Semaphore>,
    base: String,
    token: String,
    account: i64,
    run: u32,
}

impl Api {
    /// Posts an order for `<label>-<run>.example.test` and polls it every `poll` until it
    /// leaves `pending`; returns the seconds from POST to that and the final status.
    async fn order_until_done(
        &self,
        label: &str,
        kind: &str,
        poll: Duration,
        timeout_secs: u64,
    ) -> anyhow::Result<(f64, String)> {
        let name = format!("{label}-{:08x}.{ZONE}", self.run);
        let mut body = json!({"domains": [name], "account": self.account, "type": kind});
        if kind == "dns" {
            body["provider"] = json!("bind");
        }
        let start = Instant::now();
        let (status, created) = {
            let _slot = self.requests.acquire().await.expect("open semaphore");
            let response = self
                .http
                .post(format!("{}/api/order", self.base))
                .basic_auth(&self.token, Some(""))
                .json(&body)
                .send()
                .await?;
            let status = response.status();
            (status, response.json::<Value>().await?)
        };
        if !status.is_success() {
            bail!("POST /api/order answered {status}: {created}");
        }
        let id = created["id"].as_i64().context("order id")?;
        let deadline = start + Duration::from_secs(timeout_secs);
        loop {
            tokio::time::sleep(poll).await;
            let _slot = self.requests.acquire().await.expect("open semaphore");
            let order: Value = self
                .http
                .get(format!("{}/api/order/{id}", self.base))
                .basic_auth(&self.token, Some(""))
                .send()
                .await?
                .json()
                .await?;
            match order["status"].as_str() {
                Some("pending") if Instant::now() < deadline => {}
                Some("pending") => return Ok((start.elapsed().as_secs_f64(), "timeout".into())),
                Some(other) => {
                    if other != "valid" {
                        eprintln!("order {id} ({kind}) ended {other}: {}", order["error"]);
                    }
                    return Ok((start.elapsed().as_secs_f64(), other.to_owned()));
                }
                None => bail!("order {id} has no status: {order}"),
            }
        }
    }
}

/// N orders, C in flight at once, each polled until it is done.
async fn run_batch(api: &Api, args: &Args, pid: u32) -> anyhow::Result<Value> {
    let concurrency = args.concurrency.unwrap_or(args.orders).max(1);
    let permits = Arc::new(Semaphore::new(concurrency));
    let cpu0 = proc::cpu_seconds(pid);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..args.orders {
        let kind = match (args.challenge, i % 2) {
            (Mix::Dns, _) | (Mix::Mixed, 0) => "dns",
            _ => "http",
        };
        let api = api.clone();
        let permits = permits.clone();
        let poll = Duration::from_millis(args.poll_ms);
        let timeout = args.timeout_secs;
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.expect("open semaphore");
            let outcome = api
                .order_until_done(&format!("batch{i}"), kind, poll, timeout)
                .await;
            (kind, outcome)
        }));
    }
    let mut all = Vec::new();
    let mut dns = Vec::new();
    let mut http = Vec::new();
    let mut failed = 0usize;
    for task in tasks {
        let (kind, outcome) = task.await?;
        match outcome {
            Ok((seconds, status)) if status == "valid" => {
                all.push(seconds);
                if kind == "dns" {
                    dns.push(seconds)
                } else {
                    http.push(seconds)
                }
            }
            Ok(_) => failed += 1,
            Err(e) => {
                eprintln!("order failed: {e:#}");
                failed += 1;
            }
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = proc::cpu_seconds(pid) - cpu0;
    for list in [&mut all, &mut dns, &mut http] {
        list.sort_by(f64::total_cmp);
    }
    let valid = all.len();
    let batch = json!({
        "concurrency": concurrency,
        "valid": valid,
        "failed": failed,
        "wall_s": wall,
        "certs_per_s": valid as f64 / wall,
        "p50_ms": percentile_ms(&all, 50.0),
        "p95_ms": percentile_ms(&all, 95.0),
        "p99_ms": percentile_ms(&all, 99.0),
        "dns01_p50_ms": percentile_ms(&dns, 50.0),
        "http01_p50_ms": percentile_ms(&http, 50.0),
        "server_cpu_s": cpu,
        "server_cpu_s_per_cert": cpu / valid.max(1) as f64,
        "server_peak_rss_mib": proc::peak_rss_mib(pid),
    });
    println!("batch: {batch}");
    Ok(batch)
}

/// The authenticated read path: one order and the list, with Basic and token auth.
async fn run_reads(api: &Api, args: &Args, pid: u32) -> anyhow::Result<Value> {
    let listing: Value = api
        .http
        .get(format!("{}/api/order?limit=1", api.base))
        .basic_auth(&api.token, Some(""))
        .send()
        .await?
        .json()
        .await?;
    let id = listing
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .context("an order to read")?;
    let mut out = serde_json::Map::new();
    for (name, path, token) in [
        ("order_basic", format!("/api/order/{id}"), false),
        ("order_token", format!("/api/order/{id}"), true),
        ("list_basic", "/api/order".to_owned(), false),
        ("list_token", "/api/order".to_owned(), true),
    ] {
        let url = format!("{}{path}", api.base);
        let result = read_scenario(api, &url, token, args, pid).await;
        println!("{name}: {result}");
        out.insert(name.to_owned(), result);
    }
    Ok(Value::Object(out))
}

async fn read_scenario(api: &Api, url: &str, token: bool, args: &Args, pid: u32) -> Value {
    let (user, password) = if token {
        (api.token.clone(), String::new())
    } else {
        (USER.to_owned(), PASSWORD.to_owned())
    };
    // Warm up: connections, and the password cache for Basic.
    for _ in 0..4 {
        let _ = api
            .http
            .get(url)
            .basic_auth(&user, Some(&password))
            .send()
            .await;
    }
    let cpu0 = proc::cpu_seconds(pid);
    let start = Instant::now();
    let end = start + Duration::from_secs(args.read_secs);
    let mut tasks = Vec::new();
    for _ in 0..args.read_connections {
        let (http, url, user, password) = (
            api.http.clone(),
            url.to_owned(),
            user.clone(),
            password.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < end {
                let t = Instant::now();
                match http
                    .get(&url)
                    .basic_auth(&user, Some(&password))
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed().as_secs_f64());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((l, e)) = task.await {
            all.extend(l);
            errors += e;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = proc::cpu_seconds(pid) - cpu0;
    all.sort_by(f64::total_cmp);
    json!({
        "requests": all.len(),
        "errors": errors,
        "requests_per_s": all.len() as f64 / wall,
        "p50_ms": percentile_ms(&all, 50.0),
        "p99_ms": percentile_ms(&all, 99.0),
        "server_cpu_us_per_request": cpu * 1e6 / all.len().max(1) as f64,
    })
}

/// The same number of certificates with lego (DNS-01 through its rfc2136 provider), in
/// `lego_processes` processes at a time, one process per certificate as lego is used.
async fn run_lego(args: &Args, dir: &Path, bind: &Bind, pebble: &Pebble) -> anyhow::Result<Value> {
    let next = Arc::new(AtomicUsize::new(0));
    let cpu0 = proc::reaped_children_cpu_seconds();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.lego_processes.max(1) {
        let next = next.clone();
        let path = dir.join(format!("p{worker}"));
        let (orders, timeout) = (args.orders, args.timeout_secs);
        let (directory, ca) = (pebble.directory.clone(), pebble.tls_ca_path.clone());
        let (dns, secret) = (bind.addr, bind.secret.clone());
        let run: u32 = rand::random();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0usize, 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= orders || start.elapsed() > Duration::from_secs(timeout) {
                    break;
                }
                let status = Command::new("lego")
                    .args(["--accept-tos", "--server", &directory])
                    .args(["--email", &format!("lego{worker}@example.test")])
                    .arg("--path")
                    .arg(&path)
                    .args(["--dns", "rfc2136", "--dns.resolvers", &dns.to_string()])
                    .args(["--dns.disable-cp", "--key-type", "rsa2048"])
                    .args(["--domains", &format!("lego{i}-{run:08x}.{ZONE}"), "run"])
                    .env("LEGO_CA_CERTIFICATES", &ca)
                    .env("RFC2136_NAMESERVER", dns.to_string())
                    .env("RFC2136_TSIG_KEY", KEY_NAME)
                    .env("RFC2136_TSIG_SECRET", &secret)
                    .env("RFC2136_TSIG_ALGORITHM", "hmac-sha256.")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .kill_on_drop(true)
                    .output();
                match tokio::time::timeout(Duration::from_secs(120), status).await {
                    Ok(Ok(out)) if out.status.success() => ok += 1,
                    Ok(Ok(out)) => {
                        failed += 1;
                        let text = String::from_utf8_lossy(&out.stderr);
                        let tail: Vec<&str> = text.lines().rev().take(3).collect();
                        eprintln!("lego {i} failed: {}", tail.join(" | "));
                    }
                    _ => failed += 1,
                }
            }
            (ok, failed)
        }));
    }
    let (mut ok, mut failed) = (0, 0);
    for task in tasks {
        let (o, f) = task.await?;
        ok += o;
        failed += f;
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = proc::reaped_children_cpu_seconds() - cpu0;
    let lego = json!({
        "processes": args.lego_processes,
        "valid": ok,
        "failed": failed,
        "wall_s": wall,
        "certs_per_s": ok as f64 / wall,
        "client_cpu_s_per_cert": cpu / ok.max(1) as f64,
    });
    println!("lego: {lego}");
    Ok(lego)
}

fn f(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.is_finite() && x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) if x.is_finite() && x.abs() >= 1.0 => format!("{x:.2}"),
        Some(x) if x.is_finite() => format!("{x:.3}"),
        _ => v.to_string(),
    }
}

/// The results as a Markdown table (what the README shows).
fn print_table(r: &Value) {
    let b = &r["batch"];
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| acmeport, {} orders ({}), concurrency {} | {} certs/s ({} valid, {} failed) |",
        r["orders"].as_u64().unwrap_or(0),
        r["challenge"].as_str().unwrap_or(""),
        b["concurrency"],
        f(&b["certs_per_s"]),
        b["valid"],
        b["failed"]
    );
    println!(
        "| POST to valid, batch p50 / p95 / p99 | {} / {} / {} ms (DNS-01 p50 {}, HTTP-01 p50 {}) |",
        f(&b["p50_ms"]),
        f(&b["p95_ms"]),
        f(&b["p99_ms"]),
        f(&b["dns01_p50_ms"]),
        f(&b["http01_p50_ms"])
    );
    println!(
        "| POST to valid, one order at a time, p50 | {} ms |",
        f(&r["single_p50_ms"])
    );
    println!(
        "| server CPU per certificate | {} s ({}x one RSA-2048 key generation, {} ms) |",
        f(&b["server_cpu_s_per_cert"]),
        f(&r["cpu_per_cert_over_keygen"]),
        f(&r["rsa2048_keygen_ms"])
    );
    println!(
        "| server peak RSS (after batch / end) | {} / {} MiB |",
        f(&b["server_peak_rss_mib"]),
        f(&r["server_peak_rss_mib"])
    );
    for (key, label) in [
        ("order_basic", "GET /api/order/<id>, Basic password"),
        ("order_token", "GET /api/order/<id>, token"),
        ("list_basic", "GET /api/order (all orders), Basic password"),
        ("list_token", "GET /api/order (all orders), token"),
    ] {
        let s = &r["reads"][key];
        println!(
            "| {label} | {} req/s, p50 {} ms, p99 {} ms, server {} µs CPU/req |",
            f(&s["requests_per_s"]),
            f(&s["p50_ms"]),
            f(&s["p99_ms"]),
            f(&s["server_cpu_us_per_request"])
        );
    }
    if let Some(l) = r.get("lego") {
        println!(
            "| lego, {} processes, DNS-01 (rfc2136) | {} certs/s ({} valid, {} failed), client CPU {} s/cert |",
            l["processes"],
            f(&l["certs_per_s"]),
            l["valid"],
            l["failed"],
            f(&l["client_cpu_s_per_cert"])
        );
        println!(
            "| acmeport / lego | {}x certs/s, {}x CPU per certificate |",
            f(&r["ratio_certs_per_s"]),
            f(&r["ratio_cpu_per_cert"])
        );
    }
}
