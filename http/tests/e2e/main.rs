//! End-to-end tests of identity and access control: each test runs the real `mall` binary.

#[macro_use]
mod harness;

mod admin;
mod auth;
mod cart;
mod catalog;
mod cli;
mod cluster;
mod hygiene;
mod ops;
mod rbac;
mod users;
