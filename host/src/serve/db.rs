//! [`ServeDb`]: the tables of `posbridge serve` (API keys, stores, sealed secrets; migration
//! `0004_serve.sql`) in the state database. Its statements are plain SQL that a PostgreSQL store
//! can run as they are.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use chrono::{SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::api_key::{public_prefix, NewKey, Role};
use super::vault::Sealed;
use crate::state::{SqliteStore, StateError, StateLocation, DEFAULT_BUSY_TIMEOUT};

/// Why a serve table could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ServeDbError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("state database error while {context}: {source}")]
    Backend {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("store {0:?} already exists")]
    StoreExists(String),
    #[error("no store {0:?}; create it first (POST /api/v1/stores with an admin key)")]
    UnknownStore(String),
    #[error("no API key {0:?}")]
    UnknownKey(String),
}

trait Ctx<T> {
    fn ctx(self, context: &'static str) -> Result<T, ServeDbError>;
}

impl<T> Ctx<T> for rusqlite::Result<T> {
    fn ctx(self, context: &'static str) -> Result<T, ServeDbError> {
        self.map_err(|source| ServeDbError::Backend { context, source })
    }
}

/// One API key as listed: never its secret nor its hash.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub prefix: String,
    pub role: Role,
    pub store: Option<String>,
    pub created: String,
    pub revoked: Option<String>,
}

/// What authentication needs of a key.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub id: String,
    pub secret_hash: String,
    pub role: Role,
    pub store: Option<String>,
    pub revoked: bool,
}

/// A store (merchant).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoreRecord {
    pub store_id: String,
    pub name: String,
    pub created_at: String,
}

/// The serve tables on the state database.
pub struct ServeDb {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for ServeDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeDb").field("path", &self.path).finish()
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn role_from(text: &str) -> Role {
    if text == "admin" {
        Role::Admin
    } else {
        Role::Store
    }
}

impl ServeDb {
    /// Opens the state database named by a `--state` value (migrating it like every command
    /// does) and a connection of its own for the serve tables.
    pub fn open(spec: Option<&str>) -> Result<Self, ServeDbError> {
        let path = match StateLocation::parse(spec)? {
            StateLocation::Sqlite(path) => path,
            StateLocation::Postgres(_) => {
                return Err(StateError::Unsupported {
                    scheme: "postgres".into(),
                }
                .into())
            }
        };
        // Creates the file (owner-only) and brings the schema up to date.
        drop(SqliteStore::open(&path)?);
        let conn = Connection::open(&path).ctx("opening the state database")?;
        conn.busy_timeout(DEFAULT_BUSY_TIMEOUT)
            .ctx("setting the busy timeout")?;
        conn.pragma_update(None, "synchronous", "FULL")
            .ctx("setting synchronous=FULL")?;
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the database answers a query.
    pub fn ping(&self) -> Result<(), ServeDbError> {
        self.conn()
            .query_row("SELECT COUNT(*) FROM stores", [], |r| r.get::<_, i64>(0))
            .ctx("reading stores")
            .map(|_| ())
    }

    // ---- API keys ----

    /// Makes a key; a store key needs an existing store. Answers the key (its full text is not
    /// stored anywhere) and its listing.
    pub fn create_key(
        &self,
        role: Role,
        store: Option<&str>,
    ) -> Result<(NewKey, KeyInfo), ServeDbError> {
        let store = match role {
            Role::Admin => None,
            Role::Store => Some(store.unwrap_or_default()),
        };
        if let Some(s) = store {
            if self.store(s)?.is_none() {
                return Err(ServeDbError::UnknownStore(s.to_string()));
            }
        }
        let key = NewKey::generate();
        let created = now();
        self.conn()
            .execute(
                "INSERT INTO api_keys (id, prefix, secret_hash, role, store_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    key.id,
                    key.prefix(),
                    key.secret_hash,
                    role.as_str(),
                    store,
                    created
                ],
            )
            .ctx("storing an API key")?;
        let info = KeyInfo {
            id: key.id.clone(),
            prefix: key.prefix(),
            role,
            store: store.map(str::to_string),
            created,
            revoked: None,
        };
        Ok((key, info))
    }

