//! The four BEEP! sync calls as pipeline definitions.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{json, Value};

use crate::pipeline::{Counters, Delivery, PipelineDef, SinkDef, SinkMode, SourceDef};
use crate::plugins::{validate_config, ConfigViolation, Registry};

/// The name of the built-in connector that keeps canonical data for the API.
pub const HUB: &str = "hub";

/// Which of the BEEP! sync calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SyncKind {
    /// `syncPOS`: products, categories (with their prices) and sales from a POS into the hub.
    #[serde(rename = "syncPOS")]
    SyncPos,
    /// `syncERP`: inventory, orders, suppliers and products from the books into the hub.
    #[serde(rename = "syncERP")]
    SyncErp,
    /// `pushToPOS`: the store's hub sales written to a POS that takes sales.
    #[serde(rename = "pushToPOS")]
    PushPos,
    /// `pushToERP`: the store's hub sales (or their daily closures) booked in the books.
    #[serde(rename = "pushToERP")]
    PushErp,
}

impl SyncKind {
    /// The endpoint name, as in the BEEP! document.
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::SyncPos => "syncPOS",
            Self::SyncErp => "syncERP",
            Self::PushPos => "pushToPOS",
            Self::PushErp => "pushToERP",
        }
    }

    /// The canonical streams an import asks of the system, in order (catalogue before sales,
    /// so a sale's products are known when it lands). Empty for pushes.
    fn import_streams(self) -> &'static [&'static str] {
        match self {
            Self::SyncPos => &["categories", "products", "sales"],
            Self::SyncErp => &["suppliers", "products", "inventory", "orders"],
            Self::PushPos | Self::PushErp => &[],
        }
    }

    fn is_push(self) -> bool {
        matches!(self, Self::PushPos | Self::PushErp)
    }
}

/// One sync call.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub kind: SyncKind,
    pub store_id: String,
    /// A loaded connector.
    pub system: String,
    /// The system's config, checked against its JSON Schema.
    pub credentials: Value,
    /// For pushes to the books: each sale, or one closure per business day and register.
    pub mode: SinkMode,
    /// The sink's mapping (payment methods, tax rates … to the system's ids), as in a pipeline file.
    pub mapping: Value,
    /// Imports: only these of the job's streams (e.g. `["sales"]` for a `generic` file that
    /// carries one stream); `None`: every one the system reads.
    pub streams: Option<Vec<String>>,
}

/// Why a sync call cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("unknown system {name:?}{}; loaded systems that can do {job}: {}", suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default(), able.join(", "))]
    UnknownSystem {
        name: String,
        job: &'static str,
        suggestion: Option<String>,
        able: Vec<String>,
    },
    #[error("system {name:?} cannot do {job} ({why}); systems that can: {}", able.join(", "))]
    NotSupported {
        name: String,
        job: &'static str,
        why: String,
        able: Vec<String>,
    },
    #[error("invalid credentials for {system}: {}", violations.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; "))]
    InvalidCredentials {
        system: String,
        violations: Vec<ConfigViolation>,
    },
}

impl SyncRequest {
    /// The pipeline's name: one per job, store and system, so each keeps its own cursors.
    pub fn pipeline_name(&self) -> String {
        format!("{}:{}:{}", self.kind.endpoint(), self.store_id, self.system)
    }

    /// Checks the system and its credentials and builds the pipeline.
    pub fn pipeline(&self, reg: &Registry) -> Result<PipelineDef, SyncError> {
        let job = self.kind.endpoint();
        let able = able_systems(reg, self.kind);
        let Some(entry) = reg.get(&self.system).filter(|_| self.system != HUB) else {
            return Err(SyncError::UnknownSystem {
                name: self.system.clone(),
                job,
                suggestion: crate::plugins::closest_name(
                    &self.system,
                    able.iter().map(String::as_str),
                ),
                able,
            });
        };
        let mut streams = streams_for(self.kind, &entry.manifest);
        if let (Some(wanted), false) = (&self.streams, self.kind.is_push()) {
            if let Some(bad) = wanted.iter().find(|w| !streams.contains(w)) {
                return Err(SyncError::NotSupported {
                    name: self.system.clone(),
                    job,
                    why: format!(
                        "$.streams: {bad:?} is not one it can import here; it can: {}",
                        streams.join(", ")
                    ),
                    able,
                });
            }
            streams.retain(|s| wanted.contains(s));
        }
        if streams.is_empty() {
            let why = if self.kind.is_push() {
                "it does not write sales".to_string()
            } else {
                format!("it reads none of {}", self.kind.import_streams().join(", "))
            };
            return Err(SyncError::NotSupported {
                name: self.system.clone(),
                job,
                why,
                able,
            });
        }
        let violations = validate_config(&entry.manifest.config_schema, &self.credentials);
        if !violations.is_empty() {
            return Err(SyncError::InvalidCredentials {
                system: self.system.clone(),
                violations,
            });
        }
        let hub = json!({ "store_id": self.store_id });
        let (source, sink) = if self.kind.is_push() {
            (
                SourceDef {
                    connector: HUB.into(),
                    config: hub,
                    streams,
                    start: None,
                    rate_limit: None,
                    page_size: None,
                },
                SinkDef {
                    connector: self.system.clone(),
                    config: self.credentials.clone(),
                    mode: self.mode,
                    rate_limit: None,
                },
            )
        } else {
            (
                SourceDef {
                    connector: self.system.clone(),
                    config: self.credentials.clone(),
                    streams,
                    start: None,
                    rate_limit: None,
                    page_size: None,
                },
                SinkDef {
                    connector: HUB.into(),
                    config: hub,
                    mode: SinkMode::PerSale,
                    rate_limit: None,
                },
            )
        };
        Ok(PipelineDef {
            name: self.pipeline_name(),
            source,
            sink,
            mapping: self.mapping.clone(),
            schedule: None,
            delivery: Delivery::default(),
            resolved_secrets: Vec::new(),
            file: format!("<api {job}>").into(),
        })
    }
}

