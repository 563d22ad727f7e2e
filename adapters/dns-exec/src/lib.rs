//! An external program as a [`DnsProvider`], with lego's `exec` convention so that
//! existing scripts keep working: the program is run as
//! `program present <fqdn> <value>` and `program cleanup <fqdn> <value>`, where `<fqdn>` is
//! the record name with a trailing dot (`_acme-challenge.example.com.`).
//!
//! The program is started directly, never through a shell, so no record name or value is
//! ever interpreted by one. It gets no standard input and a time limit after which it is
//! killed. Exit status 0 is success; anything else is a refusal whose text carries the
//! program's standard error (its last lines), which is what an operator needs to see in
//! the order's error.

#![warn(missing_docs)]

use acmeport_domain::ports::{DnsError, DnsProvider};
use acmeport_domain::{redact_provider_text, TxtRecord};
use async_trait::async_trait;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;
use tracing::{debug, info};

/// How much of the program's standard error goes into an error, at most (its end).
const STDERR_LIMIT: usize = 2000;

/// Which program to run and how long to let it run.
#[derive(Debug, Clone)]
pub struct ExecSettings {
    /// The program (a path; a bare name is looked up in `PATH`).
    pub program: PathBuf,
    /// Arguments placed before `present|cleanup <fqdn> <value>` (for example a script for
    /// an interpreter: `program = "/usr/bin/python3"`, `args = ["/etc/dns-hook.py"]`).
    pub args: Vec<String>,
    /// Limit for one run; the program is killed when it is reached.
    pub timeout: Duration,
}

impl ExecSettings {
    /// Settings with the default 60 s limit and no extra arguments.
    #[must_use]
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            timeout: Duration::from_secs(60),
        }
    }
}

/// Writes DNS-01 TXT records by running a program.
#[derive(Debug, Clone)]
pub struct ExecProvider {
    settings: ExecSettings,
}

impl ExecProvider {
    /// Builds the provider; nothing is run until the first call.
    #[must_use]
    pub fn new(settings: ExecSettings) -> Self {
        Self { settings }
    }

    async fn run(&self, action: &str, record: &TxtRecord) -> Result<(), DnsError> {
        let program = self.settings.program.display().to_string();
        let fqdn = record.absolute_name();
        let mut command = Command::new(&self.settings.program);
        command
            .args(&self.settings.args)
            .arg(action)
            .arg(&fqdn)
            .arg(&record.value)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = command.spawn().map_err(|e| {
            // A program that cannot be started is a configuration error: retrying will
            // not help.
            DnsError::Rejected(format!("cannot run {program}: {e}"))
        })?;
        let output =
            match tokio::time::timeout(self.settings.timeout, child.wait_with_output()).await {
                Ok(output) => output.map_err(|e| {
                    DnsError::Transport(format!("waiting for {program} failed: {e}").into())
                })?,
                // Dropping the future kills the child (`kill_on_drop`).
                Err(_) => {
                    return Err(DnsError::Transport(
                        format!(
                            "{program} {action} {fqdn} did not finish within {:?} and was killed",
                            self.settings.timeout
                        )
                        .into(),
                    ))
                }
            };
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !stdout.trim().is_empty() {
            debug!(program, action, output = %stdout.trim(), "DNS program output");
        }
        if output.status.success() {
            return Ok(());
        }
        let status = match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => "a signal".to_owned(),
        };
        let stderr = tail(&String::from_utf8_lossy(&output.stderr));
        let text = if stderr.is_empty() {
            format!("{program} {action} {fqdn} ended with {status} and wrote nothing to stderr")
        } else {
            format!("{program} {action} {fqdn} ended with {status}: {stderr}")
        };
        // Users read this text in their orders: no account ids or tokens.
        Err(DnsError::Rejected(redact_provider_text(&text)))
    }
}

#[async_trait]
impl DnsProvider for ExecProvider {
    async fn present(&self, record: &TxtRecord) -> Result<(), DnsError> {
        self.run("present", record).await?;
        info!(name = %record.name, program = %self.settings.program.display(), "TXT value presented by the DNS program");
        Ok(())
    }

    async fn cleanup(&self, record: &TxtRecord) -> Result<(), DnsError> {
        self.run("cleanup", record).await?;
        info!(name = %record.name, program = %self.settings.program.display(), "TXT value cleaned up by the DNS program");
        Ok(())
    }
}

/// The end of a program's standard error, trimmed, at most [`STDERR_LIMIT`] bytes.
fn tail(text: &str) -> String {
    let text = text.trim();
    if text.len() <= STDERR_LIMIT {
        return text.to_owned();
    }
    let mut start = text.len() - STDERR_LIMIT;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &tempfile::TempDir, body: &str) -> PathBuf {
        let path = dir.path().join("hook.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write the script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make it executable");
        path
    }

    fn record(value: &str) -> TxtRecord {
        TxtRecord::new("_acme-challenge.Example.com", value)
    }

    #[tokio::test]
    async fn arguments_follow_the_lego_convention_and_reach_no_shell() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let log = dir.path().join("calls");
        let program = script(
            &dir,
            &format!(
                "for a in \"$@\"; do printf '[%s]' \"$a\" >> {}; done; echo >> {}",
                log.display(),
                log.display()
            ),
        );
        let provider = ExecProvider::new(ExecSettings::new(program));
        // A value a shell would expand if one were in between.
        provider
            .present(&record("$(touch pwned);`id`"))
            .await
            .expect("present runs the program");
        provider
            .cleanup(&record("v2"))
            .await
            .expect("cleanup runs the program");
        let calls = std::fs::read_to_string(&log).expect("the program ran");
        assert_eq!(
            calls,
            "[present][_acme-challenge.example.com.][$(touch pwned);`id`]\n\
             [cleanup][_acme-challenge.example.com.][v2]\n"
        );
        assert!(!dir.path().join("pwned").exists() && !std::path::Path::new("pwned").exists());
    }

    #[tokio::test]
    async fn failures_carry_the_exit_status_and_stderr() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let program = script(&dir, "echo 'zone example.com is locked' >&2; exit 3");
        let err = ExecProvider::new(ExecSettings::new(program))
            .present(&record("v"))
            .await
            .expect_err("a non-zero exit fails");
        let DnsError::Rejected(text) = &err else {
            panic!("expected Rejected, got {err:?}");
        };
        assert!(
            text.contains("exit status 3") && text.contains("zone example.com is locked"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_program_over_its_time_is_killed() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let program = script(&dir, "sleep 30");
        let mut settings = ExecSettings::new(program);
        settings.timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let err = ExecProvider::new(settings)
            .present(&record("v"))
            .await
            .expect_err("the limit is enforced");
        assert!(matches!(err, DnsError::Transport(_)), "{err:?}");
        assert!(err.to_string().contains("killed"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_missing_program_is_a_refusal_naming_it() {
        let err = ExecProvider::new(ExecSettings::new("/nonexistent/dns-hook"))
            .present(&record("v"))
            .await
            .expect_err("nothing to run");
        assert!(
            matches!(&err, DnsError::Rejected(text) if text.contains("/nonexistent/dns-hook")),
            "{err:?}"
        );
    }

    #[test]
    fn long_stderr_keeps_its_end() {
        let text = format!("{}END", "x".repeat(5000));
        let kept = tail(&text);
        assert!(kept.ends_with("END") && kept.len() <= STDERR_LIMIT + 3);
    }
}
