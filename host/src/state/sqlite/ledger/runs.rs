//! The ledger's sorted runs: `ledger_runs (run, pipeline, idempotency_key, …)`, clustered on that
//! primary key, so each run is one stretch of the B-tree in key order, and a run with a higher
//! number holds later entries.
//!
//! - A merge writes `ledger_recent` as a new run, with the highest number: its rows go to the
//!   right edge of the B-tree, page after page, whatever the size of the ledger. (Merging into
//!   one big index instead rewrote most of its leaves each time: the cost of a merge grew with
//!   the ledger, and the run slowed down as it grew.)
//! - Each run has a Bloom filter of its keys (`ledger_run_filters`), so a look-up searches only
//!   the runs that may hold a key: for a new key, almost never one.
//! - When the [`RUNS_PER_COMPACTION`] newest runs have the same level, they are merged into one
//!   run of the next level (again written at the right edge), so there are few runs and a key is
//!   rewritten about log₁₆(ledger ÷ merge size) times.
//!
//! Of a key entered twice, the first entry counts: within a run, merges insert the oldest first
//! and ignore the rest; across runs, the lowest run number wins.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, ToSql};

use super::bloom::Bloom;
use super::row_key_hash;
use crate::state::sqlite::db_error::DbContext;
use crate::state::StateError;

/// Runs of one level merged into one of the next, by default. Each level holds at most 15 runs,
/// and a look-up asks each run's filter (in memory; a new key's probe of a run stops at its first
/// unset bit), so more runs cost little; fewer levels mean a key is copied fewer times. With 4, a
/// 1,000,000-key ledger had copied 800,000 keys in two compactions of ≈ 0.8 s each; with 16 the
/// first compaction is at 1,600,000 keys, the same copy a fan-out of 4 makes at that size
/// (`docs/decisions/010-ledger-write-amplification.md`, "Fan-out").
pub(in crate::state::sqlite) const RUNS_PER_COMPACTION: usize = 16;

/// Keys per `IN (…)` look-up: under SQLite's historical limit of 999 bound parameters.
const KEYS_PER_LOOKUP: usize = 900;

/// One sorted run, as this process loaded it.
#[derive(Debug)]
pub(super) struct Run {
    id: i64,
    bloom: Bloom,
}

/// Every run with its filter, oldest first.
pub(super) fn load(conn: &Connection) -> Result<Vec<Run>, StateError> {
    const DOING: &str = "reading the ledger's filters";
    let mut stmt = conn
        .prepare_cached("SELECT run, hashes, bloom FROM ledger_run_filters ORDER BY run")
        .context(DOING)?;
    let mut rows = stmt.query([]).context(DOING)?;
    let mut runs = Vec::new();
    while let Some(row) = rows.next().context(DOING)? {
        let id: i64 = row.get(0).context(DOING)?;
        let hashes: u32 = row.get(1).context(DOING)?;
        let bytes = row
            .get_ref(2)
            .and_then(|v| Ok(v.as_blob()?))
            .context(DOING)?;
        let bloom = Bloom::from_bytes(hashes, bytes).map_err(|e| StateError::Backend {
            context: format!("{DOING} (run {id})"),
            source: Box::new(e),
        })?;
        runs.push(Run { id, bloom });
    }
    Ok(runs)
}

