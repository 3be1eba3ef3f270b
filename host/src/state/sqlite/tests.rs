//! Behaviour of the SQLite store, on real files in a temporary directory.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::state::{stage, Delivered, RunStatus};

fn temp_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
    (dir, store)
}

fn delivered(key: &str, external_id: Option<&str>) -> Delivered {
    Delivered {
        key: key.to_string(),
        stream: "sales".to_string(),
        external_id: external_id.map(str::to_string),
        content_hash: None,
    }
}

/// The external id of a key's first ledger entry: the lowest `seq` (the ledger's reading rule,
/// `ledger/mod.rs`).
fn ledger_external_id(store: &SqliteStore, pipeline: &str, key: &str) -> Option<String> {
    store
        .conn()
        .query_row(
            "SELECT external_id FROM ledger_entries
             WHERE pipeline = ?1 AND idempotency_key = ?2 ORDER BY seq LIMIT 1",
            [pipeline, key],
            |r| r.get(0),
        )
        .unwrap()
}

fn rows_in(store: &SqliteStore, table: &str) -> i64 {
    store
        .conn()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// Entries no segment covers yet (the map's).
fn unindexed(store: &SqliteStore) -> i64 {
    store
        .conn()
        .query_row(
            "SELECT count(*) FROM ledger_entries
             WHERE seq > (SELECT indexed_through FROM ledger_state)",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// The `seq` of a key's first entry.
fn seq_of(store: &SqliteStore, pipeline: &str, key: &str) -> i64 {
    store
        .conn()
        .query_row(
            "SELECT min(seq) FROM ledger_entries WHERE pipeline = ?1 AND idempotency_key = ?2",
            [pipeline, key],
            |r| r.get(0),
        )
        .unwrap()
}

fn keys(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}

fn new_dead_letter(pipeline: &str, n: u32) -> NewDeadLetter {
    NewDeadLetter {
        pipeline: pipeline.to_string(),
        run_id: Some(7),
        stream: "sales".to_string(),
        record_key: Some(format!("sale-{n}")),
        record: json!({ "id": format!("sale-{n}"), "total": "12.30" }),
        reason: format!("reason {n}"),
        stage: stage::VALIDATE.to_string(),
    }
}

fn summary(status: RunStatus, read: u64) -> RunSummary {
    RunSummary {
        status,
        read,
        written: read.saturating_sub(2),
        duplicates: 1,
        dead_lettered: 1,
        retries: 3,
        error: (status == RunStatus::Failed).then(|| "sink refused".to_string()),
        finished_at: Utc.with_ymd_and_hms(2024, 5, 1, 12, 30, 0).unwrap(),
    }
}

fn pragma(store: &SqliteStore, name: &str) -> String {
    let value: rusqlite::types::Value = store
        .conn()
        .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .unwrap();
    match value {
        rusqlite::types::Value::Integer(i) => i.to_string(),
        rusqlite::types::Value::Text(t) => t,
        other => format!("{other:?}"),
    }
}

#[test]
fn opens_in_wal_mode_with_full_sync_and_busy_timeout() {
    let (_dir, store) = temp_store();
    assert_eq!(pragma(&store, "journal_mode"), "wal");
    assert_eq!(pragma(&store, "synchronous"), "2", "2 is FULL");
    // Sized for a ledger of 100,000 keys and batches that dirty pages all over it.
    assert_eq!(pragma(&store, "cache_size"), (-CACHE_KIB).to_string());
    assert_eq!(
        pragma(&store, "wal_autocheckpoint"),
        WAL_AUTOCHECKPOINT_PAGES.to_string()
    );
    assert_eq!(
        pragma(&store, "busy_timeout"),
        DEFAULT_BUSY_TIMEOUT.as_millis().to_string()
    );
}

#[cfg(unix)]
#[test]
fn a_new_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, _store) = temp_store();
    let mode = std::fs::metadata(dir.path().join("state.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn migrations_are_idempotent_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let latest = migrations::MIGRATIONS.last().unwrap().version;
    for _ in 0..3 {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), latest);
        let recorded: i64 = store
            .conn()
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(recorded, migrations::MIGRATIONS.len() as i64);
    }
}

#[test]
fn a_missing_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteStore::open(&dir.path().join("no/such/dir/state.db")).unwrap_err();
    assert!(matches!(err, StateError::Backend { .. }), "{err:?}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
}

#[test]
fn cursors_are_per_pipeline_and_stream() {
    let (_dir, store) = temp_store();
    assert_eq!(store.cursor("p", "sales").unwrap(), None);
    store
        .commit_batch("p", "sales", &[], Some(&json!({ "since": "2024-01-01" })))
        .unwrap();
    store
        .commit_batch("p", "products", &[], Some(&json!("page-3")))
        .unwrap();
    store
        .commit_batch("q", "sales", &[], Some(&json!(42)))
        .unwrap();
    assert_eq!(
        store.cursor("p", "sales").unwrap(),
        Some(json!({ "since": "2024-01-01" }))
    );
    assert_eq!(
        store.cursor("p", "products").unwrap(),
        Some(json!("page-3"))
    );
    assert_eq!(store.cursor("q", "sales").unwrap(), Some(json!(42)));

    // A later batch moves the cursor; a batch without a cursor leaves it.
    store
        .commit_batch("p", "sales", &[], Some(&json!({ "since": "2024-02-01" })))
        .unwrap();
    store
        .commit_batch("p", "sales", &[delivered("k1", None)], None)
        .unwrap();
    assert_eq!(
        store.cursor("p", "sales").unwrap(),
        Some(json!({ "since": "2024-02-01" }))
    );

    store.reset_cursors("p").unwrap();
    assert_eq!(store.cursor("p", "sales").unwrap(), None);
    assert_eq!(store.cursor("p", "products").unwrap(), None);
    assert_eq!(
        store.cursor("q", "sales").unwrap(),
        Some(json!(42)),
        "other pipelines keep theirs"
    );
    let still: HashSet<String> = store.delivered_keys("p", &["k1".into()]).unwrap();
    assert!(still.contains("k1"), "--full-refresh keeps the ledger");
}

#[test]
fn commit_batch_records_keys_and_cursor() {
    let (_dir, store) = temp_store();
    let batch = [delivered("s-1", Some("ext-1")), delivered("s-2", None)];
    store
        .commit_batch("p", "sales", &batch, Some(&json!("c1")))
        .unwrap();
    let found = store
        .delivered_keys("p", &["s-1".into(), "s-2".into(), "s-3".into()])
        .unwrap();
    assert_eq!(found, HashSet::from(["s-1".to_string(), "s-2".to_string()]));
    assert_eq!(
        ledger_external_id(&store, "p", "s-1").as_deref(),
        Some("ext-1")
    );
    // Keys are per pipeline.
    assert!(store
        .delivered_keys("other", &["s-1".into()])
        .unwrap()
        .is_empty());
}

#[test]
fn a_key_delivered_again_keeps_its_first_entry() {
    let (_dir, store) = temp_store();
    store
        .commit_batch("p", "sales", &[delivered("s-1", Some("first"))], None)
        .unwrap();
    store
        .commit_batch(
            "p",
            "sales",
            &[delivered("s-1", Some("second"))],
            Some(&json!("c2")),
        )
        .unwrap();
    assert_eq!(
        ledger_external_id(&store, "p", "s-1").as_deref(),
        Some("first")
    );
    assert_eq!(store.cursor("p", "sales").unwrap(), Some(json!("c2")));
}

fn fingerprinted(key: &str, fingerprint: &str) -> Delivered {
    Delivered {
        content_hash: Some(fingerprint.to_string()),
        ..delivered(key, Some(fingerprint))
    }
}

fn fingerprint_of(store: &SqliteStore, pipeline: &str, key: &str) -> Option<Option<String>> {
    store
        .delivered_fingerprints(pipeline, &[key.to_string()])
        .unwrap()
        .remove(key)
}

#[test]
fn commits_append_to_the_log_until_a_merge_indexes_them_as_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state.db"))
        .unwrap()
        .with_ledger_merge_after(1_000);
    let all = keys("sale", 0..1_500);
    let batch: Vec<Delivered> = all.iter().map(|k| fingerprinted(k, k)).collect();
    for chunk in batch[..900].chunks(300) {
        store.commit_batch("p", "sales", chunk, None).unwrap();
    }
    // Below the limit: no segment yet, all found through the map.
    assert_eq!(segments_of(&store), []);
    assert_eq!(unindexed(&store), 900);
    assert_eq!(store.delivered_keys("p", &all).unwrap().len(), 900);
    let seq_before = seq_of(&store, "p", "sale-7");
    // The batch that reaches 1,000 entries indexes them all as a segment, in blocks of 250
    // pairs; the entries stay where they are.
    store
        .commit_batch("p", "sales", &batch[900..1_200], None)
        .unwrap();
    assert_eq!(segments_of(&store), [(0, 1_200, 1, 1_200)]);
    assert_eq!(rows_in(&store, "ledger_index_blocks"), 5);
    assert_eq!(unindexed(&store), 0);
    assert_eq!(rows_in(&store, "ledger_entries"), 1_200);
    assert_eq!(seq_of(&store, "p", "sale-7"), seq_before);
    store
        .commit_batch("p", "sales", &batch[1_200..], None)
        .unwrap();
    assert_eq!(unindexed(&store), 300);
    // Found wherever they are, each with its own fingerprint; others are not found.
    let found = store.delivered_fingerprints("p", &all).unwrap();
    assert_eq!(found.len(), 1_500);
    assert!(found.iter().all(|(k, f)| f.as_deref() == Some(k.as_str())));
    assert!(store
        .delivered_keys("p", &keys("other", 0..100))
        .unwrap()
        .is_empty());
    assert!(store.delivered_keys("q", &all).unwrap().is_empty());
}

