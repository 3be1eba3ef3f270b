//! A run killed at any commit boundary, then finished, delivers every record exactly once.
//!
//! The fault point is a state store that stops at its k-th commit: the runner has done
//! everything before it (including the sink's write of that batch) and nothing after it, which is
//! what a SIGKILL right before that commit leaves behind. Every boundary of a run is tried in
//! turn, each time on a fresh state and output, and the finished output is checked against the
//! sales to the cent.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use posbridge::pipeline::{read_pipeline, run_pipeline, NoProgress, RunOptions, RunReport};
use posbridge::runtime::CancelFlag;
use posbridge::state::{
    Checkpoint, DeadLetter, DeadLetterFilter, IdempotencyClaim, NewDeadLetter, RunRecord,
    RunSummary, RunTrigger, SqliteStore, StateError, StateStore,
};
use posbridge_e2e::*;
use rust_decimal::Decimal;
use serde_json::Value;

/// A state store that fails its `fail_at`-th commit and every one after it (the process is
/// "dead" from then on), counting the commits it let through.
struct CrashingStore {
    inner: SqliteStore,
    fail_at: Option<usize>,
    commits: AtomicUsize,
}

impl CrashingStore {
    fn new(path: &Path, fail_at: Option<usize>) -> Self {
        Self {
            inner: SqliteStore::open(path).unwrap(),
            fail_at,
            commits: AtomicUsize::new(0),
        }
    }

    /// The same store merging its recent ledger entries after `rows` rows (decision 010), so
    /// that a small run crosses merges.
    fn merging_after(self, rows: usize) -> Self {
        Self {
            // A fan-out of 4, so that a small run crosses compactions too.
            inner: self.inner.with_ledger_shape(rows, 4),
            ..self
        }
    }
}

impl StateStore for CrashingStore {
    fn cursor(&self, p: &str, s: &str) -> Result<Option<Value>, StateError> {
        self.inner.cursor(p, s)
    }
    fn commit(&self, p: &str, s: &str, cp: &Checkpoint<'_>) -> Result<Vec<i64>, StateError> {
        let n = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_at.is_some_and(|k| n >= k) {
            return Err(StateError::Backend {
                context: format!("fault point: killed before commit {n}"),
                source: "simulated crash".into(),
            });
        }
        self.inner.commit(p, s, cp)
    }
    fn delivered_fingerprints(
        &self,
        p: &str,
        keys: &[String],
    ) -> Result<HashMap<String, Option<String>>, StateError> {
        self.inner.delivered_fingerprints(p, keys)
    }
    fn reset_cursors(&self, p: &str) -> Result<(), StateError> {
        self.inner.reset_cursors(p)
    }
    fn forget_delivered(&self, p: &str) -> Result<u64, StateError> {
        self.inner.forget_delivered(p)
    }
    fn dead_letter(&self, dl: &NewDeadLetter) -> Result<i64, StateError> {
        self.inner.dead_letter(dl)
    }
    fn dead_letters(&self, f: &DeadLetterFilter) -> Result<Vec<DeadLetter>, StateError> {
        self.inner.dead_letters(f)
    }
    fn dead_letter_by_id(&self, id: i64) -> Result<Option<DeadLetter>, StateError> {
        self.inner.dead_letter_by_id(id)
    }
    fn resolve_dead_letter(&self, id: i64, note: &str) -> Result<(), StateError> {
        self.inner.resolve_dead_letter(id, note)
    }
    fn start_run(
        &self,
        p: &str,
        at: chrono::DateTime<chrono::Utc>,
        args: &Value,
        trigger: RunTrigger,
    ) -> Result<i64, StateError> {
        self.inner.start_run(p, at, args, trigger)
    }
    fn mark_interrupted_runs(&self, p: Option<&str>) -> Result<u64, StateError> {
        self.inner.mark_interrupted_runs(p)
    }
    fn finish_run(&self, id: i64, s: &RunSummary) -> Result<(), StateError> {
        self.inner.finish_run(id, s)
    }
    fn runs(&self, p: Option<&str>, limit: usize) -> Result<Vec<RunRecord>, StateError> {
        self.inner.runs(p, limit)
    }
    fn run_by_id(&self, id: i64) -> Result<Option<RunRecord>, StateError> {
        self.inner.run_by_id(id)
    }
    fn kv_get(&self, ns: &str, k: &str) -> Result<Option<String>, StateError> {
        self.inner.kv_get(ns, k)
    }
    fn kv_put(&self, ns: &str, k: &str, v: &str) -> Result<(), StateError> {
        self.inner.kv_put(ns, k, v)
    }
    fn schedule_handled_until(
        &self,
        p: &str,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StateError> {
        self.inner.schedule_handled_until(p)
    }
    fn set_schedule_handled_until(
        &self,
        p: &str,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StateError> {
        self.inner.set_schedule_handled_until(p, until)
    }
    fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<IdempotencyClaim, StateError> {
        self.inner.claim_idempotency_key(scope, key, fingerprint)
    }
    fn complete_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        answer: &Value,
    ) -> Result<(), StateError> {
        self.inner.complete_idempotency_key(scope, key, answer)
    }
    fn release_idempotency_key(&self, scope: &str, key: &str) -> Result<(), StateError> {
        self.inner.release_idempotency_key(scope, key)
    }
}

fn run_once(pipeline: &Path, store: Arc<CrashingStore>) -> RunReport {
    let (def, text) = read_pipeline(pipeline).unwrap();
    let reg = registry();
    let errs = def.validate(&reg, &text);
    assert!(errs.is_empty(), "{errs:?}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let opts = RunOptions {
        dry_run: false,
        full_refresh: false,
        from: None,
        to: None,
        cancel: CancelFlag::new(),
        progress: Arc::new(NoProgress),
        trigger: RunTrigger::Cli,
    };
    rt.block_on(run_pipeline(&def, &reg, store, opts))
}

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}

