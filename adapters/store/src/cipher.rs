//! Encryption of private keys and ACME credentials at rest, with rotatable master keys.
//!
//! Every secret column holds `version (1 byte) | key id (4 bytes) | nonce (12 bytes) |
//! AES-256-GCM ciphertext and tag`. The key id is the first four bytes of the SHA-256 of
//! the master key, so a reader picks the right key at once.
//!
//! The associated data binds each secret to where it is stored. Version 2, which every
//! write uses, binds the table, the column and the row id: a ciphertext copied into
//! another column or another row does not decrypt. Version 1 bound the column only; it
//! is still read, so that rows written before version 2 keep working until the store's
//! re-sealing migration (or `acmeport keys rotate`) has rewritten them.
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

/// The format byte of ciphertexts bound to their column only (read, no longer written).
const FORMAT_V1: u8 = 1;
/// The format byte written before every ciphertext: bound to table, column and row.
const FORMAT_V2: u8 = 2;
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
        /// The key file.
        path: String,
        #[source]
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The key file may be read by group or others; names the file and its mode.
    #[error(
        "key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    KeyFileOpen {
        /// The key file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The stored value is not in a format this version reads.
    #[error("stored secret in column {0} has an unknown format")]
    Format(&'static str),
    /// No configured master key decrypts the stored value (wrong or missing key, or a
    /// ciphertext moved from another row or column); names the column and the row.
    #[error("no configured master key decrypts column {column} of row {row}")]
    Decrypt {
        /// The column of the value.
        column: &'static str,
        /// The id of the row.
        row: i64,
    },
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
        let values: Vec<SecretString> = key_lines(path)?
            .iter()
            .map(|l| SecretString::from(l.as_str().to_owned()))
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

    /// Encrypts `plaintext` for row `row` of the column `column` (`table.column`) with the
    /// first key.
    ///
    /// # Errors
    ///
    /// [`CipherError::Encrypt`] (not expected in practice).
    pub fn encrypt(
        &self,
        column: &'static str,
        row: i64,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CipherError> {
        let key = &self.keys[0];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = bound_to(column, row);
        let sealed = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| CipherError::Encrypt)?;
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.push(FORMAT_V2);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts a value stored in row `row` of the column `column`: written by
    /// [`Self::encrypt`] for that very row and column, or an older version-1 value written
    /// for that column.
    ///
    /// # Errors
    ///
    /// [`CipherError::Format`] for a value of another format, [`CipherError::Decrypt`] when
    /// no configured key opens it (a wrong key, or a value sealed for another place).
    pub fn decrypt(
        &self,
        column: &'static str,
        row: i64,
        stored: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CipherError> {
        let aad = match stored.first() {
            Some(&FORMAT_V2) => bound_to(column, row),
            Some(&FORMAT_V1) => column.as_bytes().to_vec(),
            _ => return Err(CipherError::Format(column)),
        };
        if stored.len() < HEADER_LEN {
            return Err(CipherError::Format(column));
        }
        let id = &stored[1..=KEY_ID_LEN];
        let nonce = Nonce::from_slice(&stored[1 + KEY_ID_LEN..HEADER_LEN]);
        let payload = || Payload {
            msg: &stored[HEADER_LEN..],
            aad: &aad,
        };
        // The key named by the id first, then the others (ids are only 32 bits).
        let named = self.keys.iter().filter(|k| k.id == id);
        let others = self.keys.iter().filter(|k| k.id != id);
        named
            .chain(others)
            .find_map(|k| k.cipher.decrypt(nonce, payload()).ok())
            .map(Zeroizing::new)
            .ok_or(CipherError::Decrypt { column, row })
    }

    /// True when `stored` is in the current format (bound to its row) and sealed with the
    /// writing key: nothing to re-seal.
    #[must_use]
    pub fn is_current(&self, stored: &[u8]) -> bool {
        stored.len() >= HEADER_LEN
            && stored[0] == FORMAT_V2
            && stored[1..=KEY_ID_LEN] == self.keys[0].id
    }

    /// True when `stored` is in the old format bound to its column only.
    #[must_use]
    pub fn is_column_bound_only(stored: &[u8]) -> bool {
        stored.first() == Some(&FORMAT_V1)
    }

    /// Opens `stored` (row `row` of `column`) and seals it again in the current format
    /// with the writing key.
    ///
    /// # Errors
    ///
    /// As [`Self::decrypt`] and [`Self::encrypt`].
    pub fn reseal(
        &self,
        column: &'static str,
        row: i64,
        stored: &[u8],
    ) -> Result<Vec<u8>, CipherError> {
        let plain = self.decrypt(column, row, stored)?;
        self.encrypt(column, row, &plain)
    }

    /// Encrypts a UTF-8 secret for row `row` of `column`.
    pub(crate) fn seal_str(
        &self,
        column: &'static str,
        row: i64,
        text: &str,
    ) -> Result<Vec<u8>, CipherError> {
        self.encrypt(column, row, text.as_bytes())
    }

    /// Decrypts a UTF-8 secret of row `row` of `column`.
    pub(crate) fn open_str(
        &self,
        column: &'static str,
        row: i64,
        stored: &[u8],
    ) -> Result<Zeroizing<String>, CipherError> {
        let bytes = self.decrypt(column, row, stored)?;
        String::from_utf8(bytes.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| CipherError::Format(column))
    }
}

/// The key lines of a key file (blank lines and `#` comments skipped), newest first.
fn key_lines(path: &Path) -> Result<Vec<Zeroizing<String>>, CipherError> {
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| CipherError::KeyFile {
                path: path.display().to_string(),
                source,
            })?,
        );
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| Zeroizing::new(l.to_owned()))
        .collect())
}