#[test]
fn the_first_entry_wins_in_the_map_the_segments_and_across_a_merge() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state.db"))
        .unwrap()
        .with_ledger_merge_after(4);
    // Twice in the map: the lower seq is the first.
    store
        .commit_batch("p", "sales", &[fingerprinted("a", "a1")], None)
        .unwrap();
    store
        .commit_batch("p", "sales", &[fingerprinted("a", "a2")], None)
        .unwrap();
    assert_eq!(fingerprint_of(&store, "p", "a"), Some(Some("a1".into())));
    // The merge keeps the first.
    store
        .commit_batch(
            "p",
            "sales",
            &[fingerprinted("b", "b1"), fingerprinted("c", "c1")],
            None,
        )
        .unwrap();
    assert_eq!(unindexed(&store), 0);
    assert_eq!(fingerprint_of(&store, "p", "a"), Some(Some("a1".into())));
    assert_eq!(ledger_external_id(&store, "p", "a").as_deref(), Some("a1"));
    // In a segment and again in the map: the segment's entry, before and after a merge (then
    // the key is in two segments).
    store
        .commit_batch("p", "sales", &[fingerprinted("a", "a3")], None)
        .unwrap();
    assert_eq!(fingerprint_of(&store, "p", "a"), Some(Some("a1".into())));
    store
        .commit_batch(
            "p",
            "sales",
            &keys("d", 0..3)
                .iter()
                .map(|k| fingerprinted(k, k))
                .collect::<Vec<_>>(),
            None,
        )
        .unwrap();
    assert_eq!(unindexed(&store), 0);
    assert_eq!(segments_of(&store).len(), 2);
    assert_eq!(fingerprint_of(&store, "p", "a"), Some(Some("a1".into())));
    // Forget counts keys, not entries.
    store
        .commit_batch(
            "p",
            "sales",
            &[fingerprinted("e", "e1"), fingerprinted("e", "e2")],
            None,
        )
        .unwrap();
    assert_eq!(
        store.forget_delivered("p").unwrap(),
        7,
        "a, b, c, d-0..2, e"
    );
    // Nothing of it is left: no entry, and no segment names one.
    assert_eq!(rows_in(&store, "ledger_entries"), 0);
    assert_eq!(segments_of(&store), []);
    assert_eq!(rows_in(&store, "ledger_index_blocks"), 0);
    assert_eq!(fingerprint_of(&store, "p", "a"), None);
    // The log is empty, but a new entry is numbered above what the segments covered (`seq` 8;
    // numbered from 1 again, no segment and no map would hold it).
    store
        .commit_batch("p", "sales", &[fingerprinted("a", "a4")], None)
        .unwrap();
    assert_eq!(seq_of(&store, "p", "a"), 9);
    assert_eq!(fingerprint_of(&store, "p", "a"), Some(Some("a4".into())));
}