/// Gross per register, business day and tax rate: of the revenue sales, and of the closures.
fn sums_of_sales(sales: &[Value]) -> HashMap<(String, String, String), Decimal> {
    let mut want = HashMap::new();
    for s in sales {
        if s["kind"] == "training" || s["kind"] == "null_receipt" {
            continue;
        }
        for t in s["taxes"].as_array().unwrap() {
            *want
                .entry((
                    s["register_id"].as_str().unwrap().to_string(),
                    s["business_day"].as_str().unwrap().to_string(),
                    dec(&t["rate"]).normalize().to_string(),
                ))
                .or_default() += dec(&t["gross"]);
        }
    }
    want
}

fn sums_of_closures(closures: &[Value]) -> HashMap<(String, String, String), Decimal> {
    let mut got = HashMap::new();
    for c in closures {
        for t in c["taxes"].as_array().unwrap() {
            *got.entry((
                c["register_id"].as_str().unwrap().to_string(),
                c["business_day"].as_str().unwrap().to_string(),
                dec(&t["rate"]).normalize().to_string(),
            ))
            .or_default() += dec(&t["gross"]);
        }
    }
    got
}

#[test]
fn daily_summary_killed_at_every_commit_boundary_books_each_sale_once() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.ndjson");
    generate_sales_file(&input, 50_000, 21);
    let sales = read_ndjson(&input);
    let want = sums_of_sales(&sales);
    let pipeline = |dir: &Path| {
        let p = dir.join("p.yaml");
        std::fs::write(
            &p,
            format!(
                "name: daily\nsource: {{connector: generic, config: {{path: {}}}, page_size: 5000}}\n\
                 sink: {{connector: generic, mode: daily_summary, config: {{path: {}, stream: closures}}}}\n",
                input.display(),
                dir.join("closures.ndjson").display()
            ),
        )
        .unwrap();
        p
    };

    // A run without faults tells how many commit boundaries there are.
    let clean = tempfile::tempdir().unwrap();
    let store = Arc::new(CrashingStore::new(&clean.path().join("s.db"), None));
    let r = run_once(&pipeline(clean.path()), store.clone());
    assert_eq!(r.error, None, "{r:?}");
    let boundaries = store.commits.load(Ordering::SeqCst);
    assert!(
        boundaries >= 3,
        "too few commits ({boundaries}) to test anything"
    );
    let closures = read_ndjson(&clean.path().join("closures.ndjson"));
    assert_eq!(sums_of_closures(&closures), want);

    for k in 1..=boundaries {
        let dir = tempfile::tempdir().unwrap();
        let p = pipeline(dir.path());
        let state = dir.path().join("s.db");
        let crashed = run_once(&p, Arc::new(CrashingStore::new(&state, Some(k))));
        assert!(
            crashed
                .error
                .as_deref()
                .is_some_and(|e| e.contains("fault point")),
            "boundary {k}: {crashed:?}"
        );
        let finished = run_once(&p, Arc::new(CrashingStore::new(&state, None)));
        assert_eq!(finished.error, None, "boundary {k}: {finished:?}");
        let closures = read_ndjson(&dir.path().join("closures.ndjson"));
        let ids: HashSet<&str> = closures.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(
            ids.len(),
            closures.len(),
            "boundary {k}: a closure was booked twice"
        );
        assert_eq!(
            sums_of_closures(&closures),
            want,
            "boundary {k}: the closures do not sum to the sales"
        );
        // And once more: nothing new (checked at the first and last boundary; each run reads
        // all 50,000 sales again).
        if k == 1 || k == boundaries {
            let again = run_once(&p, Arc::new(CrashingStore::new(&state, None)));
            assert_eq!(again.counters.written, 0, "boundary {k}: {again:?}");
        }
    }
}

