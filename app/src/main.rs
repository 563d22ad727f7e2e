//! The `acmeport` binary.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    acmeport_server::cli::run(acmeport_server::cli::Cli::parse()).await
}
