//! The DNS provider kinds beyond the first three (`exec`, `webhook`, `powerdns`,
//! `acme-dns`), built from their configuration sections, and `acmeport dns test`.

use crate::config::{
    AcmeDnsSection, Config, ConfigError, ExecSection, PowerDnsSection, WebhookDnsSection,
};
use crate::error::StartError;
use crate::wiring;
use acmeport_dns_exec::{ExecProvider, ExecSettings};
use acmeport_dns_http::{
    AcmeDnsProvider, AcmeDnsSettings, PowerDnsProvider, PowerDnsSettings, WebhookAuth,
    WebhookProvider, WebhookSettings,
};
use acmeport_domain::ports::{DnsError, DnsProvider, NameserverAnswer, PropagationChecker};
use acmeport_domain::{DomainName, ProviderName, TxtRecord};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn seconds(value: Option<u64>, key: &str, default: u64) -> Result<Duration, ConfigError> {
    match value {
        Some(0) => Err(ConfigError::invalid(
            format!("{key}.timeout_secs"),
            "must be greater than 0",
        )),
        Some(secs) => Ok(Duration::from_secs(secs)),
        None => Ok(Duration::from_secs(default)),
    }
}

/// An `exec` instance.
///
/// # Errors
///
/// A zero timeout, naming the key.
pub fn exec(section: &ExecSection, key: &str) -> Result<Arc<dyn DnsProvider>, ConfigError> {
    if section.program.as_os_str().is_empty() {
        return Err(ConfigError::invalid(
            format!("{key}.program"),
            "must name a program",
        ));
    }
    let mut settings = ExecSettings::new(section.program.clone());
    settings.args = section.args.clone();
    settings.timeout = seconds(section.timeout_secs, key, 60)?;
    Ok(Arc::new(ExecProvider::new(settings)))
}

/// A `webhook` instance.
///
/// # Errors
///
/// No URL for one of the calls, a password without user (or the reverse), Basic and
/// bearer together, or URLs that are not http(s).
pub fn webhook(
    section: &WebhookDnsSection,
    key: &str,
) -> Result<Arc<dyn DnsProvider>, ConfigError> {
    let base = section
        .endpoint
        .as_deref()
        .map(WebhookSettings::from_endpoint);
    let url = |explicit: &Option<String>, from_base: Option<String>, name: &str| {
        explicit.clone().or(from_base).ok_or_else(|| {
            ConfigError::invalid(
                format!("{key}.{name}"),
                "set `endpoint` or both `present_url` and `cleanup_url`",
            )
        })
    };
    let present_url = url(
        &section.present_url,
        base.as_ref().map(|b| b.present_url.clone()),
        "present_url",
    )?;
    let cleanup_url = url(
        &section.cleanup_url,
        base.as_ref().map(|b| b.cleanup_url.clone()),
        "cleanup_url",
    )?;
    let auth = match (&section.username, &section.password, &section.bearer_token) {
        (None, None, None) => WebhookAuth::None,
        (Some(username), Some(password), None) => WebhookAuth::Basic {
            username: username.clone(),
            password: password.secret(),
        },
        (None, None, Some(token)) => WebhookAuth::Bearer(token.secret()),
        (_, _, Some(_)) => {
            return Err(ConfigError::invalid(
                format!("{key}.bearer_token"),
                "use either username/password or bearer_token",
            ))
        }
        _ => {
            return Err(ConfigError::invalid(
                format!("{key}.username"),
                "username and password go together",
            ))
        }
    };
    let settings = WebhookSettings {
        present_url,
        cleanup_url,
        auth,
        timeout: seconds(section.timeout_secs, key, 30)?,
    };
    Ok(Arc::new(
        WebhookProvider::new(settings).map_err(|e| ConfigError::invalid(key, e))?,
    ))
}

/// A `powerdns` instance.
///
/// # Errors
///
/// A bad URL or server id, naming the key.
pub fn powerdns(section: &PowerDnsSection, key: &str) -> Result<Arc<dyn DnsProvider>, ConfigError> {
    let mut settings = PowerDnsSettings::new(section.api_url.clone(), section.api_key.secret());
    if let Some(id) = &section.server_id {
        settings.server_id = id.clone();
    }
    settings.zone = section.zone.clone();
    if let Some(ttl) = section.ttl {
        settings.ttl = ttl;
    }
    settings.timeout = seconds(section.timeout_secs, key, 30)?;
    Ok(Arc::new(
        PowerDnsProvider::new(settings).map_err(|e| ConfigError::invalid(key, e))?,
    ))
}

/// An `acme-dns` instance; its accounts file is `<data_dir>/acme-dns.json` unless set.
///
/// # Errors
///
/// A bad URL, naming the key.
pub fn acme_dns(
    section: &AcmeDnsSection,
    key: &str,
    config: &Config,
) -> Result<Arc<dyn DnsProvider>, ConfigError> {
    let storage = section
        .storage_path
        .clone()
        .unwrap_or_else(|| config.data_dir.join("acme-dns.json"));
    let mut settings = AcmeDnsSettings::new(section.api_url.clone(), storage);
    settings.allow_from = section.allow_from.clone();
    settings.timeout = seconds(section.timeout_secs, key, 30)?;
    Ok(Arc::new(
        AcmeDnsProvider::new(settings).map_err(|e| ConfigError::invalid(key, e))?,
    ))
}

// ---------------------------------------------------------------------------------------
// acmeport dns test

