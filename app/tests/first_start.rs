//! A first start on the built-in defaults, without AWS credentials: the default `route53`
//! instance is reported in one line that says how to configure it, and none of the AWS
//! SDK's instance-metadata warnings appear.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn a_first_start_without_aws_credentials_says_so_in_one_line() {
    let dir = tempfile::tempdir().expect("empty directory");
    let home = tempfile::tempdir().expect("empty home: no AWS profile");
    let mut command = Command::new(env!("CARGO_BIN_EXE_acmeport"));
    command
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("ACMEPORT_CONFIG")
        .env("HOME", home.path())
        .env("NO_COLOR", "1")
        // Free ports instead of the defaults 8080/8081; everything else is default.
        .env("ACMEPORT_API__LISTEN", "127.0.0.1:0")
        .env("ACMEPORT_CHALLENGE__LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") || name.starts_with("ACMEPORT_DNS") {
            command.env_remove(name);
        }
    }
    let mut serve = command.spawn().expect("start acmeport serve");
    let stderr = serve.stderr.take().expect("piped");
    let (lines, received) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match received.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let done = line.contains("has no AWS credentials");
                log.push(line);
                if done {
                    // Give the SDK time to print anything it would print after.
                    std::thread::sleep(Duration::from_secs(1));
                    log.extend(received.try_iter());
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = serve.kill();
    let _ = serve.wait();
    drop(received);
    let _ = reader.join();
    let text = log.join("\n");
    let reports: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("has no AWS credentials"))
        .collect();
    assert_eq!(
        reports.len(),
        1,
        "exactly one line about the missing credentials:\n{text}"
    );
    assert!(
        reports[0].contains("`route53`")
            && reports[0]
                .contains("access_key_id and secret_access_key under [dns.providers.route53]"),
        "the line names the instance and how to configure it:\n{text}"
    );
    assert!(
        !text.to_ascii_lowercase().contains("imds"),
        "no instance-metadata warning from the AWS SDK:\n{text}"
    );
}
