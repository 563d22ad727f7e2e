//! acmeport-store.
