//! Request middleware, outermost first: `observe` (request id, span, metrics, access log, error
//! shape), `access::blacklist` (client networks refused), then, on each route once the router
//! found it, `access::access` (authentication, rate limits, authorization).

pub mod access;
pub mod observe;
pub mod write_gate;