#[test]
fn a_hash_collision_in_the_recent_map_still_answers_right() {
    let (_dir, store) = temp_store();
    store
        .commit_batch(
            "p",
            "sales",
            &[fingerprinted("a", "fa"), fingerprinted("b", "fb")],
            None,
        )
        .unwrap();
    let seq_of_a: i64 = store
        .conn()
        .query_row(
            "SELECT seq FROM ledger_entries WHERE idempotency_key = 'a'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // As if "b" and the absent "z" had the hash of "a".
    store.ledger().recent().collide("p", "b", seq_of_a);
    store.ledger().recent().collide("p", "z", seq_of_a);
    let found = store
        .delivered_fingerprints("p", &["a".into(), "b".into(), "z".into()])
        .unwrap();
    assert_eq!(
        found,
        HashMap::from([
            ("a".to_string(), Some("fa".to_string())),
            ("b".to_string(), Some("fb".to_string()))
        ])
    );
}

#[test]
fn two_processes_see_each_others_recent_entries_merges_and_forgets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let one = SqliteStore::open(&path)
        .unwrap()
        .with_ledger_merge_after(10);
    let two = SqliteStore::open(&path)
        .unwrap()
        .with_ledger_merge_after(10);
    let ks = keys("k", 0..12);
    let batch: Vec<Delivered> = ks.iter().map(|k| fingerprinted(k, k)).collect();
    // `two` loads its map (empty), then `one` appends: `two` follows by seq.
    assert!(two.delivered_keys("p", &ks).unwrap().is_empty());
    one.commit_batch("p", "sales", &batch[..4], None).unwrap();
    assert_eq!(two.delivered_keys("p", &ks).unwrap().len(), 4);
    // `two` appends and `one` sees it; the second append reaches 10 entries and `two` merges.
    two.commit_batch("q", "sales", &batch[..4], None).unwrap();
    assert_eq!(one.delivered_keys("q", &ks).unwrap().len(), 4);
    two.commit_batch("p", "sales", &batch[4..6], None).unwrap();
    assert_eq!(unindexed(&one), 0);
    // `one`'s map holds entries a segment now covers: the new generation makes it reload.
    one.commit_batch("p", "sales", &batch[6..8], None).unwrap();
    assert_eq!(one.delivered_keys("p", &ks).unwrap().len(), 8);
    assert_eq!(two.delivered_keys("p", &ks).unwrap().len(), 8);
    // A forget by one is seen by the other, and other pipelines keep theirs.
    assert_eq!(two.forget_delivered("p").unwrap(), 8);
    assert!(one.delivered_keys("p", &ks).unwrap().is_empty());
    assert_eq!(one.delivered_keys("q", &ks).unwrap().len(), 4);
    // After reopening, everything is found from the file alone.
    drop((one, two));
    let again = SqliteStore::open(&path).unwrap();
    assert_eq!(again.delivered_keys("q", &ks).unwrap().len(), 4);
}

#[test]
fn commit_batch_is_atomic() {
    let (_dir, store) = temp_store();
    store
        .commit_batch(
            "p",
            "sales",
            &[delivered("a", None)],
            Some(&json!("before")),
        )
        .unwrap();

    // The cursor is written first, then the keys; the empty key breaks the ledger's CHECK
    // constraint half-way through, so everything of this batch must roll back.
    let batch = [
        delivered("b", None),
        delivered("", None),
        delivered("c", None),
    ];
    let err = store
        .commit_batch("p", "sales", &batch, Some(&json!("after")))
        .unwrap_err();
    assert!(matches!(err, StateError::Constraint { .. }), "{err:?}");

    assert_eq!(store.cursor("p", "sales").unwrap(), Some(json!("before")));
    let found = store
        .delivered_keys("p", &["a".into(), "b".into(), "c".into()])
        .unwrap();
    assert_eq!(found, HashSet::from(["a".to_string()]));

    // The store is usable afterwards (no transaction left open).
    store
        .commit_batch("p", "sales", &[delivered("b", None)], Some(&json!("after")))
        .unwrap();
    assert_eq!(store.cursor("p", "sales").unwrap(), Some(json!("after")));
}

#[test]
fn delivered_keys_answers_a_large_batch() {
    let (_dir, store) = temp_store();
    let stored = keys("sale", 0..5_000);
    let batch: Vec<Delivered> = stored.iter().map(|k| delivered(k, None)).collect();
    for chunk in batch.chunks(500) {
        store.commit_batch("p", "sales", chunk, None).unwrap();
    }
    // 500 lookups, every other one delivered; and a lookup larger than one IN list.
    let asked: Vec<String> = (4_750..5_250).map(|i| format!("sale-{i}")).collect();
    let found = store.delivered_keys("p", &asked).unwrap();
    let expected: HashSet<String> = keys("sale", 4_750..5_000).into_iter().collect();
    assert_eq!(found, expected);

    let many: Vec<String> = keys("sale", 0..2_000)
        .into_iter()
        .chain(keys("x", 0..500))
        .collect();
    assert_eq!(store.delivered_keys("p", &many).unwrap().len(), 2_000);
    assert!(store.delivered_keys("p", &[]).unwrap().is_empty());
}

#[test]
fn forget_delivered_counts_and_is_per_pipeline() {
    let (_dir, store) = temp_store();
    let p: Vec<Delivered> = keys("k", 0..3).iter().map(|k| delivered(k, None)).collect();
    store.commit_batch("p", "sales", &p, None).unwrap();
    store.commit_batch("q", "sales", &p[..1], None).unwrap();
    assert_eq!(store.forget_delivered("p").unwrap(), 3);
    assert_eq!(store.forget_delivered("p").unwrap(), 0);
    assert!(store
        .delivered_keys("p", &keys("k", 0..3))
        .unwrap()
        .is_empty());
    assert_eq!(
        store.delivered_keys("q", &keys("k", 0..3)).unwrap().len(),
        1
    );
}

