//! The host's state: cursors, the delivery ledger, dead letters, run history and plugin key-value
//! state, behind the [`StateStore`] trait.
//!
//! [`SqliteStore`] is the one implementation today (see
//! `docs/decisions/001-state-store-schema.md`); [`open_state`] picks the store from a `--state`
//! value. The trait is synchronous: the runner calls it from blocking threads.

mod error;
mod location;
mod records;
mod run_owner;
mod sqlite;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

pub use error::StateError;
pub use location::{StateLocation, DEFAULT_STATE_FILE};
pub use records::{
    stage, Checkpoint, DeadLetter, DeadLetterFilter, Delivered, IdempotencyClaim, NewDeadLetter,
    RunRecord, RunStatus, RunSummary, RunTrigger, RUN_STATUS_RUNNING,
};
pub use sqlite::{SqliteStore, DEFAULT_BUSY_TIMEOUT};

/// Everything the host remembers between runs.
///
/// Object-safe and shareable between threads (`Box<dyn StateStore>` / `Arc<dyn StateStore>`).
pub trait StateStore: Send + Sync {
    /// The saved cursor of a pipeline's stream, if any.
    fn cursor(&self, pipeline: &str, stream: &str)
        -> Result<Option<serde_json::Value>, StateError>;

    /// Atomically (one transaction): record the delivered idempotency keys (with the sink's
    /// external id and content fingerprint, if any), park the dead letters (each with a ledger
    /// entry `dead-letter:<id>`) AND save the new cursor (`None` leaves the saved cursor as it
    /// is). Called only after the sink acknowledged the batch. A key already in the ledger keeps
    /// its first entry. Answers the ids of the dead letters, in order.
    fn commit(
        &self,
        pipeline: &str,
        stream: &str,
        checkpoint: &Checkpoint<'_>,
    ) -> Result<Vec<i64>, StateError>;

    /// [`StateStore::commit`] of ledger entries and a cursor only.
    fn commit_batch(
        &self,
        pipeline: &str,
        stream: &str,
        delivered: &[Delivered],
        cursor: Option<&serde_json::Value>,
    ) -> Result<(), StateError> {
        self.commit(
            pipeline,
            stream,
            &Checkpoint {
                delivered,
                dead_letters: &[],
                cursor,
            },
        )
        .map(|_| ())
    }

    /// Which of these idempotency keys are already in the ledger, with the content fingerprint
    /// recorded for each (`None` when none was recorded).
    fn delivered_fingerprints(
        &self,
        pipeline: &str,
        keys: &[String],
    ) -> Result<HashMap<String, Option<String>>, StateError>;

    /// Which of these idempotency keys are already delivered for this pipeline.
    fn delivered_keys(
        &self,
        pipeline: &str,
        keys: &[String],
    ) -> Result<HashSet<String>, StateError> {
        Ok(self
            .delivered_fingerprints(pipeline, keys)?
            .into_keys()
            .collect())
    }

    /// Forgets every cursor of the pipeline (`--full-refresh`); the ledger is kept.
    fn reset_cursors(&self, pipeline: &str) -> Result<(), StateError>;

    /// Forgets every delivered key of the pipeline (explicit re-delivery); answers how many.
    fn forget_delivered(&self, pipeline: &str) -> Result<u64, StateError>;

    /// Parks a record as a dead letter; answers its id.
    fn dead_letter(&self, dl: &NewDeadLetter) -> Result<i64, StateError>;

    /// Lists dead letters, oldest first.
    fn dead_letters(&self, filter: &DeadLetterFilter) -> Result<Vec<DeadLetter>, StateError>;

    /// One dead letter, if it exists.
    fn dead_letter_by_id(&self, id: i64) -> Result<Option<DeadLetter>, StateError>;

    /// Marks a dead letter resolved with a note. Fails if it does not exist or is already resolved.
    fn resolve_dead_letter(&self, id: i64, note: &str) -> Result<(), StateError>;

    /// Records the start of a run (status `running`) and why it started; answers its id.
    fn start_run(
        &self,
        pipeline: &str,
        started_at: DateTime<Utc>,
        args: &serde_json::Value,
        trigger: RunTrigger,
    ) -> Result<i64, StateError>;

    /// Marks the runs still `running` whose process is gone as `interrupted` (of one pipeline,
    /// or of all); answers how many. Runs of processes on other machines are left alone.
    fn mark_interrupted_runs(&self, pipeline: Option<&str>) -> Result<u64, StateError>;

    /// Records the end of a run. Fails if it does not exist or is already finished.
    fn finish_run(&self, run_id: i64, summary: &RunSummary) -> Result<(), StateError>;

