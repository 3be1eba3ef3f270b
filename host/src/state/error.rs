//! The typed error of every state store operation.

use std::error::Error as StdError;

/// What went wrong in the state store.
///
/// Backend errors carry their cause as a boxed error, so the type stays free of the types of any
/// one database library (the SQLite store today, a PostgreSQL store later).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The `--state` value could not be understood.
    #[error("invalid state location {spec:?}: {reason}")]
    InvalidSpec {
        /// The value as given.
        spec: String,
        /// Why it was refused.
        reason: String,
    },
    /// The `--state` value names a backend this build does not have yet.
    #[error(
        "state backend {scheme:?} is not supported yet; use sqlite:PATH (or a bare file path)"
    )]
    Unsupported {
        /// The URL scheme that was asked for, e.g. `postgres`.
        scheme: String,
    },
    /// Another process kept the database locked for longer than the busy timeout.
    #[error("state store is busy (another posbridge process holds the lock) while {context}")]
    Busy {
        /// What the store was doing.
        context: String,
    },
    /// The database refused a write because it breaks a constraint (e.g. an empty idempotency key).
    #[error("state store refused the write while {context}: {message}")]
    Constraint {
        /// What the store was doing.
        context: String,
        /// The database's own message.
        message: String,
    },
    /// The database file was written by a newer posbridge that knows more migrations.
    #[error("state schema version {found} is newer than this posbridge supports ({supported}); upgrade posbridge")]
    SchemaTooNew {
        /// Highest version recorded in `schema_migrations`.
        found: i64,
        /// Highest version this build knows.
        supported: i64,
    },
    /// A migration failed; it was rolled back and not recorded.
    #[error("state migration {version} ({name}) failed: {source}")]
    Migration {
        /// The migration's version number.
        version: i64,
        /// The migration's name.
        name: String,
        /// The database's error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A stored value could not be read back (e.g. a cursor that is not valid JSON).
    #[error("state store holds an unreadable {what}: {source}")]
    Corrupt {
        /// What was being read.
        what: String,
        /// Why it could not be read.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// No dead letter has this id.
    #[error("dead letter {0} does not exist")]
    DeadLetterNotFound(i64),
    /// The dead letter was already resolved; its first resolution is kept.
    #[error("dead letter {0} is already resolved")]
    DeadLetterAlreadyResolved(i64),
    /// No run has this id.
    #[error("run {0} does not exist")]
    RunNotFound(i64),
    /// The run was already finished; its first summary is kept.
    #[error("run {0} is already finished")]
    RunAlreadyFinished(i64),
    /// Any other failure of the database.
    #[error("state store error while {context}: {source}")]
    Backend {
        /// What the store was doing.
        context: String,
        /// The database's error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}
