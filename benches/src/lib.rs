//! acmeport-benches.
