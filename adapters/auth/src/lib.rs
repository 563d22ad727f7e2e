//! acmeport-auth.
