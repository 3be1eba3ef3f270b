//! # posbridge plugin API
//!
//! Everything a connector library needs, and nothing else:
//!
//! - [`abi`]: the stable binary interface (an `abi_stable` root module plus `#[sabi_trait]`
//!   objects for the connector and for the host capabilities);
//! - the safe SDK ([`Connector`], [`Source`], [`Sink`], [`Actions`], [`Host`],
//!   [`export_connector!`]) a connector author implements;
//! - the canonical retail [`model`] (sales, lines, taxes, payments, fiscal signatures, …) with
//!   money as [`rust_decimal::Decimal`].
//!
//! Plugins do no I/O of their own: they call the host for HTTP, logging, the clock and state.

pub mod abi;
mod error;
pub mod json_text;
mod manifest;
pub mod model;
pub mod sdk;

pub use error::ConnectorError;
pub use manifest::{secret_paths, ActionDecl, Manifest, RateLimit, StreamDecl};
pub use sdk::{
    Actions, CheckReport, Connector, Host, HttpRequest, HttpResponse, LogLevel, NdjsonPage, Page,
    ReadRequest, RecordOutcome, Sink, Source, WriteRequest,
};

pub use sdk::rest;
#[cfg(any(test, feature = "testing"))]
pub use sdk::testing;
pub use sdk::url;

pub use chrono;
pub use rust_decimal;
pub use schemars;
pub use serde_json;

#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
}
