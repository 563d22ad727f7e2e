//! Encryption of private keys and ACME credentials at rest, with rotatable master keys.
//!
//! Every secret column holds `version (1 byte) | key id (4 bytes) | nonce (12 bytes) |
//! AES-256-GCM ciphertext and tag`. The key id is the first four bytes of the SHA-256 of
//! the master key, so a reader picks the right key at once; the column name is bound as
//! associated data, so a ciphertext copied into another column does not decrypt.
//!
//! Rotation: configure the new key first and the old ones after it. New writes use the
//! first key; reads use whichever key the stored id names (trying every key if no id
//! matches, for robustness against id collisions).

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write as _;
use std::path::Path;

/// The format byte written before every ciphertext.
const FORMAT_V1: u8 = 1;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

/// A failure loading master keys or decrypting a stored secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CipherError {
    /// No master key was configured.
    #[error("no master key configured")]
    NoKeys,
    /// A configured master key is not base64 of exactly 32 bytes; names which (by position).
    #[error("master key #{0} must be base64 of exactly 32 bytes")]
    BadKey(usize),
    /// The key file cannot be read or written.
    #[error("key file {path}: {source}")]
    KeyFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The key file may be read by group or others; names the file and its mode.
    #[error(
        "key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    KeyFileOpen { path: String, mode: u32 },
    /// The stored value is not in a format this version writes.
    #[error("stored secret in column {0} has an unknown format")]
    Format(&'static str),
    /// No configured master key decrypts the stored value (wrong or missing key).
    #[error("no configured master key decrypts column {0}")]
    Decrypt(&'static str),
    /// Encryption failed (never expected with AES-GCM and in-memory buffers).
    #[error("encryption failed")]
    Encrypt,
}

/// One 256-bit master key.
#[derive(Clone)]
pub struct MasterKey {
    id: [u8; KEY_ID_LEN],
    cipher: Aes256Gcm,
}

impl MasterKey {
    fn from_bytes(bytes: &[u8; 32]) -> Self {
        let digest = Sha256::digest(bytes);
        let mut id = [0; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Self {
            id,
            cipher: Aes256Gcm::new(bytes.into()),
        }
    }

    /// Parses base64 (standard alphabet, padding optional) of exactly 32 bytes.
    ///
    /// # Errors
    ///
    /// [`CipherError::BadKey`] (position 0; [`KeyCipher::from_base64`] names the position).
    pub fn from_base64(text: &SecretString) -> Result<Self, CipherError> {
        let trimmed = text.expose_secret().trim().trim_end_matches('=');
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(trimmed)
                .map_err(|_| CipherError::BadKey(0))?,
        );
        let array: &[u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CipherError::BadKey(0))?;
        Ok(Self::from_bytes(array))
    }

    /// The short public id of this key, hex (safe to log: it is a hash prefix).
    #[must_use]
    pub fn id_hex(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id={}, ***)", self.id_hex())
    }
}

/// Encrypts secrets with the first master key and decrypts with any of them.
#[derive(Clone, Debug)]
pub struct KeyCipher {
    keys: Vec<MasterKey>,
}

impl KeyCipher {
    /// A cipher over these keys; the first one encrypts new writes.
    ///
    /// # Errors
    ///
    /// [`CipherError::NoKeys`] when `keys` is empty.
    pub fn new(keys: Vec<MasterKey>) -> Result<Self, CipherError> {
        if keys.is_empty() {
            return Err(CipherError::NoKeys);
        }
        Ok(Self { keys })
    }

    /// A cipher from configuration values: base64 of 32 bytes each, newest first.
    ///
    /// # Errors
    ///
    /// [`CipherError::BadKey`] naming the first bad value's position, or
    /// [`CipherError::NoKeys`].
    pub fn from_base64(values: &[SecretString]) -> Result<Self, CipherError> {
        let keys = values
            .iter()
            .enumerate()
            .map(|(i, v)| MasterKey::from_base64(v).map_err(|_| CipherError::BadKey(i)))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(keys)
    }

