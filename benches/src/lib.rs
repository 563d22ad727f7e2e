//! Benchmarks of acmeport; run with `cargo bench -p acmeport-benches`.
//!
//! They measure the domain's own cost (parsing, the order workflow over in-memory fakes),
//! which bounds how many orders one instance can drive; network and database time come on
//! top and are measured by the end-to-end tests.
