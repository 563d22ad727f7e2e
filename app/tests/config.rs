//! Configuration loading: defaults, file, environment overrides, validation naming the
//! key, redaction, and the sample file.

use acmeport_server::config::{Config, ConfigError, ProviderSection};
use std::io::Write as _;
use std::path::{Path, PathBuf};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

fn load(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let f = file(text);
    Config::load_from(Some(f.path()), &env(vars))
}

#[track_caller]
fn fails_naming(text: &str, vars: &[(&str, &str)], key: &str) -> String {
    let err = load(text, vars).expect_err("the configuration must be refused");
    assert_eq!(err.key(), Some(key), "wrong key named in: {err}");
    assert!(
        err.to_string().contains(key),
        "the message must name `{key}`: {err}"
    );
    err.to_string()
}

#[test]
fn defaults_need_no_file() {
    let config = Config::load_from(None, &[]).expect("defaults are valid");
    assert_eq!(config.api.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.challenge.listen.to_string(), "127.0.0.1:8081");
    assert!(config.challenge.enabled);
    assert_eq!(
        config.acme.directory,
        "https://acme-v02.api.letsencrypt.org/directory"
    );
    assert_eq!(config.dns.default, "route53");
    assert!(matches!(
        config.dns.providers.get("route53"),
        Some(ProviderSection::Route53(_))
    ));
    assert_eq!(
        config.database_url().expose(),
        "sqlite://./data/acmeport.db?mode=rwc"
    );
    assert_eq!(config.key_file(), PathBuf::from("./data/master.key"));
    assert_eq!(config.workers.count, 8);
    assert_eq!(config.auth.token_lifetime_secs, 3600);
    let url = config
        .public_url("127.0.0.1:8080".parse().expect("addr"))
        .expect("url");
    assert_eq!(url.as_str(), "http://127.0.0.1:8080");
}

#[test]
fn a_missing_named_file_is_an_error() {
    let err =
        Config::load_from(Some(Path::new("/nonexistent/acmeport.toml")), &[]).expect_err("missing");
    assert!(matches!(err, ConfigError::MissingFile(_)), "{err}");
}

#[test]
fn environment_overrides_the_file_and_ignores_foreign_variables() {
    let config = load(
        r#"
        data_dir = "/var/lib/acmeport"
        [api]
        listen = "127.0.0.1:9000"
        [workers]
        count = 4
        [dns]
        default = "bind"
        [dns.providers.bind]
        kind = "rfc2136"
        server = "127.0.0.1:53"
        key_name = "acmeport"
        secret = "c2VjcmV0"
        "#,
        &[
            ("ACMEPORT_API__LISTEN", "0.0.0.0:8443"),
            ("ACMEPORT_WORKERS__COUNT", "7"),
            ("ACMEPORT_DNS__PROVIDERS__BIND__SECRET", "12345678"),
            (
                "ACMEPORT_AUTH__TOKEN_SECRET",
                "0123456789abcdef0123456789abcdef",
            ),
            // Not configuration: the password of `user add`, a test harness's variable.
            ("ACMEPORT_PASSWORD", "whatever"),
            ("ACMEPORT_TEST_DATABASE_URL", "postgres://x"),
            ("OTHER", "1"),
        ],
    )
    .expect("valid");
    assert_eq!(config.api.listen.to_string(), "0.0.0.0:8443");
    assert_eq!(config.workers.count, 7);
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/acmeport"));
    assert_eq!(
        config.database_url().expose(),
        "sqlite:///var/lib/acmeport/acmeport.db?mode=rwc"
    );
    match &config.dns.providers["bind"] {
        ProviderSection::Rfc2136(bind) => {
            assert_eq!(bind.secret.expose(), "12345678", "digits stay a string")
        }
        other => panic!("expected rfc2136, got {other:?}"),
    }
    assert_eq!(
        config.auth.token_secret.as_ref().map(|s| s.expose().len()),
        Some(32)
    );
}

#[test]
fn unknown_keys_and_wrong_types_name_the_key() {
    let msg = fails_naming(
        "[api]\nlisten = \"127.0.0.1:1\"\nlisen = 1\n",
        &[],
        "api.lisen",
    );
    assert!(
        msg.contains("expected"),
        "the message should list the known keys: {msg}"
    );
    fails_naming("[workers]\ncount = \"many\"\n", &[], "workers.count");
    fails_naming("[api]\nlisten = \"not an address\"\n", &[], "api.listen");
    fails_naming("bogus = 1\n", &[], "bogus");
    let msg = fails_naming("", &[("ACMEPORT_WORKERS__COUNT", "lots")], "workers.count");
    assert!(
        msg.contains("ACMEPORT_WORKERS__COUNT"),
        "the variable must be named: {msg}"
    );
    fails_naming(
        "[dns.providers.x]\nkind = \"bind9\"\n",
        &[],
        "dns.providers.x.kind",
    );
    fails_naming(
        "[dns.providers.cf]\nkind = \"cloudflare\"\n",
        &[],
        "dns.providers.cf",
    );
}

