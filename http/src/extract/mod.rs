//! Extractors and their error handling: the caller, JSON bodies, query strings.

pub mod body;
pub mod caller;

pub use body::{
    Json, json_config, optional_json, path_config, payload_config, query_config, required_json,
};
pub use caller::Caller;
