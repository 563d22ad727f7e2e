//! acmeport-rfc2136.
