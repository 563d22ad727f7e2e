//! The real application (what `acmeport serve` runs) under hostile clients on loopback: a
//! flood of wrong passwords, slowloris connections and a connection flood against both
//! listeners. Hostile clients come from other loopback addresses (127.0.0.2, ...) than the
//! well-formed ones (127.0.0.1), as they would from other hosts. Every loop is bounded.

use acmeport_server::config::Secret;
use acmeport_server::{Application, Config, StopHandle};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const ADMIN: (&str, &str) = ("admin", "admin-password-for-tests");

struct Running {
    api: SocketAddr,
    challenge: SocketAddr,
    stop: StopHandle,
    task: tokio::task::JoinHandle<()>,
    _data: tempfile::TempDir,
}

impl Running {
    async fn start(tweak: impl FnOnce(&mut Config)) -> Self {
        let data = tempfile::tempdir().expect("temporary directory");
        let mut config = Config {
            data_dir: data.path().join("data"),
            ..Config::default()
        };
        config.api.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.challenge.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.dns.default = String::new();
        config.dns.providers.clear();
        config.workers.count = 0;
        config.auth.token_secret = Some(Secret::new("hostile-clients-token-secret-0123456789"));
        config.bootstrap.admin_username = Some(ADMIN.0.to_owned());
        config.bootstrap.admin_password = Some(Secret::new(ADMIN.1));
        tweak(&mut config);
        let app = Application::build(config)
            .await
            .unwrap_or_else(|e| panic!("the application must start: {e}"));
        let api = app.api_address();
        let challenge = app
            .challenge_address()
            .expect("the HTTP-01 listener is enabled");
        let stop = app.stop_handle();
        let task = tokio::spawn(app.run_until_stopped());
        Self {
            api,
            challenge,
            stop,
            task,
            _data: data,
        }
    }

