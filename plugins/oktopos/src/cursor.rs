//! The read cursor: where the current pass goes on, and per partition the last day of the last
//! completed window (from which the next pass starts, minus the overlap).

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use posbridge_plugin_api::ConnectorError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The cursor format version.
pub const CURSOR_VERSION: u32 = 1;

/// The connector's cursor, as JSON in `Page::cursor`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub v: u32,
    /// The pass in progress; `None` between passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<Pass>,
    /// Per partition key (`"all"` or a cash register id): the last day of the last completed window.
    #[serde(default)]
    pub synced_through: BTreeMap<String, NaiveDate>,
}

/// A pass through all partitions up to `to`, one vendor page at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pass {
    /// The last day of the window (inclusive), the same for every partition.
    pub to: NaiveDate,
    /// Index of the partition being read.
    pub partition: usize,
    /// Its key, so a cursor from another configuration is noticed.
    pub partition_key: String,
    /// The first day of this partition's window.
    pub from: NaiveDate,
    /// The next vendor page to fetch (1-based).
    pub page: u32,
}

impl Cursor {
    /// Reads a cursor handed back by the host; `None` starts afresh.
    pub fn from_json(value: Option<&Value>) -> Result<Self, ConnectorError> {
        match value {
            None | Some(Value::Null) => Ok(Self {
                v: CURSOR_VERSION,
                ..Self::default()
            }),
            Some(v) => {
                let c: Cursor = serde_json::from_value(v.clone()).map_err(|e| {
                    ConnectorError::Permanent(format!("oktopos: cursor {v} is not understood: {e}"))
                })?;
                if c.v != CURSOR_VERSION {
                    return Err(ConnectorError::Permanent(format!(
                        "oktopos: cursor version {} is not {CURSOR_VERSION}",
                        c.v
                    )));
                }
                Ok(c)
            }
        }
    }

    /// The cursor as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The first day to read for a partition: the configured or requested start, but not before
    /// the last completed window minus the overlap when there is one.
    pub fn start_for(&self, key: &str, base: NaiveDate, overlap_days: u32) -> NaiveDate {
        match self.synced_through.get(key) {
            Some(done) => {
                let resume = done
                    .checked_sub_days(Days::new(overlap_days.into()))
                    .unwrap_or(*done);
                resume.max(base)
            }
            None => base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, d).unwrap()
    }

    #[test]
    fn a_cursor_round_trips_through_json() {
        let mut c = Cursor::from_json(None).unwrap();
        c.synced_through.insert("3".into(), day(10));
        c.pass = Some(Pass {
            to: day(20),
            partition: 1,
            partition_key: "3".into(),
            from: day(9),
            page: 4,
        });
        assert_eq!(Cursor::from_json(Some(&c.to_json())).unwrap(), c);
    }

    #[test]
    fn resume_starts_overlap_days_before_the_synced_day_but_not_before_the_base() {
        let mut c = Cursor::from_json(None).unwrap();
        assert_eq!(c.start_for("all", day(1), 1), day(1));
        c.synced_through.insert("all".into(), day(10));
        assert_eq!(c.start_for("all", day(1), 1), day(9));
        assert_eq!(c.start_for("all", day(1), 0), day(10));
        assert_eq!(c.start_for("all", day(12), 1), day(12));
    }

    #[test]
    fn a_foreign_cursor_is_refused() {
        assert!(Cursor::from_json(Some(&serde_json::json!({"v": 9}))).is_err());
        assert!(Cursor::from_json(Some(&serde_json::json!("x"))).is_err());
    }
}