/// Replaces the key file at `path` with `lines` (newest first), readable by the owner
/// only. The text goes to a temporary file next to it that is synced and then renamed
/// over the old one, so a crash leaves either the old file or the new one, never a torn
/// one.
fn replace_key_file(path: &Path, lines: &[Zeroizing<String>]) -> Result<(), CipherError> {
    let file_error = |source| CipherError::KeyFile {
        path: path.display().to_string(),
        source,
    };
    let mut text = Zeroizing::new(String::from(
        "# acmeport master keys (AES-256-GCM), newest first; keep a backup\n",
    ));
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    // A leftover of an interrupted run may have any mode: start afresh.
    match std::fs::remove_file(&temporary) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(file_error(e)),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary).map_err(file_error)?;
    file.write_all(text.as_bytes()).map_err(file_error)?;
    file.sync_all().map_err(file_error)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(file_error)?;
    // The rename itself must survive a power loss too.
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(file_error)?;
    }
    Ok(())
}

impl KeyCipher {
    /// Puts a new random key in front of the keys of the key file at `path` (which must
    /// exist and be readable by its owner only) and returns the cipher over all of them:
    /// the new key writes, every old one still reads.
    ///
    /// # Errors
    ///
    /// As [`Self::from_key_file`], and [`CipherError::KeyFile`] when the file cannot be
    /// replaced.
    pub fn add_key_to_file(path: &Path) -> Result<Self, CipherError> {
        // Checks the mode and that every old line is a key.
        Self::from_key_file(path)?;
        let mut raw = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(raw.as_mut());
        let mut lines = vec![Zeroizing::new(STANDARD.encode(raw.as_ref()))];
        lines.extend(key_lines(path)?);
        replace_key_file(path, &lines)?;
        Self::from_key_file(path)
    }

    /// Rewrites the key file at `path` with its first (writing) key only, which must be
    /// the key with id `writing_key` (as [`Self::key_ids`] shows it): the file is not
    /// touched when another key has been put in front meanwhile.
    ///
    /// # Errors
    ///
    /// As [`Self::from_key_file`]; [`CipherError::KeyFile`] when the file cannot be
    /// replaced or its first key is not `writing_key`.
    pub fn retire_old_keys_in_file(path: &Path, writing_key: &str) -> Result<(), CipherError> {
        let current = Self::from_key_file(path)?;
        if current.key_ids().first().map(String::as_str) != Some(writing_key) {
            return Err(CipherError::KeyFile {
                path: path.display().to_string(),
                source: std::io::Error::other(format!(
                    "its first key is no longer {writing_key}; nothing was removed"
                )),
            });
        }
        let lines = key_lines(path)?;
        replace_key_file(path, &lines[..1])
    }
}

