//! The HTTP transport: a paginated JSON REST endpoint as source, signed JSON batches as sink.
//! All network access goes through an [`HttpClient`] — in the plugin, the host.

mod client;
mod config;
mod error;
mod field_map;
mod position;
mod signature;
mod sink;
mod source;

pub use client::HttpClient;
pub use config::{
    Auth, FieldRule, HttpConfig, HttpMethod, Pagination, PaginationKind, DEFAULT_SIGNATURE_HEADER,
};
pub use error::HttpError;
pub use field_map::FieldMap;
pub use position::Position;
pub use signature::{hmac_hex, signature_header_value, verify};
pub use sink::HttpSink;
pub use source::{FetchedPage, HttpSource};