#[test]
fn dead_letters_round_trip_and_resolve() {
    let (_dir, store) = temp_store();
    let first = new_dead_letter("p", 1);
    let id1 = store.dead_letter(&first).unwrap();
    let id2 = store.dead_letter(&new_dead_letter("p", 2)).unwrap();
    let id3 = store.dead_letter(&new_dead_letter("q", 3)).unwrap();
    assert!(id1 < id2 && id2 < id3);

    let got = store.dead_letter_by_id(id1).unwrap().unwrap();
    assert_eq!(got.id, id1);
    assert_eq!(got.pipeline, first.pipeline);
    assert_eq!(got.run_id, first.run_id);
    assert_eq!(got.stream, first.stream);
    assert_eq!(got.record_key, first.record_key);
    assert_eq!(got.record, first.record);
    assert_eq!(got.reason, first.reason);
    assert_eq!(got.stage, first.stage);
    assert!(
        chrono::DateTime::parse_from_rfc3339(&got.created_at).is_ok(),
        "{}",
        got.created_at
    );
    assert_eq!((got.resolved_at, got.note), (None, None));
    assert_eq!(store.dead_letter_by_id(id3 + 100).unwrap(), None);

    store.resolve_dead_letter(id1, "replayed by hand").unwrap();
    let resolved = store.dead_letter_by_id(id1).unwrap().unwrap();
    assert!(resolved.resolved_at.is_some());
    assert_eq!(resolved.note.as_deref(), Some("replayed by hand"));

    let again = store.resolve_dead_letter(id1, "twice").unwrap_err();
    assert!(matches!(again, StateError::DeadLetterAlreadyResolved(id) if id == id1));
    let missing = store.resolve_dead_letter(id3 + 100, "x").unwrap_err();
    assert!(matches!(missing, StateError::DeadLetterNotFound(_)));
    assert_eq!(
        store
            .dead_letter_by_id(id1)
            .unwrap()
            .unwrap()
            .note
            .as_deref(),
        Some("replayed by hand"),
        "the first resolution is kept"
    );

    let ids = |filter: DeadLetterFilter| -> Vec<i64> {
        store
            .dead_letters(&filter)
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect()
    };
    assert_eq!(
        ids(DeadLetterFilter::default()),
        vec![id2, id3],
        "unresolved, oldest first"
    );
    assert_eq!(
        ids(DeadLetterFilter {
            include_resolved: true,
            ..Default::default()
        }),
        vec![id1, id2, id3]
    );
    assert_eq!(
        ids(DeadLetterFilter {
            pipeline: Some("p".into()),
            include_resolved: true,
            limit: 10
        }),
        vec![id1, id2]
    );
    assert_eq!(
        ids(DeadLetterFilter {
            pipeline: Some("p".into()),
            include_resolved: false,
            limit: 10
        }),
        vec![id2]
    );
    assert_eq!(
        ids(DeadLetterFilter {
            pipeline: None,
            include_resolved: true,
            limit: 2
        }),
        vec![id1, id2]
    );
}

#[test]
fn runs_history_is_newest_first() {
    let (_dir, store) = temp_store();
    let at = |hour| Utc.with_ymd_and_hms(2024, 5, 1, hour, 0, 0).unwrap();
    let args = json!({ "full_refresh": true, "streams": ["sales"] });
    let morning = store.start_run("p", at(9), &args, RunTrigger::Cli).unwrap();
    let noon = store
        .start_run("q", at(12), &json!({}), RunTrigger::Schedule)
        .unwrap();
    // Started later in id order but earlier in time: time decides.
    let dawn = store
        .start_run("p", at(6), &json!({}), RunTrigger::Cli)
        .unwrap();
    let evening = store
        .start_run("p", at(18), &json!({}), RunTrigger::Api)
        .unwrap();

    store
        .finish_run(morning, &summary(RunStatus::Succeeded, 10))
        .unwrap();
    store
        .finish_run(noon, &summary(RunStatus::Failed, 5))
        .unwrap();
    store
        .finish_run(dawn, &summary(RunStatus::Cancelled, 0))
        .unwrap();

    let all: Vec<i64> = store.runs(None, 10).unwrap().iter().map(|r| r.id).collect();
    assert_eq!(all, vec![evening, noon, morning, dawn]);
    let p: Vec<i64> = store
        .runs(Some("p"), 10)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(p, vec![evening, morning, dawn]);
    let latest: Vec<i64> = store
        .runs(Some("p"), 1)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(latest, vec![evening]);

    let runs = store.runs(None, 10).unwrap();
    let running = runs.iter().find(|r| r.id == evening).unwrap();
    assert_eq!(running.status, RUN_STATUS_RUNNING);
    assert_eq!(running.finished_at, None);
    assert_eq!((running.read, running.written), (0, 0));

    let done = runs.iter().find(|r| r.id == morning).unwrap();
    let expected = summary(RunStatus::Succeeded, 10);
    assert_eq!(done.pipeline, "p");
    assert_eq!(done.args, args);
    assert_eq!(done.status, "succeeded");
    assert_eq!(done.started_at, "2024-05-01T09:00:00.000000Z");
    assert_eq!(
        done.finished_at.as_deref(),
        Some("2024-05-01T12:30:00.000000Z")
    );
    assert_eq!(
        (
            done.read,
            done.written,
            done.duplicates,
            done.dead_lettered,
            done.retries
        ),
        (
            expected.read,
            expected.written,
            expected.duplicates,
            expected.dead_lettered,
            expected.retries
        )
    );
    assert_eq!(done.error, None);
    let failed = runs.iter().find(|r| r.id == noon).unwrap();
    assert_eq!(
        (failed.status.as_str(), failed.error.as_deref()),
        ("failed", Some("sink refused"))
    );
    assert_eq!(
        runs.iter().find(|r| r.id == dawn).unwrap().status,
        "cancelled"
    );

    let twice = store
        .finish_run(morning, &summary(RunStatus::Failed, 1))
        .unwrap_err();
    assert!(matches!(twice, StateError::RunAlreadyFinished(id) if id == morning));
    let missing = store
        .finish_run(evening + 100, &summary(RunStatus::Failed, 1))
        .unwrap_err();
    assert!(matches!(missing, StateError::RunNotFound(_)));
}

#[test]
fn records_serialize_to_json_for_the_cli() {
    let (_dir, store) = temp_store();
    let id = store
        .start_run("p", Utc::now(), &json!({ "a": 1 }), RunTrigger::Cli)
        .unwrap();
    let run = &store.runs(None, 1).unwrap()[0];
    let value = serde_json::to_value(run).unwrap();
    assert_eq!(value["id"], id);
    assert_eq!(value["status"], "running");
    assert_eq!(value["args"]["a"], 1);
    assert_eq!(
        serde_json::to_value(RunStatus::Cancelled).unwrap(),
        "cancelled"
    );
}

#[test]
fn kv_is_namespaced_and_replaced() {
    let (_dir, store) = temp_store();
    assert_eq!(store.kv_get("shopify", "token").unwrap(), None);
    store.kv_put("shopify", "token", "t1").unwrap();
    store.kv_put("square", "token", "s1").unwrap();
    store.kv_put("shopify", "token", "t2").unwrap();
    assert_eq!(
        store.kv_get("shopify", "token").unwrap().as_deref(),
        Some("t2")
    );
    assert_eq!(
        store.kv_get("square", "token").unwrap().as_deref(),
        Some("s1")
    );
    assert_eq!(store.kv_get("shopify", "other").unwrap(), None);
}

