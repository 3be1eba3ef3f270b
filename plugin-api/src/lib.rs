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
//! A connector's unit tests run it on [`testing::FakeHost`] (feature `testing`), and a built
//! library is checked by the host's conformance suite (`posbridge conformance`).

#![deny(missing_docs)]

/// The binary interface (the host's side of it; connector authors never use it directly).
#[doc(hidden)]
pub mod abi;
mod error;
/// JSON text with exact decimal numbers, for vendors that want amounts as JSON numbers.
pub mod json_text;
mod manifest;
/// The canonical retail model.
pub mod model;
/// The safe SDK: traits, host handle, messages, REST toolkit, test host.
pub mod sdk;

pub use error::ConnectorError;
pub use manifest::{
    config_properties, secret_paths, ActionDecl, Manifest, RateLimit, SchemaProperty, StreamDecl,
};
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

/// Items [`export_connector!`] expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
}
