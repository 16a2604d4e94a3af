//! Observability and deployment: the deploy/ files checked with what runs here (promtool, YAML
//! and JSON parsing, the mall's own configuration loader), a real Prometheus scraping a real
//! mall, and traces received over OTLP/HTTP by a receiver inside the test.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test, with its reason"
)]

#[expect(
    dead_code,
    unused_macros,
    reason = "the e2e harness, shared: this suite uses part of it"
)]
#[macro_use]
#[path = "../e2e/harness.rs"]
mod harness;

mod deploy_files;
mod prometheus;
mod promql;
mod shop;
mod traces;
