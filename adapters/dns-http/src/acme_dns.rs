//! acme-dns (<https://github.com/joohoi/acme-dns>) as a [`DnsProvider`].
//!
//! acme-dns serves the TXT records of one subdomain per account. The usual set-up is a
//! CNAME from `_acme-challenge.<name>` to the account's `fulldomain`, made once; acmeport
//! then follows that CNAME (delegated validation) and hands this provider the
//! `fulldomain` name, or `_acme-challenge.<name>` while the CNAME is missing.
//!
//! - The first time a name is seen, an account is registered (`POST /register`), stored,
//!   and `present` fails with the CNAME to create, as lego does: nothing can validate
//!   before that record exists.
//! - Later, `present` sends `POST /update` with the stored credentials
//!   (`X-Api-User`, `X-Api-Key`, body `{"subdomain", "txt"}`).
//! - acme-dns has no delete: it keeps the two most recent values of each subdomain, which
//!   is what a wildcard and its apex need, and older values roll out. `cleanup` therefore
//!   sends nothing.
//!
//! Credentials are kept in a JSON file in lego's format (`{"<name>": {"username",
//! "password", "fulldomain", "subdomain", "allowfrom"}}`, keyed by the name without
//! `_acme-challenge.`), written with mode 0600, so a file lego created can be reused.

use crate::http::{self, SettingsError};
use acmeport_domain::ports::{DnsError, DnsProvider};
use acmeport_domain::{normalize_name, TxtRecord};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::Mutex;
use tracing::{debug, info};
use url::Url;

const PREFIX: &str = "_acme-challenge.";

/// Where acme-dns is and where credentials are kept.
#[derive(Debug, Clone)]
pub struct AcmeDnsSettings {
    /// The acme-dns API base (`https://auth.acme-dns.io`).
    pub api_url: String,
    /// The JSON file holding the registered accounts (lego's format).
    pub storage_path: PathBuf,
    /// Networks allowed to update new accounts (CIDR), sent at registration.
    pub allow_from: Vec<String>,
    /// Limit for one request.
    pub timeout: Duration,
}

impl AcmeDnsSettings {
    /// Settings with the defaults: no `allowfrom`, 30 s per request.
    #[must_use]
    pub fn new(api_url: impl Into<String>, storage_path: impl Into<PathBuf>) -> Self {
        Self {
            api_url: api_url.into(),
            storage_path: storage_path.into(),
            allow_from: Vec::new(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// One registered acme-dns account, as stored. Its `Debug` hides the password.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AcmeDnsAccount {
    /// The account's user name (`X-Api-User`).
    pub username: String,
    /// The account's password (`X-Api-Key`).
    pub password: String,
    /// The full name of the account's TXT record, the CNAME target of `_acme-challenge.<name>`.
    pub fulldomain: String,
    /// The account's subdomain, sent with every update.
    pub subdomain: String,
    #[serde(default)]
    /// The networks allowed to update the record (empty: any).
    pub allowfrom: Vec<String>,
}

impl std::fmt::Debug for AcmeDnsAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeDnsAccount")
            .field("username", &self.username)
            .field("fulldomain", &self.fulldomain)
            .field("subdomain", &self.subdomain)
            .finish_non_exhaustive()
    }
}

/// Writes DNS-01 TXT values into acme-dns.
#[derive(Debug)]
pub struct AcmeDnsProvider {
    http: reqwest::Client,
    api: Url,
    storage_path: PathBuf,
    allow_from: Vec<String>,
    /// Serialises reads and writes of the storage file (and registration).
    storage_lock: Mutex<()>,
}

/// Which account serves a record name.
enum Lookup {
    Found(AcmeDnsAccount),
    /// No account yet for this name (without `_acme-challenge.`).
    Unregistered(String),
    /// Not an `_acme-challenge` name and no account's `fulldomain`.
    Unknown,
}

impl AcmeDnsProvider {
    /// Builds the client; nothing is sent or read yet.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] for an API URL that is not http(s).
    pub fn new(settings: AcmeDnsSettings) -> Result<Self, SettingsError> {
        let mut api = http::parse_url("api_url", &settings.api_url)?;
        if !api.path().ends_with('/') {
            let path = format!("{}/", api.path());
            api.set_path(&path);
        }
        Ok(Self {
            http: http::client(settings.timeout)?,
            api,
            storage_path: settings.storage_path,
            allow_from: settings.allow_from,
            storage_lock: Mutex::new(()),
        })
    }

