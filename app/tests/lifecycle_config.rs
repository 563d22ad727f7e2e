//! The `[lifecycle]`, `[[webhooks]]` and `[metrics]` sections: values with rules name
//! their key, secrets never print, and a valid configuration gives the domain settings.

use acmeport_server::config::{Config, ConfigError};
use std::io::Write as _;
use std::time::Duration;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn load(text: &str) -> Result<Config, ConfigError> {
    let mut f = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    Config::load_from(Some(f.path()), &[])
}

#[track_caller]
fn fails_naming(text: &str, key: &str) {
    let err = load(text).expect_err("the configuration must be refused");
    assert_eq!(err.key(), Some(key), "wrong key named in: {err}");
}

#[test]
fn bad_lifecycle_webhook_and_metrics_values_name_the_key() {
    fails_naming(
        "[lifecycle]\nexpiry_warning_days = [7, 0]\n",
        "lifecycle.expiry_warning_days",
    );
    fails_naming(
        "[lifecycle.delivery]\nmax_attempts = 0\n",
        "lifecycle.delivery.max_attempts",
    );
    fails_naming(
        "[lifecycle.delivery]\nbackoff_secs = 0\n",
        "lifecycle.delivery.backoff_secs",
    );
    fails_naming(
        &format!("[[webhooks]]\nurl = \"ftp://hooks.example\"\nsecret = \"{SECRET}\"\n"),
        "webhooks[0].url",
    );
    fails_naming(
        "[[webhooks]]\nurl = \"https://hooks.example/a\"\nsecret = \"not-whsec\"\n",
        "webhooks[0].secret",
    );
    fails_naming(
        &format!(
            "[[webhooks]]\nurl = \"https://hooks.example/a\"\nsecret = \"{SECRET}\"\nevents = [\"order.done\"]\n"
        ),
        "webhooks[0].events",
    );
    fails_naming(
        &format!(
            "[[webhooks]]\nurl = \"https://hooks.example/a\"\nsecret = \"{SECRET}\"\n\
             [[webhooks]]\nurl = \"https://hooks.example/a\"\nsecret = \"{SECRET}\"\n"
        ),
        "webhooks[1].url",
    );
    fails_naming("[metrics]\ntoken = \"short\"\n", "metrics.token");
    fails_naming("[metrics]\nlisten = \"nowhere\"\n", "metrics.listen");
}

#[test]
fn a_valid_configuration_gives_the_settings_and_hides_the_secrets() {
    let config = load(&format!(
        r#"
        [lifecycle]
        expiry_warning_days = [30, 3]
        [lifecycle.delivery]
        max_attempts = 4
        backoff_secs = 2
        max_backoff_secs = 60
        [[webhooks]]
        url = "https://hooks.example/a"
        secret = "{SECRET}"
        events = ["order.valid", "certificate.revoked"]
        [metrics]
        token = "metrics-token-0123456789"
        listen = "127.0.0.1:0"
        "#
    ))
    .expect("valid");
    let settings = config.lifecycle_settings().expect("valid");
    assert_eq!(settings.expiry_warning_days, vec![30, 3]);
    assert_eq!(settings.delivery.max_attempts, 4);
    assert_eq!(settings.delivery.backoff, Duration::from_secs(2));
    assert_eq!(settings.delivery.max_backoff, Duration::from_secs(60));
    let endpoints = config.webhook_endpoints().expect("valid");
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0].events.as_ref().map(Vec::len), Some(2));

    let shown = config.to_redacted_toml().expect("printable");
    let debug = format!("{config:?}");
    for secret in [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "metrics-token-0123456789",
    ] {
        assert!(!shown.contains(secret), "`{secret}` printed:\n{shown}");
        assert!(!debug.contains(secret), "`{secret}` in Debug output");
    }
}
