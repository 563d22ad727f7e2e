//! The command line: `serve`, `migrate`, `user add`, `config check`, `dns test`,
//! `keys rotate`.

use crate::application::Application;
use crate::config::Config;
use crate::error::StartError;
use crate::telemetry;
use crate::wiring::{self, Dns};
use acmeport_domain::{Password, Username};
use clap::{Parser, Subcommand};
use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;
use std::process::ExitCode;

/// acmeport: TLS certificates from ACME certificate authorities, as a REST service.
#[derive(Debug, Parser)]
#[command(name = "acmeport", version, about)]
pub struct Cli {
    /// The configuration file [default: ./acmeport.toml if it exists].
    #[arg(
        long,
        short,
        global = true,
        env = "ACMEPORT_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API and HTTP-01 challenges and run the order workers.
    Serve,
    /// Create or update the database tables, then exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Try the DNS providers.
    Dns {
        #[command(subcommand)]
        command: DnsCommand,
    },
    /// Manage the master keys that encrypt private keys at rest.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Put a new master key first, re-seal every stored secret under it, then remove the
    /// old keys from the key file. Stop every acmeport instance first.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum DnsCommand {
    /// Write a random TXT record for `_acme-challenge.<name>` through a provider instance,
    /// wait until every authoritative nameserver serves it, and remove it.
    Test {
        /// The provider instance (a `[dns.providers.<name>]` table).
        provider: String,
        /// The domain name to test (`www.example.com`).
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user. The password is read from ACMEPORT_PASSWORD, else from standard input.
    Add {
        /// The username.
        name: String,
        /// Let the user create other users.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration and print it, secrets redacted.
    Check,
}

/// Runs a command; the exit code is 0 on success, 1 on failure, 2 for a bad
/// configuration.
pub async fn run(cli: Cli) -> ExitCode {
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("acmeport: {e}");
            return ExitCode::from(2);
        }
    };
    if !matches!(cli.command, Command::Config { .. }) {
        telemetry::init(&config.log);
    }
    let result = match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => wiring::migrate(&config).await.map(|()| {
            eprintln!("acmeport: the database is up to date");
        }),
        Command::User {
            command: UserCommand::Add { name, admin },
        } => add_user(&config, &name, admin).await,
        Command::Config {
            command: ConfigCommand::Check,
        } => check(&config),
        Command::Dns {
            command: DnsCommand::Test { provider, name },
        } => crate::dns::test(&config, &provider, &name).await,
        Command::Keys {
            command: KeysCommand::Rotate,
        } => crate::keys::rotate(&config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(StartError::Config(e)) => {
            eprintln!("acmeport: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("acmeport: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn serve(config: Config) -> Result<(), StartError> {
    let app = Application::build(config).await?;
    app.run_until_stopped().await;
    Ok(())
}

/// The new user's password: `ACMEPORT_PASSWORD`, else the first line of standard input.
fn read_password() -> Result<Password, StartError> {
    let text = match std::env::var("ACMEPORT_PASSWORD") {
        Ok(text) => text,
        Err(_) => {
            if std::io::stdin().is_terminal() {
                eprint!("Password for the new user (input is shown): ");
            }
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| StartError::Service(Box::new(e)))?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    Password::parse_new(&text).map_err(|reason| StartError::Service(reason.into()))
}

async fn add_user(config: &Config, name: &str, admin: bool) -> Result<(), StartError> {
    let username = Username::parse(name).map_err(|e| StartError::Service(Box::new(e)))?;
    let password = read_password()?;
    let wired = wiring::wire(config, Dns::None, true).await?;
    let user = wired
        .service
        .add_user(username, &password, admin)
        .await
        .map_err(|e| StartError::Service(Box::new(e)))?;
    println!(
        "created {} `{}` (id {})",
        if admin { "admin" } else { "user" },
        user.username,
        user.id
    );
    Ok(())
}

fn check(config: &Config) -> Result<(), StartError> {
    // Also build what needs no network, so that unreadable root files show up here.
    wiring::settings(config)?;
    wiring::acme_client(config)?;
    wiring::auth(config)?;
    let text = config
        .to_redacted_toml()
        .map_err(|e| StartError::Service(Box::new(e)))?;
    print!("{text}");
    eprintln!("acmeport: the configuration is valid");
    Ok(())
}