/// Adds to `found` the keys of `keys` (with their `hashes`) that a run holds, each with the
/// fingerprint of its oldest entry. `conn` must be in the transaction `runs` was checked in.
pub(super) fn find(
    conn: &Connection,
    runs: &[Run],
    pipeline: &str,
    keys: &[String],
    hashes: &[u64],
    found: &mut HashMap<String, Option<String>>,
) -> Result<(), StateError> {
    const DOING: &str = "looking up delivered keys";
    let mut maybe: Vec<&str> = Vec::new();
    for run in runs {
        maybe.clear();
        maybe.extend(
            keys.iter()
                .zip(hashes)
                .filter(|(key, &hash)| run.bloom.may_contain(hash) && !found.contains_key(*key))
                .map(|(key, _)| key.as_str()),
        );
        for chunk in maybe.chunks(KEYS_PER_LOOKUP) {
            // The list is padded (with its last key again) to a power of two, so a handful of
            // cached statements serve every length a filter lets through.
            let width = chunk.len().next_power_of_two().min(KEYS_PER_LOOKUP);
            let placeholders = vec!["?"; width].join(", ");
            let sql = format!(
                "SELECT idempotency_key, content_hash FROM ledger_runs
                 WHERE run = ? AND pipeline = ? AND idempotency_key IN ({placeholders})"
            );
            let mut stmt = conn.prepare_cached(&sql).context(DOING)?;
            let mut params: Vec<&dyn ToSql> = Vec::with_capacity(width + 2);
            params.push(&run.id);
            params.push(&pipeline);
            params.extend(chunk.iter().map(|key| key as &dyn ToSql));
            let last = chunk.last().expect("chunks are never empty");
            params.resize(width + 2, last as &dyn ToSql);
            let mut rows = stmt.query(params.as_slice()).context(DOING)?;
            while let Some(row) = rows.next().context(DOING)? {
                let key: String = row.get(0).context(DOING)?;
                let fingerprint: Option<String> = row.get(1).context(DOING)?;
                // Runs come oldest first: an older run's entry stays.
                found.entry(key).or_insert(fingerprint);
            }
        }
    }
    Ok(())
}

/// Writes every row of `ledger_recent` as a new run (oldest entry of each key), with a filter of
/// `hashes` (the hash of every distinct key in the table), and empties the table. Inside the
/// merge's write transaction. Answers the rows moved.
pub(super) fn write_recent_as_run(
    conn: &Connection,
    hashes: impl Iterator<Item = u64>,
) -> Result<u64, StateError> {
    const DOING: &str = "merging recent ledger entries";
    let run = next_run(conn)?;
    // Key order: the new run is written front to back. `seq` last: of a key entered twice the
    // first entry goes in and the later one is ignored.
    let keys = conn
        .execute(
            "INSERT OR IGNORE INTO ledger_runs
                 (run, pipeline, idempotency_key, stream, external_id, delivered_at, content_hash)
             SELECT ?1, pipeline, idempotency_key, stream, external_id, delivered_at, content_hash
             FROM ledger_recent ORDER BY pipeline, idempotency_key, seq",
            [run],
        )
        .context(DOING)?;
    let moved = conn
        .execute("DELETE FROM ledger_recent", [])
        .context(DOING)?;
    if keys > 0 {
        let mut bloom = Bloom::for_keys(keys);
        hashes.for_each(|hash| bloom.insert(hash));
        store_filter(conn, run, 0, keys as i64, &bloom)?;
    }
    Ok(moved as u64)
}

