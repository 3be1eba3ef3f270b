//! The pipelines `posbridge serve` holds: created with `POST /api/v1/pipelines`, or by a sync
//! call (a `syncPOS` is the pipeline `syncPOS:<store>:<system>`, kept so that it can be run
//! again, scheduled and its dead letters retried).
//!
//! A definition is kept as JSON with both connector configs blanked; the configs (credentials)
//! are sealed in the vault under the store and `pipeline:<name>`, and never answered. Deleting
//! those (`DELETE /api/v1/stores/{storeId}/credentials/…`) leaves the pipeline held but not
//! runnable: [`CatalogError::ConfigsMissing`] says how to seal new ones.

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::json;

use super::psp::VaultSealedStore;
use crate::payments::SealedStore;
use crate::pipeline::PipelineDef;

/// Who made a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `POST /api/v1/pipelines`.
    Api,
    /// A sync call (`syncPOS`, `pushToERP`, …).
    Sync,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Sync => "sync",
        }
    }
}

/// A held pipeline, without its configs.
#[derive(Debug, Clone)]
pub struct HeldPipeline {
    pub store_id: String,
    pub origin: Origin,
    /// The definition with blanked configs.
    pub blank: PipelineDef,
    pub created_at: String,
    pub updated_at: String,
    /// Whether its connector configs are sealed (they were not deleted).
    pub configs_sealed: bool,
}

/// Why the catalogue failed (no SQL, no secret in the message).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("pipeline catalogue: {0}")]
    Storage(String),
    #[error("a pipeline named {0:?} exists already")]
    Exists(String),
    #[error(
        "the connector configs (credentials) of pipeline {0:?} were deleted, so it cannot run; \
             seal new ones with PUT /api/v1/pipelines/{0} (or by repeating its sync call)"
    )]
    ConfigsMissing(String),
}

fn storage(doing: &str) -> impl Fn(rusqlite::Error) -> CatalogError + '_ {
    move |e| {
        tracing::error!(error = %e, "pipeline catalogue: {doing}");
        CatalogError::Storage(format!("cannot {doing}"))
    }
}

/// The pipelines held, over their own connection to the state database. The configs are
/// sealed by the vault in the same database, so that deleting a pipeline removes its row, its
/// sealed configs and its schedule's progress in one transaction.
pub struct PipelineCatalog {
    conn: Mutex<Connection>,
    sealed: Arc<VaultSealedStore>,
}

/// The purpose the configs of pipeline `name` are sealed under.
pub fn purpose(name: &str) -> String {
    format!("pipeline:{name}")
}

/// The pipeline whose configs a sealed purpose holds, if it is one.
pub fn pipeline_of_purpose(purpose: &str) -> Option<&str> {
    purpose.strip_prefix("pipeline:")
}

/// The columns [`held`] reads, with whether the configs are sealed.
const HELD_COLUMNS: &str = "p.store_id, p.origin, p.definition, p.created_at, p.updated_at,
     CASE WHEN s.purpose IS NULL THEN 0 ELSE 1 END
     FROM api_pipelines p LEFT JOIN sealed_secrets s
       ON s.store_id = p.store_id AND s.purpose = 'pipeline:' || p.name";

type HeldRow = (String, String, String, String, String, bool);

fn held_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HeldRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get::<_, i64>(5)? != 0,
    ))
}

fn blanked(def: &PipelineDef) -> PipelineDef {
    let mut blank = def.clone();
    blank.source.config = json!({});
    blank.sink.config = json!({});
    blank.resolved_secrets.clear();
    blank
}

