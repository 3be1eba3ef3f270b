//! Versioned schema migrations, recorded in `schema_migrations` and applied in order, each in its
//! own transaction. A migration is never edited once released: a change is a new version.

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::db_error::DbContext;
use crate::state::records::format_timestamp;
use crate::state::StateError;

/// One step of the schema.
#[derive(Debug, Clone, Copy)]
pub(super) struct Migration {
    /// Strictly increasing from 1.
    pub version: i64,
    /// A few words for people reading `schema_migrations`.
    pub name: &'static str,
    /// The statements of the step.
    pub sql: &'static str,
}

/// The SQLite schema, oldest first.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial schema",
        sql: include_str!("migrations/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "content fingerprints and run owners",
        sql: include_str!("migrations/0002_fingerprints_and_owners.sql"),
    },
    Migration {
        version: 3,
        name: "canonical hub",
        sql: include_str!("migrations/0003_hub.sql"),
    },
    Migration {
        version: 4,
        name: "serve: api keys, stores, sealed secrets",
        sql: include_str!("migrations/0004_serve.sql"),
    },
    Migration {
        version: 5,
        name: "run triggers, schedule ticks and idempotency keys",
        sql: include_str!("migrations/0005_ops.sql"),
    },
    Migration {
        version: 6,
        name: "pipelines held by serve",
        sql: include_str!("migrations/0006_api_pipelines.sql"),
    },
    Migration {
        version: 7,
        name: "creation time of sealed secrets",
        sql: include_str!("migrations/0007_sealed_created.sql"),
    },
    Migration {
        version: 8,
        name: "recent ledger entries (a small LSM)",
        sql: include_str!("migrations/0008_ledger_recent.sql"),
    },
    Migration {
        version: 9,
        name: "the ledger's merged entries as sorted runs with filters",
        sql: include_str!("migrations/0009_ledger_runs.sql"),
    },
    Migration {
        version: 10,
        name: "the ledger as an append-only log with hash-indexed segments",
        sql: include_str!("migrations/0010_ledger_segments.sql"),
    },
];

/// Brings the database up to the last of `migrations` (which must be in increasing order).
///
/// Safe with several processes opening the same file at once: each step takes the write lock
/// (`BEGIN IMMEDIATE`) and re-checks that it was not applied meanwhile. A failing step rolls back
/// whole and is not recorded. A database from a newer posbridge is refused, not touched.
pub(super) fn migrate(conn: &mut Connection, migrations: &[Migration]) -> Result<(), StateError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TEXT NOT NULL
         )",
    )
    .context("creating schema_migrations")?;

    let supported = migrations.last().map_or(0, |m| m.version);
    let found = applied_version(conn)?;
    if found > supported {
        return Err(StateError::SchemaTooNew { found, supported });
    }

    for migration in migrations.iter().filter(|m| m.version > found) {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context("starting a migration")?;
        let already_applied = tx
            .query_row(
                "SELECT 1 FROM schema_migrations WHERE version = ?1",
                [migration.version],
                |_| Ok(()),
            )
            .optional()
            .context("reading schema_migrations")?
            .is_some();
        if !already_applied {
            tx.execute_batch(migration.sql)
                .map_err(|err| StateError::Migration {
                    version: migration.version,
                    name: migration.name.to_string(),
                    source: Box::new(err),
                })?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                (
                    migration.version,
                    migration.name,
                    format_timestamp(Utc::now()),
                ),
            )
            .context("recording a migration")?;
        }
        tx.commit().context("committing a migration")?;
    }
    Ok(())
}

/// The highest applied version, 0 for a new database.
pub(super) fn applied_version(conn: &Connection) -> Result<i64, StateError> {
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |row| row.get(0),
    )
    .context("reading schema_migrations")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(conn: &Connection) -> Vec<(i64, String)> {
        let mut stmt = conn
            .prepare("SELECT version, name FROM schema_migrations ORDER BY version")
            .unwrap();
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.map(Result::unwrap).collect()
    }

    const STEPS: &[Migration] = &[
        Migration {
            version: 1,
            name: "create t",
            sql: "CREATE TABLE t (a INTEGER)",
        },
        Migration {
            version: 2,
            name: "add b",
            sql: "ALTER TABLE t ADD COLUMN b TEXT",
        },
        Migration {
            version: 3,
            name: "fill",
            sql: "INSERT INTO t (a, b) VALUES (1, 'x')",
        },
    ];

    #[test]
    fn released_migrations_are_strictly_increasing_from_one() {
        assert_eq!(MIGRATIONS[0].version, 1);
        for pair in MIGRATIONS.windows(2) {
            assert_eq!(
                pair[1].version,
                pair[0].version + 1,
                "gap or disorder after {}",
                pair[0].version
            );
        }
    }

    #[test]
    fn applies_in_order_and_only_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        // Step 2 alters the table of step 1 and step 3 uses the column of step 2: order matters.
        migrate(&mut conn, STEPS).unwrap();
        migrate(&mut conn, STEPS).unwrap();
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1, "the data step ran once");
        let applied = versions(&conn);
        assert_eq!(
            applied,
            vec![
                (1, "create t".into()),
                (2, "add b".into()),
                (3, "fill".into())
            ]
        );
    }

    #[test]
    fn applies_only_the_new_steps_of_a_longer_list() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, &STEPS[..1]).unwrap();
        assert_eq!(applied_version(&conn).unwrap(), 1);
        migrate(&mut conn, STEPS).unwrap();
        assert_eq!(applied_version(&conn).unwrap(), 3);
    }

    #[test]
    fn a_failing_step_rolls_back_and_is_not_recorded() {
        let mut conn = Connection::open_in_memory().unwrap();
        let broken = [
            STEPS[0],
            Migration {
                version: 2,
                name: "half broken",
                sql: "CREATE TABLE u (a INTEGER); INSERT INTO nowhere VALUES (1);",
            },
        ];
        let err = migrate(&mut conn, &broken).unwrap_err();
        assert!(
            matches!(err, StateError::Migration { version: 2, .. }),
            "{err:?}"
        );
        assert_eq!(applied_version(&conn).unwrap(), 1);
        let u_exists: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'u'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            u_exists, 0,
            "the first statement of the failed step was rolled back"
        );
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, STEPS).unwrap();
        let err = migrate(&mut conn, &STEPS[..2]).unwrap_err();
        assert!(
            matches!(
                err,
                StateError::SchemaTooNew {
                    found: 3,
                    supported: 2
                }
            ),
            "{err:?}"
        );
    }
}