    async fn stop(self) {
        self.stop.stop();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A client whose connections come from `from`, one connection per request.
fn client(from: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("HTTP client")
}

fn memory_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

async fn status(client: &reqwest::Client, url: &str, who: (&str, &str)) -> u16 {
    client
        .get(url)
        .basic_auth(who.0, Some(who.1))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_wrong_passwords_is_bounded_and_limited_and_real_users_still_log_in() {
    let app = Running::start(|c| {
        // The real Argon2 cost (19 MiB per check): the point is its memory.
        c.auth.max_concurrent_password_checks = 2;
        c.auth.max_waiting_password_checks = 64;
        c.auth.failed_logins_per_address = 20;
        c.auth.failed_logins_per_username = 10;
        c.auth.failed_login_refill_secs = 60;
        // Only the login limits are under test here, not the connection caps.
        c.api.max_connections_per_address = 1000;
        c.api.max_connections = 2000;
    })
    .await;
    let base = format!("http://{}", app.api);
    let resource = format!("{base}/api/resource");
    let home = client(loopback(1));
    for user in ["alice", "bob"] {
        let answer = home
            .post(format!("{base}/api/users"))
            .basic_auth(ADMIN.0, Some(ADMIN.1))
            .json(&serde_json::json!({"username": user, "password": format!("{user}-password")}))
            .send()
            .await
            .expect("create user");
        assert_eq!(answer.status().as_u16(), 201, "creating {user}");
    }
    // Alice logs in from her usual address before the attack.
    assert_eq!(
        status(&home, &resource, ("alice", "alice-password")).await,
        200
    );

    let before = memory_kib("VmRSS:");
    let attacker = client(loopback(2));
    let started = Instant::now();
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..500 {
        let attacker = attacker.clone();
        let resource = resource.clone();
        flood.spawn(async move {
            // Half guess alice's password, half try unknown users (the decoy path).
            let user = if i % 2 == 0 {
                "alice".to_owned()
            } else {
                format!("ghost{i}")
            };
            let answer = attacker
                .get(&resource)
                .basic_auth(&user, Some(format!("guess-{i}")))
                .send()
                .await;
            answer.map_or((0, false), |r| {
                (r.status().as_u16(), r.headers().contains_key("retry-after"))
            })
        });
    }
    let mut counts = std::collections::BTreeMap::<u16, usize>::new();
    let mut limited_without_retry_after = 0;
    while let Some(result) = flood.join_next().await {
        let (code, retry_after) = result.expect("flood task");
        *counts.entry(code).or_default() += 1;
        if matches!(code, 429 | 503) && !retry_after {
            limited_without_retry_after += 1;
        }
    }
    let took = started.elapsed();
    let peak = memory_kib("VmHWM:");
    let grown = peak.saturating_sub(before);
    eprintln!(
        "500 wrong-password logins in {took:?}: answers {counts:?}; resident memory before \
         {before} KiB, peak {peak} KiB (+{grown} KiB)"
    );
    assert_eq!(
        counts.get(&200),
        None,
        "no wrong password may log in: {counts:?}"
    );
    assert!(
        counts.get(&429).copied().unwrap_or(0) > 0,
        "failed logins past the limits must be answered 429: {counts:?}"
    );
    assert_eq!(
        counts.get(&0),
        None,
        "every request gets an answer: {counts:?}"
    );
    assert_eq!(
        limited_without_retry_after, 0,
        "429 and 503 answers carry Retry-After"
    );
    assert!(
        grown < 120 * 1024,
        "memory must stay bounded under the flood: peak grew by {grown} KiB \
         (two Argon2 checks of 19 MiB run at once)"
    );

    // The service still answers real users: alice from her known address, bob from a
    // new one. Alice from an unknown address is refused by her per-username limit.
    assert_eq!(
        status(&home, &resource, ("alice", "alice-password")).await,
        200,
        "alice logs in from her usual address during the attack"
    );
    // How many of the flood's checks hit alice depends on scheduling: make sure her
    // username is over its limit with a few more guesses from another address.
    let second = client(loopback(5));
    let mut guesses = 0;
    while status(&second, &resource, ("alice", "another-guess")).await != 429 {
        guesses += 1;
        assert!(
            guesses < 12,
            "alice's username never reached its failure limit"
        );
    }
    let elsewhere = client(loopback(3));
    assert_eq!(
        status(&elsewhere, &resource, ("bob", "bob-password")).await,
        200
    );
    assert_eq!(
        status(&client(loopback(4)), &resource, ("alice", "alice-password")).await,
        429,
        "alice's username is over its failure limit for addresses she never used"
    );
    // The attacker's address is refused even with a right password.
    assert_eq!(
        status(&attacker, &resource, ("bob", "bob-password")).await,
        429
    );
    app.stop().await;
}

/// Connects from `from` to `to`.
async fn connect(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// A slowloris client: sends a request head one byte at a time, every 200 ms, and says
/// how long the server kept the connection open (`None`: still open after `give_up`).
async fn slowloris(from: IpAddr, to: SocketAddr, give_up: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = connect(from, to).await.ok()?;
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut sink = [0u8; 256];
    for byte in head.iter().cycle() {
        if started.elapsed() > give_up {
            return None;
        }
        if stream.write_all(&[*byte]).await.is_err() {
            return Some(started.elapsed());
        }
        // The server answering (408/503) and closing also ends it.
        if let Ok(Ok(read)) =
            tokio::time::timeout(Duration::from_millis(200), stream.read(&mut sink)).await
        {
            if read == 0 {
                return Some(started.elapsed());
            }
        }
    }
    None
}

/// A slow-body client: sends complete headers announcing a body, then one body byte
/// every 200 ms.
async fn slow_body(from: IpAddr, to: SocketAddr, give_up: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = connect(from, to).await.ok()?;
    let head = b"POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
Authorization: Basic YWRtaW46YWRtaW4tcGFzc3dvcmQtZm9yLXRlc3Rz\r\nContent-Length: 100000\r\n\r\n";
    stream.write_all(head).await.ok()?;
    let mut sink = [0u8; 1024];
    while started.elapsed() < give_up {
        if stream.write_all(b" ").await.is_err() {
            return Some(started.elapsed());
        }
        if let Ok(Ok(0)) =
            tokio::time::timeout(Duration::from_millis(200), stream.read(&mut sink)).await
        {
            return Some(started.elapsed());
        }
    }
    None
}

/// Well-formed requests from 127.0.0.1 for `duration`: their latencies, and the requests
/// that failed.
async fn well_formed(urls: Vec<String>, duration: Duration) -> (Vec<Duration>, Vec<String>) {
    let home = client(loopback(1));
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    while started.elapsed() < duration {
        for url in &urls {
            let sent = Instant::now();
            match home.get(url).send().await {
                Ok(r) if r.status().as_u16() == 200 || r.status().as_u16() == 404 => {
                    latencies.push(sent.elapsed());
                }
                Ok(r) => failures.push(format!("{url}: {}", r.status())),
                Err(e) => failures.push(format!("{url}: {e}")),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (latencies, failures)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slowloris_and_connection_floods_do_not_stop_either_listener() {
    let app = Running::start(|c| {
        // Short timeouts so the test stays short; the caps hold the hostile connections
        // below the overall cap.
        let (header, body, idle, max, per) = (1, 1, 3, 300, 20);
        {
            c.api.header_read_timeout_secs = header;
            c.api.body_read_timeout_secs = body;
            c.api.idle_timeout_secs = idle;
            c.api.max_connections = max;
            c.api.max_connections_per_address = per;
            c.challenge.header_read_timeout_secs = header;
            c.challenge.body_read_timeout_secs = body;
            c.challenge.idle_timeout_secs = idle;
            c.challenge.max_connections = max;
            c.challenge.max_connections_per_address = per;
        }
    })
    .await;
    let urls = vec![
        format!("http://{}/healthz", app.api),
        format!(
            "http://{}/.well-known/acme-challenge/unknown-token",
            app.challenge
        ),
    ];
    // The latency of well-formed requests with nothing else going on.
    let (quiet, failures) = well_formed(urls.clone(), Duration::from_millis(500)).await;
    assert!(failures.is_empty(), "{failures:?}");

    let give_up = Duration::from_secs(4);
    let mut hostile = tokio::task::JoinSet::new();
    for target in [app.api, app.challenge] {
        // Slowloris: 60 connections from one address (over its cap of 20).
        for _ in 0..60 {
            hostile
                .spawn(async move { ("slowloris", slowloris(loopback(2), target, give_up).await) });
        }
        // Bodies that never finish, from another address.
        for _ in 0..15 {
            hostile
                .spawn(async move { ("slow body", slow_body(loopback(3), target, give_up).await) });
        }
        // A flood of connections that send nothing: 40 from each of ten addresses, twice
        // the cap per address.
        // They arrive 1 ms apart: a burst of hundreds of SYNs in the same instant overflows
        // the kernel's accept queue, and those connections wait in the kernel (for SYN
        // retransmits) instead of reaching the server.
        for i in 0..400u32 {
            let from = loopback(10 + (i % 10) as u8);
            hostile.spawn(async move {
                tokio::time::sleep(Duration::from_millis(u64::from(i))).await;
                let started = Instant::now();
                let Ok(mut stream) = connect(from, target).await else {
                    return ("flood", Some(started.elapsed()));
                };
                let mut sink = [0u8; 256];
                match tokio::time::timeout(give_up, async {
                    while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {}
                })
                .await
                {
                    Ok(()) => ("flood", Some(started.elapsed())),
                    Err(_) => ("flood", None),
                }
            });
        }
    }
    let (busy, failures) = well_formed(urls.clone(), Duration::from_secs(3)).await;
    let mut still_open = std::collections::BTreeMap::<&str, usize>::new();
    let mut closed_after = Vec::new();
    while let Some(result) = hostile.join_next().await {
        let (kind, closed) = result.expect("hostile task");
        match closed {
            Some(after) => closed_after.push(after),
            None => *still_open.entry(kind).or_default() += 1,
        }
    }

    let mut quiet = quiet;
    quiet.sort();
    let mut busy = busy;
    busy.sort();
    eprintln!(
        "well-formed requests: quiet p50 {:?} max {:?} ({} requests); under slowloris and \
         flood p50 {:?} p99 {:?} max {:?} ({} requests); hostile connections closed by the \
         server: {} (latest after {:?})",
        percentile(&quiet, 0.5),
        quiet.last().expect("quiet requests"),
        quiet.len(),
        percentile(&busy, 0.5),
        percentile(&busy, 0.99),
        busy.last().copied().unwrap_or_default(),
        busy.len(),
        closed_after.len(),
        closed_after.iter().max().copied().unwrap_or_default(),
    );
    assert!(
        failures.is_empty(),
        "well-formed requests must keep being answered: {failures:?}"
    );
    assert!(
        busy.len() > 20,
        "only {} well-formed requests were answered",
        busy.len()
    );
    assert!(
        percentile(&busy, 0.99) < Duration::from_millis(500),
        "well-formed requests must stay fast: p99 {:?}",
        percentile(&busy, 0.99)
    );
    assert!(
        still_open.is_empty(),
        "the server must close every slow or idle connection within its timeouts: \
         still open after {give_up:?}: {still_open:?}"
    );
    app.stop().await;
}
