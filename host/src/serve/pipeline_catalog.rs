//! The pipelines `posbridge serve` holds: created with `POST /api/v1/pipelines`, or by a sync
//! call (a `syncPOS` is the pipeline `syncPOS:<store>:<system>`, kept so that it can be run
//! again, scheduled and its dead letters retried).
//!
//! A definition is kept as JSON with both connector configs blanked; the configs (credentials)
//! are sealed in the vault under the store and `pipeline:<name>`, and never answered.

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::{json, Value};

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
}

/// Why the catalogue failed (no SQL, no secret in the message).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("pipeline catalogue: {0}")]
    Storage(String),
    #[error("a pipeline named {0:?} exists already")]
    Exists(String),
}

fn storage(doing: &str) -> impl Fn(rusqlite::Error) -> CatalogError + '_ {
    move |e| {
        tracing::error!(error = %e, "pipeline catalogue: {doing}");
        CatalogError::Storage(format!("cannot {doing}"))
    }
}

/// The pipelines held, over their own connection to the state database.
pub struct PipelineCatalog {
    conn: Mutex<Connection>,
    sealed: Arc<dyn SealedStore>,
}

fn purpose(name: &str) -> String {
    format!("pipeline:{name}")
}

fn blanked(def: &PipelineDef) -> PipelineDef {
    let mut blank = def.clone();
    blank.source.config = json!({});
    blank.sink.config = json!({});
    blank.resolved_secrets.clear();
    blank
}

impl PipelineCatalog {
    /// Opens the catalogue in the (already migrated) SQLite file at `path`.
    pub fn open(path: &Path, sealed: Arc<dyn SealedStore>) -> Result<Self, CatalogError> {
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

    /// Keeps `def` for `store`. `replace`: a sync call updates its pipeline; an API create of a
    /// name that exists is refused.
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
        let conn = self.conn();
        let exists: Option<String> = conn
            .query_row(
                "SELECT store_id FROM api_pipelines WHERE name = ?1",
                params![def.name],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage("look a pipeline up"))?;
        match exists {
            Some(_) if !replace => return Err(CatalogError::Exists(def.name.clone())),
            Some(_) => {
                conn.execute(
                    "UPDATE api_pipelines SET store_id = ?2, origin = ?3, definition = ?4,
                     schedule = ?5, updated_at = ?6 WHERE name = ?1",
                    params![def.name, store, origin.as_str(), text, def.schedule, now],
                )
                .map_err(storage("update a pipeline"))?;
            }
            None => {
                conn.execute(
                    "INSERT INTO api_pipelines
                     (name, store_id, origin, definition, schedule, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                    params![def.name, store, origin.as_str(), text, def.schedule, now],
                )
                .map_err(storage("save a pipeline"))?;
            }
        }
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
                "SELECT store_id, origin, definition, created_at, updated_at
                 FROM api_pipelines WHERE name = ?1",
                params![name],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(storage("read a pipeline"))?;
        row.map(held).transpose()
    }

    /// The pipeline with its configs opened, ready to run.
    pub fn runnable(&self, name: &str) -> Result<Option<(String, PipelineDef)>, CatalogError> {
        let Some(h) = self.get(name)? else {
            return Ok(None);
        };
        let configs = self
            .sealed
            .get(&h.store_id, &purpose(name))
            .map_err(|e| CatalogError::Storage(e.to_string()))?
            .unwrap_or(Value::Null);
        let mut def = h.blank;
        def.source.config = configs.get("source").cloned().unwrap_or(json!({}));
        def.sink.config = configs.get("sink").cloned().unwrap_or(json!({}));
        Ok(Some((h.store_id, def)))
    }

    /// Every held pipeline, by name.
    pub fn list(&self) -> Result<Vec<HeldPipeline>, CatalogError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT store_id, origin, definition, created_at, updated_at
                 FROM api_pipelines ORDER BY name",
            )
            .map_err(storage("list pipelines"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
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
}

fn held(
    (store_id, origin, text, created_at, updated_at): (String, String, String, String, String),
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::MemorySealedStore;

    fn catalog(dir: &tempfile::TempDir) -> PipelineCatalog {
        let path = dir.path().join("state.db");
        drop(crate::state::open_state(Some(&format!("sqlite:{}", path.display()))).unwrap());
        PipelineCatalog::open(&path, Arc::new(MemorySealedStore::default())).unwrap()
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
    }
}
