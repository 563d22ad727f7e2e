//! acmeport-cloudflare.
