//! The safe SDK a connector author implements. [`crate::export_connector!`] turns an
//! implementation into a loadable library.

mod connector;
pub mod export;
mod host;
mod messages;
mod page_buffers;
pub mod rest;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod url;

pub use connector::{Actions, Connector, NdjsonPage, Sink, Source};
pub use host::{Host, HttpRequest, HttpResponse, LogLevel};
pub use messages::{CheckReport, Page, ReadRequest, RecordOutcome, WriteRequest};
pub use page_buffers::page_buffer;
