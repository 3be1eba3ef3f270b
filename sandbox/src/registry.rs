//! The vendor registry: simulator options, and building a named vendor's simulator.
//!
//! Each vendor module exposes `pub fn build(opts: &SandboxOptions) -> anyhow::Result<Arc<dyn Simulator>>`
//! and adds one [`VendorEntry`] to [`VENDORS`] (see the marked spot).

use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;
use posbridge_plugin_api::model::Sale;

use crate::faults::Faults;
use crate::generator::{Country, Dataset, GenSpec};
use crate::server::Simulator;

/// How to build and run a simulator.
#[derive(Clone, Debug, PartialEq)]
pub struct SandboxOptions {
    /// Registry name of the vendor, e.g. `"kassandro"`.
    pub vendor: String,
    /// 0 = any free port.
    pub port: u16,
    pub seed: u64,
    pub stores: u32,
    pub registers_per_store: u32,
    pub days: u32,
    /// Receipts per register and day.
    pub sales_per_day: u32,
    pub start: NaiveDate,
    /// The key the simulator accepts; each vendor picks a fixed demo key when `None`.
    pub api_key: Option<String>,
    pub faults: Faults,
    /// Where a vendor may write files (e.g. demo key files).
    pub data_dir: Option<PathBuf>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        let spec = GenSpec::default();
        Self {
            vendor: "demo".to_string(),
            port: 0,
            seed: spec.seed,
            stores: spec.stores,
            registers_per_store: spec.registers_per_store,
            days: spec.days,
            sales_per_day: spec.sales_per_day,
            start: spec.start,
            api_key: None,
            faults: Faults::default(),
            data_dir: None,
        }
    }
}

impl SandboxOptions {
    /// The generator spec these options describe, for the vendor's country.
    pub fn gen_spec(&self, country: Country) -> GenSpec {
        GenSpec {
            seed: self.seed,
            stores: self.stores,
            registers_per_store: self.registers_per_store,
            days: self.days,
            sales_per_day: self.sales_per_day,
            start: self.start,
            country,
        }
    }

    /// The generated data set these options describe.
    pub fn dataset(&self, country: Country) -> Dataset {
        Dataset::generate(self.gen_spec(country))
    }
}

/// Why the registry cannot build a simulator.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("unknown sandbox vendor {name:?}; known vendors: {}", known.join(", "))]
    UnknownVendor { name: String, known: Vec<String> },
}

/// A vendor the registry can build.
pub struct VendorEntry {
    pub name: &'static str,
    pub build: fn(&SandboxOptions) -> anyhow::Result<Arc<dyn Simulator>>,
}

/// Every vendor simulator, by registry name.
pub const VENDORS: &[VendorEntry] = &[
    VendorEntry {
        name: "demo",
        build: demo::build,
    },
    // ---- vendor simulators: add your entry below this line ----
    VendorEntry {
        name: "kassandro",
        build: crate::kassandro::build,
    },
    VendorEntry {
        name: "oktopos",
        build: crate::oktopos::build,
    },
    VendorEntry {
        name: "kenzup",
        build: crate::kenzup::build,
    },
    VendorEntry {
        name: "stripe",
        build: crate::stripe::build,
    },
    VendorEntry {
        name: "sevdesk",
        build: crate::sevdesk::build,
    },
    VendorEntry {
        name: "lexoffice",
        build: crate::lexoffice::build,
    },
    // ---- end of vendor simulators ----
];

/// The names of the vendors the registry knows.
pub fn known_vendors() -> Vec<&'static str> {
    VENDORS.iter().map(|v| v.name).collect()
}

/// Builds the named vendor's simulator from the options.
pub fn build_simulator(opts: &SandboxOptions) -> anyhow::Result<Arc<dyn Simulator>> {
    let name = opts.vendor.trim().to_ascii_lowercase();
    match VENDORS.iter().find(|v| v.name == name) {
        Some(v) => (v.build)(opts),
        None => Err(RegistryError::UnknownVendor {
            name: opts.vendor.clone(),
            known: known_vendors().into_iter().map(String::from).collect(),
        }
        .into()),
    }
}

/// The canonical sales a connector reading that vendor's simulator (built with the same
/// options) would produce: for `posbridge sandbox generate --vendor NAME ...`.
pub fn vendor_canonical_sales(opts: &SandboxOptions) -> anyhow::Result<Vec<Sale>> {
    Ok(build_simulator(opts)?.canonical_sales())
}

/// A tiny built-in vendor that serves canonical sales: keeps the harness testable on its own.
///
/// `GET /sales?page=1&size=100` with header `X-Api-Key` answers
/// `{"page":1,"size":100,"total":N,"sales":[...]}`; pages are 1-based, `size` is at most 1000.
pub mod demo {
    use std::sync::{Arc, RwLock};

    use axum::extract::Query;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use axum::{Json, Router};
    use posbridge_plugin_api::model::Sale;
    use serde::Deserialize;