#[test]
fn everything_is_found_again_after_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (dl_id, run_id) = {
        let store = SqliteStore::open(&path).unwrap();
        store
            .commit_batch(
                "p",
                "sales",
                &[delivered("s-1", Some("e"))],
                Some(&json!({ "page": 2 })),
            )
            .unwrap();
        let dl_id = store.dead_letter(&new_dead_letter("p", 1)).unwrap();
        let run_id = store
            .start_run("p", Utc::now(), &json!({}), RunTrigger::Cli)
            .unwrap();
        store
            .finish_run(run_id, &summary(RunStatus::Succeeded, 4))
            .unwrap();
        store.kv_put("c", "k", "v").unwrap();
        (dl_id, run_id)
    };
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.cursor("p", "sales").unwrap(),
        Some(json!({ "page": 2 }))
    );
    assert!(store
        .delivered_keys("p", &["s-1".into()])
        .unwrap()
        .contains("s-1"));
    assert_eq!(
        store
            .dead_letter_by_id(dl_id)
            .unwrap()
            .unwrap()
            .record_key
            .as_deref(),
        Some("sale-1")
    );
    let runs = store.runs(Some("p"), 5).unwrap();
    assert_eq!((runs.len(), runs[0].id, runs[0].read), (1, run_id, 4));
    assert_eq!(store.kv_get("c", "k").unwrap().as_deref(), Some("v"));
}

#[test]
fn a_corrupt_cursor_is_reported_not_panicked() {
    let (_dir, store) = temp_store();
    store
        .conn()
        .execute(
            "INSERT INTO cursors (pipeline, stream, cursor, updated_at) VALUES ('p', 's', '{oops', 'now')",
            [],
        )
        .unwrap();
    let err = store.cursor("p", "s").unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err:?}");
}

#[test]
fn two_stores_on_one_file_write_concurrently() {
    // As two `posbridge run` processes would: separate connections to the same file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let stores: Vec<Arc<SqliteStore>> = (0..2)
        .map(|_| Arc::new(SqliteStore::open(&path).unwrap()))
        .collect();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = stores[t % 2].clone();
            std::thread::spawn(move || {
                for batch in 0..25 {
                    let items: Vec<Delivered> = (0..20)
                        .map(|i| delivered(&format!("t{t}-b{batch}-{i}"), None))
                        .collect();
                    store
                        .commit_batch(&format!("p{t}"), "sales", &items, Some(&json!(batch)))
                        .unwrap();
                    store
                        .dead_letter(&new_dead_letter(&format!("p{t}"), batch))
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let reader = SqliteStore::open(&path).unwrap();
    for t in 0..4 {
        let pipeline = format!("p{t}");
        let all: Vec<String> = (0..25)
            .flat_map(|b| (0..20).map(move |i| format!("t{t}-b{b}-{i}")))
            .collect();
        assert_eq!(reader.delivered_keys(&pipeline, &all).unwrap().len(), 500);
        assert_eq!(reader.cursor(&pipeline, "sales").unwrap(), Some(json!(24)));
    }
    let filter = DeadLetterFilter {
        pipeline: None,
        include_resolved: true,
        limit: 1_000,
    };
    assert_eq!(reader.dead_letters(&filter).unwrap().len(), 100);
}

#[test]
fn a_held_write_lock_makes_others_wait_then_report_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let holder = SqliteStore::open(&path).unwrap();
    let waiter = SqliteStore::open_with_busy_timeout(&path, Duration::from_millis(200)).unwrap();

    holder.conn().execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    let err = waiter.kv_put("c", "k", "v").unwrap_err();
    assert!(matches!(err, StateError::Busy { .. }), "{err:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "it waited for the busy timeout"
    );
    // Readers are not blocked by a writer in WAL mode.
    assert_eq!(waiter.kv_get("c", "k").unwrap(), None);

    holder.conn().execute_batch("COMMIT").unwrap();
    waiter.kv_put("c", "k", "v").unwrap();
    assert_eq!(holder.kv_get("c", "k").unwrap().as_deref(), Some("v"));
}

#[test]
fn an_in_memory_store_works_for_tests() {
    let store = SqliteStore::open_in_memory().unwrap();
    assert_eq!(store.path(), None);
    store
        .commit_batch("p", "s", &[delivered("k", None)], Some(&json!(1)))
        .unwrap();
    assert_eq!(store.cursor("p", "s").unwrap(), Some(json!(1)));
}

fn parked(key: &str) -> NewDeadLetter {
    NewDeadLetter {
        pipeline: "p".into(),
        run_id: None,
        stream: "sales".into(),
        record_key: Some(key.into()),
        record: serde_json::json!({"id": key}),
        reason: "does not reconcile".into(),
        stage: "validate".into(),
    }
}

#[test]
fn dead_letters_commit_with_the_keys_and_the_cursor() {
    let store = SqliteStore::open_in_memory().unwrap();
    let cursor = serde_json::json!({"page": 2});
    let ids = store
        .commit(
            "p",
            "sales",
            &Checkpoint {
                delivered: &[delivered("a", Some("ext-a"))],
                dead_letters: &[parked("bad-1"), parked("bad-2")],
                cursor: Some(&cursor),
            },
        )
        .unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(store.cursor("p", "sales").unwrap(), Some(cursor));
    let keys = store
        .delivered_keys("p", &["a".into(), "bad-1".into(), "bad-2".into()])
        .unwrap();
    assert_eq!(keys.len(), 3, "the parked records are in the ledger too");
    let listed = store.dead_letters(&DeadLetterFilter::default()).unwrap();
    assert_eq!(
        listed.iter().map(|d| d.id).collect::<Vec<_>>(),
        ids,
        "answered ids are the stored ones"
    );
}

#[test]
fn a_failed_checkpoint_stores_nothing_at_all() {
    let store = SqliteStore::open_in_memory().unwrap();
    // An empty key violates the ledger's CHECK: the whole transaction must roll back.
    let err = store.commit(
        "p",
        "sales",
        &Checkpoint {
            delivered: &[delivered("ok", None), delivered("", None)],
            dead_letters: &[parked("bad")],
            cursor: Some(&serde_json::json!(1)),
        },
    );
    assert!(err.is_err());
    assert_eq!(store.cursor("p", "sales").unwrap(), None);
    assert!(store
        .dead_letters(&DeadLetterFilter::default())
        .unwrap()
        .is_empty());
    assert!(store
        .delivered_keys("p", &["ok".into(), "bad".into()])
        .unwrap()
        .is_empty());
}

#[test]
fn fingerprints_come_back_with_the_keys() {
    let store = SqliteStore::open_in_memory().unwrap();
    let mut d = delivered("a", None);
    d.content_hash = Some("f00d".into());
    store
        .commit_batch("p", "sales", &[d, delivered("b", None)], None)
        .unwrap();
    let found = store
        .delivered_fingerprints("p", &["a".into(), "b".into(), "c".into()])
        .unwrap();
    assert_eq!(found.get("a"), Some(&Some("f00d".to_string())));
    assert_eq!(found.get("b"), Some(&None));
    assert!(!found.contains_key("c"));
}

#[test]
fn runs_of_a_killed_process_are_marked_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
    let mine = store
        .start_run("p", Utc::now(), &serde_json::json!({}), RunTrigger::Cli)
        .unwrap();
    // A run written by a process that has ended (on this host), and one of another host.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    let start = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s[s.rfind(')')? + 1..].to_string();
            rest.split_whitespace().nth(19).map(str::to_string)
        })
        .unwrap_or_else(|| "1".into());
    child.wait().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    {
        let conn = store.conn();
        conn.execute(
            "INSERT INTO runs (pipeline, args, started_at, status, owner)
             VALUES ('p', '{}', '2024-01-01T00:00:00.000000Z', 'running', ?1),
                    ('p', '{}', '2024-01-01T00:00:01.000000Z', 'running', 'elsewhere:1:1')",
            [format!("{host}:{pid}:{start}")],
        )
        .unwrap();
    }
    if !std::path::Path::new("/proc/self/stat").exists() {
        return; // liveness cannot be told here; nothing is marked (by design)
    }
    assert_eq!(store.mark_interrupted_runs(Some("p")).unwrap(), 1);
    let runs = store.runs(Some("p"), 10).unwrap();
    let status = |id: i64| runs.iter().find(|r| r.id == id).unwrap().status.clone();
    assert_eq!(status(mine), "running", "this process is alive");
    let killed = runs
        .iter()
        .find(|r| r.started_at.starts_with("2024-01-01T00:00:00"))
        .unwrap();
    assert_eq!(killed.status, "interrupted");
    assert!(killed.finished_at.is_some());
    assert!(killed.error.as_deref().unwrap().contains("killed"));
    let other = runs
        .iter()
        .find(|r| r.started_at.starts_with("2024-01-01T00:00:01"))
        .unwrap();
    assert_eq!(other.status, "running", "another host's run is left alone");
}

