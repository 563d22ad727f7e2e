//! Runs the README's quick start exactly as written, with the `acmeport` binary in place
//! of `cargo run -p acmeport-server --`: serve on the defaults in an empty directory, add the
//! first admin, call `/api/resource` with curl, and stop with SIGTERM.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CARGO_RUN: &str = "cargo run -p acmeport-server --";

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
        .expect("README.md")
}

/// The text of a `## ` section, up to the next one.
fn section<'a>(text: &'a str, title: &str) -> &'a str {
    let start = text
        .find(&format!("## {title}\n"))
        .unwrap_or_else(|| panic!("README has no `## {title}` section"));
    let rest = &text[start + 3..];
    &text[start..start + 3 + rest.find("\n## ").unwrap_or(rest.len())]
}

/// The ```sh blocks of a text.
fn sh_blocks(text: &str) -> Vec<String> {
    text.split("```sh\n")
        .skip(1)
        .map(|b| b.split("\n```").next().expect("closed block").to_owned())
        .collect()
}

fn get(path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", 8080)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

#[test]
fn the_readme_quick_start_works_as_written() {
    let readme = readme();
    let quick = section(&readme, "Quick start");
    let blocks = sh_blocks(quick);
    // Further blocks (`dns test`) need a DNS zone of the reader's and are not run here.
    assert!(
        blocks.len() >= 2,
        "the quick start has a serve block and a client block"
    );
    assert_eq!(
        blocks[0].trim(),
        format!("{CARGO_RUN} serve"),
        "the serve command changed"
    );
    let expected = quick
        .split("which prints `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .expect("the quick start says what curl prints");

    for port in [8080, 8081] {
        drop(TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| {
            panic!("the quick start serves on 127.0.0.1:{port}, which is taken: {e}")
        }));
    }
    let dir = tempfile::tempdir().expect("empty directory");
    let binary = env!("CARGO_BIN_EXE_acmeport");
    let mut serve = Command::new(binary)
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("ACMEPORT_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start acmeport serve");
    let log = Arc::new(Mutex::new(String::new()));
    let reader = {
        let log = Arc::clone(&log);
        let stderr = serve.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = log.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        })
    };
    let shown = || log.lock().expect("log").clone();

    let deadline = Instant::now() + Duration::from_secs(60);
    while !get("/healthz").is_some_and(|a| a.starts_with("HTTP/1.1 200")) {
        assert!(
            serve.try_wait().expect("status").is_none(),
            "serve exited:\n{}",
            shown()
        );
        assert!(
            Instant::now() < deadline,
            "serve did not answer /healthz:\n{}",
            shown()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        shown().contains("acmeport user add"),
        "serve must say how to create the first admin:\n{}",
        shown()
    );

    let script = blocks[1].replace(CARGO_RUN, binary);
    let client = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env_remove("ACMEPORT_CONFIG")
        .output()
        .expect("run the client block with bash");
    let stdout = String::from_utf8_lossy(&client.stdout);
    assert!(
        client.status.success(),
        "the client block failed: {}\n{stdout}\n{}",
        client.status,
        String::from_utf8_lossy(&client.stderr)
    );
    assert!(stdout.contains("created admin `admin`"), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some(expected),
        "curl's answer:\n{stdout}"
    );

    let pid = serve.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = serve.try_wait().expect("status") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop on SIGTERM:\n{}",
            shown()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    reader.join().expect("log reader");
    assert!(
        status.success(),
        "serve must exit cleanly on SIGTERM: {status}\n{}",
        shown()
    );
    assert!(shown().contains("stopped"), "{}", shown());
    assert!(
        dir.path().join("data/acmeport.db").exists(),
        "SQLite in ./data"
    );
    assert!(
        dir.path().join("data/master.key").exists(),
        "the master key in ./data"
    );
}
