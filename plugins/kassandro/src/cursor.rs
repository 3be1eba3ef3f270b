//! The sales cursor, on the SDK's partitioned cursor. There is one partition, `"receipts"` (the
//! account endpoint lists the receipts of every register): the last day fully read. The pass is
//! the window of days being paged, with `offset` against the `total` of `/receipts/count`.
//!
//! ```json
//! {"version": 2,
//!  "partitions": {"receipts": {"synced_through": "2026-01-31"}},
//!  "pass": {"partition": 0, "key": "receipts",
//!           "window": {"from": "2026-02-01", "to": "2026-02-10", "total": 2345}, "at": {"offset": 2000}}}
//! ```
//!
//! The private cursor of earlier versions (`{"window": {from, to, offset, total}}` while paging,
//! `{"synced_through": day}` after) is still read, so a saved cursor survives the upgrade.

use chrono::{Duration, NaiveDate};
use posbridge_plugin_api::rest::{PartitionedCursor, Pass, Position};
use posbridge_plugin_api::ConnectorError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The cursor format version (1 was the private format before the toolkit).
pub const CURSOR_VERSION: u32 = 2;
/// The one partition: every receipt of the account.
pub const PARTITION: &str = "receipts";

/// What the cursor keeps for the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Synced {
    /// Every receipt up to and including this day has been read.
    pub synced_through: NaiveDate,
}

/// The days a pass reads and how many receipts they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Days {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// `/receipts/count` of the window.
    pub total: u64,
}

/// The connector's cursor, as JSON in `Page::cursor`.
pub type Cursor = PartitionedCursor<Synced, Pass<Days>>;

/// A window of business days, paged with `offset` against `total` from `/receipts/count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub offset: u64,
    pub total: u64,
}

/// The bounds a read works with, from the request and the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// `ReadRequest::from`.
    pub from: Option<NaiveDate>,
    /// `ReadRequest::to`, else today.
    pub to: NaiveDate,
    /// Where a first read starts without `from`: `start_date`, else 30 days back.
    pub default_start: NaiveDate,
    pub overlap_days: u32,
}

/// Reads the cursor the host hands back; `None` starts afresh.
pub fn read_cursor(value: Option<&Value>) -> Result<Cursor, ConnectorError> {
    Ok(Cursor::read(
        value,
        CURSOR_VERSION,
        "kassandro",
        upgrade_private,
    )?)
}

/// The private cursor of earlier versions as version 2.
fn upgrade_private(v: &Value) -> Option<Cursor> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Private {
        Paging { window: OldWindow },
        Synced { synced_through: NaiveDate },
    }
    #[derive(Deserialize)]
    struct OldWindow {
        from: NaiveDate,
        to: NaiveDate,
        offset: u64,
        total: u64,
    }
    let mut c = Cursor::new(CURSOR_VERSION);
    match serde_json::from_value(v.clone()).ok()? {
        Private::Paging { window: w } => c.set_window(Window {
            from: w.from,
            to: w.to,
            offset: w.offset,
            total: w.total,
        }),
        Private::Synced { synced_through } => c.set_synced(synced_through),
    }
    Some(c)
}

/// What the sales reader asks of its cursor.
pub trait SalesCursor {
    /// The window in progress, if any.
    fn window(&self) -> Option<Window>;
    /// The last day fully read, if any.
    fn synced_through(&self) -> Option<NaiveDate>;
    /// Remembers the window in progress (keeping the last day fully read).
    fn set_window(&mut self, w: Window);
    /// The pass is done: every receipt through `day` has been read.
    fn set_synced(&mut self, day: NaiveDate);
}

impl SalesCursor for Cursor {
    fn window(&self) -> Option<Window> {
        let pass = self.pass.as_ref().filter(|p| p.fits(&[PARTITION.into()]))?;
        let offset = match pass.at {
            Position::Offset(n) => n,
            _ => 0,
        };
        Some(Window {
            from: pass.window.from,
            to: pass.window.to,
            offset,
            total: pass.window.total,
        })
    }

    fn synced_through(&self) -> Option<NaiveDate> {
        self.partitions.get(PARTITION).map(|s| s.synced_through)
    }

    fn set_window(&mut self, w: Window) {
        self.pass = Some(Pass {
            partition: 0,
            key: PARTITION.into(),
            window: Days {
                from: w.from,
                to: w.to,
                total: w.total,
            },
            at: Position::Offset(w.offset),
        });
    }

