//! acmeport-http.
