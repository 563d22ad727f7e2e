//! End-to-end tests against real peers.

mod acme_client;
mod api;
mod ari;
mod contract;
mod crash;
mod dns01;
mod dns_kinds;
mod dns_providers;
mod embedding;
mod faults;
mod harness;
mod issuance;
mod lifecycle;
mod renewal;
mod routing;
mod storage;