#[test]
fn invalid_values_name_the_key() {
    fails_naming("[api]\npublic_url = \"ftp://x\"\n", &[], "api.public_url");
    fails_naming("[api]\nbody_limit = 0\n", &[], "api.body_limit");
    fails_naming(
        "[acme]\ndirectory = \"http://acme.example/dir\"\n",
        &[],
        "acme.directory",
    );
    fails_naming("[csr]\ncountry = \"Germany\"\n", &[], "csr.country");
    fails_naming("[csr]\nkey_type = \"dsa\"\n", &[], "csr.key_type");
    fails_naming("[dns]\ndefault = \"cloudflare\"\n", &[], "dns.default");
    fails_naming(
        "[dns.propagation]\nskip_providers = [\"nowhere\"]\n",
        &[],
        "dns.propagation.skip_providers",
    );
    fails_naming(
        "[dns.propagation]\ninterval_secs = 0\n",
        &[],
        "dns.propagation.interval_secs",
    );
    fails_naming(
        "[auth]\ntoken_secret = \"short\"\n",
        &[],
        "auth.token_secret",
    );
    fails_naming(
        "[auth]\ntoken_lifetime_secs = 0\n",
        &[],
        "auth.token_lifetime_secs",
    );
    fails_naming("[workers]\nlease_secs = 0\n", &[], "workers.lease_secs");
    fails_naming("[database]\nurl = \"mysql://x\"\n", &[], "database.url");
    fails_naming(
        "[bootstrap]\nadmin_username = \"admin\"\n",
        &[],
        "bootstrap.admin_password",
    );
    fails_naming(
        "[bootstrap]\nadmin_username = \"admin\"\nadmin_password = \"short\"\n",
        &[],
        "bootstrap.admin_password",
    );
}

#[test]
fn the_printed_configuration_hides_every_secret() {
    let config = load(
        r#"
        [database]
        url = "postgres://acmeport:db-password-1@127.0.0.1:5432/acmeport"
        [auth]
        token_secret = "token-secret-token-secret-token-secret"
        [keys]
        encryption_keys = ["bWFzdGVyLWtleS1tYXN0ZXIta2V5LW1hc3Rlci1rZXk="]
        [bootstrap]
        admin_username = "admin"
        admin_password = "admin-password-1"
        [dns]
        default = "cf"
        [dns.providers.cf]
        kind = "cloudflare"
        api_token = "cf-token-1"
        "#,
        &[],
    )
    .expect("valid");
    let shown = config.to_redacted_toml().expect("printable");
    for secret in [
        "db-password-1",
        "token-secret-token",
        "bWFzdGVy",
        "admin-password-1",
        "cf-token-1",
    ] {
        assert!(!shown.contains(secret), "`{secret}` printed:\n{shown}");
    }
    assert!(
        shown.contains("postgres://acmeport:***@127.0.0.1:5432/acmeport"),
        "{shown}"
    );
    assert!(shown.contains("\"***\""), "{shown}");
    let debug = format!("{config:?}");
    for secret in [
        "db-password-1",
        "token-secret-token",
        "admin-password-1",
        "cf-token-1",
    ] {
        assert!(!debug.contains(secret), "`{secret}` in Debug output");
    }
    shown.parse::<toml::Table>().expect("the printout is TOML");
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../acmeport.example.toml")
}

#[test]
fn the_sample_file_is_valid_and_shows_the_defaults() {
    let sample = Config::load_from(Some(&example()), &[]).expect("acmeport.example.toml is valid");
    let defaults = Config::load_from(None, &[]).expect("defaults");
    assert_eq!(
        sample.to_redacted_toml().expect("printable"),
        defaults.to_redacted_toml().expect("printable"),
        "the sample's values must be the defaults"
    );
}

