//! # posbridge connector: Kenzup
//!
//! Reads the Kenzup generic sales export (`GET /api/v1/ledger/export-sales/<shop_uuid>/json`)
//! with `X-SIGNATURE` request signatures (RSASSA-PKCS1-v1_5 / SHA-256, done here in pure
//! Rust) and maps each loyalty earn/burn row to a canonical `Sale`.
//! The contract is `docs/connectors/kenzup.md`.

pub mod client;
pub mod config;
pub mod connector;
pub mod cursor;
pub mod mapping;
pub mod signature;

pub use config::KenzupConfig;
pub use connector::KenzupConnector;

posbridge_plugin_api::export_connector!(KenzupConnector);
