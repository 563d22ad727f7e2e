//! acmeport-route53.
