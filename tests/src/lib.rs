//! acmeport-tests.
