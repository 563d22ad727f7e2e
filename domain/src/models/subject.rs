//! The subject of a certificate signing request, and its parts.

use std::fmt;

/// Why a subject field is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    #[error("must not be empty")]
    /// Empty after trimming.
    Empty,
    #[error("must have at most 64 characters")]
    /// Over 64 characters.
    TooLong,
    #[error("must not contain control characters")]
    /// Holds control characters.
    Control,
    #[error("must be two letters (ISO 3166-1 alpha-2)")]
    /// A country that is not two letters.
    Country,
}

/// A free-text subject attribute (organization, unit, state, locality): trimmed, 1 to 64
/// characters, no control characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SubjectField(String);

impl SubjectField {
    /// Parses one attribute value.
    ///
    /// # Errors
    ///
    /// Empty, over-long or control-character values are rejected.
    pub fn parse(input: &str) -> Result<Self, SubjectError> {
        let value = input.trim();
        if value.is_empty() {
            return Err(SubjectError::Empty);
        }
        if value.chars().count() > 64 {
            return Err(SubjectError::TooLong);
        }
        if value.chars().any(char::is_control) {
            return Err(SubjectError::Control);
        }
        Ok(Self(value.to_owned()))
    }

    /// The value.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SubjectField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// A country code: two ASCII letters, upper-cased.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Parses `de`, `DE`, ...
    ///
    /// # Errors
    ///
    /// Anything but exactly two ASCII letters.
    pub fn parse(input: &str) -> Result<Self, SubjectError> {
        let bytes = input.trim().as_bytes();
        match bytes {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(SubjectError::Country),
        }
    }

    /// The two upper-case letters.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The distinguished-name parts of a CSR besides the common name. Every part is optional;
/// missing parts are taken from the account's defaults, then from configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CsrSubject {
    /// Organization (O).
    pub organization: Option<SubjectField>,
    /// Organizational unit (OU).
    pub organizational_unit: Option<SubjectField>,
    /// Country (C), ISO 3166-1 alpha-2.
    pub country: Option<CountryCode>,
    /// State or province (ST).
    pub state: Option<SubjectField>,
    /// Locality (L).
    pub locality: Option<SubjectField>,
}

impl CsrSubject {
    /// Fills each missing part from `fallback`.
    #[must_use]
    pub fn or(self, fallback: &Self) -> Self {
        Self {
            organization: self.organization.or_else(|| fallback.organization.clone()),
            organizational_unit: self
                .organizational_unit
                .or_else(|| fallback.organizational_unit.clone()),
            country: self.country.or(fallback.country),
            state: self.state.or_else(|| fallback.state.clone()),
            locality: self.locality.or_else(|| fallback.locality.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_is_two_letters_upper_cased() {
        assert_eq!(CountryCode::parse("de").expect("valid").as_str(), "DE");
        for bad in ["D", "DEU", "D1", "", "ü1"] {
            assert_eq!(CountryCode::parse(bad), Err(SubjectError::Country), "{bad}");
        }
    }

    #[test]
    fn subject_fields_are_checked() {
        assert_eq!(
            SubjectField::parse(" Acme Inc ").expect("valid").as_str(),
            "Acme Inc"
        );
        assert_eq!(SubjectField::parse("   "), Err(SubjectError::Empty));
        assert_eq!(
            SubjectField::parse(&"x".repeat(65)),
            Err(SubjectError::TooLong)
        );
        assert_eq!(SubjectField::parse("a\nb"), Err(SubjectError::Control));
    }

    #[test]
    fn subject_falls_back_field_by_field() {
        let order = CsrSubject {
            organization: Some(SubjectField::parse("Order Org").unwrap()),
            ..CsrSubject::default()
        };
        let account = CsrSubject {
            organization: Some(SubjectField::parse("Account Org").unwrap()),
            country: Some(CountryCode::parse("FR").unwrap()),
            ..CsrSubject::default()
        };
        let config = CsrSubject {
            country: Some(CountryCode::parse("DE").unwrap()),
            locality: Some(SubjectField::parse("Berlin").unwrap()),
            ..CsrSubject::default()
        };
        let merged = order.or(&account).or(&config);
        assert_eq!(merged.organization.unwrap().as_str(), "Order Org");
        assert_eq!(merged.country.unwrap().as_str(), "FR");
        assert_eq!(merged.locality.unwrap().as_str(), "Berlin");
        assert!(merged.state.is_none());
    }
}
