//! Extractors and their error handling: the caller, JSON bodies, query strings, and the
//! strict checks every body and query string passes.

pub mod body;
pub mod caller;
pub mod strict;

pub use body::{Json, Query, optional_json, path_config, payload_config, required_json};
pub use caller::Caller;
