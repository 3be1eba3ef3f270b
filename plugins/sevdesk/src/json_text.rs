//! Exact-decimal JSON for request bodies: the shared writer of the plugin API.

pub use posbridge_plugin_api::json_text::Json;