/// The streams of `kind` that `manifest`'s connector can serve.
fn streams_for(kind: SyncKind, manifest: &posbridge_plugin_api::Manifest) -> Vec<String> {
    if kind.is_push() {
        return match manifest.find_stream("sales") {
            Some(s) if s.write => vec!["sales".to_string()],
            _ => Vec::new(),
        };
    }
    kind.import_streams()
        .iter()
        .filter(|s| manifest.find_stream(s).is_some_and(|d| d.read))
        .map(|s| s.to_string())
        .collect()
}

/// The loaded connectors that can do `kind`, for error messages.
fn able_systems(reg: &Registry, kind: SyncKind) -> Vec<String> {
    reg.entries()
        .filter(|e| e.manifest.name != HUB && !streams_for(kind, &e.manifest).is_empty())
        .map(|e| e.manifest.name.clone())
        .collect()
}

/// The `synced` figures of a finished sync call.
///
/// Records count when the run wrote them (new or changed since the last sync; a record the hub
/// already had unchanged is not synced again). `priceUpdates` counts products the hub already
/// knew at another price. A push in `daily_summary` mode books `closures`; `sales` then counts
/// the sales summed into them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncedCounts {
    pub products: u64,
    pub categories: u64,
    pub price_updates: u64,
    pub sales: u64,
    /// Daily closures booked (pushes in `daily_summary` mode).
    pub closures: u64,
    pub inventory: u64,
    pub orders: u64,
    pub suppliers: u64,
    /// Records refused (dead-lettered with the reason; `GET /api/v1/deadletters`).
    pub dead_lettered: u64,
}

impl SyncedCounts {
    /// The figures of a run, with the product prices the hub held before and after it.
    pub fn from_run(
        c: &Counters,
        mode: SinkMode,
        prices_before: &HashMap<String, Decimal>,
        prices_after: &HashMap<String, Decimal>,
    ) -> Self {
        let written = |s: &str| c.by_stream.get(s).map_or(0, |x| x.written);
        let price_updates = prices_after
            .iter()
            .filter(|(id, price)| prices_before.get(*id).is_some_and(|old| old != *price))
            .count() as u64;
        let sales = c.by_stream.get("sales").copied().unwrap_or_default();
        let (sales, closures) = match mode {
            // The run read sales and wrote closures; the sales summed are the ones neither
            // booked before nor refused.
            SinkMode::DailySummary => (
                sales
                    .read
                    .saturating_sub(sales.duplicates)
                    .saturating_sub(sales.dead_lettered),
                sales.written,
            ),
            SinkMode::PerSale => (sales.written, 0),
        };
        Self {
            products: written("products"),
            categories: written("categories"),
            price_updates,
            sales,
            closures,
            inventory: written("inventory"),
            orders: written("orders"),
            suppliers: written("suppliers"),
            dead_lettered: c.dead_lettered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::StreamCounters;
    use rust_decimal_macros::dec;

    #[test]
    fn pipeline_names_keep_jobs_stores_and_systems_apart() {
        let r = |kind, store: &str, system: &str| SyncRequest {
            kind,
            store_id: store.into(),
            system: system.into(),
            credentials: json!({}),
            mode: SinkMode::PerSale,
            mapping: Value::Null,
            streams: None,
        };
        let names = [
            r(SyncKind::SyncPos, "a", "kassandro").pipeline_name(),
            r(SyncKind::SyncPos, "b", "kassandro").pipeline_name(),
            r(SyncKind::PushPos, "a", "kassandro").pipeline_name(),
            r(SyncKind::SyncPos, "a", "oktopos").pipeline_name(),
        ];
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert_eq!(names[0], "syncPOS:a:kassandro");
    }

    #[test]
    fn synced_counts_come_from_the_streams_written_and_changed_prices() {
        let mut c = Counters::default();
        let w = |written| StreamCounters {
            written,
            ..Default::default()
        };
        c.by_stream.insert("products".into(), w(3));
        c.by_stream.insert("categories".into(), w(2));
        c.by_stream.insert("sales".into(), w(7));
        let before = HashMap::from([("p1".to_string(), dec!(1.00)), ("p2".into(), dec!(2.50))]);
        let after = HashMap::from([
            ("p1".to_string(), dec!(1.00)),
            ("p2".into(), dec!(2.75)),
            ("p3".into(), dec!(9.99)),
        ]);
        let s = SyncedCounts::from_run(&c, SinkMode::PerSale, &before, &after);
        assert_eq!((s.products, s.categories, s.sales), (3, 2, 7));
        assert_eq!(s.price_updates, 1, "only p2 changed price; p3 is new");
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["priceUpdates"], 1);
    }
}