/// While the `per_compaction` newest runs have one level, merges them into one run of the next
/// level. Inside the merge's write transaction.
pub(super) fn compact(conn: &Connection, per_compaction: usize) -> Result<(), StateError> {
    const DOING: &str = "compacting the ledger's runs";
    loop {
        let newest: Vec<(i64, i64)> = conn
            .prepare_cached("SELECT run, level FROM ledger_run_filters ORDER BY run DESC LIMIT ?1")
            .context(DOING)?
            .query_map([per_compaction as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .context(DOING)?
            .collect::<Result<_, _>>()
            .context(DOING)?;
        let level = match newest.first() {
            Some(&(_, level))
                if newest.len() == per_compaction && newest.iter().all(|&(_, l)| l == level) =>
            {
                level
            }
            _ => return Ok(()),
        };
        let (first, last) = (newest[newest.len() - 1].0, newest[0].0);
        let started = std::time::Instant::now();
        let run = next_run(conn)?;
        let sql = compaction_sql(newest.len());
        let ids = std::iter::once(run).chain(newest.iter().rev().map(|&(id, _)| id));
        let keys = conn
            .prepare_cached(&sql)
            .context(DOING)?
            .execute(rusqlite::params_from_iter(ids))
            .context(DOING)?;
        let copied = started.elapsed();
        // They are the newest runs, so no other run lies between `first` and `last`.
        conn.execute(
            "DELETE FROM ledger_runs WHERE run BETWEEN ?1 AND ?2",
            [first, last],
        )
        .context(DOING)?;
        conn.execute(
            "DELETE FROM ledger_run_filters WHERE run BETWEEN ?1 AND ?2",
            [first, last],
        )
        .context(DOING)?;
        let deleted = started.elapsed();
        let bloom = filter_by_scan(conn, run, keys)?;
        store_filter(conn, run, level + 1, keys as i64, &bloom)?;
        // Each step's share, to tell where a slow compaction spends its time.
        tracing::debug!(
            run,
            keys,
            copy_ms = copied.as_millis() as u64,
            delete_ms = (deleted - copied).as_millis() as u64,
            filter_ms = (started.elapsed() - deleted).as_millis() as u64,
            "compacted ledger runs"
        );
    }
}

/// Copies `runs` runs (bound as `?2`…, oldest first) into a new run (`?1`). Each is read in its
/// primary key's order and SQLite merges them (a compound SELECT's ORDER BY), so nothing is
/// sorted in a temporary B-tree. `run` last in the order: of a key in several runs, the oldest
/// entry goes in and the later ones are ignored.
pub(in crate::state::sqlite) fn compaction_sql(runs: usize) -> String {
    let each_run = "SELECT run, pipeline, idempotency_key, stream, external_id, delivered_at,
                           content_hash
                    FROM ledger_runs WHERE run = ?";
    format!(
        "INSERT OR IGNORE INTO ledger_runs
             (run, pipeline, idempotency_key, stream, external_id, delivered_at, content_hash)
         SELECT ?, pipeline, idempotency_key, stream, external_id, delivered_at, content_hash
         FROM ({} ORDER BY pipeline, idempotency_key, run)",
        vec![each_run; runs].join(" UNION ALL ")
    )
}

/// Deletes a pipeline's entries from every run and answers how many distinct keys the runs and
/// `ledger_recent` held for it (it does not touch `ledger_recent`). The filters are rebuilt so
/// they do not keep answering "maybe" for the forgotten keys. Inside a write transaction.
pub(super) fn forget(conn: &Connection, pipeline: &str) -> Result<u64, StateError> {
    const DOING: &str = "forgetting delivered keys";
    let keys: i64 = conn
        .query_row(
            "SELECT count(*) FROM (
                 SELECT idempotency_key FROM ledger_runs WHERE pipeline = ?1
                 UNION
                 SELECT idempotency_key FROM ledger_recent WHERE pipeline = ?1)",
            [pipeline],
            |r| r.get(0),
        )
        .context(DOING)?;
    let deleted = conn
        .execute("DELETE FROM ledger_runs WHERE pipeline = ?1", [pipeline])
        .context(DOING)?;
    if deleted > 0 {
        let runs: Vec<(i64, i64)> = conn
            .prepare("SELECT run, level FROM ledger_run_filters")
            .context(DOING)?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .context(DOING)?
            .collect::<Result<_, _>>()
            .context(DOING)?;
        for (run, level) in runs {
            let keys = keys_in_run(conn, run)?;
            if keys == 0 {
                conn.execute("DELETE FROM ledger_run_filters WHERE run = ?1", [run])
                    .context(DOING)?;
            } else {
                let bloom = filter_by_scan(conn, run, keys as usize)?;
                store_filter(conn, run, level, keys, &bloom)?;
            }
        }
    }
    Ok(keys as u64)
}

/// Runs without a filter: a ledger written before the runs (moved into run 1 by the migration to
/// schema version 9). Answers whether there is one, cheaply, outside a transaction.
pub(super) fn any_without_filter(conn: &Connection) -> Result<bool, StateError> {
    Ok(!runs_without_filter(conn)?.is_empty())
}

/// Builds the missing filters (see [`any_without_filter`]), with the level a run of that size
/// would have reached. Inside a write transaction.
pub(super) fn build_missing_filters(
    conn: &Connection,
    merge_at: usize,
    per_compaction: usize,
) -> Result<(), StateError> {
    for run in runs_without_filter(conn)? {
        let keys = keys_in_run(conn, run)?;
        let bloom = filter_by_scan(conn, run, keys as usize)?;
        let level = level_of(keys as usize, merge_at, per_compaction);
        store_filter(conn, run, level, keys, &bloom)?;
    }
    Ok(())
}

/// How many keys `run` holds.
fn keys_in_run(conn: &Connection, run: i64) -> Result<i64, StateError> {
    conn.query_row(
        "SELECT count(*) FROM ledger_runs WHERE run = ?1",
        [run],
        |r| r.get(0),
    )
    .context("counting a run's keys")
}

/// The level a run of `keys` keys reaches by compactions of `per_compaction` runs, starting from
/// runs of `merge_at`.
fn level_of(keys: usize, merge_at: usize, per_compaction: usize) -> i64 {
    let mut level = 0;
    let mut size = merge_at.max(1).saturating_mul(per_compaction);
    while keys >= size {
        level += 1;
        size = size.saturating_mul(per_compaction);
    }
    level
}

/// Each run number in `ledger_runs` without a filter row, by one primary-key seek per run.
fn runs_without_filter(conn: &Connection) -> Result<Vec<i64>, StateError> {
    const DOING: &str = "listing the ledger's runs";
    let mut next = conn
        .prepare_cached("SELECT run FROM ledger_runs WHERE run > ?1 ORDER BY run LIMIT 1")
        .context(DOING)?;
    let mut has_filter = conn
        .prepare_cached("SELECT 1 FROM ledger_run_filters WHERE run = ?1")
        .context(DOING)?;
    let mut missing = Vec::new();
    let mut after = i64::MIN;
    while let Some(run) = next
        .query_row([after], |r| r.get::<_, i64>(0))
        .optional()
        .context(DOING)?
    {
        if !has_filter.exists([run]).context(DOING)? {
            missing.push(run);
        }
        after = run;
    }
    Ok(missing)
}

/// The number for a new run: above every run there is.
fn next_run(conn: &Connection) -> Result<i64, StateError> {
    conn.query_row(
        "SELECT max(coalesce((SELECT max(run) FROM ledger_runs), 0),
                    coalesce((SELECT max(run) FROM ledger_run_filters), 0)) + 1",
        [],
        |r| r.get(0),
    )
    .context("numbering a ledger run")
}

/// A filter of a run's keys, read from the table (`keys` sizes it).
fn filter_by_scan(conn: &Connection, run: i64, keys: usize) -> Result<Bloom, StateError> {
    const DOING: &str = "building a ledger filter";
    let mut bloom = Bloom::for_keys(keys);
    let mut stmt = conn
        .prepare_cached("SELECT pipeline, idempotency_key FROM ledger_runs WHERE run = ?1")
        .context(DOING)?;
    let mut rows = stmt.query([run]).context(DOING)?;
    while let Some(row) = rows.next().context(DOING)? {
        bloom.insert(row_key_hash(row, 0).context(DOING)?);
    }
    Ok(bloom)
}

fn store_filter(
    conn: &Connection,
    run: i64,
    level: i64,
    keys: i64,
    bloom: &Bloom,
) -> Result<(), StateError> {
    conn.execute(
        "INSERT INTO ledger_run_filters (run, level, keys, hashes, bloom)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (run) DO UPDATE SET
             level = excluded.level, keys = excluded.keys,
             hashes = excluded.hashes, bloom = excluded.bloom",
        params![run, level, keys, bloom.hashes(), bloom.to_bytes()],
    )
    .context("storing a ledger filter")?;
    Ok(())
}
