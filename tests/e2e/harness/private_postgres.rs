//! A PostgreSQL cluster of the test's own, for tests that stop and start the server: the
//! shared server at 127.0.0.1:5432 serves other tests running at the same time, so it is
//! never restarted.
//!
//! `initdb` makes the cluster in a temporary directory (trust authentication, no fsync:
//! the data only has to outlive a restart of the server, not of the machine), and
//! `pg_ctl` starts it on a free loopback port with its socket in the same directory and
//! stops it. PostgreSQL refuses to run as root, so as root the programs run as the
//! `postgres` user that the Debian package creates. The programs are taken from the
//! newest `/usr/lib/postgresql/<version>/bin` (`ACMEPORT_TEST_PG_BIN` overrides).

use super::pebble::free_tcp_port;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A running private cluster, stopped (immediately) and removed on drop.
pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// The user and group the programs run as (`postgres` when the test runs as root).
    owner: Option<(u32, u32)>,
    dir: tempfile::TempDir,
}

impl PrivatePostgres {
    /// Creates the cluster and starts the server.
    ///
    /// # Panics
    ///
    /// When PostgreSQL is not installed, or `initdb` or the server fail; the message
    /// carries their output.
    pub async fn start() -> Self {
        let bin = pg_bin();
        let dir = tempfile::tempdir().expect("temporary directory");
        let owner = owner();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("give the cluster directory to the postgres user");
        }
        let data = dir.path().join("data");
        let cluster = Self {
            bin,
            data,
            port: free_tcp_port(),
            owner,
            dir,
        };
        let data = cluster.data.display().to_string();
        cluster
            .run(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "--no-sync",
                    "--no-locale",
                    "-E",
                    "UTF8",
                ],
            )
            .await;
        cluster.start_server().await;
        cluster
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server again after [`Self::stop`], on the same port and data.
    pub async fn start_server(&self) {
        let data = self.data.display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-o", &options, "-l", &log, "-w", "-t", "90", "start",
            ],
        )
        .await;
    }

    /// Stops the server: `fast` ends the sessions and shuts down cleanly, otherwise it
    /// stops at once, like a crash (the next start recovers from the WAL).
    pub async fn stop(&self, fast: bool) {
        let data = self.data.display().to_string();
        let mode = if fast { "fast" } else { "immediate" };
        self.run(
            "pg_ctl",
            &["-D", &data, "-m", mode, "-w", "-t", "60", "stop"],
        )
        .await;
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Runs one of the PostgreSQL programs to completion; panics with its output when it
    /// fails.
    async fn run(&self, program: &str, args: &[&str]) -> Output {
        let mut command = Command::new(self.bin.join(program));
        command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = self.owner {
            command.uid(uid).gid(gid);
        }
        let shown = format!("{program} {}", args.join(" "));
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("the program's task")
            .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
        assert!(
            output.status.success(),
            "{shown} failed ({}):\n{}{}\nserver log:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        output
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // pg_ctl finds the server through the pid file in the data directory: only this
        // cluster's server is stopped.
        let mut command = Command::new(self.bin.join("pg_ctl"));
        command
            .args([
                "-D",
                &self.data.display().to_string(),
                "-m",
                "immediate",
                "stop",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = self.owner {
            command.uid(uid).gid(gid);
        }
        let _ = command.status();
    }
}

/// The directory of `initdb`, `pg_ctl` and `postgres`.
fn pg_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("ACMEPORT_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let root = Path::new("/usr/lib/postgresql");
    let newest = std::fs::read_dir(root)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max();
    newest.map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server programs (initdb, pg_ctl) are not installed under {}: this \
             test runs a PostgreSQL server of its own (apt-get install postgresql; \
             scripts/test.sh does), or set ACMEPORT_TEST_PG_BIN",
            root.display()
        )
    })
}

/// The `postgres` user's ids when running as root (PostgreSQL refuses root), else `None`.
fn owner() -> Option<(u32, u32)> {
    let output = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&output.stdout).trim() != "0" {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let output = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("run id");
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| {
                panic!(
                    "running as root, this test needs the `postgres` user to run its own \
                     PostgreSQL server (the postgresql package creates it)"
                )
            })
    };
    Some((id("-u"), id("-g")))
}