    use super::SandboxOptions;
    use crate::generator::Country;
    use crate::server::Simulator;

    /// The key accepted when the options name none.
    pub const DEFAULT_API_KEY: &str = "demo-key";
    /// The `source_system` of the demo's sales.
    pub const SOURCE_SYSTEM: &str = "demo";
    const MAX_PAGE_SIZE: usize = 1000;

    /// The demo simulator: a key and a list of sales.
    pub struct DemoSimulator {
        api_key: String,
        sales: RwLock<Vec<Sale>>,
    }

    /// Builds the demo simulator from German generated data.
    pub fn build(opts: &SandboxOptions) -> anyhow::Result<Arc<dyn Simulator>> {
        Ok(Arc::new(DemoSimulator::new(
            opts.api_key
                .clone()
                .unwrap_or_else(|| DEFAULT_API_KEY.to_string()),
            opts.dataset(Country::De).sales,
        )))
    }

    fn relabel(mut s: Sale) -> Sale {
        s.source_system = SOURCE_SYSTEM.to_string();
        s.id = Sale::make_id(
            SOURCE_SYSTEM,
            &s.store_id,
            &s.register_id,
            &s.receipt_number,
        );
        s
    }

    impl DemoSimulator {
        /// A demo simulator serving these sales (re-labelled as `demo`).
        pub fn new(api_key: String, sales: Vec<Sale>) -> Self {
            Self {
                api_key,
                sales: RwLock::new(sales.into_iter().map(relabel).collect()),
            }
        }
    }

    #[derive(Deserialize)]
    struct PageQuery {
        page: Option<usize>,
        size: Option<usize>,
    }

    fn error(status: StatusCode, message: &str) -> Response {
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }

    async fn list_sales(
        sim: Arc<DemoSimulator>,
        headers: HeaderMap,
        Query(q): Query<PageQuery>,
    ) -> Response {
        let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
        if key != Some(sim.api_key.as_str()) {
            return error(StatusCode::UNAUTHORIZED, "missing or invalid X-Api-Key");
        }
        let page = q.page.unwrap_or(1);
        let size = q.size.unwrap_or(100);
        if page == 0 || size == 0 || size > MAX_PAGE_SIZE {
            return error(
                StatusCode::BAD_REQUEST,
                "page must be >= 1 and size between 1 and 1000",
            );
        }
        let sales = sim.sales.read().unwrap_or_else(|e| e.into_inner());
        let from = (page - 1).saturating_mul(size).min(sales.len());
        let to = from.saturating_add(size).min(sales.len());
        Json(serde_json::json!({
            "page": page,
            "size": size,
            "total": sales.len(),
            "sales": &sales[from..to],
        }))
        .into_response()
    }

    impl Simulator for DemoSimulator {
        fn vendor(&self) -> &'static str {
            "demo"
        }

        fn router(self: Arc<Self>) -> Router {
            Router::new().route(
                "/sales",
                get(move |headers: HeaderMap, q: Query<PageQuery>| {
                    list_sales(self.clone(), headers, q)
                }),
            )
        }

        fn credentials(&self) -> Vec<(String, String)> {
            vec![("api_key".to_string(), self.api_key.clone())]
        }

        fn canonical_sales(&self) -> Vec<Sale> {
            self.sales.read().unwrap_or_else(|e| e.into_inner()).clone()
        }

        fn add_sales(&self, sales: Vec<Sale>) {
            self.sales
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .extend(sales.into_iter().map(relabel));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_vendor_lists_the_known_ones() {
        let opts = SandboxOptions {
            vendor: "nope".into(),
            ..SandboxOptions::default()
        };
        let err = build_simulator(&opts).err().expect("unknown vendor");
        let msg = err.to_string();
        assert!(msg.contains("\"nope\""), "{msg}");
        for v in known_vendors() {
            assert!(msg.contains(v), "{msg}");
        }
    }

    #[test]
    fn demo_canonical_sales_follow_the_options() {
        let opts = SandboxOptions {
            days: 2,
            sales_per_day: 5,
            ..SandboxOptions::default()
        };
        let sales = vendor_canonical_sales(&opts).unwrap();
        assert_eq!(
            sales.len(),
            (opts.stores * opts.registers_per_store * 2 * 5) as usize
        );
        assert!(sales
            .iter()
            .all(|s| s.source_system == "demo" && s.id.starts_with("demo:")));
        assert_eq!(sales, vendor_canonical_sales(&opts).unwrap());
        let sim = build_simulator(&SandboxOptions {
            vendor: " Demo ".into(),
            ..opts.clone()
        })
        .unwrap();
        assert_eq!(sim.vendor(), "demo");
        assert_eq!(
            sim.credentials(),
            vec![("api_key".to_string(), demo::DEFAULT_API_KEY.to_string())]
        );
    }
}
