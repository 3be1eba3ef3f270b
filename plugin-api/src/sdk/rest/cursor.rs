//! A partitioned, versioned read cursor: per partition (a register, a shop, a stream) its own
//! state, plus the pass in progress, as
//! `{"version": N, "partitions": {key: state}, "pass": {...}}`.
//!
//! A cursor of an older version, or the private one a connector wrote before it used this type,
//! is read through the connector's upgrade function, so saved state survives an upgrade.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::paginate::Position;
use crate::ConnectorError;

/// Why a saved cursor cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// The saved cursor has a shape this connector cannot read.
    #[error("{vendor}: cursor {cursor} is not understood: {reason}")]
    NotUnderstood {
        /// The connector.
        vendor: String,
        /// The cursor as saved.
        cursor: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The cursor was written by a newer version of the connector.
    #[error("{vendor}: cursor version {found} was written by a newer connector (this one reads up to {supported})")]
    Newer {
        /// The connector.
        vendor: String,
        /// The cursor's version.
        found: u64,
        /// The newest version this connector reads.
        supported: u32,
    },
}

impl From<CursorError> for ConnectorError {
    fn from(e: CursorError) -> Self {
        Self::Permanent(e.to_string())
    }
}

/// The cursor. `S` is one partition's state, `P` the pass in progress.
///
/// ```
/// use posbridge_plugin_api::rest::PartitionedCursor;
/// use serde_json::json;
///
/// // Version 2 keeps a date per register; version 1 (and the connector's old private cursor)
/// // kept `{"synced_through": {register: date}}`.
/// type Cursor = PartitionedCursor<String>;
/// let old = json!({"synced_through": {"3": "2026-01-10"}});
/// let c = Cursor::read(Some(&old), 2, "acme", |v| {
///     let mut c = Cursor::new(2);
///     for (k, d) in v.get("synced_through")?.as_object()? {
///         c.partitions.insert(k.clone(), d.as_str()?.to_string());
///     }
///     Some(c)
/// })
/// .unwrap();
/// assert_eq!(c.to_json(), json!({"version": 2, "partitions": {"3": "2026-01-10"}}));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "S: Serialize, P: Serialize",
    deserialize = "S: DeserializeOwned, P: DeserializeOwned"
))]
pub struct PartitionedCursor<S, P = Value> {
    /// The cursor format's version.
    pub version: u32,
    /// Each partition's state, by key (a register, a shop, an endpoint).
    #[serde(default = "BTreeMap::new")]
    pub partitions: BTreeMap<String, S>,
    /// The pass in progress, if a read stopped inside one.
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    pub pass: Option<P>,
}

impl<S, P> PartitionedCursor<S, P>
where
    S: Serialize + DeserializeOwned,
    P: Serialize + DeserializeOwned,
{
    /// An empty cursor of `version`.
    pub fn new(version: u32) -> Self {
        Self {
            version,
            partitions: BTreeMap::new(),
            pass: None,
        }
    }

    /// Reads a saved cursor; `None` or `null` is a fresh one. A cursor of `version` is read as
    /// it is; a newer one is refused; anything else (an older version, a pre-toolkit shape)
    /// goes to `upgrade`, whose `None` means "not mine".
    pub fn read(
        saved: Option<&Value>,
        version: u32,
        vendor: &str,
        upgrade: impl FnOnce(&Value) -> Option<Self>,
    ) -> Result<Self, CursorError> {
        let value = match saved {
            None | Some(Value::Null) => return Ok(Self::new(version)),
            Some(v) => v,
        };
        let not_understood = |reason: String| CursorError::NotUnderstood {
            vendor: vendor.into(),
            cursor: value.to_string(),
            reason,
        };
        match value.get("version").and_then(Value::as_u64) {
            Some(v) if v == u64::from(version) => {
                serde_json::from_value(value.clone()).map_err(|e| not_understood(e.to_string()))
            }
            Some(v) if v > u64::from(version) => Err(CursorError::Newer {
                vendor: vendor.into(),
                found: v,
                supported: version,
            }),
            _ => match upgrade(value) {
                Some(mut c) => {
                    c.version = version;
                    Ok(c)
                }
                None => Err(not_understood(format!("no version {version} cursor"))),
            },
        }
    }

    /// The cursor as JSON, for `Page::cursor`.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A pass through the partitions, one page at a time: which partition (its index in the
/// configured order and its key, so a pass from another configuration is noticed), the window
/// `W` being read in it, and where the next page is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pass<W> {
    /// The partition's index in the configured order.
    pub partition: usize,
    /// The partition's key.
    pub key: String,
    /// The window being read in it (e.g. a day).
    pub window: W,
    /// Where the next page is.
    pub at: Position,
}

