//! Connector upgrades under a pipeline: the host remembers which version of its connectors'
//! config and cursor shapes a pipeline was written with, and migrates both through the library
//! (`Connector::migrate_config` / `migrate_cursor`) when a newer library declares newer ones.
//!
//! Configs live in the pipeline file, which the host does not rewrite: they are migrated in
//! memory before every open, from the version recorded when the pipeline first ran. Cursors live
//! in the state store: they are migrated once, and the new version is recorded.
//!
//! Cursor migration is crash-safe without a store transaction of its own: the migrated cursors
//! are first written into the record as `pending` (one `kv_put`), then saved, then the record
//! moves to the new version. A process killed in between finds `pending` and saves it again.

use std::collections::BTreeMap;

use anyhow::Context;
use posbridge_plugin_api::abi::migration_kind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::PipelineDef;
use crate::plugins::Registry;
use crate::state::StateStore;

/// The `plugin_kv` namespace of the records (one per pipeline, keyed by its name).
pub const VERSIONS_NAMESPACE: &str = "posbridge:pipeline-versions";

/// What a pipeline's state was written with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineVersions {
    pub source: Option<ConnectorVersions>,
    pub sink: Option<ConnectorVersions>,
    /// Migrated cursors not yet known to be saved (see the module comment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingCursors>,
}

/// The versions one side of a pipeline was written with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorVersions {
    pub connector: String,
    /// The library's own version (its manifest's `version`) that last ran the pipeline.
    pub plugin_version: String,
    /// The config version of the pipeline file's config for this connector.
    pub config_version: u32,
    /// The version of the saved cursors (sources only).
    pub cursor_version: u32,
}

/// Cursors migrated to `cursor_version`, to be saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCursors {
    pub cursor_version: u32,
    pub cursors: BTreeMap<String, Value>,
}

/// The recorded versions of `pipeline` (empty when it never ran with this feature).
pub fn recorded(state: &dyn StateStore, pipeline: &str) -> anyhow::Result<PipelineVersions> {
    let Some(text) = state.kv_get(VERSIONS_NAMESPACE, pipeline)? else {
        return Ok(PipelineVersions::default());
    };
    serde_json::from_str(&text)
        .with_context(|| format!("the recorded connector versions of pipeline {pipeline}"))
}

fn save(state: &dyn StateStore, pipeline: &str, v: &PipelineVersions) -> anyhow::Result<()> {
    state.kv_put(VERSIONS_NAMESPACE, pipeline, &serde_json::to_string(v)?)?;
    Ok(())
}

