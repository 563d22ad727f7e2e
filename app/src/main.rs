//! The `acmeport` binary.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    acmeport::cli::run(acmeport::cli::Cli::parse()).await
}
