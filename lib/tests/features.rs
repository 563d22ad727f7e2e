//! The facade's feature flags keep out what an embedder does not use: with
//! `--no-default-features --features sqlite,rfc2136` neither the AWS SDK nor warp is in
//! the normal dependency graph. Read from `cargo tree` (which compiles nothing), so CI
//! checks it without a second build.

use std::path::Path;
use std::process::Command;

/// The normal dependencies of the facade with these cargo arguments, one package name
/// per line.
fn tree(args: &[&str]) -> Vec<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let output = Command::new(&cargo)
        .args(["tree", "-p", "acmeport", "-e", "normal", "--offline"])
        .args(["--prefix", "none", "--format", "{p}"])
        .arg("--manifest-path")
        .arg(&manifest)
        .args(args)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo tree {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(ToOwned::to_owned)
        .collect()
}

fn has(packages: &[String], name: &str) -> bool {
    packages.iter().any(|p| p == name)
}

#[test]
fn sqlite_and_rfc2136_alone_pull_neither_the_aws_sdk_nor_warp() {
    let packages = tree(&["--no-default-features", "--features", "sqlite,rfc2136"]);
    assert!(
        has(&packages, "acmeport-rfc2136") && has(&packages, "acmeport-store"),
        "the chosen features are in the graph: {packages:?}"
    );
    for absent in [
        "aws-sdk-route53",
        "aws-config",
        "acmeport-route53",
        "warp",
        "acmeport-http",
        "acmeport-cloudflare",
        "sqlx-postgres",
    ] {
        assert!(
            !has(&packages, absent),
            "`{absent}` is in the graph of --no-default-features --features sqlite,rfc2136"
        );
    }
}

#[test]
fn the_default_features_bring_every_provider_and_the_api() {
    let packages = tree(&[]);
    for present in [
        "aws-sdk-route53",
        "warp",
        "acmeport-cloudflare",
        "sqlx-postgres",
    ] {
        assert!(
            has(&packages, present),
            "`{present}` is missing from the default features' graph"
        );
    }
}

/// The reduced feature set compiles (type-checked with `cargo check`, which shares the
/// dependencies' build scripts with the test build), and what it compiles holds neither
/// the AWS SDK nor warp.
#[test]
fn sqlite_and_rfc2136_alone_compile_without_the_aws_sdk_or_warp() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let output = Command::new(&cargo)
        .args(["check", "-p", "acmeport", "--lib", "--offline", "--quiet"])
        .args(["--no-default-features", "--features", "sqlite,rfc2136"])
        .args(["--message-format", "json"])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo check --no-default-features --features sqlite,rfc2136 failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        stdout
            .lines()
            .filter(|l| l.contains("\"compiler-message\""))
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Every unit the check went through (built now or fresh from an earlier run).
    let compiled: Vec<String> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter_map(|m| m["target"]["name"].as_str().map(ToOwned::to_owned))
        .collect();
    assert!(
        compiled.iter().any(|n| n == "acmeport"),
        "the facade itself was checked: {compiled:?}"
    );
    for absent in ["aws_sdk_route53", "aws_config", "warp", "acmeport_http"] {
        assert!(
            !compiled.iter().any(|n| n == absent),
            "`{absent}` was compiled for --no-default-features --features sqlite,rfc2136"
        );
    }
}