/// The associated data of a version-2 ciphertext: `table.column`, a zero byte, the row id
/// in decimal. The zero byte cannot occur in a column name, so no two places share it.
fn bound_to(column: &str, row: i64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(column.len() + 21);
    aad.extend_from_slice(column.as_bytes());
    aad.push(0);
    aad.extend_from_slice(row.to_string().as_bytes());
    aad
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
            .encrypt("orders.cert_key", 7, b"secret")
            .expect("encrypts");
        assert_eq!(sealed[0], FORMAT_V2);
        assert!(
            !sealed.windows(6).any(|w| w == b"secret"),
            "plaintext must not show"
        );
        let opened = cipher
            .decrypt("orders.cert_key", 7, &sealed)
            .expect("decrypts");
        assert_eq!(opened.as_slice(), b"secret");
        assert!(
            matches!(
                cipher.decrypt("orders.upload_key", 7, &sealed),
                Err(CipherError::Decrypt { .. })
            ),
            "a ciphertext moved to another column must not decrypt"
        );
        assert!(
            matches!(
                cipher.decrypt("orders.cert_key", 8, &sealed),
                Err(CipherError::Decrypt { row: 8, .. })
            ),
            "a ciphertext moved to another row must not decrypt"
        );
        assert!(
            matches!(
                cipher.decrypt("orders.cert_key", 70, &sealed),
                Err(CipherError::Decrypt { .. })
            ),
            "row 7 and row 70 must not share associated data"
        );
        assert!(cipher.is_current(&sealed));
    }

    /// A value as the previous version wrote it: bound to its column only.
    fn column_bound(key: &MasterKey, column: &str, plaintext: &[u8]) -> Vec<u8> {
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
            .expect("encrypts");
        [&[FORMAT_V1][..], &key.id, &nonce, &sealed].concat()
    }

    #[test]
    fn column_bound_values_still_read_and_reseal_to_row_bound() {
        let cipher = KeyCipher::new(vec![key(1)]).expect("one key");
        let old = column_bound(&key(1), "accounts.credentials", b"creds");
        assert!(KeyCipher::is_column_bound_only(&old));
        assert!(!cipher.is_current(&old), "a version-1 value is not current");
        assert_eq!(
            cipher
                .decrypt("accounts.credentials", 3, &old)
                .expect("version 1 still reads")
                .as_slice(),
            b"creds"
        );
        let resealed = cipher
            .reseal("accounts.credentials", 3, &old)
            .expect("reseals");
        assert!(cipher.is_current(&resealed) && !KeyCipher::is_column_bound_only(&resealed));
        assert!(
            cipher
                .decrypt("accounts.credentials", 4, &resealed)
                .is_err(),
            "once re-sealed, the value is bound to its row"
        );
        assert_eq!(
            cipher
                .decrypt("accounts.credentials", 3, &resealed)
                .expect("reads")
                .as_slice(),
            b"creds"
        );
    }

    #[test]
    fn unknown_formats_are_refused() {
        let cipher = KeyCipher::new(vec![key(1)]).expect("one key");
        let mut sealed = cipher.encrypt("c", 1, b"x").expect("encrypts");
        sealed[0] = 3;
        assert!(matches!(
            cipher.decrypt("c", 1, &sealed),
            Err(CipherError::Format("c"))
        ));
        assert!(matches!(
            cipher.decrypt("c", 1, &[2, 0, 0]),
            Err(CipherError::Format("c"))
        ));
    }

    #[test]
    fn rotation_reads_old_and_writes_new() {
        let old = KeyCipher::new(vec![key(1)]).expect("old");
        let rotated = KeyCipher::new(vec![key(2), key(1)]).expect("rotated");
        let sealed_old = old.encrypt("c", 1, b"x").expect("encrypts");
        assert!(!rotated.is_current(&sealed_old), "sealed with an old key");
        assert_eq!(
            rotated
                .decrypt("c", 1, &sealed_old)
                .expect("old key still reads")
                .as_slice(),
            b"x"
        );
        let sealed_new = rotated.encrypt("c", 1, b"y").expect("encrypts");
        assert_eq!(
            &sealed_new[1..=KEY_ID_LEN],
            &key(2).id,
            "new writes use the first key"
        );
        assert!(
            old.decrypt("c", 1, &sealed_new).is_err(),
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
        let sealed = first.encrypt("c", 1, b"k").expect("encrypts");
        assert_eq!(
            second
                .decrypt("c", 1, &sealed)
                .expect("decrypts")
                .as_slice(),
            b"k"
        );
        let text = std::fs::read_to_string(&path).expect("readable");
        assert!(
            KeyCipher::from_key_file(&path).is_ok() && text.lines().count() == 2,
            "key file holds a comment and one key line"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_new_key_goes_in_front_and_the_old_ones_retire() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("master.key");
        let first = KeyCipher::load_or_create(&path).expect("creates the key file");
        let sealed = first.encrypt("c", 1, b"k").expect("encrypts");
        let both = KeyCipher::add_key_to_file(&path).expect("adds a key");
        let ids = both.key_ids();
        assert_eq!(ids.len(), 2, "new key and old key: {ids:?}");
        assert_eq!(
            ids[1],
            first.key_ids()[0],
            "the old key follows the new one"
        );
        assert!(!both.is_current(&sealed), "the new key writes now");
        assert_eq!(
            both.decrypt("c", 1, &sealed)
                .expect("old still reads")
                .as_slice(),
            b"k"
        );
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the replaced file stays 0600, was {mode:o}"
        );
        assert!(
            KeyCipher::retire_old_keys_in_file(&path, &ids[1]).is_err(),
            "only the writing key may be kept"
        );
        assert_eq!(
            KeyCipher::from_key_file(&path).expect("reads").key_ids(),
            ids
        );
        KeyCipher::retire_old_keys_in_file(&path, &ids[0]).expect("retires");
        let after = KeyCipher::from_key_file(&path).expect("reads");
        assert_eq!(after.key_ids(), vec![ids[0].clone()]);
        assert!(
            after.decrypt("c", 1, &sealed).is_err(),
            "the old key is gone"
        );
        assert!(
            !dir.path().join("master.key.tmp").exists(),
            "no temporary file is left"
        );
    }
}