    /// Reads a key file: one base64 key per line, newest first; blank lines and lines
    /// starting with `#` are skipped.
    ///
    /// # Errors
    ///
    /// [`CipherError::KeyFile`] when it cannot be read, [`CipherError::KeyFileOpen`] when
    /// group or others may read it, [`CipherError::BadKey`], [`CipherError::NoKeys`] when
    /// it holds no key.
    pub fn from_key_file(path: &Path) -> Result<Self, CipherError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let metadata = std::fs::metadata(path).map_err(|source| CipherError::KeyFile {
                path: path.display().to_string(),
                source,
            })?;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(CipherError::KeyFileOpen {
                    path: path.display().to_string(),
                    mode,
                });
            }
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            CipherError::KeyFile {
                path: path.display().to_string(),
                source,
            }
        })?);
        let values: Vec<SecretString> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| SecretString::from(l.to_owned()))
            .collect();
        Self::from_base64(&values)
    }

    /// Reads the key file at `path`, or on first start creates it with a new random key,
    /// readable by the owner only (0600), and logs where it is (never the key).
    ///
    /// # Errors
    ///
    /// As [`Self::from_key_file`], and [`CipherError::KeyFile`] when it cannot be created.
    pub fn load_or_create(path: &Path) -> Result<Self, CipherError> {
        let file_error = |source| CipherError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        if path.exists() {
            return Self::from_key_file(path);
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(file_error)?;
        }
        let mut raw = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(raw.as_mut());
        let line = Zeroizing::new(format!(
            "# acmeport master key (AES-256-GCM), newest first; keep a backup\n{}\n",
            STANDARD.encode(raw.as_ref())
        ));
        let mut options = std::fs::OpenOptions::new();
        // create_new: two processes starting at once must not overwrite each other's key.
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(mut file) => {
                file.write_all(line.as_bytes()).map_err(file_error)?;
                file.sync_all().map_err(file_error)?;
                let key = MasterKey::from_bytes(&raw);
                tracing::warn!(
                    path = %path.display(),
                    key_id = %key.id_hex(),
                    "generated a new master key for private keys at rest; back this file up"
                );
                Self::new(vec![key])
            }
            // Another process created it between our check and our open: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::from_key_file(path),
            Err(e) => Err(file_error(e)),
        }
    }

    /// The ids of the configured keys, the writing key first (safe to log).
    #[must_use]
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(MasterKey::id_hex).collect()
    }

    /// Encrypts `plaintext` for the column `column` with the first key.
    ///
    /// # Errors
    ///
    /// [`CipherError::Encrypt`] (not expected in practice).
    pub fn encrypt(&self, column: &'static str, plaintext: &[u8]) -> Result<Vec<u8>, CipherError> {
        let key = &self.keys[0];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: column.as_bytes(),
                },
            )
            .map_err(|_| CipherError::Encrypt)?;
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts a value written by [`Self::encrypt`] for the same column.
    ///
    /// # Errors
    ///
    /// [`CipherError::Format`] for a value of another format, [`CipherError::Decrypt`] when
    /// no configured key opens it.
    pub fn decrypt(
        &self,
        column: &'static str,
        stored: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CipherError> {
        if stored.len() < HEADER_LEN || stored[0] != FORMAT_V1 {
            return Err(CipherError::Format(column));
        }
        let id = &stored[1..=KEY_ID_LEN];
        let nonce = Nonce::from_slice(&stored[1 + KEY_ID_LEN..HEADER_LEN]);
        let payload = || Payload {
            msg: &stored[HEADER_LEN..],
            aad: column.as_bytes(),
        };
        // The key named by the id first, then the others (ids are only 32 bits).
        let named = self.keys.iter().filter(|k| k.id == id);
        let others = self.keys.iter().filter(|k| k.id != id);
        named
            .chain(others)
            .find_map(|k| k.cipher.decrypt(nonce, payload()).ok())
            .map(Zeroizing::new)
            .ok_or(CipherError::Decrypt(column))
    }

    /// Encrypts a UTF-8 secret.
    pub(crate) fn seal_str(
        &self,
        column: &'static str,
        text: &str,
    ) -> Result<Vec<u8>, CipherError> {
        self.encrypt(column, text.as_bytes())
    }

    /// Decrypts a UTF-8 secret.
    pub(crate) fn open_str(
        &self,
        column: &'static str,
        stored: &[u8],
    ) -> Result<Zeroizing<String>, CipherError> {
        let bytes = self.decrypt(column, stored)?;
        String::from_utf8(bytes.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| CipherError::Format(column))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes(&[byte; 32])
    }

    #[test]
    fn round_trip_and_column_binding() {
        let cipher = KeyCipher::new(vec![key(1)]).expect("one key");
        let sealed = cipher
            .encrypt("orders.cert_key", b"secret")
            .expect("encrypts");
        assert_eq!(sealed[0], FORMAT_V1);
        assert!(
            !sealed.windows(6).any(|w| w == b"secret"),
            "plaintext must not show"
        );
        let opened = cipher
            .decrypt("orders.cert_key", &sealed)
            .expect("decrypts");
        assert_eq!(opened.as_slice(), b"secret");
        assert!(
            matches!(
                cipher.decrypt("accounts.credentials", &sealed),
                Err(CipherError::Decrypt(_))
            ),
            "a ciphertext moved to another column must not decrypt"
        );
    }

    #[test]
    fn rotation_reads_old_and_writes_new() {
        let old = KeyCipher::new(vec![key(1)]).expect("old");
        let rotated = KeyCipher::new(vec![key(2), key(1)]).expect("rotated");
        let sealed_old = old.encrypt("c", b"x").expect("encrypts");
        assert_eq!(
            rotated
                .decrypt("c", &sealed_old)
                .expect("old key still reads")
                .as_slice(),
            b"x"
        );
        let sealed_new = rotated.encrypt("c", b"y").expect("encrypts");
        assert_eq!(
            &sealed_new[1..=KEY_ID_LEN],
            &key(2).id,
            "new writes use the first key"
        );
        assert!(
            old.decrypt("c", &sealed_new).is_err(),
            "the old key alone cannot read new writes"
        );
    }

    #[test]
    fn bad_config_values_are_named_by_position() {
        let good = SecretString::from(STANDARD.encode([7u8; 32]));
        let short = SecretString::from(STANDARD.encode([7u8; 16]));
        assert!(KeyCipher::from_base64(std::slice::from_ref(&good)).is_ok());
        assert!(matches!(
            KeyCipher::from_base64(&[good, short]),
            Err(CipherError::BadKey(1))
        ));
        assert!(matches!(
            KeyCipher::from_base64(&[]),
            Err(CipherError::NoKeys)
        ));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let cipher = KeyCipher::new(vec![key(3)]).expect("key");
        let shown = format!("{cipher:?}");
        assert!(
            shown.contains("***") && shown.contains(&key(3).id_hex()),
            "{shown}"
        );
    }

    #[cfg(unix)]
    #[cfg(unix)]
    #[test]
    fn a_key_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("master.key");
        let first = KeyCipher::load_or_create(&path).expect("created");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = KeyCipher::from_key_file(&path).expect_err("group and others may read it");
        let text = err.to_string();
        assert!(
            text.contains("readable by group or others (mode 644)"),
            "{text}"
        );
        assert!(text.contains("chmod 600"), "{text}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let again = KeyCipher::load_or_create(&path).expect("owner only again");
        assert_eq!(again.key_ids(), first.key_ids());
    }

    #[test]
    fn key_file_is_created_once_with_owner_only_permissions() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub").join("master.key");
        let first = KeyCipher::load_or_create(&path).expect("creates the key file");
        let mode = std::fs::metadata(&path)
            .expect("file exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "key file must be 0600, was {mode:o}");
        let second = KeyCipher::load_or_create(&path).expect("reads the key file");
        assert_eq!(
            first.key_ids(),
            second.key_ids(),
            "a second start must reuse the key"
        );
        let sealed = first.encrypt("c", b"k").expect("encrypts");
        assert_eq!(
            second.decrypt("c", &sealed).expect("decrypts").as_slice(),
            b"k"
        );
        let text = std::fs::read_to_string(&path).expect("readable");
        assert!(
            KeyCipher::from_key_file(&path).is_ok() && text.lines().count() == 2,
            "key file holds a comment and one key line"
        );
    }
}
