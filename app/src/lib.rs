//! acmeport.
