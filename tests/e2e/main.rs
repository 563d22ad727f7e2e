//! End-to-end tests against real peers.

mod acme_client;
mod api;
mod crash;
mod dns01;
mod dns_providers;
mod harness;
mod issuance;
mod lifecycle;
mod routing;
mod storage;
