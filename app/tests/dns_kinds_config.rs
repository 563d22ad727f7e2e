//! Configuration of the provider kinds `exec`, `webhook`, `powerdns` and `acme-dns`: each
//! is selected by `kind`, built by the wiring, and a bad setting names its key.

use acmeport_server::config::{Config, ProviderSection};
use acmeport_server::wiring;
use std::io::Write as _;

fn load(toml: &str) -> Result<Config, acmeport_server::ConfigError> {
    let mut file = tempfile::NamedTempFile::new().expect("temporary file");
    file.write_all(toml.as_bytes()).expect("write");
    Config::load_from(Some(file.path()), &[])
}

const ALL_KINDS: &str = r#"
[dns]
default = "hook"

[dns.providers.hook]
kind = "exec"
program = "/usr/local/bin/dns-hook"
args = ["--quiet"]
timeout_secs = 20

[dns.providers.http]
kind = "webhook"
endpoint = "https://dns-api.example.com/acme"
username = "acmeport"
password = "hook-password"

[dns.providers.pdns]
kind = "powerdns"
api_url = "http://127.0.0.1:8081"
api_key = "pdns-secret-key"
zone = "example.com"

[dns.providers.acmedns]
kind = "acme-dns"
api_url = "https://auth.acme-dns.io"
allow_from = ["192.0.2.0/24"]
"#;

#[tokio::test]
async fn every_kind_is_selected_by_kind_and_built() {
    let config = load(ALL_KINDS).expect("valid configuration");
    let kinds: Vec<&str> = config
        .dns
        .providers
        .values()
        .map(ProviderSection::kind)
        .collect();
    assert_eq!(kinds, vec!["acme-dns", "exec", "webhook", "powerdns"]);
    let providers = wiring::dns_providers(&config)
        .await
        .expect("every kind builds");
    for name in ["hook", "http", "pdns", "acmedns"] {
        let name = acmeport_domain::ProviderName::parse(name).expect("name");
        assert!(providers.get(&name).is_some(), "{name} is built");
    }
    let shown = config.to_redacted_toml().expect("printable");
    assert!(
        !shown.contains("hook-password") && !shown.contains("pdns-secret-key"),
        "secrets are hidden in config check:\n{shown}"
    );
}

#[tokio::test]
async fn bad_settings_name_their_key() {
    let cases = [
        (
            "[dns]\ndefault = \"w\"\n[dns.providers.w]\nkind = \"webhook\"\n",
            "dns.providers.w.present_url",
        ),
        (
            "[dns]\ndefault = \"w\"\n[dns.providers.w]\nkind = \"webhook\"\nendpoint = \"https://x.example\"\nusername = \"u\"\n",
            "dns.providers.w.username",
        ),
        (
            "[dns]\ndefault = \"w\"\n[dns.providers.w]\nkind = \"webhook\"\nendpoint = \"https://x.example\"\nusername = \"u\"\npassword = \"p\"\nbearer_token = \"t\"\n",
            "dns.providers.w.bearer_token",
        ),
        (
            "[dns]\ndefault = \"e\"\n[dns.providers.e]\nkind = \"exec\"\nprogram = \"/bin/true\"\ntimeout_secs = 0\n",
            "dns.providers.e.timeout_secs",
        ),
        (
            "[dns]\ndefault = \"p\"\n[dns.providers.p]\nkind = \"powerdns\"\napi_url = \"ftp://x\"\napi_key = \"k\"\n",
            "dns.providers.p",
        ),
    ];
    for (toml, key) in cases {
        let config = load(toml).expect("parses");
        let err = wiring::dns_providers(&config)
            .await
            .err()
            .unwrap_or_else(|| panic!("refused: {toml}"));
        assert_eq!(err.key(), Some(key), "{err}");
    }
    let err = load(
        "[dns]\ndefault = \"x\"\n[dns.providers.x]\nkind = \"exec\"\nprogramm = \"/bin/true\"\n",
    )
    .expect_err("unknown keys are refused");
    assert!(err.to_string().contains("dns.providers.x"), "{err}");
}
