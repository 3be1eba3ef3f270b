//! Where a list stream stands, as the REST toolkit's [`PartitionedCursor`] (version 2).
//! Stripe lists newest first and pages backwards with `starting_after`; a window of `created`
//! times is paged to its end, then the newest `created` seen becomes the start (`created[gte]`,
//! inclusive) of the next read.
//!
//! One partition per Stripe list (`payment_intents`, `charges`, `refunds`, …), holding the second
//! it is synced through; the pass in progress holds the window, the newest `created` seen in
//! it and the next `starting_after`. The cursor written before version 2
//! (`{"synced_through": S}` or `{"window", "starting_after", "newest"}`) is read by [`upgrade`].

use chrono::{NaiveDate, NaiveTime};
use posbridge_plugin_api::rest::{CursorError, PartitionedCursor, Pass, Position};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The version this connector writes.
pub const VERSION: u32 = 2;

/// The `created` bounds of a window (Unix seconds, both inclusive).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub gte: Option<i64>,
    pub lte: Option<i64>,
}

/// The window of a pass and the newest `created` seen in it so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    #[serde(flatten)]
    pub window: Window,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<i64>,
}

/// The cursor of one stream: per list the second it is synced through, and the pass in progress.
pub type ListCursor = PartitionedCursor<i64, Pass<Scan>>;

/// Reads the cursor the host hands back for the list `list`.
pub fn read(saved: Option<&Value>, list: &str) -> Result<ListCursor, CursorError> {
    ListCursor::read(saved, VERSION, "stripe", |v| upgrade(v, list))
}

/// The cursor written before version 2, one of
/// `{"synced_through": S}` and `{"window": {"gte", "lte"}, "starting_after": id, "newest": S}`.
pub fn upgrade(old: &Value, list: &str) -> Option<ListCursor> {
    let mut c = ListCursor::new(VERSION);
    if let Some(s) = old.get("synced_through") {
        c.partitions.insert(list.into(), s.as_i64()?);
        return Some(c);
    }
    let window: Window = serde_json::from_value(old.get("window")?.clone()).ok()?;
    let after = old.get("starting_after")?.as_str()?;
    c.pass = Some(Pass {
        partition: 0,
        key: list.into(),
        window: Scan {
            window,
            newest: old.get("newest").and_then(Value::as_i64),
        },
        at: Position::Token(Some(after.into())),
    });
    Some(c)
}

/// The first second of a UTC day.
pub fn day_start(d: NaiveDate) -> i64 {
    d.and_time(NaiveTime::MIN).and_utc().timestamp()
}

/// The last second of a UTC day.
pub fn day_end(d: NaiveDate) -> i64 {
    day_start(d) + 86_399
}

/// The scan to read in `list` and where in it to start, from the saved cursor and the request's
/// days. A pass of another list (the configured payments object changed) is dropped.
pub fn plan(
    cursor: &ListCursor,
    list: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    default_start: Option<NaiveDate>,
) -> (Scan, Position) {
    if let Some(pass) = cursor.pass.as_ref().filter(|p| p.key == list) {
        return (pass.window, pass.at.clone());
    }
    let lte = to.map(day_end);
    let from = from.map(day_start);
    let gte = match cursor.partitions.get(list) {
        Some(&synced) => Some(from.map_or(synced, |f| f.max(synced))),
        None => from.or(default_start.map(day_start)),
    };
    let scan = Scan {
        window: Window { gte, lte },
        newest: None,
    };
    (scan, Position::Token(None))
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
        let fresh = ListCursor::new(VERSION);
        let (s, at) = plan(
            &fresh,
            "refunds",
            Some(d("2026-01-01")),
            Some(d("2026-01-02")),
            None,
        );
        assert_eq!(
            s.window,
            Window {
                gte: Some(1767225600),
                lte: Some(1767398399)
            }
        );
        assert_eq!(at, Position::Token(None));
        assert_eq!(
            plan(&fresh, "refunds", None, None, None).0.window,
            Window::default()
        );
        assert_eq!(
            plan(&fresh, "refunds", None, None, Some(d("2026-01-01")))
                .0
                .window
                .gte,
            Some(1767225600)
        );
    }

    #[test]
    fn synced_read_starts_at_the_newest_second_seen() {
        let c = read(
            Some(&json!({"version": 2, "partitions": {"refunds": 1767300000}})),
            "refunds",
        )
        .unwrap();
        let (s, at) = plan(&c, "refunds", Some(d("2026-01-01")), None, None);
        assert_eq!(
            (s.window.gte, s.window.lte, s.newest, at),
            (Some(1767300000), None, None, Position::Token(None))
        );
        // Another list has not been synced.
        assert_eq!(plan(&c, "payouts", None, None, None).0.window.gte, None);
    }

    #[test]
    fn a_pass_round_trips_and_is_kept_only_for_its_list() {
        let mut c = ListCursor::new(VERSION);
        c.pass = Some(Pass {
            partition: 0,
            key: "payment_intents".into(),
            window: Scan {
                window: Window {
                    gte: Some(1),
                    lte: None,
                },
                newest: Some(5),
            },
            at: Position::Token(Some("pi_9".into())),
        });
        let v = c.to_json();
        assert_eq!(
            v,
            json!({"version": 2, "partitions": {}, "pass": {"partition": 0,
                "key": "payment_intents", "window": {"gte": 1, "lte": null, "newest": 5},
                "at": {"token": "pi_9"}}})
        );
        let back = read(Some(&v), "payment_intents").unwrap();
        assert_eq!(back, c);
        let (s, at) = plan(&back, "payment_intents", None, None, None);
        assert_eq!(
            (s.newest, at),
            (Some(5), Position::Token(Some("pi_9".into())))
        );
        // With charges configured instead, the pass is not resumed.
        assert_eq!(
            plan(&back, "charges", None, None, None).1,
            Position::Token(None)
        );
        assert!(read(Some(&json!({"page": 3})), "refunds").is_err());
        assert!(read(Some(&json!({"version": 3})), "refunds").is_err());
    }

    /// Cursors as the connector wrote them before version 2, literally.
    #[test]
    fn the_cursors_written_before_version_2_are_still_read() {
        let synced = json!({"synced_through": 1767300000});
        let c = read(Some(&synced), "refunds").unwrap();
        assert_eq!(
            c.to_json(),
            json!({"version": 2, "partitions": {"refunds": 1767300000}})
        );
        let paging: Value = serde_json::from_str(
            r#"{"window":{"gte":1767225600,"lte":null},"starting_after":"pi_3Q","newest":1767301234}"#,
        )
        .unwrap();
        let c = read(Some(&paging), "payment_intents").unwrap();
        let (s, at) = plan(&c, "payment_intents", None, None, None);
        assert_eq!(
            s,
            Scan {
                window: Window {
                    gte: Some(1767225600),
                    lte: None
                },
                newest: Some(1767301234)
            }
        );
        assert_eq!(at, Position::Token(Some("pi_3Q".into())));
        // `newest` was null on a first page without `created`.
        let c = read(
            Some(&json!({"window": {"gte": null, "lte": 5}, "starting_after": "re_1", "newest": null})),
            "refunds",
        )
        .unwrap();
        assert_eq!(c.pass.unwrap().window.newest, None);
    }
}
