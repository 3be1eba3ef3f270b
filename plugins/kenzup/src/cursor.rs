//! The read cursor: a watermark per shop plus the pass in progress (see "Cursor and
//! incremental reads" in `docs/connectors/kenzup.md`).

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use posbridge_plugin_api::rest::{self, PartitionedCursor, Position};
use posbridge_plugin_api::ConnectorError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How far back the first read goes when neither the run nor the config says.
pub const DEFAULT_LOOKBACK_DAYS: u64 = 30;

/// The last day completely read for one shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopWatermark {
    pub through: NaiveDate,
}

/// The days a shop's pass reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// The pass in progress: which shop (index into the config's `shop_uuids` and the uuid, to
/// notice a changed config), its window, and the next page to read (1-based).
pub type Pass = rest::Pass<Window>;

/// The cursor format version.
pub const CURSOR_VERSION: u32 = 1;

/// The whole cursor, as handed back and forth with the host:
/// `{"version": 1, "partitions": {shop: {"through": day}}, "pass": {...}}`.
pub type SalesCursor = PartitionedCursor<ShopWatermark, Pass>;

/// The cursor written before the SDK's cursor type, still read so saved state survives.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Unversioned {
    #[serde(default)]
    shops: BTreeMap<String, ShopWatermark>,
    #[serde(default)]
    pass: Option<UnversionedPass>,
}

#[derive(Deserialize)]
struct UnversionedPass {
    shop: usize,
    shop_uuid: String,
    start: NaiveDate,
    end: NaiveDate,
    page: u32,
}

fn upgrade(v: &Value) -> Option<SalesCursor> {
    let old: Unversioned = serde_json::from_value(v.clone()).ok()?;
    let mut c = SalesCursor::new(CURSOR_VERSION);
    c.partitions = old.shops;
    c.pass = old.pass.map(|p| Pass {
        partition: p.shop,
        key: p.shop_uuid,
        window: Window {
            start: p.start,
            end: p.end,
        },
        at: Position::Page(p.page.into()),
    });
    Some(c)
}

/// Reads the cursor the host handed back; `None` is a fresh start.
pub fn read_cursor(value: Option<&Value>) -> Result<SalesCursor, ConnectorError> {
    SalesCursor::read(value, CURSOR_VERSION, "kenzup", upgrade)
        .map_err(|e| ConnectorError::Config(format!("{e} (not a Kenzup cursor)")))
}

/// The Kenzup page a pass is at (1-based).
pub fn page_of(pass: &Pass) -> u32 {
    match pass.at {
        Position::Page(n) => u32::try_from(n).unwrap_or(u32::MAX),
        _ => 0,
    }
}

/// What decides a shop's window: the config, the run's bounds and today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRules {
    pub overlap_days: u32,
    pub start_date: Option<NaiveDate>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub today: NaiveDate,
}

impl WindowRules {
    /// The last day of a new pass: the run's `to`, else today.
    pub fn end(&self) -> NaiveDate {
        self.to.unwrap_or(self.today)
    }

    /// The first day of a shop's window, given its watermark.
    pub fn start(&self, watermark: Option<NaiveDate>) -> NaiveDate {
        match watermark {
            Some(through) => {
                let resume = through
                    .checked_sub_days(Days::new(self.overlap_days.into()))
                    .unwrap_or(through);
                self.from.map_or(resume, |from| resume.max(from))
            }
            None => self.from.or(self.start_date).unwrap_or_else(|| {
                self.today
                    .checked_sub_days(Days::new(DEFAULT_LOOKBACK_DAYS))
                    .unwrap_or(self.today)
            }),
        }
    }
}

/// The pass for `shop` (index into `shops`) with a window by `rules`; `None` past the end.
pub fn pass_for_shop(
    cursor: &SalesCursor,
    shops: &[String],
    shop: usize,
    rules: &WindowRules,
    end: NaiveDate,
) -> Option<Pass> {
    let uuid = shops.get(shop)?;
    let watermark = cursor.partitions.get(uuid).map(|w| w.through);
    Some(Pass {
        partition: shop,
        key: uuid.clone(),
        window: Window {
            start: rules.start(watermark),
            end,
        },
        at: Position::Page(1),
    })
}

/// The saved pass if it still matches the config, else a new pass from the first shop.
pub fn current_pass(cursor: &SalesCursor, shops: &[String], rules: &WindowRules) -> Option<Pass> {
    match &cursor.pass {
        Some(p) if p.fits(shops) && page_of(p) >= 1 => Some(p.clone()),
        _ => pass_for_shop(cursor, shops, 0, rules, rules.end()),
    }
}

