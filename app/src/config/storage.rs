//! The `[database]` and `[keys]` sections: where state lives and the master keys that
//! encrypt private keys at rest.

use super::{Config, Secret};
use serde::{Deserialize, Serialize, Serializer};
use std::path::PathBuf;

/// A database URL whose password is hidden when shown.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL, with its password. Only for connecting.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`: in the user information and in query
    /// parameters that carry secrets (`password`, `sslpassword`, ...).
    #[must_use]
    pub fn redacted(&self) -> String {
        let Ok(mut url) = url::Url::parse(&self.0) else {
            return self.0.clone();
        };
        let mut changed = false;
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
            changed = true;
        }
        if url.query().is_some() {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let secret = ["password", "pass", "secret", "token"]
                        .iter()
                        .any(|word| k.to_ascii_lowercase().contains(word));
                    changed |= secret;
                    let v = if secret {
                        "***".to_owned()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        if changed {
            url.to_string()
        } else {
            self.0.clone()
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

/// Storage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSection {
    /// `sqlite://<path>?mode=rwc` or `postgres://user:password@host:port/db`; SQLite in
    /// `data_dir` by default.
    pub url: Option<DatabaseUrl>,
}

/// The master keys that encrypt private keys and ACME credentials at rest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysSection {
    /// Base64 of 32 bytes each, newest first; the first encrypts, all decrypt.
    pub encryption_keys: Vec<Secret>,
    /// Used when `encryption_keys` is empty: one key per line, newest first; created with
    /// a random key on first start. `<data_dir>/master.key` by default.
    pub key_file: Option<PathBuf>,
}

impl Config {
    /// The database URL: configured, or SQLite in `data_dir`.
    #[must_use]
    pub fn database_url(&self) -> DatabaseUrl {
        self.database.url.clone().unwrap_or_else(|| {
            DatabaseUrl::new(format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("acmeport.db").display()
            ))
        })
    }

    /// The key file used when no encryption key is configured.
    #[must_use]
    pub fn key_file(&self) -> PathBuf {
        self.keys
            .key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }
}
