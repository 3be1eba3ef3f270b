//! # posbridge sandbox
//!
//! Local simulators of the vendor APIs posbridge talks to, for tests and demos:
//!
//! - [`generator`]: a seeded, deterministic generator of realistic canonical retail data;
//! - [`faults`]: fault injection (latency, 5xx, 429, dropped connections, malformed bodies,
//!   expiring tokens) and the request log;
//! - [`server`]: the harness that runs a [`Simulator`] on 127.0.0.1 with the control endpoints
//!   `GET/PUT/PATCH /__sandbox/faults` and `GET/DELETE /__sandbox/requests`;
//! - [`registry`]: [`SandboxOptions`] and building a vendor's simulator by name.
//!
//! ```no_run
//! use posbridge_sandbox::{build_simulator, start, SandboxOptions};
//! let opts = SandboxOptions::default(); // the built-in "demo" vendor
//! let sandbox = start(build_simulator(&opts)?, opts.port, opts.faults.clone())?;
//! println!("{} {:?}", sandbox.base_url, sandbox.credentials);
//! sandbox.shutdown();
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod faults;
pub mod generator;
mod local_time;
pub mod registry;
pub mod server;

// ---- vendor simulator modules: add your `pub mod` line below this one ----
pub mod kassandro;
pub mod kenzup;
pub mod lexoffice;
pub mod oktopos;
pub mod sevdesk;
pub mod stripe;
// ---- end of vendor simulator modules ----

pub use faults::{
    FaultController, FaultKind, Faults, FaultsError, RequestContext, RequestLogEntry,
};
pub use generator::{generate_sales, write_ndjson, Country, Dataset, GenSpec, Store};
pub use registry::{
    build_simulator, known_vendors, vendor_canonical_sales, RegistryError, SandboxOptions,
    VendorEntry, VENDORS,
};
pub use server::{start, RunningSandbox, Simulator};
