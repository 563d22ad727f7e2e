//! End-to-end tests against real peers.

mod dns_providers;
mod harness;
mod storage;