/// A random value shaped like a DNS-01 value (43 characters of base64url).
fn random_value() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..43)
        .map(|_| char::from(ALPHABET[usize::from(rand::random::<u8>()) % ALPHABET.len()]))
        .collect()
}

/// What failed: the stage, then the provider's error, whose text already says whether
/// the credentials, the zone, the change or the connection failed.
fn explain(action: &str, error: &DnsError) -> String {
    format!("{action} failed: {}", chain(error))
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

fn describe(answer: &NameserverAnswer) -> String {
    if answer.serves {
        return "serves the value".to_owned();
    }
    match (&answer.error, answer.values.is_empty()) {
        (Some(error), _) => format!("no answer ({error})"),
        (None, true) => "no TXT record yet".to_owned(),
        (None, false) => format!("other values only: {}", answer.values.join(", ")),
    }
}

/// `acmeport dns test <provider> <name>`: writes a random TXT value for `name` through
/// the provider instance, waits until every authoritative nameserver serves it (printing
/// each server's answer when it changes), removes it, and says what failed.
///
/// # Errors
///
/// [`StartError::Service`] naming the failed stage.
pub async fn test(config: &Config, provider: &str, name: &str) -> Result<(), StartError> {
    let fail = |text: String| StartError::Service(text.into());
    let id = ProviderName::parse(provider).map_err(|e| fail(e.to_string()))?;
    let section = config.dns.providers.get(id.as_str()).ok_or_else(|| {
        let known: Vec<&str> = config.dns.providers.keys().map(String::as_str).collect();
        fail(format!(
            "no provider `{id}` under [dns.providers]; configured: {}",
            known.join(", ")
        ))
    })?;
    let domain = DomainName::parse(name).map_err(|e| fail(format!("{name:?}: {e}")))?;
    let providers = wiring::dns_providers(config).await?;
    let dns = providers
        .get(&id)
        .ok_or_else(|| fail(format!("provider `{id}` was not built")))?;
    let checker = wiring::propagation_checker(config)?;
    let settings = config.propagation()?;
    let skip = config.unchecked_providers()?.contains(&id);

    let challenge = domain.acme_challenge_name();
    println!("provider {id} (kind {})", section.kind());
    let target = if skip {
        challenge.clone()
    } else {
        checker
            .delegated_name(&challenge)
            .await
            .map_err(|e| fail(format!("looking up {challenge} failed: {}", chain(&e))))?
    };
    if target != challenge {
        println!("{challenge} is a CNAME to {target}: the record is written there");
    }
    let record = TxtRecord::new(&target, random_value());
    println!("writing TXT {} \"{}\"", record.name, record.value);
    let started = Instant::now();
    dns.present(&record)
        .await
        .map_err(|e| fail(explain("writing the record", &e)))?;
    println!("written in {:.1} s", started.elapsed().as_secs_f64());

    let propagation = if skip {
        println!("{id} is in dns.propagation.skip_providers: not checking nameservers");
        Ok(())
    } else {
        wait_for(&checker, &record, settings.timeout, settings.interval).await
    };

    println!("removing the record");
    let cleanup = dns.cleanup(&record).await;
    match (&propagation, cleanup) {
        (Ok(()), Ok(())) => {
            println!("ok: {id} wrote, served and removed a TXT record for {domain}");
            Ok(())
        }
        (Ok(()), Err(e)) => Err(fail(explain("removing the record (it is still there)", &e))),
        (Err(text), Ok(())) => Err(fail(text.clone())),
        (Err(text), Err(e)) => Err(fail(format!(
            "{text}; and {}",
            explain("removing the record (it is still there)", &e)
        ))),
    }
}

/// Asks every authoritative nameserver until all serve the value or `timeout` passes,
/// printing each server's answer when it changes.
async fn wait_for(
    checker: &dyn PropagationChecker,
    record: &TxtRecord,
    timeout: Duration,
    interval: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let answers = checker
            .check(record)
            .await
            .map_err(|e| format!("the propagation check failed: {}", chain(&e)))?;
        let elapsed = started.elapsed().as_secs_f64();
        for answer in &answers {
            let text = describe(answer);
            if last.get(&answer.server) != Some(&text) {
                println!("  {elapsed:6.1} s  {:<40} {text}", answer.server);
                last.insert(answer.server.clone(), text);
            }
        }
        let missing: Vec<&str> = answers
            .iter()
            .filter(|a| !a.serves)
            .map(|a| a.server.as_str())
            .collect();
        if missing.is_empty() {
            println!(
                "every authoritative nameserver ({}) serves the value after {elapsed:.1} s",
                answers.len()
            );
            return Ok(());
        }
        if started.elapsed() >= timeout {
            return Err(format!(
                "the record was not visible within {} s on: {} (dns.propagation.timeout_secs)",
                timeout.as_secs(),
                missing.join(", ")
            ));
        }
        tokio::time::sleep(interval.min(timeout.saturating_sub(started.elapsed()))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values_look_like_dns01_values() {
        let a = random_value();
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(a, random_value());
    }

    #[test]
    fn failures_say_what_kind_of_failure_they_are() {
        let text = explain(
            "writing the record",
            &DnsError::Unauthorized("PowerDNS HTTP 401: Unauthorized".into()),
        );
        assert!(
            text.contains("credentials") && text.contains("401"),
            "{text}"
        );
        let text = explain("writing the record", &DnsError::ZoneNotFound("x".into()));
        assert!(text.contains("no zone"), "{text}");
    }
}
