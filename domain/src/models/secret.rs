//! Secret values: private keys, passwords, ACME credentials and the adapters' credentials,
//! redacted in `Debug`. These are the one way acmeport holds a secret: adapters take them
//! as they are, and no layer re-wraps their text in a type of its own.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps the secret text.
            #[must_use]
            pub fn new(text: impl Into<String>) -> Self {
                Self(SecretString::from(text.into()))
            }

            /// The secret text. Call only where the secret is needed, never to log it.
            #[must_use]
            pub fn expose(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(***)"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.expose() == other.expose()
            }
        }
    };
}

secret_type!(
    /// A PEM-encoded private key (certificate key or user-supplied key).
    PrivateKeyPem
);
secret_type!(
    /// The serialized credentials of an ACME account (its key and URL), opaque to the domain.
    AccountCredentials
);
secret_type!(
    /// A password as typed by a user.
    Password
);
secret_type!(
    /// A signed API token.
    ApiToken
);
secret_type!(
    /// A credential an adapter uses to reach an outside service: a DNS provider's API key
    /// or token, a webhook password, a TSIG secret (base64), an AWS secret access key.
    Secret
);

impl Password {
    /// Parses a new password: at least 8 and at most 1024 characters.
    ///
    /// # Errors
    ///
    /// Returns a reason when the password is too short or too long.
    pub fn parse_new(text: &str) -> Result<Self, &'static str> {
        let len = text.chars().count();
        if len < 8 {
            return Err("password must have at least 8 characters");
        }
        if len > 1024 {
            return Err("password must have at most 1024 characters");
        }
        Ok(Self::new(text))
    }
}

/// An External Account Binding: key id and the raw (decoded) HMAC key.
#[derive(Clone, PartialEq)]
pub struct ExternalAccountBinding {
    /// The key identifier the CA gave.
    pub kid: String,
    /// The HMAC key, base64url as the CA gave it.
    pub hmac_key: Password,
}

impl fmt::Debug for ExternalAccountBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalAccountBinding")
            .field("kid", &self.kid)
            .field("hmac_key", &"***")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let key = PrivateKeyPem::new("-----BEGIN PRIVATE KEY-----abc");
        assert_eq!(format!("{key:?}"), "PrivateKeyPem(***)");
        assert_eq!(format!("{:?}", Secret::new("api-key")), "Secret(***)");
        let eab = ExternalAccountBinding {
            kid: "kid-1".into(),
            hmac_key: Password::new("c2VjcmV0"),
        };
        let shown = format!("{eab:?}");
        assert!(
            shown.contains("kid-1") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
    }

    #[test]
    fn new_passwords_need_eight_characters() {
        assert!(Password::parse_new("short").is_err());
        assert!(Password::parse_new("long enough").is_ok());
        assert!(Password::parse_new(&"x".repeat(1025)).is_err());
    }
}
