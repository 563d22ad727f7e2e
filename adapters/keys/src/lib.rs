//! acmeport-keys.
