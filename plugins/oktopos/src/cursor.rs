//! The read cursor, on the SDK's partitioned cursor: per partition (`"all"` or a cash register
//! id) the last day of the last completed window, and the pass in progress.
//!
//! ```json
//! {"version": 2,
//!  "partitions": {"3": {"synced_through": "2026-01-31"}},
//!  "pass": {"partition": 1, "key": "4", "window": {"from": "2026-01-30", "to": "2026-02-10"}, "at": {"page": 2}}}
//! ```
//!
//! Version 1 (`{"v": 1, "pass": {…}, "synced_through": {key: day}}`, before the toolkit) is
//! still read, so a saved cursor survives the upgrade.

use chrono::{Days, NaiveDate};
use posbridge_plugin_api::rest::{PartitionedCursor, Pass, Position};
use posbridge_plugin_api::ConnectorError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The cursor format version.
pub const CURSOR_VERSION: u32 = 2;

/// What the cursor keeps per partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Synced {
    /// The last day of the last completed window.
    pub synced_through: NaiveDate,
}

/// The days a pass reads, the same for every partition except its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// The first day of this partition's window.
    pub from: NaiveDate,
    /// The last day (inclusive).
    pub to: NaiveDate,
}

/// The connector's cursor, as JSON in `Page::cursor`.
pub type Cursor = PartitionedCursor<Synced, Pass<Window>>;

/// Reads a cursor handed back by the host; `None` starts afresh.
pub fn read_cursor(value: Option<&Value>) -> Result<Cursor, ConnectorError> {
    Ok(Cursor::read(value, CURSOR_VERSION, "oktopos", upgrade_v1)?)
}

/// The version 1 cursor as version 2.
fn upgrade_v1(v: &Value) -> Option<Cursor> {
    #[derive(Deserialize)]
    struct V1 {
        v: u32,
        #[serde(default)]
        pass: Option<PassV1>,
        #[serde(default)]
        synced_through: std::collections::BTreeMap<String, NaiveDate>,
    }
    #[derive(Deserialize)]
    struct PassV1 {
        to: NaiveDate,
        partition: usize,
        partition_key: String,
        from: NaiveDate,
        page: u32,
    }
    let old: V1 = serde_json::from_value(v.clone()).ok()?;
    if old.v != 1 {
        return None;
    }
    let mut c = Cursor::new(CURSOR_VERSION);
    for (key, day) in old.synced_through {
        c.partitions.insert(
            key,
            Synced {
                synced_through: day,
            },
        );
    }
    c.pass = old.pass.map(|p| Pass {
        partition: p.partition,
        key: p.partition_key,
        window: Window {
            from: p.from,
            to: p.to,
        },
        at: Position::Page(p.page.into()),
    });
    Some(c)
}

/// The first day to read for a partition: the configured or requested start, but not before
/// the last completed window minus the overlap when there is one.
pub fn start_for(cursor: &Cursor, key: &str, base: NaiveDate, overlap_days: u32) -> NaiveDate {
    match cursor.partitions.get(key) {
        Some(done) => {
            let resume = done
                .synced_through
                .checked_sub_days(Days::new(overlap_days.into()))
                .unwrap_or(done.synced_through);
            resume.max(base)
        }
        None => base,
    }
}

/// The vendor page a pass is at (1-based).
pub fn page_of(pass: &Pass<Window>) -> u32 {
    match pass.at {
        Position::Page(n) => u32::try_from(n).unwrap_or(u32::MAX).max(1),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, d).unwrap()
    }

    #[test]
    fn a_cursor_round_trips_through_json() {
        let mut c = read_cursor(None).unwrap();
        c.partitions.insert(
            "3".into(),
            Synced {
                synced_through: day(10),
            },
        );
        c.pass = Some(Pass {
            partition: 1,
            key: "3".into(),
            window: Window {
                from: day(9),
                to: day(20),
            },
            at: Position::Page(4),
        });
        let j = c.to_json();
        assert_eq!(j["version"], 2);
        assert_eq!(j["partitions"]["3"]["synced_through"], "2026-01-10");
        assert_eq!(read_cursor(Some(&j)).unwrap(), c);
    }

    #[test]
    fn a_version_1_cursor_is_read_as_it_was_written() {
        let v1 = json!({"v": 1,
            "pass": {"to": "2026-01-20", "partition": 1, "partition_key": "4", "from": "2026-01-09", "page": 3},
            "synced_through": {"3": "2026-01-10", "4": "2026-01-08"}});
        let c = read_cursor(Some(&v1)).unwrap();
        assert_eq!(c.version, CURSOR_VERSION);
        assert_eq!(c.partitions["3"].synced_through, day(10));
        assert_eq!(c.partitions["4"].synced_through, day(8));
        let pass = c.pass.unwrap();
        assert_eq!((pass.partition, pass.key.as_str()), (1, "4"));
        assert_eq!((pass.window.from, pass.window.to), (day(9), day(20)));
        assert_eq!(page_of(&pass), 3);
        // Between passes, v1 kept only `synced_through`.
        let idle = read_cursor(Some(
            &json!({"v": 1, "synced_through": {"all": "2026-01-05"}}),
        ))
        .unwrap();
        assert!(idle.pass.is_none());
        assert_eq!(idle.partitions["all"].synced_through, day(5));
    }

    #[test]
    fn resume_starts_overlap_days_before_the_synced_day_but_not_before_the_base() {
        let mut c = read_cursor(None).unwrap();
        assert_eq!(start_for(&c, "all", day(1), 1), day(1));
        c.partitions.insert(
            "all".into(),
            Synced {
                synced_through: day(10),
            },
        );
        assert_eq!(start_for(&c, "all", day(1), 1), day(9));
        assert_eq!(start_for(&c, "all", day(1), 0), day(10));
        assert_eq!(start_for(&c, "all", day(12), 1), day(12));
    }

    #[test]
    fn a_foreign_cursor_is_refused() {
        assert!(read_cursor(Some(&json!({"v": 9}))).is_err());
        assert!(read_cursor(Some(&json!({"version": 3}))).is_err());
        assert!(read_cursor(Some(&json!("x"))).is_err());
    }
}