    /// The latest runs, newest first, of one pipeline or of all.
    fn runs(&self, pipeline: Option<&str>, limit: usize) -> Result<Vec<RunRecord>, StateError>;

    /// One run by its id.
    fn run_by_id(&self, id: i64) -> Result<Option<RunRecord>, StateError>;

    /// A plugin's stored value, namespaced by connector name.
    fn kv_get(&self, namespace: &str, key: &str) -> Result<Option<String>, StateError>;

    /// Stores (or replaces) a plugin's value.
    fn kv_put(&self, namespace: &str, key: &str, value: &str) -> Result<(), StateError>;

    /// Where the store lives, when it is a database another connection can open (the built-in
    /// hub keeps its tables there); `None` for a store in memory.
    fn location(&self) -> Option<StateLocation> {
        None
    }

    /// Until when the scheduler handled the ticks of a pipeline's schedule, if it ever did.
    fn schedule_handled_until(&self, pipeline: &str) -> Result<Option<DateTime<Utc>>, StateError>;

    /// Records that every tick of a pipeline's schedule up to `until` is handled.
    fn set_schedule_handled_until(
        &self,
        pipeline: &str,
        until: DateTime<Utc>,
    ) -> Result<(), StateError>;

    /// Claims a client's idempotency key within a scope (a store) for a request with this
    /// fingerprint, atomically: of two concurrent claims one gets [`IdempotencyClaim::Claimed`].
    /// A key claimed by a process that is gone is taken over. The fingerprint is not compared
    /// here; the caller decides what a different one means.
    fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotencyClaim, StateError>;

    /// Stores the answer of a claimed key; later claims get it back.
    fn complete_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        answer: &serde_json::Value,
    ) -> Result<(), StateError>;

    /// Gives a claimed key up (the request failed without an answer worth repeating), so the
    /// client may try again with it.
    fn release_idempotency_key(&self, scope: &str, key: &str) -> Result<(), StateError>;
}

/// Opens the state store named by a `--state` value (see [`StateLocation::parse`]):
/// `sqlite:PATH` or a bare path, default `posbridge.db` in the working directory.
/// `postgres://…` answers [`StateError::Unsupported`] for now.
pub fn open_state(spec: Option<&str>) -> Result<Box<dyn StateStore>, StateError> {
    let store: Box<dyn StateStore> = match StateLocation::parse(spec)? {
        StateLocation::Sqlite(path) => Box::new(SqliteStore::open(&path)?),
        StateLocation::Postgres(_) => {
            return Err(StateError::Unsupported {
                scheme: "postgres".to_string(),
            })
        }
    };
    // Runs whose process was killed would otherwise stay `running` in the history forever.
    match store.mark_interrupted_runs(None) {
        Ok(0) => {}
        Ok(n) => tracing::info!(runs = n, "marked runs of killed processes as interrupted"),
        Err(e) => tracing::warn!(error = %e, "cannot check for interrupted runs"),
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_state_opens_sqlite_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let spec = format!("sqlite:{}", path.display());
        let store = open_state(Some(&spec)).unwrap();
        store.kv_put("c", "k", "v").unwrap();
        drop(store);
        // A bare path opens the same file.
        let store = open_state(Some(path.to_str().unwrap())).unwrap();
        assert_eq!(store.kv_get("c", "k").unwrap().as_deref(), Some("v"));
        assert!(path.exists());
    }

    #[test]
    fn open_state_refuses_postgres_for_now() {
        let err = open_state(Some("postgres://localhost/posbridge"))
            .err()
            .unwrap();
        assert!(matches!(err, StateError::Unsupported { ref scheme } if scheme == "postgres"));
        assert!(err.to_string().contains("not supported yet"), "{err}");
    }

    #[test]
    fn open_state_reports_bad_values() {
        let err = open_state(Some("sqlite:")).err().unwrap();
        assert!(matches!(err, StateError::InvalidSpec { .. }));
    }

    #[test]
    fn the_trait_is_object_safe_and_shareable() {
        fn assert_send_sync<T: Send + Sync + ?Sized>() {}
        assert_send_sync::<dyn StateStore>();
        assert_send_sync::<StateError>();
        let dir = tempfile::tempdir().unwrap();
        let store: std::sync::Arc<dyn StateStore> =
            std::sync::Arc::new(SqliteStore::open(&dir.path().join("a.db")).unwrap());
        let handle = {
            let store = store.clone();
            std::thread::spawn(move || store.kv_put("n", "k", "from thread"))
        };
        handle.join().unwrap().unwrap();
        assert_eq!(
            store.kv_get("n", "k").unwrap().as_deref(),
            Some("from thread")
        );
    }
}