    /// Every key, oldest first.
    pub fn keys(&self) -> Result<Vec<KeyInfo>, ServeDbError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, role, store_id, created_at, revoked_at FROM api_keys
                 ORDER BY created_at, id",
            )
            .ctx("listing API keys")?;
        let rows = stmt
            .query_map([], |r| {
                let id: String = r.get(0)?;
                Ok(KeyInfo {
                    prefix: public_prefix(&id),
                    id,
                    role: role_from(&r.get::<_, String>(1)?),
                    store: r.get(2)?,
                    created: r.get(3)?,
                    revoked: r.get(4)?,
                })
            })
            .ctx("listing API keys")?;
        rows.collect::<rusqlite::Result<_>>()
            .ctx("listing API keys")
    }

    /// Revokes a key (by id or `pbk_<id>`); revoking twice keeps the first time.
    pub fn revoke_key(&self, id: &str) -> Result<(), ServeDbError> {
        let id = id.strip_prefix(super::api_key::KEY_PREFIX).unwrap_or(id);
        let changed = self
            .conn()
            .execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
                params![id, now()],
            )
            .ctx("revoking an API key")?;
        if changed == 0 {
            return Err(ServeDbError::UnknownKey(id.to_string()));
        }
        Ok(())
    }

    /// The key with this id, if any.
    pub fn key(&self, id: &str) -> Result<Option<KeyRecord>, ServeDbError> {
        self.conn()
            .query_row(
                "SELECT id, secret_hash, role, store_id, revoked_at FROM api_keys WHERE id = ?1",
                [id],
                |r| {
                    Ok(KeyRecord {
                        id: r.get(0)?,
                        secret_hash: r.get(1)?,
                        role: role_from(&r.get::<_, String>(2)?),
                        store: r.get(3)?,
                        revoked: r.get::<_, Option<String>>(4)?.is_some(),
                    })
                },
            )
            .optional()
            .ctx("reading an API key")
    }

    // ---- stores ----

    /// Creates a store; an existing id is [`ServeDbError::StoreExists`].
    pub fn create_store(&self, store_id: &str, name: &str) -> Result<StoreRecord, ServeDbError> {
        let record = StoreRecord {
            store_id: store_id.to_string(),
            name: name.to_string(),
            created_at: now(),
        };
        let conn = self.conn();
        let inserted = conn
            .execute(
                "INSERT INTO stores (store_id, name, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store_id) DO NOTHING",
                params![record.store_id, record.name, record.created_at],
            )
            .ctx("creating a store")?;
        if inserted == 0 {
            return Err(ServeDbError::StoreExists(store_id.to_string()));
        }
        Ok(record)
    }

    /// One store, if it exists.
    pub fn store(&self, store_id: &str) -> Result<Option<StoreRecord>, ServeDbError> {
        self.conn()
            .query_row(
                "SELECT store_id, name, created_at FROM stores WHERE store_id = ?1",
                [store_id],
                |r| {
                    Ok(StoreRecord {
                        store_id: r.get(0)?,
                        name: r.get(1)?,
                        created_at: r.get(2)?,
                    })
                },
            )
            .optional()
            .ctx("reading a store")
    }

    /// Every store, by id.
    pub fn stores(&self) -> Result<Vec<StoreRecord>, ServeDbError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT store_id, name, created_at FROM stores ORDER BY store_id")
            .ctx("listing stores")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoreRecord {
                    store_id: r.get(0)?,
                    name: r.get(1)?,
                    created_at: r.get(2)?,
                })
            })
            .ctx("listing stores")?;
        rows.collect::<rusqlite::Result<_>>().ctx("listing stores")
    }

    // ---- sealed secrets ----

    /// Stores (or replaces) the sealed value of `store` and `purpose`.
    pub fn put_secret(
        &self,
        store: &str,
        purpose: &str,
        sealed: &Sealed,
    ) -> Result<(), ServeDbError> {
        self.conn()
            .execute(
                "INSERT INTO sealed_secrets
                 (store_id, purpose, nonce, ciphertext, updated_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                 ON CONFLICT (store_id, purpose) DO UPDATE SET
                   nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                   updated_at = excluded.updated_at",
                params![
                    store,
                    purpose,
                    hex::encode(&sealed.nonce),
                    hex::encode(&sealed.ciphertext),
                    now()
                ],
            )
            .ctx("storing a sealed secret")?;
        Ok(())
    }

    /// The sealed value of `store` and `purpose`, if any.
    pub fn secret(&self, store: &str, purpose: &str) -> Result<Option<Sealed>, ServeDbError> {
        let row: Option<(String, String)> = self
            .conn()
            .query_row(
                "SELECT nonce, ciphertext FROM sealed_secrets WHERE store_id = ?1 AND purpose = ?2",
                [store, purpose],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .ctx("reading a sealed secret")?;
        Ok(row.map(|(n, c)| Sealed {
            // Written by us as hex; a damaged value fails to open like a tampered one.
            nonce: hex::decode(n).unwrap_or_default(),
            ciphertext: hex::decode(c).unwrap_or_default(),
        }))
    }

    /// What is sealed for `store` (never the values), by purpose.
    pub fn secrets_of(&self, store: &str) -> Result<Vec<SealedInfo>, ServeDbError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT purpose, COALESCE(created_at, updated_at), updated_at
                 FROM sealed_secrets WHERE store_id = ?1 ORDER BY purpose",
            )
            .ctx("listing sealed secrets")?;
        let rows = stmt
            .query_map([store], |r| {
                Ok(SealedInfo {
                    purpose: r.get(0)?,
                    created_at: r.get(1)?,
                    updated_at: r.get(2)?,
                })
            })
            .ctx("listing sealed secrets")?;
        rows.collect::<rusqlite::Result<_>>()
            .ctx("listing sealed secrets")
    }

    /// Deletes the sealed value of `store` and `purpose`; answers whether there was one.
    pub fn delete_secret(&self, store: &str, purpose: &str) -> Result<bool, ServeDbError> {
        let n = self
            .conn()
            .execute(
                "DELETE FROM sealed_secrets WHERE store_id = ?1 AND purpose = ?2",
                [store, purpose],
            )
            .ctx("deleting a sealed secret")?;
        Ok(n > 0)
    }
}

