//! The sales cursor: the date window being paged, or the last day fully read.

use chrono::{Duration, NaiveDate};
use posbridge_plugin_api::ConnectorError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A window of business days, paged with `offset` against `total` from `/receipts/count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub offset: u64,
    pub total: u64,
}

/// Where the sales stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SalesCursor {
    /// In the middle of a window.
    Paging { window: Window },
    /// Every receipt up to and including this day has been read.
    Synced { synced_through: NaiveDate },
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

impl SalesCursor {
    /// Reads the cursor the host hands back.
    pub fn parse(v: Option<&Value>) -> Result<Option<Self>, ConnectorError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| {
                ConnectorError::Permanent(format!(
                    "kassandro: sales cursor {v} is not understood: {e}"
                ))
            }),
        }
    }

    pub fn to_json(self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The window to page next: the saved one, or a new one after the last synced day (less the
/// overlap), or the first one. `None` when there is nothing to read (the window would be empty).
pub fn next_window(cursor: Option<SalesCursor>, b: Bounds) -> Option<Window> {
    let from = match cursor {
        Some(SalesCursor::Paging { window }) => return Some(window),
        Some(SalesCursor::Synced { synced_through }) => {
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

    #[test]
    fn first_window_uses_default_start_or_from() {
        assert_eq!(next_window(None, bounds()).unwrap().from, d("2026-01-11"));
        let b = Bounds {
            from: Some(d("2026-02-01")),
            ..bounds()
        };
        assert_eq!(next_window(None, b).unwrap().from, d("2026-02-01"));
    }

    #[test]
    fn incremental_window_overlaps() {
        let c = SalesCursor::parse(Some(&json!({"synced_through": "2026-02-08"}))).unwrap();
        let w = next_window(c, bounds()).unwrap();
        assert_eq!(
            (w.from, w.to, w.offset),
            (d("2026-02-07"), d("2026-02-10"), 0)
        );
    }

    #[test]
    fn paging_window_round_trips() {
        let w = Window {
            from: d("2026-01-01"),
            to: d("2026-01-31"),
            offset: 2000,
            total: 2345,
        };
        let v = SalesCursor::Paging { window: w }.to_json();
        assert_eq!(v["window"]["offset"], 2000);
        assert_eq!(
            next_window(SalesCursor::parse(Some(&v)).unwrap(), bounds()),
            Some(w)
        );
        assert!(SalesCursor::parse(Some(&json!({"page": 3}))).is_err());
    }

    #[test]
    fn nothing_to_read_before_from() {
        let b = Bounds {
            to: d("2026-01-01"),
            ..bounds()
        };
        assert_eq!(next_window(None, b), None);
    }
}