#[test]
fn each_run_keeps_why_it_started() {
    let (_dir, store) = temp_store();
    let t = Utc.with_ymd_and_hms(2024, 5, 1, 9, 0, 0).unwrap();
    for (i, trigger) in [RunTrigger::Cli, RunTrigger::Api, RunTrigger::Schedule]
        .into_iter()
        .enumerate()
    {
        store
            .start_run(
                "p",
                t + chrono::Duration::minutes(i as i64),
                &json!({}),
                trigger,
            )
            .unwrap();
    }
    let triggers: Vec<String> = store
        .runs(Some("p"), 10)
        .unwrap()
        .into_iter()
        .map(|r| r.trigger)
        .collect();
    assert_eq!(triggers, vec!["schedule", "api", "cli"]);
    let json = serde_json::to_value(&store.runs(None, 1).unwrap()[0]).unwrap();
    assert_eq!(json["trigger"], "schedule");
}

#[test]
fn schedule_progress_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let t = Utc.with_ymd_and_hms(2024, 5, 1, 9, 30, 15).unwrap();
    {
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schedule_handled_until("p").unwrap(), None);
        store
            .set_schedule_handled_until("p", t - chrono::Duration::hours(1))
            .unwrap();
        store.set_schedule_handled_until("p", t).unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schedule_handled_until("p").unwrap(), Some(t));
    assert_eq!(store.schedule_handled_until("q").unwrap(), None);
}

#[test]
fn an_idempotency_key_is_claimed_once_completed_once_and_released_only_unanswered() {
    let (_dir, store) = temp_store();
    assert_eq!(
        store.claim_idempotency_key("s", "k", "f1").unwrap(),
        IdempotencyClaim::Claimed
    );
    // Held by this (live) process: in flight for anyone else.
    assert_eq!(
        store.claim_idempotency_key("s", "k", "f1").unwrap(),
        IdempotencyClaim::InFlight {
            fingerprint: "f1".into()
        }
    );
    store
        .complete_idempotency_key("s", "k", &json!({"id": "pi_1"}))
        .unwrap();
    // A second answer does not replace the first; releasing an answered key does nothing.
    store
        .complete_idempotency_key("s", "k", &json!({"id": "pi_2"}))
        .unwrap();
    store.release_idempotency_key("s", "k").unwrap();
    assert_eq!(
        store.claim_idempotency_key("s", "k", "f2").unwrap(),
        IdempotencyClaim::Completed {
            fingerprint: "f1".into(),
            answer: json!({"id": "pi_1"})
        }
    );
    assert_eq!(
        store.claim_idempotency_key("s", "k2", "f").unwrap(),
        IdempotencyClaim::Claimed
    );
    store.release_idempotency_key("s", "k2").unwrap();
    assert_eq!(
        store.claim_idempotency_key("s", "k2", "f").unwrap(),
        IdempotencyClaim::Claimed
    );
}

#[test]
fn a_key_left_in_flight_by_a_dead_process_is_taken_over() {
    let (_dir, store) = temp_store();
    store.claim_idempotency_key("s", "k", "f").unwrap();
    // As if a killed process had claimed it: an owner on this host whose process is gone.
    let dead = format!(
        "{}:999999999:1",
        current_owner().rsplitn(3, ':').nth(2).unwrap()
    );
    store
        .conn()
        .execute("UPDATE idempotency_keys SET owner = ?1", [&dead])
        .unwrap();
    if !crate::state::run_owner::owner_is_gone(&dead) {
        return; // No /proc here: liveness cannot be told, and the key stays in flight.
    }
    assert_eq!(
        store.claim_idempotency_key("s", "k", "f").unwrap(),
        IdempotencyClaim::Claimed
    );
}

