//! Request middleware, outermost first: `observe` (request id, span, metrics, access log, error
//! shape), then `access` (IP blacklist, authentication, authorization).

pub mod access;
pub mod observe;
