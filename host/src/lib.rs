//! # posbridge host
//!
//! The runtime that loads connector plugins from folders and moves retail money data between
//! them: plugin loading ([`plugins`]), the capabilities plugins call back into
//! ([`http_gateway`], [`rate_limit`], [`redact`], [`runtime`]), pipelines and their runner
//! ([`pipeline`]), schedules ([`schedule`]), jobs the API starts ([`jobs`]), PSP payments
//! ([`payments`]), state stores ([`state`]), the canonical hub ([`hub`]), the webhook receiver
//! ([`webhooks`]), the HTTP API server ([`serve`]) and the CLI ([`cli`]).

pub mod cli;
pub mod conformance;
pub mod http_gateway;
pub mod hub;
pub mod jobs;
pub mod payments;
pub mod pipeline;
pub mod plugins;
pub mod rate_limit;
pub mod redact;
pub mod runtime;
pub mod schedule;
pub mod serve;
pub mod state;
pub mod webhooks;
