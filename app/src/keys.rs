//! `acmeport keys rotate`: a new master key, every stored secret re-sealed under it, and
//! the old keys retired once nothing needs them.
//!
//! Each step leaves a working installation if the process dies after it:
//! 1. the key file gets a new key in front of the old ones (written to a temporary file
//!    and renamed): from now on every key needed to read the database is in the file;
//! 2. every secret not sealed with the new key is re-sealed, row by row (a crash leaves
//!    some rows under the new key and some under the old ones, all readable);
//! 3. a second pass checks that nothing is left under an old key (something still
//!    writing with an old key, such as an instance that was not stopped, shows up here and
//!    stops the rotation before any key is removed);
//! 4. the key file is rewritten with the new key only.
//!
//! Running it again after a crash adds one more key and finishes the job. With keys in
//! the configuration (`keys.encryption_keys`) the command cannot edit them: it re-seals
//! under the first configured key and names the keys that may then be removed.

use crate::config::{Config, ConfigError};
use crate::error::StartError;
use crate::wiring;
use acmeport_store::{KeyCipher, ResealReport, Store};

/// Rotates the master key; see the module documentation.
///
/// # Errors
///
/// [`StartError::Config`] for a key file that is missing or unusable, or a single
/// configured key; [`StartError::Storage`] when the database fails, a secret no key opens
/// or a writer still using an old key stops the rotation (the old keys are kept then).
pub async fn rotate(config: &Config) -> Result<(), StartError> {
    if !config.keys.encryption_keys.is_empty() {
        return rotate_configured(config).await;
    }
    let path = config.key_file();
    if !path.exists() {
        return Err(ConfigError::invalid(
            "keys.key_file",
            format!(
                "{} does not exist: there is no key to rotate yet",
                path.display()
            ),
        )
        .into());
    }
    let cipher =
        KeyCipher::add_key_to_file(&path).map_err(|e| ConfigError::invalid("keys.key_file", e))?;
    let ids = cipher.key_ids();
    eprintln!(
        "acmeport: new master key {} put in front of {} in {}",
        ids[0],
        ids[1..].join(", "),
        path.display()
    );
    let store = reseal_everything(config).await?;
    store.close().await.ok();
    KeyCipher::retire_old_keys_in_file(&path, &ids[0])
        .map_err(|e| ConfigError::invalid("keys.key_file", e))?;
    eprintln!(
        "acmeport: removed the old keys {} from {}; keep a backup of the new one",
        ids[1..].join(", "),
        path.display()
    );
    Ok(())
}

/// Keys in the configuration: re-seal under the first, name the others.
async fn rotate_configured(config: &Config) -> Result<(), StartError> {
    let ids = wiring::key_cipher(config)?.key_ids();
    if ids.len() < 2 {
        return Err(ConfigError::invalid(
            "keys.encryption_keys",
            "holds one key: put a new one (`openssl rand -base64 32`) in front of it, \
             then run `acmeport keys rotate` again",
        )
        .into());
    }
    let store = reseal_everything(config).await?;
    store.close().await.ok();
    eprintln!(
        "acmeport: nothing uses the keys {} any more: remove them from keys.encryption_keys",
        ids[1..].join(", ")
    );
    Ok(())
}

/// Opens (and migrates) the store with the configured keys and re-seals every secret
/// under the first one, then checks in a second pass that nothing is left.
async fn reseal_everything(config: &Config) -> Result<Store, StartError> {
    let store = wiring::wire(config, wiring::Dns::None, true).await?.store;
    let first = reseal_pass(&store).await?;
    eprintln!(
        "acmeport: re-sealed {} secrets ({} already current)",
        first.resealed, first.unchanged
    );
    let second = reseal_pass(&store).await?;
    if second.resealed > 0 {
        return Err(stopped(format!(
            "{} secrets were written with an old key while re-sealing: stop every \
             acmeport instance, then run `acmeport keys rotate` again",
            second.resealed
        )));
    }
    Ok(store)
}

async fn reseal_pass(store: &Store) -> Result<ResealReport, StartError> {
    let report = store.reseal_all().await.map_err(|e| StartError::Storage {
        what: "cannot re-seal the stored secrets".into(),
        source: Box::new(e),
    })?;
    if report.unreadable.is_empty() {
        Ok(report)
    } else {
        let shown: Vec<_> = report.unreadable.iter().take(10).cloned().collect();
        Err(stopped(format!(
            "no configured key opens {} secrets ({}); the old keys are kept",
            report.unreadable.len(),
            shown.join(", ")
        )))
    }
}

fn stopped(reason: String) -> StartError {
    StartError::Storage {
        what: "key rotation stopped".into(),
        source: reason.into(),
    }
}
