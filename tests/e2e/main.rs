//! End-to-end tests against real peers.

mod harness;
mod storage;