#[test]
fn the_sample_file_documents_every_key() {
    let text = std::fs::read_to_string(example()).expect("sample file");
    let mut config = Config::default();
    // Optional keys are absent from a serialized default; give them values to list them.
    config.api.public_url = Some("http://x".into());
    config.database.url = Some(acmeport_server::config::DatabaseUrl::new("sqlite://x"));
    config.keys.key_file = Some("x".into());
    config.csr.organization = Some("x".into());
    config.csr.organizational_unit = Some("x".into());
    config.csr.country = Some("x".into());
    config.csr.state = Some("x".into());
    config.csr.location = Some("x".into());
    config.auth.token_secret = Some(acmeport_server::config::Secret::new("x"));
    config.bootstrap.admin_username = Some("x".into());
    config.bootstrap.admin_password = Some(acmeport_server::config::Secret::new("x"));
    config.metrics.token = Some(acmeport_server::config::Secret::new("x"));
    config.metrics.listen = Some("127.0.0.1:9090".parse().expect("address"));
    let value = toml::Value::try_from(&config).expect("serializes");
    let mut missing = Vec::new();
    collect_missing(&value, "", &text, &mut missing);
    for key in [
        "region",
        "endpoint_url",
        "access_key_id",
        "secret_access_key",
        "session_token",
        "hosted_zone_id",
        "ttl",
        "api_token",
        "zone_id",
        "base_url",
        "server",
        "key_name",
        "secret",
        "zone",
        "timeout_secs",
        "program",
        "args",
        "endpoint",
        "present_url",
        "cleanup_url",
        "username",
        "password",
        "bearer_token",
        "api_url",
        "api_key",
        "server_id",
        "storage_path",
        "allow_from",
    ] {
        if !documents(&text, key) {
            missing.push(format!("dns.providers.*.{key}"));
        }
    }
    for key in ["url", "secret", "events"] {
        if !documents(&text, key) {
            missing.push(format!("webhooks.*.{key}"));
        }
    }
    assert!(
        missing.is_empty(),
        "keys not documented in acmeport.example.toml: {missing:?}"
    );
}

fn documents(text: &str, key: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim_start_matches(['#', ' ']);
        l.starts_with(&format!("{key} =")) || l.starts_with(&format!("{key}="))
    })
}

fn collect_missing(value: &toml::Value, prefix: &str, text: &str, missing: &mut Vec<String>) {
    if let toml::Value::Table(table) = value {
        for (key, child) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            if prefix == "dns.providers" {
                continue; // instances are named by the operator; their keys are checked above
            }
            match child {
                toml::Value::Table(_) => {
                    if path != "dns.providers" && !text.contains(&format!("[{path}]")) {
                        missing.push(format!("[{path}]"));
                    }
                    collect_missing(child, &path, text, missing);
                }
                _ => {
                    if !documents(text, key) {
                        missing.push(path);
                    }
                }
            }
        }
    }
}

#[test]
fn passwords_in_database_url_queries_are_hidden() {
    let config = load(
        r#"
        [database]
        url = "postgres://acmeport@db.internal/acmeport?sslmode=require&password=query-pw-1&sslpassword=ssl-pw-2"
        "#,
        &[],
    )
    .expect("valid");
    let shown = config.to_redacted_toml().expect("printable");
    assert!(!shown.contains("query-pw-1"), "{shown}");
    assert!(!shown.contains("ssl-pw-2"), "{shown}");
    assert!(shown.contains("sslmode=require"), "{shown}");
    assert!(
        shown.contains("password=***") || shown.contains("password=%2A%2A%2A"),
        "{shown}"
    );
}

#[test]
fn authorization_and_provider_zones_are_read_and_checked() {
    let defaults = load("", &[]).expect("defaults");
    assert!(
        !defaults.authorization.allow_any_name,
        "non-admins need grants unless the operator says otherwise"
    );
    let config = load(
        r#"
        [authorization]
        allow_any_name = true
        [dns]
        default = "bind"
        [dns.providers.bind]
        kind = "rfc2136"
        server = "127.0.0.1:53"
        key_name = "k"
        secret = "c2VjcmV0"
        zones = ["Example.COM.", "xn--bcher-kva.example"]
        "#,
        &[],
    )
    .expect("valid");
    assert!(config.authorization.allow_any_name);
    let zones = config.provider_zones().expect("zones");
    assert_eq!(zones.len(), 1);
    assert_eq!(zones[0].1.names(), ["example.com", "xn--bcher-kva.example"]);
    fails_naming(
        "[dns]\ndefault = \"bind\"\n[dns.providers.bind]\nkind = \"rfc2136\"\nserver = \"127.0.0.1:53\"\nkey_name = \"k\"\nsecret = \"c2VjcmV0\"\nzones = [\"*.example.com\"]\n",
        &[],
        "dns.providers.bind.zones[0]",
    );
    fails_naming(
        "[acme]\nallowed_directories = [\"http://insecure.example/dir\"]\n",
        &[],
        "acme.allowed_directories[0]",
    );
}

#[test]
fn validation_retries_are_bounded_by_the_cas_failed_validation_limit() {
    let err = fails_naming(
        "[workers]\nvalidation_retries = 10\n",
        &[],
        "workers.validation_retries",
    );
    assert!(err.contains("at most 3"), "{err}");
    let config = load("[workers]\nvalidation_retries = 3\n", &[]).expect("3 is allowed");
    assert_eq!(config.workers.validation_retries, 3);
}
