//! End-to-end tests of identity and access control: each test runs the real `mall` binary.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test, with its reason"
)]

#[macro_use]
mod harness;

mod admin;
mod auth;
mod browser;
mod cart;
mod catalog;
mod checkout;
mod cli;
mod cluster;
mod cluster_ownership;
mod cluster_registry;
mod commerce;
mod deadlines;
mod etcd_instance;
mod hardening;
mod hygiene;
mod idempotency;
mod ops;
mod orders;
mod outage;
mod payments;
mod pg_instance;
mod product_reads;
mod rbac;
mod redis_instance;
mod resilience;
mod retry;
mod storefront;
mod users;
