//! Shared helpers of the end-to-end tests: real peers started per test.

pub mod postgres;