    fn set_synced(&mut self, day: NaiveDate) {
        self.pass = None;
        self.partitions.insert(
            PARTITION.into(),
            Synced {
                synced_through: day,
            },
        );
    }
}

/// The window to page next: the saved one, or a new one after the last synced day (less the
/// overlap), or the first one. `None` when there is nothing to read (the window would be empty).
pub fn next_window(cursor: &Cursor, b: Bounds) -> Option<Window> {
    if let Some(window) = cursor.window() {
        return Some(window);
    }
    let from = match cursor.synced_through() {
        Some(synced_through) => {
            let again = synced_through - Duration::days(b.overlap_days as i64);
            b.from.map_or(again, |f| again.max(f))
        }
        None => b.from.unwrap_or(b.default_start),
    };
    (from <= b.to).then_some(Window {
        from,
        to: b.to,
        offset: 0,
        total: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn bounds() -> Bounds {
        Bounds {
            from: None,
            to: d("2026-02-10"),
            default_start: d("2026-01-11"),
            overlap_days: 1,
        }
    }

    fn read(v: Value) -> Cursor {
        read_cursor(Some(&v)).unwrap()
    }

    #[test]
    fn first_window_uses_default_start_or_from() {
        let fresh = read_cursor(None).unwrap();
        assert_eq!(next_window(&fresh, bounds()).unwrap().from, d("2026-01-11"));
        let b = Bounds {
            from: Some(d("2026-02-01")),
            ..bounds()
        };
        assert_eq!(next_window(&fresh, b).unwrap().from, d("2026-02-01"));
    }

    #[test]
    fn incremental_window_overlaps() {
        let mut c = Cursor::new(CURSOR_VERSION);
        c.set_synced(d("2026-02-08"));
        let c = read(c.to_json());
        let w = next_window(&c, bounds()).unwrap();
        assert_eq!(
            (w.from, w.to, w.offset),
            (d("2026-02-07"), d("2026-02-10"), 0)
        );
    }

    #[test]
    fn paging_window_round_trips_beside_the_last_synced_day() {
        let w = Window {
            from: d("2026-01-01"),
            to: d("2026-01-31"),
            offset: 2000,
            total: 2345,
        };
        let mut c = Cursor::new(CURSOR_VERSION);
        c.set_synced(d("2025-12-31"));
        c.set_window(w);
        let v = c.to_json();
        assert_eq!(
            v,
            json!({"version": 2,
                   "partitions": {"receipts": {"synced_through": "2025-12-31"}},
                   "pass": {"partition": 0, "key": "receipts",
                            "window": {"from": "2026-01-01", "to": "2026-01-31", "total": 2345},
                            "at": {"offset": 2000}}})
        );
        let back = read(v);
        assert_eq!(next_window(&back, bounds()), Some(w));
        assert_eq!(back.synced_through(), Some(d("2025-12-31")));
        // Done: the pass goes, the day stays.
        let mut done = back;
        done.set_synced(d("2026-01-31"));
        assert_eq!(
            done.to_json(),
            json!({"version": 2, "partitions": {"receipts": {"synced_through": "2026-01-31"}}})
        );
    }

    #[test]
    fn the_private_cursor_of_earlier_versions_is_upgraded() {
        // Paging, as version 1 wrote it.
        let c = read(
            json!({"window": {"from": "2026-01-01", "to": "2026-01-31", "offset": 2000, "total": 2345}}),
        );
        assert_eq!(c.version, CURSOR_VERSION);
        assert_eq!(
            next_window(&c, bounds()),
            Some(Window {
                from: d("2026-01-01"),
                to: d("2026-01-31"),
                offset: 2000,
                total: 2345
            })
        );
        // Synced, as version 1 wrote it: the next window overlaps by a day.
        let c = read(json!({"synced_through": "2026-02-08"}));
        assert_eq!(c.synced_through(), Some(d("2026-02-08")));
        assert_eq!(next_window(&c, bounds()).unwrap().from, d("2026-02-07"));
        // Anything else is refused with the cursor named.
        let e = read_cursor(Some(&json!({"page": 3}))).unwrap_err();
        assert!(
            matches!(&e, ConnectorError::Permanent(m) if m.contains("kassandro: cursor {\"page\":3}")),
            "{e:?}"
        );
        assert!(read_cursor(Some(&json!({"version": 3}))).is_err());
    }

    #[test]
    fn nothing_to_read_before_from() {
        let b = Bounds {
            to: d("2026-01-01"),
            ..bounds()
        };
        assert_eq!(next_window(&Cursor::new(CURSOR_VERSION), b), None);
    }
}