/// Each segment's level, pairs, first and last `seq`, oldest first.
fn segments_of(store: &SqliteStore) -> Vec<(i64, i64, i64, i64)> {
    store
        .conn()
        .prepare(
            "SELECT level, entries, first_seq, last_seq FROM ledger_segments ORDER BY first_seq",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Each segment's level and pairs, oldest first.
fn levels_and_pairs(store: &SqliteStore) -> Vec<(i64, i64)> {
    segments_of(store).iter().map(|s| (s.0, s.1)).collect()
}

#[test]
fn four_segments_of_one_level_are_compacted_into_one_of_the_next() {
    let dir = tempfile::tempdir().unwrap();
    // A fan-out of 4 (the default is 16: see the next test) shows two levels in a few keys.
    let store = SqliteStore::open(&dir.path().join("state.db"))
        .unwrap()
        .with_ledger_shape(10, 4);
    let all = keys("k", 0..170);
    let batch: Vec<Delivered> = all.iter().map(|k| fingerprinted(k, k)).collect();
    for chunk in batch[..30].chunks(10) {
        store.commit_batch("p", "sales", chunk, None).unwrap();
    }
    assert_eq!(
        segments_of(&store),
        [(0, 10, 1, 10), (0, 10, 11, 20), (0, 10, 21, 30)]
    );
    // The fourth segment of level 0 makes them one segment of level 1 over all their entries.
    store
        .commit_batch("p", "sales", &batch[30..40], None)
        .unwrap();
    assert_eq!(segments_of(&store), [(1, 40, 1, 40)]);
    assert_eq!(rows_in(&store, "ledger_entries"), 40);
    // Eleven more: two more of level 1 (from four of level 0 each), then three of level 0.
    for chunk in batch[40..150].chunks(10) {
        store.commit_batch("p", "sales", chunk, None).unwrap();
    }
    assert_eq!(
        levels_and_pairs(&store),
        [(1, 40), (1, 40), (1, 40), (0, 10), (0, 10), (0, 10)]
    );
    // The next makes a fourth of level 1, and the four become one of level 2.
    store
        .commit_batch("p", "sales", &batch[150..160], None)
        .unwrap();
    assert_eq!(segments_of(&store), [(2, 160, 1, 160)]);
    store
        .commit_batch("p", "sales", &batch[160..170], None)
        .unwrap();
    assert_eq!(levels_and_pairs(&store), [(2, 160), (0, 10)]);
    let found = store.delivered_fingerprints("p", &all).unwrap();
    assert_eq!(found.len(), 170);
    assert!(found.iter().all(|(k, f)| f.as_deref() == Some(k.as_str())));
    assert!(store
        .delivered_keys("p", &keys("other", 0..100))
        .unwrap()
        .is_empty());
}

#[test]
fn by_default_sixteen_segments_of_one_level_are_compacted_into_one_of_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state.db"))
        .unwrap()
        .with_ledger_merge_after(10);
    assert_eq!(ledger::SEGMENTS_PER_COMPACTION, 16);
    let all = keys("k", 0..170);
    let batch: Vec<Delivered> = all.iter().map(|k| fingerprinted(k, k)).collect();
    for chunk in batch[..150].chunks(10) {
        store.commit_batch("p", "sales", chunk, None).unwrap();
    }
    // Fifteen segments of level 0: no compaction yet, each key found in its own segment.
    let segments = levels_and_pairs(&store);
    assert_eq!(segments, vec![(0, 10); 15]);
    assert_eq!(store.delivered_keys("p", &all).unwrap().len(), 150);
    // The sixteenth makes them one segment of level 1.
    store
        .commit_batch("p", "sales", &batch[150..160], None)
        .unwrap();
    assert_eq!(segments_of(&store), [(1, 160, 1, 160)]);
    assert_eq!(rows_in(&store, "ledger_index_blocks"), 1);
    store
        .commit_batch("p", "sales", &batch[160..170], None)
        .unwrap();
    let found = store.delivered_fingerprints("p", &all).unwrap();
    assert_eq!(found.len(), 170);
    assert!(found.iter().all(|(k, f)| f.as_deref() == Some(k.as_str())));
}

/// A stand-in for a random generator (splitmix64): the test is the same on every run.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

#[test]
fn two_processes_committing_merging_compacting_and_forgetting_agree_with_a_model() {
    // The ledger's rule, kept in a map: a key's first entry counts; a forget clears a pipeline.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    // Fan-outs of 4 and 16: processes of two versions may share a file, and the rule does not
    // depend on when segments are compacted.
    let stores = [
        SqliteStore::open(&path).unwrap().with_ledger_shape(7, 4),
        SqliteStore::open(&path).unwrap().with_ledger_shape(11, 16),
    ];
    let pipelines = ["p", "q"];
    let universe: Vec<String> = keys("key", 0..120);
    let mut model: HashMap<(String, String), String> = HashMap::new();
    let mut dice = Dice(11);
    for step in 0..400 {
        let store = &stores[dice.below(2) as usize];
        let pipeline = pipelines[dice.below(2) as usize];
        if dice.below(60) == 0 {
            let forgotten = store.forget_delivered(pipeline).unwrap();
            let expected = model.keys().filter(|(p, _)| p == pipeline).count() as u64;
            assert_eq!(forgotten, expected, "step {step}: forget {pipeline}");
            model.retain(|(p, _), _| p != pipeline);
            continue;
        }
        let batch: Vec<Delivered> = (0..1 + dice.below(6))
            .map(|_| {
                let key = &universe[dice.below(universe.len() as u64) as usize];
                fingerprinted(key, &format!("{key}@{step}"))
            })
            .collect();
        store.commit_batch(pipeline, "sales", &batch, None).unwrap();
        for d in &batch {
            model
                .entry((pipeline.to_string(), d.key.clone()))
                .or_insert_with(|| d.content_hash.clone().unwrap());
        }
        // Either process answers what the model holds, for both pipelines.
        let asker = &stores[dice.below(2) as usize];
        for p in pipelines {
            let expected: HashMap<String, Option<String>> = model
                .iter()
                .filter(|((mp, _), _)| mp == p)
                .map(|((_, k), f)| (k.clone(), Some(f.clone())))
                .collect();
            assert_eq!(
                asker.delivered_fingerprints(p, &universe).unwrap(),
                expected,
                "step {step}, pipeline {p}"
            );
        }
    }
    // Merges and compactions happened on the way, by both processes.
    assert!(rows_in(&stores[0], "ledger_index_blocks") > 0);
    assert!(segments_of(&stores[0]).iter().any(|s| s.0 > 0));
}

/// Entries as the ledger of schema version 9 held them: `(table, run, key, fingerprint)`, with
/// `run` ignored for `ledger_recent`.
fn version_9_file(path: &std::path::Path, entries: &[(&str, i64, &str, &str)]) {
    let mut conn = Connection::open(path).unwrap();
    migrations::migrate(&mut conn, &migrations::MIGRATIONS[..9]).unwrap();
    for &(table, run, key, fingerprint) in entries {
        match table {
            "ledger_runs" => conn.execute(
                "INSERT INTO ledger_runs
                     (run, pipeline, idempotency_key, stream, delivered_at, content_hash)
                 VALUES (?1, 'p', ?2, 'sales', '2026-01-01T00:00:00Z', ?3)",
                params![run, key, fingerprint],
            ),
            _ => conn.execute(
                "INSERT INTO ledger_recent
                     (pipeline, idempotency_key, stream, delivered_at, content_hash)
                 VALUES ('p', ?1, 'sales', '2026-01-02T00:00:00Z', ?2)",
                params![key, fingerprint],
            ),
        }
        .unwrap();
    }
}

#[test]
fn a_ledger_of_runs_becomes_one_log_that_keeps_each_first_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    // "a" in two runs and the recent table, "b" in the newer run and the recent table.
    version_9_file(
        &path,
        &[
            ("ledger_recent", 0, "a", "a-recent"),
            ("ledger_recent", 0, "b", "b-recent"),
            ("ledger_recent", 0, "c", "c-recent"),
            ("ledger_runs", 2, "a", "a-run-2"),
            ("ledger_runs", 2, "b", "b-run-2"),
            ("ledger_runs", 1, "a", "a-run-1"),
        ],
    );
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 10);
    assert_eq!(rows_in(&store, "ledger_entries"), 6);
    let found = store
        .delivered_fingerprints("p", &["a", "b", "c", "d"].map(String::from))
        .unwrap();
    assert_eq!(
        found,
        HashMap::from([
            ("a".to_string(), Some("a-run-1".to_string())),
            ("b".to_string(), Some("b-run-2".to_string())),
            ("c".to_string(), Some("c-recent".to_string())),
        ])
    );
    // Fewer than 100,000 entries: the map holds them, no segment was written at open.
    assert_eq!(segments_of(&store), []);
}

