//! Request middleware, outermost first: `observe` (request id, span, metrics, access log, error
//! shape), `access::blacklist` (client networks refused), `owner::internal` (the cluster's
//! internal endpoint), then, on each route once the router found it, `access::access`
//! (authentication, rate limits, authorization) and either `owner::by_caller` /
//! `owner::by_path_user` (the routes of owned entities: run here or at their owner) or
//! `write_gate` (every other write: refused while the lease is in doubt).

pub mod access;
pub mod observe;
pub mod owner;
pub mod write_gate;
