//! acmeport-http.

pub mod challenge;