#[test]
fn per_sale_killed_at_every_commit_boundary_delivers_each_sale_once() {
    per_sale_killed_at_every_commit_boundary(None);
}

/// The same with the ledger's recent entries merged into its index after every 600 rows: kills
/// land right after merges and between them, and the restarted run reads both tables.
#[test]
fn per_sale_killed_at_every_commit_boundary_across_ledger_merges_delivers_each_sale_once() {
    per_sale_killed_at_every_commit_boundary(Some(600));
}

fn per_sale_killed_at_every_commit_boundary(merge_after: Option<usize>) {
    let store_at = |path: &Path, fail_at: Option<usize>| {
        let store = CrashingStore::new(path, fail_at);
        Arc::new(match merge_after {
            Some(rows) => store.merging_after(rows),
            None => store,
        })
    };
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.ndjson");
    generate_sales_file(&input, 3_000, 5);
    let want: HashSet<String> = read_ndjson(&input)
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    let pipeline = |dir: &Path| {
        let p = dir.join("p.yaml");
        std::fs::write(
            &p,
            format!(
                "name: per-sale\nsource: {{connector: generic, config: {{path: {}}}, page_size: 700}}\n\
                 sink: {{connector: generic, config: {{path: {}}}}}\ndelivery: {{batch_size: 250}}\n",
                input.display(),
                dir.join("out.ndjson").display()
            ),
        )
        .unwrap();
        p
    };
    let clean = tempfile::tempdir().unwrap();
    let store = store_at(&clean.path().join("s.db"), None);
    let r = run_once(&pipeline(clean.path()), store.clone());
    assert_eq!(r.error, None, "{r:?}");
    let boundaries = store.commits.load(Ordering::SeqCst);
    assert!(boundaries >= 5, "{boundaries}");
    if merge_after.is_some() {
        // The run did merge: most keys are in index segments, the rest still in the map.
        let db = rusqlite::Connection::open(clean.path().join("s.db")).unwrap();
        let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
        let indexed = count("SELECT coalesce(sum(entries), 0) FROM ledger_segments");
        let unindexed = count(
            "SELECT count(*) FROM ledger_entries
             WHERE seq > (SELECT indexed_through FROM ledger_state)",
        );
        assert!(indexed >= 2_400, "{indexed}");
        assert!(unindexed < 600, "{unindexed}");
    }
    for k in 1..=boundaries {
        let dir = tempfile::tempdir().unwrap();
        let p = pipeline(dir.path());
        let state = dir.path().join("s.db");
        let _ = run_once(&p, store_at(&state, Some(k)));
        let finished = run_once(&p, store_at(&state, None));
        assert_eq!(finished.error, None, "boundary {k}: {finished:?}");
        let out = read_ndjson(&dir.path().join("out.ndjson"));
        let got: Vec<String> = out
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        let unique: HashSet<String> = got.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            got.len(),
            "boundary {k}: a sale arrived twice"
        );
        // Invalid sales are dead-lettered, not delivered; everything else arrives.
        assert!(unique.is_subset(&want));
        let parked = SqliteStore::open(&state)
            .unwrap()
            .dead_letters(&DeadLetterFilter {
                limit: 100_000,
                ..Default::default()
            })
            .unwrap()
            .len();
        assert_eq!(
            unique.len() + parked,
            want.len(),
            "boundary {k}: a sale was lost"
        );
    }
}
