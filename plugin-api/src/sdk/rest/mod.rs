//! The REST toolkit: what every HTTP connector needs, over the host's `http` capability.
//!
//! - [`RestClient`]: base URL and path joining, default headers, credentials ([`Auth`]: a
//!   header of any name, bearer, Basic, a query parameter, or a [`RequestSigner`] for HMAC/RSA
//!   schemes) and a request builder;
//! - one answer handler ([`read_answer`]): statuses become typed [`RestError`]s (`Auth`,
//!   `RateLimited` with `Retry-After` as seconds or an HTTP date, `Transient`, `Permanent`),
//!   with a per-vendor hook ([`VendorErrors`]) for the error message and reclassification;
//! - paginators ([`PageNumber`], [`Offset`], [`CursorToken`], [`HasMore`]) and [`fetch_page`];
//! - a partitioned, versioned cursor ([`PartitionedCursor`], [`Pass`]);
//! - [`schema`]: JSON Schema patterns for config fields, so the host reports bad values with
//!   their JSON path before `open`.
//!
//! See "REST toolkit" in `docs/writing-a-connector.md`.

mod answer;
mod auth;
mod client;
mod cursor;
mod paginate;
pub mod retry_after;
pub mod schema;

pub use answer::{
    common_error_message, read_answer, Answer, DefaultErrors, RestError, VendorErrors, Verdict,
};
pub use auth::{Auth, AuthSpecError, RequestSigner, AUTH_SPEC_PATTERN};
pub use client::{RequestBuilder, RestClient};
pub use cursor::{CursorError, PartitionedCursor, Pass};
pub use paginate::{
    fetch_page, items_at, CursorToken, HasMore, Offset, PageNumber, PageOf, Paginator, Position,
};