/// Marks the pass's shop complete through its window end and moves to the next shop.
/// Returns the next shop's pass, or `None` when the pass is over (then `cursor.pass` is cleared).
pub fn finish_shop(
    cursor: &mut SalesCursor,
    shops: &[String],
    done: &Pass,
    rules: &WindowRules,
) -> Option<Pass> {
    let Window { start, end } = done.window;
    if start <= end {
        let through = cursor
            .partitions
            .get(&done.key)
            .map_or(end, |w| w.through.max(end));
        cursor
            .partitions
            .insert(done.key.clone(), ShopWatermark { through });
    }
    let next = pass_for_shop(cursor, shops, done.partition + 1, rules, end);
    cursor.pass = next.clone();
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn rules() -> WindowRules {
        WindowRules {
            overlap_days: 1,
            start_date: None,
            from: None,
            to: None,
            today: d("2026-02-10"),
        }
    }

    #[test]
    fn window_start_rules() {
        let r = rules();
        assert_eq!(r.start(None), d("2026-01-11"));
        assert_eq!(
            WindowRules {
                start_date: Some(d("2026-01-01")),
                ..r
            }
            .start(None),
            d("2026-01-01")
        );
        assert_eq!(
            WindowRules {
                from: Some(d("2026-02-01")),
                start_date: Some(d("2026-01-01")),
                ..r
            }
            .start(None),
            d("2026-02-01")
        );
        assert_eq!(r.start(Some(d("2026-02-05"))), d("2026-02-04"));
        assert_eq!(
            WindowRules {
                overlap_days: 0,
                ..r
            }
            .start(Some(d("2026-02-05"))),
            d("2026-02-05")
        );
        assert_eq!(
            WindowRules {
                from: Some(d("2026-02-05")),
                ..r
            }
            .start(Some(d("2026-02-01"))),
            d("2026-02-05")
        );
        assert_eq!(r.end(), d("2026-02-10"));
        assert_eq!(
            WindowRules {
                to: Some(d("2026-02-03")),
                ..r
            }
            .end(),
            d("2026-02-03")
        );
    }

    #[test]
    fn a_pass_walks_the_shops_and_sets_watermarks() {
        let shops = vec!["a".to_string(), "b".to_string()];
        let r = rules();
        let mut c = read_cursor(None).unwrap();
        let p = current_pass(&c, &shops, &r).unwrap();
        assert_eq!(
            (p.key.as_str(), p.window.start, p.window.end, page_of(&p)),
            ("a", d("2026-01-11"), d("2026-02-10"), 1)
        );
        let p2 = finish_shop(&mut c, &shops, &p, &r).unwrap();
        assert_eq!(p2.key, "b");
        assert_eq!(c.partitions["a"].through, d("2026-02-10"));
        assert!(finish_shop(&mut c, &shops, &p2, &r).is_none());
        assert!(c.pass.is_none());
        // Round trip through JSON, then a new pass starts at the watermark minus the overlap.
        let j = c.to_json();
        assert_eq!(j["version"], 1);
        assert_eq!(j["partitions"]["a"]["through"], "2026-02-10");
        let c = read_cursor(Some(&j)).unwrap();
        let next = current_pass(
            &c,
            &shops,
            &WindowRules {
                today: d("2026-02-12"),
                ..r
            },
        )
        .unwrap();
        assert_eq!(
            (next.window.start, next.window.end),
            (d("2026-02-09"), d("2026-02-12"))
        );
    }

    #[test]
    fn the_cursor_written_before_the_toolkit_is_still_read() {
        let old = serde_json::json!({
            "shops": {"a": {"through": "2026-02-05"}},
            "pass": {"shop": 1, "shop_uuid": "b", "start": "2026-01-11", "end": "2026-02-10", "page": 3}
        });
        let c = read_cursor(Some(&old)).unwrap();
        assert_eq!(c.partitions["a"].through, d("2026-02-05"));
        let p = current_pass(&c, &["a".into(), "b".into()], &rules()).unwrap();
        assert_eq!((p.key.as_str(), page_of(&p)), ("b", 3));
        assert_eq!(p.window.start, d("2026-01-11"));
    }

    #[test]
    fn a_pass_for_a_removed_shop_restarts_and_garbage_is_refused() {
        let shops = vec!["b".to_string()];
        let mut c = read_cursor(None).unwrap();
        c.pass = Some(Pass {
            partition: 0,
            key: "a".into(),
            window: Window {
                start: d("2026-01-01"),
                end: d("2026-01-02"),
            },
            at: Position::Page(4),
        });
        let p = current_pass(&c, &shops, &rules()).unwrap();
        assert_eq!((p.key.as_str(), page_of(&p)), ("b", 1));
        assert!(matches!(
            read_cursor(Some(&serde_json::json!({"offset": 3}))),
            Err(ConnectorError::Config(_))
        ));
    }
}