/// Whether the pipeline has saved cursors: state written before versions were recorded, and
/// so by version 1 of every shape.
fn has_cursors(def: &PipelineDef, state: &dyn StateStore) -> anyhow::Result<bool> {
    for stream in &def.source.streams {
        if state.cursor(&def.name, stream)?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The record for one side: the one kept, or a new one (a new pipeline is written for the
/// installed versions; one that ran before records existed, for version 1).
fn side(
    kept: Option<ConnectorVersions>,
    connector: &str,
    reg: &Registry,
    ran_before: bool,
) -> anyhow::Result<ConnectorVersions> {
    if let Some(k) = kept.filter(|k| k.connector == connector) {
        return Ok(k);
    }
    let m = &reg.entry(connector)?.manifest;
    Ok(ConnectorVersions {
        connector: connector.to_string(),
        plugin_version: m.version.clone(),
        config_version: if ran_before { 1 } else { m.config_version },
        cursor_version: if ran_before { 1 } else { m.cursor_version },
    })
}

/// The pipeline's source and sink configs, migrated to the installed connectors' config
/// versions. Records the versions of a pipeline seen for the first time.
pub fn migrated_configs(
    def: &PipelineDef,
    reg: &Registry,
    state: &dyn StateStore,
) -> anyhow::Result<(Value, Value)> {
    let mut rec = recorded(state, &def.name)?;
    let ran_before = (rec.source.is_none() || rec.sink.is_none()) && has_cursors(def, state)?;
    let source = side(rec.source.take(), &def.source.connector, reg, ran_before)?;
    let sink = side(rec.sink.take(), &def.sink.connector, reg, ran_before)?;
    let migrate = |v: &ConnectorVersions, config: &Value| {
        reg.migrate(
            &v.connector,
            migration_kind::CONFIG,
            v.config_version,
            config,
        )
        .map_err(|e| anyhow::anyhow!("pipeline {}: {e}", def.name))
    };
    let source_config = migrate(&source, &def.source.config)?;
    let sink_config = migrate(&sink, &def.sink.config)?;
    let changed = recorded(state, &def.name)?;
    rec.source = Some(source);
    rec.sink = Some(sink);
    if rec != changed {
        save(state, &def.name, &rec)?;
    }
    Ok((source_config, sink_config))
}

/// Migrates the pipeline's saved cursors to the installed source's cursor version, once.
/// Call after [`migrated_configs`] (which records a new pipeline) and before reading.
pub fn migrate_cursors(
    def: &PipelineDef,
    reg: &Registry,
    state: &dyn StateStore,
) -> anyhow::Result<()> {
    let mut rec = recorded(state, &def.name)?;
    let manifest = &reg.entry(&def.source.connector)?.manifest;
    let Some(mut source) = rec
        .source
        .clone()
        .filter(|s| s.connector == def.source.connector)
    else {
        // Not recorded (a dry run of a new pipeline): nothing saved to migrate.
        return Ok(());
    };
    if rec.pending.is_none() && source.cursor_version != manifest.cursor_version {
        let mut cursors = BTreeMap::new();
        for stream in &def.source.streams {
            if let Some(c) = state.cursor(&def.name, stream)? {
                let migrated = reg
                    .migrate(
                        &def.source.connector,
                        migration_kind::CURSOR,
                        source.cursor_version,
                        &c,
                    )
                    .map_err(|e| anyhow::anyhow!("pipeline {}, stream {stream}: {e}", def.name))?;
                cursors.insert(stream.clone(), migrated);
            }
        }
        tracing::info!(
            pipeline = %def.name,
            connector = %def.source.connector,
            from = source.cursor_version,
            to = manifest.cursor_version,
            streams = cursors.len(),
            "migrating saved cursors"
        );
        rec.pending = Some(PendingCursors {
            cursor_version: manifest.cursor_version,
            cursors,
        });
        save(state, &def.name, &rec)?;
    }
    if let Some(pending) = rec.pending.take() {
        for (stream, cursor) in &pending.cursors {
            state.commit_batch(&def.name, stream, &[], Some(cursor))?;
        }
        source.cursor_version = pending.cursor_version;
    }
    source.plugin_version = manifest.version.clone();
    rec.source = Some(source);
    if rec != recorded(state, &def.name)? {
        save(state, &def.name, &rec)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SqliteStore;

    /// A pipeline from the built-in hub (cursor version 1) into itself: no library needed.
    fn hub_pipeline() -> PipelineDef {
        crate::pipeline::parse_pipeline(
            "name: p\nsource: {connector: hub, config: {}, streams: [sales]}\n\
             sink: {connector: hub, config: {}}\n",
            std::path::Path::new("p.yaml"),
        )
        .expect("test pipeline")
    }

    fn hub_versions(cursor_version: u32) -> ConnectorVersions {
        ConnectorVersions {
            connector: "hub".into(),
            plugin_version: "0".into(),
            config_version: 1,
            cursor_version,
        }
    }

    #[test]
    fn pending_cursors_of_an_interrupted_migration_are_saved_by_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let rec = PipelineVersions {
            source: Some(hub_versions(1)),
            sink: Some(hub_versions(1)),
            pending: Some(PendingCursors {
                cursor_version: 1,
                cursors: BTreeMap::from([("sales".to_string(), serde_json::json!({"n": 7}))]),
            }),
        };
        save(&store, "p", &rec).unwrap();
        let reg = Registry::load(&[]);
        migrate_cursors(&hub_pipeline(), &reg, &store).unwrap();
        assert_eq!(
            store.cursor("p", "sales").unwrap(),
            Some(serde_json::json!({"n": 7}))
        );
        let after = recorded(&store, "p").unwrap();
        assert_eq!(after.pending, None);
        assert_eq!(after.source.unwrap().cursor_version, 1);
    }

    #[test]
    fn a_new_pipeline_is_recorded_with_the_installed_versions() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let reg = Registry::load(&[]);
        let (source, _sink) = migrated_configs(&hub_pipeline(), &reg, &store).unwrap();
        assert_eq!(source, serde_json::json!({}));
        let rec = recorded(&store, "p").unwrap();
        assert_eq!(rec.source.unwrap().cursor_version, 1);
        assert_eq!(rec.sink.unwrap().connector, "hub");
    }

    #[test]
    fn cursors_newer_than_the_installed_connector_are_refused_naming_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        store
            .commit_batch("p", "sales", &[], Some(&serde_json::json!({"v2": true})))
            .unwrap();
        let rec = PipelineVersions {
            source: Some(hub_versions(2)),
            sink: Some(hub_versions(1)),
            pending: None,
        };
        save(&store, "p", &rec).unwrap();
        let reg = Registry::load(&[]);
        let err = migrate_cursors(&hub_pipeline(), &reg, &store)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cursor version 1") && err.contains("version 2"),
            "{err}"
        );
        assert_eq!(
            store.cursor("p", "sales").unwrap(),
            Some(serde_json::json!({"v2": true})),
            "the cursor is left as it was"
        );
    }
}