impl PipelineCatalog {
    /// Opens the catalogue in the (already migrated) SQLite file at `path`, where `sealed`
    /// keeps its values too.
    pub fn open(path: &Path, sealed: Arc<VaultSealedStore>) -> Result<Self, CatalogError> {
        let conn = Connection::open(path).map_err(storage("open the state database"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(storage("set the busy timeout"))?;
        Ok(Self {
            conn: Mutex::new(conn),
            sealed,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `def` for `store`. `replace`: a sync call or a `PUT` updates its pipeline; an API
    /// create of a name that exists is refused. A pipeline moved to another store takes its
    /// sealed configs along (none stay behind under the old store).
    pub fn put(
        &self,
        store: &str,
        def: &PipelineDef,
        origin: Origin,
        replace: bool,
    ) -> Result<(), CatalogError> {
        let text = serde_json::to_string(&blanked(def))
            .map_err(|e| CatalogError::Storage(format!("cannot encode the pipeline: {e}")))?;
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(storage("start a transaction"))?;
        let exists: Option<String> = tx
            .query_row(
                "SELECT store_id FROM api_pipelines WHERE name = ?1",
                params![def.name],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage("look a pipeline up"))?;
        match exists {
            Some(_) if !replace => return Err(CatalogError::Exists(def.name.clone())),
            Some(old_store) => {
                tx.execute(
                    "UPDATE api_pipelines SET store_id = ?2, origin = ?3, definition = ?4,
                     schedule = ?5, updated_at = ?6 WHERE name = ?1",
                    params![def.name, store, origin.as_str(), text, def.schedule, now],
                )
                .map_err(storage("update a pipeline"))?;
                if old_store != store {
                    tx.execute(
                        "DELETE FROM sealed_secrets WHERE store_id = ?1 AND purpose = ?2",
                        params![old_store, purpose(&def.name)],
                    )
                    .map_err(storage("delete the configs under the old store"))?;
                }
            }
            None => {
                tx.execute(
                    "INSERT INTO api_pipelines
                     (name, store_id, origin, definition, schedule, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                    params![def.name, store, origin.as_str(), text, def.schedule, now],
                )
                .map_err(storage("save a pipeline"))?;
            }
        }
        tx.commit().map_err(storage("save a pipeline"))?;
        drop(conn);
        self.sealed
            .put(
                store,
                &purpose(&def.name),
                &json!({"source": def.source.config, "sink": def.sink.config}),
            )
            .map_err(|e| CatalogError::Storage(e.to_string()))
    }

    /// A held pipeline without its configs.
    pub fn get(&self, name: &str) -> Result<Option<HeldPipeline>, CatalogError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                &format!("SELECT {HELD_COLUMNS} WHERE p.name = ?1"),
                params![name],
                held_row,
            )
            .optional()
            .map_err(storage("read a pipeline"))?;
        row.map(held).transpose()
    }

    /// The pipeline with its configs opened, ready to run; [`CatalogError::ConfigsMissing`]
    /// when they were deleted.
    pub fn runnable(&self, name: &str) -> Result<Option<(String, PipelineDef)>, CatalogError> {
        let Some(h) = self.get(name)? else {
            return Ok(None);
        };
        let configs = self
            .sealed
            .get(&h.store_id, &purpose(name))
            .map_err(|e| CatalogError::Storage(e.to_string()))?
            .ok_or_else(|| CatalogError::ConfigsMissing(name.to_string()))?;
        let mut def = h.blank;
        def.source.config = configs.get("source").cloned().unwrap_or(json!({}));
        def.sink.config = configs.get("sink").cloned().unwrap_or(json!({}));
        Ok(Some((h.store_id, def)))
    }

    /// Every held pipeline, by name.
    pub fn list(&self) -> Result<Vec<HeldPipeline>, CatalogError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!("SELECT {HELD_COLUMNS} ORDER BY p.name"))
            .map_err(storage("list pipelines"))?;
        let rows = stmt
            .query_map([], held_row)
            .map_err(storage("list pipelines"))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(held(row.map_err(storage("list pipelines"))?)?);
        }
        Ok(out)
    }

    /// The store a pipeline belongs to, if it is held.
    pub fn store_of(&self, name: &str) -> Result<Option<String>, CatalogError> {
        self.conn()
            .query_row(
                "SELECT store_id FROM api_pipelines WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage("look a pipeline up"))
    }

    /// Stops holding a pipeline: its definition, its sealed configs and its schedule's progress
    /// go in one transaction. Its runs, dead letters, cursors and delivery ledger stay (a
    /// pipeline made again under the name carries on from them). Answers what was deleted.
    pub fn delete(&self, name: &str) -> Result<Option<HeldPipeline>, CatalogError> {
        let Some(h) = self.get(name)? else {
            return Ok(None);
        };
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(storage("start a transaction"))?;
        tx.execute("DELETE FROM api_pipelines WHERE name = ?1", params![name])
            .map_err(storage("delete a pipeline"))?;
        tx.execute(
            "DELETE FROM sealed_secrets WHERE store_id = ?1 AND purpose = ?2",
            params![h.store_id, purpose(name)],
        )
        .map_err(storage("delete a pipeline's configs"))?;
        tx.execute(
            "DELETE FROM schedule_ticks WHERE pipeline = ?1",
            params![name],
        )
        .map_err(storage("delete a pipeline's schedule progress"))?;
        tx.commit().map_err(storage("delete a pipeline"))?;
        Ok(Some(h))
    }
}

fn held(
    (store_id, origin, text, created_at, updated_at, configs_sealed): HeldRow,
) -> Result<HeldPipeline, CatalogError> {
    let blank: PipelineDef = serde_json::from_str(&text)
        .map_err(|e| CatalogError::Storage(format!("a held pipeline does not read back: {e}")))?;
    Ok(HeldPipeline {
        store_id,
        origin: if origin == "sync" {
            Origin::Sync
        } else {
            Origin::Api
        },
        blank,
        created_at,
        updated_at,
        configs_sealed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::master_key::MasterKey;
    use crate::serve::vault::SecretVault;
    use crate::state::StateStore;

    fn catalog(dir: &tempfile::TempDir) -> PipelineCatalog {
        let path = dir.path().join("state.db");
        let spec = format!("sqlite:{}", path.display());
        let key = MasterKey::from_hex(&"42".repeat(32), "test").unwrap();
        let sealed = VaultSealedStore::open(Some(&spec), SecretVault::new(&key)).unwrap();
        PipelineCatalog::open(&path, Arc::new(sealed)).unwrap()
    }

    fn sealed_rows(c: &PipelineCatalog) -> Vec<(String, String)> {
        let conn = c.conn();
        let mut stmt = conn
            .prepare("SELECT store_id, purpose FROM sealed_secrets ORDER BY store_id")
            .unwrap();
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.map(Result::unwrap).collect()
    }

    fn def(name: &str) -> PipelineDef {
        crate::pipeline::parse_pipeline(
            &format!(
                "name: {name}\nschedule: '0 * * * *'\nsource: {{connector: kassandro, config: {{api_key: s3cret}}}}\nsink: {{connector: hub, config: {{store_id: a}}}}\n"
            ),
            Path::new("<test>"),
        )
        .unwrap()
    }

    #[test]
    fn configs_are_kept_apart_from_the_definition_and_come_back_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let c = catalog(&dir);
        c.put("a", &def("p1"), Origin::Api, false).unwrap();
        let held = c.get("p1").unwrap().unwrap();
        assert_eq!(held.store_id, "a");
        assert_eq!(held.blank.source.config, json!({}));
        assert_eq!(held.blank.schedule.as_deref(), Some("0 * * * *"));
        let text: String = c
            .conn()
            .query_row("SELECT definition FROM api_pipelines", [], |r| r.get(0))
            .unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        let (store, runnable) = c.runnable("p1").unwrap().unwrap();
        assert_eq!(store, "a");
        assert_eq!(runnable.source.config, json!({"api_key": "s3cret"}));
        assert_eq!(runnable.sink.config, json!({"store_id": "a"}));
    }

    #[test]
    fn an_api_create_of_an_existing_name_is_refused_a_sync_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let c = catalog(&dir);
        c.put("a", &def("p1"), Origin::Api, false).unwrap();
        assert!(matches!(
            c.put("a", &def("p1"), Origin::Api, false),
            Err(CatalogError::Exists(_))
        ));
        c.put("b", &def("p1"), Origin::Sync, true).unwrap();
        assert_eq!(c.store_of("p1").unwrap().as_deref(), Some("b"));
        assert_eq!(c.list().unwrap().len(), 1);
        assert!(c.get("nope").unwrap().is_none());
        // Moved to store b: its configs moved along, none stay under a.
        assert_eq!(
            sealed_rows(&c),
            [("b".to_string(), "pipeline:p1".to_string())]
        );
    }

    #[test]
    fn a_pipeline_whose_configs_were_deleted_is_held_but_says_it_cannot_run() {
        let dir = tempfile::tempdir().unwrap();
        let c = catalog(&dir);
        c.put("a", &def("p1"), Origin::Api, false).unwrap();
        assert!(c.get("p1").unwrap().unwrap().configs_sealed);
        c.conn()
            .execute(
                "DELETE FROM sealed_secrets WHERE purpose = 'pipeline:p1'",
                [],
            )
            .unwrap();
        let held = c.get("p1").unwrap().unwrap();
        assert!(!held.configs_sealed);
        assert!(!c.list().unwrap()[0].configs_sealed);
        let err = c.runnable("p1").unwrap_err();
        assert!(matches!(err, CatalogError::ConfigsMissing(_)), "{err:?}");
        assert!(
            err.to_string().contains("PUT /api/v1/pipelines/p1"),
            "{err}"
        );
        // Sealing again makes it runnable.
        c.put("a", &def("p1"), Origin::Api, true).unwrap();
        assert!(c.runnable("p1").unwrap().is_some());
    }

    #[test]
    fn deleting_a_pipeline_removes_its_configs_and_schedule_progress_and_keeps_its_runs() {
        let dir = tempfile::tempdir().unwrap();
        let c = catalog(&dir);
        let state = crate::state::SqliteStore::open(&dir.path().join("state.db")).unwrap();
        c.put("a", &def("p1"), Origin::Api, false).unwrap();
        c.put("a", &def("p2"), Origin::Api, false).unwrap();
        let t = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 3, 2, 12, 0, 0).unwrap();
        state.set_schedule_handled_until("p1", t).unwrap();
        state.set_schedule_handled_until("p2", t).unwrap();
        let run = state
            .start_run("p1", t, &json!({}), crate::state::RunTrigger::Api)
            .unwrap();

        let gone = c.delete("p1").unwrap().expect("it was held");
        assert_eq!(gone.blank.name, "p1");
        assert!(c.get("p1").unwrap().is_none());
        assert!(c.delete("p1").unwrap().is_none(), "nothing the second time");
        assert_eq!(
            sealed_rows(&c),
            [("a".to_string(), "pipeline:p2".to_string())]
        );
        assert_eq!(state.schedule_handled_until("p1").unwrap(), None);
        assert_eq!(state.schedule_handled_until("p2").unwrap(), Some(t));
        assert!(state.run_by_id(run).unwrap().is_some(), "its runs stay");
    }
}
