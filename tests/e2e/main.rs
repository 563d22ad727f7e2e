//! End-to-end tests against real peers.

mod acme_client;
mod harness;
mod issuance;
