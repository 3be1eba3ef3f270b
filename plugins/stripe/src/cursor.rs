//! Where a list stream stands. Stripe lists newest first and pages backwards with
//! `starting_after`; a window of `created` times is paged to its end, then the newest
//! `created` seen becomes the start (`created[gte]`, inclusive) of the next read.

use chrono::{NaiveDate, NaiveTime};
use posbridge_plugin_api::ConnectorError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `created` bounds of a window (Unix seconds, both inclusive).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub gte: Option<i64>,
    pub lte: Option<i64>,
}

/// The cursor of one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ListCursor {
    /// In the middle of a window: the next page starts after `starting_after`.
    Paging {
        window: Window,
        starting_after: String,
        /// The newest `created` seen in this window so far.
        newest: Option<i64>,
    },
    /// Everything created up to this second has been read.
    Synced { synced_through: i64 },
}

impl ListCursor {
    /// Reads the cursor the host hands back.
    pub fn parse(v: Option<&Value>) -> Result<Option<Self>, ConnectorError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| {
                ConnectorError::Permanent(format!("stripe: cursor {v} is not understood: {e}"))
            }),
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The first second of a UTC day.
pub fn day_start(d: NaiveDate) -> i64 {
    d.and_time(NaiveTime::MIN).and_utc().timestamp()
}

/// The last second of a UTC day.
pub fn day_end(d: NaiveDate) -> i64 {
    day_start(d) + 86_399
}

/// The window to read and where in it to start, from the saved cursor and the request's days.
pub fn plan(
    cursor: Option<ListCursor>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    default_start: Option<NaiveDate>,
) -> (Window, Option<String>, Option<i64>) {
    let lte = to.map(day_end);
    let from = from.map(day_start);
    match cursor {
        Some(ListCursor::Paging {
            window,
            starting_after,
            newest,
        }) => (window, Some(starting_after), newest),
        Some(ListCursor::Synced { synced_through }) => {
            let gte = Some(from.map_or(synced_through, |f| f.max(synced_through)));
            (Window { gte, lte }, None, None)
        }
        None => (
            Window {
                gte: from.or(default_start.map(day_start)),
                lte,
            },
            None,
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn first_read_uses_days_in_utc() {
        let (w, after, _) = plan(None, Some(d("2026-01-01")), Some(d("2026-01-02")), None);
        assert_eq!(
            w,
            Window {
                gte: Some(1767225600),
                lte: Some(1767398399)
            }
        );
        assert_eq!(after, None);
        assert_eq!(plan(None, None, None, None).0, Window::default());
        assert_eq!(
            plan(None, None, None, Some(d("2026-01-01"))).0.gte,
            Some(1767225600)
        );
    }

    #[test]
    fn synced_read_starts_at_the_newest_second_seen() {
        let c = ListCursor::parse(Some(&json!({"synced_through": 1767300000}))).unwrap();
        let (w, after, newest) = plan(c, Some(d("2026-01-01")), None, None);
        assert_eq!(
            (w.gte, w.lte, after, newest),
            (Some(1767300000), None, None, None)
        );
    }

    #[test]
    fn paging_cursor_round_trips() {
        let c = ListCursor::Paging {
            window: Window {
                gte: Some(1),
                lte: None,
            },
            starting_after: "pi_9".into(),
            newest: Some(5),
        };
        let v = c.to_json();
        assert_eq!(v["starting_after"], "pi_9");
        assert_eq!(ListCursor::parse(Some(&v)).unwrap(), Some(c));
        assert!(ListCursor::parse(Some(&json!({"page": 3}))).is_err());
    }
}