#[test]
fn a_migrated_ledger_is_indexed_in_segments_when_the_file_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    version_9_file(&path, &[("ledger_runs", 1, "first", "first-1")]);
    {
        // 100,500 more (k-0 … k-100498, and "first" again): one segment of 100,000 is written
        // at open and 501 entries stay in the map.
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 100498)
             INSERT INTO ledger_recent
                 (pipeline, idempotency_key, stream, delivered_at, content_hash)
             SELECT 'p', 'k-' || i, 'sales', '2026-01-02T00:00:00Z', 'f-' || i FROM n",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO ledger_recent
                 (pipeline, idempotency_key, stream, delivered_at, content_hash)
             VALUES ('p', 'first', 'sales', '2026-01-02T00:00:00Z', 'first-again')",
            [],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(segments_of(&store), [(0, 100_000, 1, 100_000)]);
    assert_eq!(unindexed(&store), 501);
    let asked: Vec<String> = ["first", "k-0", "k-99998", "k-99999", "k-100498", "absent"]
        .map(String::from)
        .to_vec();
    let found = store.delivered_fingerprints("p", &asked).unwrap();
    assert_eq!(
        found,
        HashMap::from([
            ("first".to_string(), Some("first-1".to_string())),
            ("k-0".to_string(), Some("f-0".to_string())),
            ("k-99998".to_string(), Some("f-99998".to_string())),
            ("k-99999".to_string(), Some("f-99999".to_string())),
            ("k-100498".to_string(), Some("f-100498".to_string())),
        ])
    );
    // Opening again indexes nothing more.
    drop(store);
    let again = SqliteStore::open(&path).unwrap();
    assert_eq!(segments_of(&again), [(0, 100_000, 1, 100_000)]);
}

#[test]
fn a_ledger_from_before_the_runs_opens_with_its_first_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        // A file at schema version 8, with keys in the old index and in the recent table.
        let mut conn = Connection::open(&path).unwrap();
        migrations::migrate(&mut conn, &migrations::MIGRATIONS[..8]).unwrap();
        for key in keys("old", 0..500) {
            conn.execute(
                "INSERT INTO delivery_ledger
                     (pipeline, idempotency_key, stream, delivered_at, content_hash)
                 VALUES ('p', ?1, 'sales', '2026-01-01T00:00:00Z', ?1)",
                [&key],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO ledger_recent
                 (pipeline, idempotency_key, stream, delivered_at, content_hash)
             VALUES ('p', 'old-0', 'sales', '2026-01-02T00:00:00Z', 'later'),
                    ('p', 'new', 'sales', '2026-01-02T00:00:00Z', 'new')",
            [],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 10);
    assert_eq!(rows_in(&store, "ledger_entries"), 502);
    let asked: Vec<String> = keys("old", 0..500)
        .into_iter()
        .chain(["new".to_string(), "absent".to_string()])
        .collect();
    let found = store.delivered_fingerprints("p", &asked).unwrap();
    assert_eq!(found.len(), 501);
    assert_eq!(found["old-0"].as_deref(), Some("old-0"), "the first entry");
    assert_eq!(found["new"].as_deref(), Some("new"));
}

/// Another connection's writes do not evict the store's pages: each connection has a page cache
/// of its own (SQLite built without `SQLITE_ENABLE_MEMORY_MANAGEMENT`, `.cargo/config.toml`).
/// With one shared cache, a `daily_summary` run's scratch database pushed the store's pages out
/// on every sale, and the store read them back into new memory until both caches were full.
#[test]
fn another_connections_writes_leave_the_stores_pages_cached() {
    let (_dir, store) = temp_store();
    let keys = vec!["a".to_string()];
    store.delivered_fingerprints("p", &keys).unwrap();
    let misses = || {
        let (mut current, mut highest) = (0, 0);
        // SAFETY: the handle is the store's open connection, held locked for the call.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_db_status(
                store.conn().handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_CACHE_MISS,
                &mut current,
                &mut highest,
                0,
            )
        };
        assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
        current
    };
    let before = misses();
    store.delivered_fingerprints("p", &keys).unwrap();
    assert_eq!(misses(), before, "a second look-up finds its pages cached");

    // A scratch database like daily_summary's, written through a small cache: ≈ 4 MB of pages
    // pass through it.
    let scratch = Connection::open("").unwrap();
    scratch
        .execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA cache_size = -256;
             CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT);",
        )
        .unwrap();
    let filler = "x".repeat(400);
    for i in 0..10_000 {
        scratch
            .execute(
                "INSERT INTO t VALUES (?1, ?2)",
                (format!("{i:08}"), &filler),
            )
            .unwrap();
    }

    store.delivered_fingerprints("p", &keys).unwrap();
    assert_eq!(misses(), before, "the store's pages are still in its cache");
}
