//! Observability and deployment: the deploy/ files checked with what runs here (promtool, YAML
//! and JSON parsing, the mall's own configuration loader), a real Prometheus scraping a real
//! mall, and traces received over OTLP/HTTP by a receiver inside the test.

#[allow(dead_code, unused_macros, unused_imports)]
#[macro_use]
#[path = "../e2e/harness.rs"]
mod harness;

mod deploy_files;
mod prometheus;
mod promql;
mod shop;
mod traces;
