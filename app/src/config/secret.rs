//! A secret configuration value: readable where it is used, `***` everywhere it is shown
//! (`Debug`, and the `Serialize` that `config check` prints). It holds the domain's
//! [`acmeport_domain::Secret`], which the adapters take as it is.

use secrecy::SecretString;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A password, API token, TSIG secret or key from configuration: the domain's secret,
/// read from and shown in configuration.
#[derive(Clone)]
pub struct Secret(acmeport_domain::Secret);

impl Secret {
    /// Wraps a secret text.
    #[must_use]
    pub fn new(text: impl Into<String>) -> Self {
        Self(acmeport_domain::Secret::new(text))
    }

    /// The secret text. Call only where the secret is used, never to show it.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The secret as the adapters take it.
    #[must_use]
    pub fn secret(&self) -> acmeport_domain::Secret {
        self.0.clone()
    }

    /// The secret as `secrecy`'s type, for the master keys of the store's cipher and the
    /// metrics token of the HTTP adapter, which still take one.
    #[must_use]
    pub fn to_secret_string(&self) -> SecretString {
        SecretString::from(self.expose().to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;

        impl Visitor<'_> for SecretVisitor {
            type Value = Secret;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret string")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::new(v))
            }

            // An environment override made of digits arrives as a number.
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }
        }

        deserializer.deserialize_any(SecretVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show() {
        let s = Secret::new("hunter2-hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(serde_json::to_string(&s).expect("serializes"), "\"***\"");
        assert_eq!(s.expose(), "hunter2-hunter2");
    }
}
