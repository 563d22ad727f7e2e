//! `KeySpec`: the kind of private key generated for a certificate.

use std::fmt;
use std::str::FromStr;

/// The algorithm and size of a generated certificate key. RSA 2048 by default, as the
/// original service generated "an RSA private key".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeySpec {
    #[default]
    /// RSA, 2048 bits (the default).
    Rsa2048,
    /// RSA, 3072 bits.
    Rsa3072,
    /// RSA, 4096 bits.
    Rsa4096,
    /// ECDSA on P-256.
    EcdsaP256,
    /// ECDSA on P-384.
    EcdsaP384,
}

/// The text is not a known key type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown key type `{0}`: expected one of rsa2048, rsa3072, rsa4096, ecdsa-p256, ecdsa-p384"
)]
pub struct KeySpecError(pub String);

impl KeySpec {
    /// Every supported key type.
    pub const ALL: [Self; 5] = [
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
        Self::EcdsaP256,
        Self::EcdsaP384,
    ];

    /// The canonical name, as accepted by [`FromStr`].
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa2048 => "rsa2048",
            Self::Rsa3072 => "rsa3072",
            Self::Rsa4096 => "rsa4096",
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
        }
    }
}

impl FromStr for KeySpec {
    type Err = KeySpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace(['_', ' '], "-");
        match norm.as_str() {
            "rsa" | "rsa2048" | "rsa-2048" => Ok(Self::Rsa2048),
            "rsa3072" | "rsa-3072" => Ok(Self::Rsa3072),
            "rsa4096" | "rsa-4096" => Ok(Self::Rsa4096),
            "ecdsa-p256" | "ec-p256" | "p256" | "p-256" | "ecdsa" => Ok(Self::EcdsaP256),
            "ecdsa-p384" | "ec-p384" | "p384" | "p-384" => Ok(Self::EcdsaP384),
            _ => Err(KeySpecError(s.to_owned())),
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_rsa2048_and_names_round_trip() {
        assert_eq!(KeySpec::default(), KeySpec::Rsa2048);
        for spec in KeySpec::ALL {
            assert_eq!(spec.as_str().parse::<KeySpec>(), Ok(spec));
        }
        assert_eq!("EC_P384".parse::<KeySpec>(), Ok(KeySpec::EcdsaP384));
        assert!("dsa".parse::<KeySpec>().is_err());
    }
}