    fn load(&self) -> Result<BTreeMap<String, AcmeDnsAccount>, DnsError> {
        match std::fs::read(&self.storage_path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(BTreeMap::new()),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                DnsError::Rejected(format!(
                    "acme-dns storage {} is not valid JSON: {e}",
                    self.storage_path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(DnsError::Transport(
                format!("cannot read {}: {e}", self.storage_path.display()).into(),
            )),
        }
    }

    fn save(&self, accounts: &BTreeMap<String, AcmeDnsAccount>) -> Result<(), DnsError> {
        let io = |e: std::io::Error| {
            DnsError::Transport(format!("cannot write {}: {e}", self.storage_path.display()).into())
        };
        let json =
            serde_json::to_vec_pretty(accounts).map_err(|e| DnsError::Transport(Box::new(e)))?;
        if let Some(dir) = self
            .storage_path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let temporary = temporary_path(&self.storage_path);
        write_private(&temporary, &json).map_err(io)?;
        std::fs::rename(&temporary, &self.storage_path).map_err(io)
    }

    fn lookup(accounts: &BTreeMap<String, AcmeDnsAccount>, name: &str) -> Lookup {
        if let Some(account) = accounts
            .values()
            .find(|a| normalize_name(&a.fulldomain) == name)
        {
            return Lookup::Found(account.clone());
        }
        match name.strip_prefix(PREFIX) {
            Some(domain) => match accounts.get(domain) {
                Some(account) => Lookup::Found(account.clone()),
                None => Lookup::Unregistered(domain.to_owned()),
            },
            None => Lookup::Unknown,
        }
    }

    async fn register(&self) -> Result<AcmeDnsAccount, DnsError> {
        let url = self.endpoint("register")?;
        let body = if self.allow_from.is_empty() {
            serde_json::json!({})
        } else {
            serde_json::json!({ "allowfrom": self.allow_from })
        };
        let response = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(|e| http::transport("acme-dns register", &e))?;
        if !response.status().is_success() {
            return Err(http::refusal("acme-dns register", response).await);
        }
        response
            .json()
            .await
            .map_err(|e| http::transport("acme-dns register answer", &e))
    }

    fn endpoint(&self, path: &str) -> Result<Url, DnsError> {
        self.api
            .join(path)
            .map_err(|e| DnsError::Rejected(format!("acme-dns: bad API path {path}: {e}")))
    }
}

#[async_trait]
impl DnsProvider for AcmeDnsProvider {
    async fn present(&self, record: &TxtRecord) -> Result<(), DnsError> {
        let name = record.normalized_name();
        let account = {
            let _guard = self.storage_lock.lock().await;
            let mut accounts = self.load()?;
            match Self::lookup(&accounts, &name) {
                Lookup::Found(account) => account,
                Lookup::Unknown => {
                    return Err(DnsError::ZoneNotFound(format!(
                        "{name} (neither an _acme-challenge name nor the fulldomain of an acme-dns account in {})",
                        self.storage_path.display()
                    )))
                }
                Lookup::Unregistered(domain) => {
                    let account = self.register().await?;
                    let fulldomain = normalize_name(&account.fulldomain);
                    accounts.insert(domain.clone(), account);
                    self.save(&accounts)?;
                    info!(domain, fulldomain, "registered an acme-dns account");
                    return Err(DnsError::Rejected(format!(
                        "acme-dns: registered a new account for {domain}; create the record \
                         `{PREFIX}{domain}. CNAME {fulldomain}.` in its zone, then try again"
                    )));
                }
            }
        };
        let response = self
            .http
            .post(self.endpoint("update")?)
            .header("X-Api-User", &account.username)
            .header("X-Api-Key", &account.password)
            .json(&serde_json::json!({"subdomain": account.subdomain, "txt": record.value}))
            .send()
            .await
            .map_err(|e| http::transport("acme-dns update", &e))?;
        if !response.status().is_success() {
            return Err(http::refusal("acme-dns update", response).await);
        }
        info!(name, fulldomain = %account.fulldomain, "TXT value sent to acme-dns");
        Ok(())
    }

    async fn cleanup(&self, record: &TxtRecord) -> Result<(), DnsError> {
        // acme-dns has no delete; its two most recent values per subdomain roll over.
        debug!(name = %record.name, "acme-dns keeps its last two values; nothing to remove");
        Ok(())
    }
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes a file only its owner can read: it holds acme-dns passwords.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(sub: &str) -> AcmeDnsAccount {
        AcmeDnsAccount {
            username: format!("user-{sub}"),
            password: "secret-password".to_owned(),
            fulldomain: format!("{sub}.auth.example.org"),
            subdomain: sub.to_owned(),
            allowfrom: Vec::new(),
        }
    }

    #[test]
    fn names_find_their_account_by_domain_or_fulldomain() {
        let accounts = BTreeMap::from([("example.com".to_owned(), account("abc"))]);
        assert!(matches!(
            AcmeDnsProvider::lookup(&accounts, "_acme-challenge.example.com"),
            Lookup::Found(a) if a.subdomain == "abc"
        ));
        assert!(matches!(
            AcmeDnsProvider::lookup(&accounts, "abc.auth.example.org"),
            Lookup::Found(a) if a.subdomain == "abc"
        ));
        assert!(matches!(
            AcmeDnsProvider::lookup(&accounts, "_acme-challenge.other.com"),
            Lookup::Unregistered(d) if d == "other.com"
        ));
        assert!(matches!(
            AcmeDnsProvider::lookup(&accounts, "www.other.com"),
            Lookup::Unknown
        ));
    }

    #[test]
    fn storage_round_trips_privately_and_hides_passwords() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("sub/acme-dns.json");
        let provider = AcmeDnsProvider::new(AcmeDnsSettings::new("http://127.0.0.1:1", &path))
            .expect("valid settings");
        assert!(provider.load().expect("no file is no account").is_empty());
        let accounts = BTreeMap::from([("example.com".to_owned(), account("abc"))]);
        provider.save(&accounts).expect("saved");
        assert_eq!(provider.load().expect("read back"), accounts);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{:?}", account("abc")).contains("secret-password"));
    }
}
