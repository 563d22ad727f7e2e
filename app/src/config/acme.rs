//! The `[acme]` and `[csr]` sections: the CA, its client, and the defaults of CSRs.

use super::{Config, ConfigError, WELL_KNOWN_DIRECTORIES};
use acmeport_domain::{CountryCode, CsrSubject, DirectoryUrl, KeySpec, SubjectField};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The ACME client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeSection {
    /// The directory used when an account names none.
    pub directory: String,
    /// PEM files of extra trusted roots (a private CA, Pebble).
    pub extra_roots: Vec<PathBuf>,
    /// Also trust the public (Mozilla) roots.
    pub webpki_roots: bool,
    pub request_timeout_secs: u64,
    pub validation_timeout_secs: u64,
    pub issuance_timeout_secs: u64,
    /// The directories non-admins may register accounts at, besides `directory`.
    pub allowed_directories: Vec<String>,
    /// Hosts that may be reached although they are loopback, private or link-local (a
    /// private CA); the host of `directory` always may.
    pub allowed_private_hosts: Vec<String>,
    /// The largest answer body accepted from the CA, bytes.
    pub max_body_bytes: usize,
}

impl Default for AcmeSection {
    fn default() -> Self {
        Self {
            directory: DirectoryUrl::LETS_ENCRYPT.to_owned(),
            extra_roots: Vec::new(),
            webpki_roots: true,
            request_timeout_secs: 30,
            validation_timeout_secs: 120,
            issuance_timeout_secs: 120,
            allowed_directories: WELL_KNOWN_DIRECTORIES
                .iter()
                .map(|d| (*d).to_owned())
                .collect(),
            allowed_private_hosts: Vec::new(),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Defaults of CSRs, used when neither the order nor its account sets a field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsrSection {
    pub organization: Option<String>,
    pub organizational_unit: Option<String>,
    pub country: Option<String>,
    pub state: Option<String>,
    pub location: Option<String>,
    /// `rsa2048`, `rsa3072`, `rsa4096`, `ecdsa-p256` or `ecdsa-p384`.
    pub key_type: String,
}

impl Default for CsrSection {
    fn default() -> Self {
        Self {
            organization: None,
            organizational_unit: None,
            country: None,
            state: None,
            location: None,
            key_type: KeySpec::default().as_str().to_owned(),
        }
    }
}

impl Config {
    /// The directories non-admins may register at: the default and the allowed ones.
    ///
    /// # Errors
    ///
    /// An entry that is not an https URL, naming `acme.allowed_directories[i]`.
    pub fn allowed_directories(&self) -> Result<Vec<DirectoryUrl>, ConfigError> {
        let mut list = vec![self.default_directory()?];
        for (i, url) in self.acme.allowed_directories.iter().enumerate() {
            list.push(
                DirectoryUrl::parse(url).map_err(|e| {
                    ConfigError::invalid(format!("acme.allowed_directories[{i}]"), e)
                })?,
            );
        }
        Ok(list)
    }

    /// The default ACME directory.
    ///
    /// # Errors
    ///
    /// When `acme.directory` is not an https URL.
    pub fn default_directory(&self) -> Result<DirectoryUrl, ConfigError> {
        DirectoryUrl::parse(&self.acme.directory)
            .map_err(|e| ConfigError::invalid("acme.directory", e))
    }

    /// The CSR subject defaults.
    ///
    /// # Errors
    ///
    /// Naming the `csr.*` field that is invalid.
    pub fn csr_subject(&self) -> Result<CsrSubject, ConfigError> {
        let field = |key: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| {
                    SubjectField::parse(v)
                        .map_err(|e| ConfigError::invalid(format!("csr.{key}"), e))
                })
                .transpose()
        };
        Ok(CsrSubject {
            organization: field("organization", &self.csr.organization)?,
            organizational_unit: field("organizational_unit", &self.csr.organizational_unit)?,
            country: self
                .csr
                .country
                .as_deref()
                .map(|c| CountryCode::parse(c).map_err(|e| ConfigError::invalid("csr.country", e)))
                .transpose()?,
            state: field("state", &self.csr.state)?,
            locality: field("location", &self.csr.location)?,
        })
    }

    /// The default key type.
    ///
    /// # Errors
    ///
    /// When `csr.key_type` is unknown.
    pub fn key_spec(&self) -> Result<KeySpec, ConfigError> {
        self.csr
            .key_type
            .parse()
            .map_err(|e| ConfigError::invalid("csr.key_type", e))
    }
}