/// A sealed value as listed: where it belongs and when it was sealed, never what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedInfo {
    /// E.g. `pipeline:syncPOS:berlin-01:kassandro`, `psp`.
    pub purpose: String,
    /// When it was first sealed (RFC 3339, UTC).
    pub created_at: String,
    /// When it was last replaced.
    pub updated_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, ServeDb) {
        let dir = tempfile::tempdir().unwrap();
        let spec = format!("sqlite:{}", dir.path().join("s.db").display());
        let db = ServeDb::open(Some(&spec)).unwrap();
        (dir, db)
    }

    #[test]
    fn keys_are_stored_as_hashes_and_revoked() {
        let (_d, db) = db();
        let (key, info) = db.create_key(Role::Admin, None).unwrap();
        assert_eq!(info.role, Role::Admin);
        let rec = db.key(&key.id).unwrap().unwrap();
        assert_eq!(rec.secret_hash, key.secret_hash);
        assert!(!rec.revoked);
        let secret = key.full.rsplit('_').next().unwrap();
        let raw: String = db
            .conn()
            .query_row("SELECT prefix || secret_hash FROM api_keys", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(!raw.contains(secret), "the secret is not stored");
        db.revoke_key(&key.prefix()).unwrap();
        assert!(db.key(&key.id).unwrap().unwrap().revoked);
        assert!(matches!(
            db.revoke_key("nope"),
            Err(ServeDbError::UnknownKey(_))
        ));
    }

    #[test]
    fn a_store_key_needs_its_store() {
        let (_d, db) = db();
        assert!(matches!(
            db.create_key(Role::Store, Some("a")),
            Err(ServeDbError::UnknownStore(_))
        ));
        db.create_store("a", "A").unwrap();
        assert!(matches!(
            db.create_store("a", "again"),
            Err(ServeDbError::StoreExists(_))
        ));
        let (_, info) = db.create_key(Role::Store, Some("a")).unwrap();
        assert_eq!(info.store.as_deref(), Some("a"));
        assert_eq!(db.keys().unwrap().len(), 1);
        assert_eq!(db.stores().unwrap()[0].name, "A");
    }

    #[test]
    fn sealed_secrets_are_replaced() {
        let (_d, db) = db();
        let a = Sealed {
            nonce: vec![1; 12],
            ciphertext: vec![2; 20],
        };
        let b = Sealed {
            nonce: vec![3; 12],
            ciphertext: vec![4; 20],
        };
        assert_eq!(db.secret("s", "p").unwrap(), None);
        db.put_secret("s", "p", &a).unwrap();
        db.put_secret("s", "p", &b).unwrap();
        assert_eq!(db.secret("s", "p").unwrap(), Some(b));
    }

    #[test]
    fn sealed_secrets_are_listed_without_values_keep_their_creation_and_are_deleted() {
        let (_d, db) = db();
        let v = |n: u8| Sealed {
            nonce: vec![n; 12],
            ciphertext: vec![n; 20],
        };
        db.put_secret("s", "psp", &v(1)).unwrap();
        db.put_secret("s", "pipeline:p1", &v(2)).unwrap();
        db.put_secret("other", "psp", &v(3)).unwrap();
        let before = db.secrets_of("s").unwrap();
        let purposes: Vec<&str> = before.iter().map(|i| i.purpose.as_str()).collect();
        assert_eq!(purposes, ["pipeline:p1", "psp"]);
        std::thread::sleep(std::time::Duration::from_millis(5));
        db.put_secret("s", "psp", &v(4)).unwrap();
        let after = db.secrets_of("s").unwrap();
        assert_eq!(after[1].created_at, before[1].created_at, "kept on replace");
        assert!(after[1].updated_at > before[1].updated_at);

        assert!(db.delete_secret("s", "psp").unwrap());
        assert!(!db.delete_secret("s", "psp").unwrap(), "gone already");
        assert_eq!(db.secret("s", "psp").unwrap(), None);
        assert_eq!(
            db.secret("other", "psp").unwrap(),
            Some(v(3)),
            "other stores keep theirs"
        );
        assert_eq!(db.secrets_of("s").unwrap().len(), 1);
    }
}