impl<W> Pass<W> {
    /// Whether the pass still fits the configured partitions.
    pub fn fits(&self, keys: &[String]) -> bool {
        keys.get(self.partition) == Some(&self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type Cursor = PartitionedCursor<u64, Pass<(u32, u32)>>;

    fn no_upgrade(_: &Value) -> Option<Cursor> {
        None
    }

    #[test]
    fn a_cursor_round_trips_and_none_is_fresh() {
        let mut c = Cursor::new(3);
        c.partitions.insert("a".into(), 7);
        c.pass = Some(Pass {
            partition: 1,
            key: "b".into(),
            window: (1, 9),
            at: Position::Page(2),
        });
        let j = c.to_json();
        assert_eq!(j["pass"]["at"], json!({"page": 2}));
        assert_eq!(Cursor::read(Some(&j), 3, "v", no_upgrade).unwrap(), c);
        assert_eq!(
            Cursor::read(None, 3, "v", no_upgrade).unwrap(),
            Cursor::new(3)
        );
        assert_eq!(
            Cursor::read(Some(&Value::Null), 3, "v", no_upgrade).unwrap(),
            Cursor::new(3)
        );
        assert_eq!(
            Cursor::new(3).to_json(),
            json!({"version": 3, "partitions": {}})
        );
    }

    #[test]
    fn older_and_foreign_cursors_go_through_the_upgrade_and_newer_are_refused() {
        // A kassandro-style private cursor: one partition, `{"synced_through": day}`.
        let legacy = json!({"synced_through": 20});
        let c = Cursor::read(Some(&legacy), 3, "v", |v| {
            let mut c = Cursor::new(1);
            c.partitions
                .insert("all".into(), v.get("synced_through")?.as_u64()?);
            Some(c)
        })
        .unwrap();
        assert_eq!((c.version, c.partitions["all"]), (3, 20));
        // An older version with its own layout.
        let v2 = json!({"version": 2, "done": {"a": 1}});
        let c = Cursor::read(Some(&v2), 3, "v", |v| {
            assert_eq!(v["version"], 2);
            let mut c = Cursor::new(2);
            c.partitions.insert("a".into(), v["done"]["a"].as_u64()?);
            Some(c)
        })
        .unwrap();
        assert_eq!(c.partitions["a"], 1);
        let e = Cursor::read(Some(&json!({"version": 4})), 3, "v", no_upgrade).unwrap_err();
        assert!(matches!(e, CursorError::Newer { found: 4, .. }));
        let e = Cursor::read(Some(&json!("x")), 3, "v", no_upgrade).unwrap_err();
        assert!(
            matches!(ConnectorError::from(e), ConnectorError::Permanent(m) if m.starts_with("v: cursor \"x\""))
        );
        // The current version with a broken body.
        assert!(Cursor::read(
            Some(&json!({"version": 3, "partitions": []})),
            3,
            "v",
            no_upgrade
        )
        .is_err());
    }

    #[test]
    fn a_pass_fits_only_its_own_configuration() {
        let p = Pass {
            partition: 1,
            key: "b".into(),
            window: (),
            at: Position::Page(1),
        };
        assert!(p.fits(&["a".into(), "b".into()]));
        assert!(!p.fits(&["b".into()]));
        assert!(!p.fits(&["a".into(), "c".into()]));
    }
}
