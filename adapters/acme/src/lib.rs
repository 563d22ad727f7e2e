//! acmeport-acme.
