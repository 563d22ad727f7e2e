//! acmeport-dns-check.
