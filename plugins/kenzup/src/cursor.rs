//! The read cursor: a watermark per shop plus the pass in progress (see "Cursor and
//! incremental reads" in `docs/connectors/kenzup.md`).

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
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

/// The pass in progress: which shop, its window, and the next page to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pass {
    /// Index into the config's `shop_uuids`.
    pub shop: usize,
    /// The shop uuid at that index, to notice a changed config.
    pub shop_uuid: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// 1-based Kenzup page to read next.
    pub page: u32,
}

/// The whole cursor, as handed back and forth with the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesCursor {
    #[serde(default)]
    pub shops: BTreeMap<String, ShopWatermark>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<Pass>,
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

impl SalesCursor {
    /// Reads the cursor the host handed back; `None` is a fresh start.
    pub fn from_value(value: Option<&Value>) -> Result<Self, ConnectorError> {
        match value {
            None | Some(Value::Null) => Ok(Self::default()),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
                ConnectorError::Config(format!(
                    "kenzup: the saved cursor {v} is not a Kenzup cursor: {e}"
                ))
            }),
        }
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The pass for `shop` (index into `shops`) with a window by `rules`; `None` past the end.
    pub fn pass_for_shop(
        &self,
        shops: &[String],
        shop: usize,
        rules: &WindowRules,
        end: NaiveDate,
    ) -> Option<Pass> {
        let uuid = shops.get(shop)?;
        let watermark = self.shops.get(uuid).map(|w| w.through);
        Some(Pass {
            shop,
            shop_uuid: uuid.clone(),
            start: rules.start(watermark),
            end,
            page: 1,
        })
    }

    /// The saved pass if it still matches the config, else a new pass from the first shop.
    pub fn current_pass(&self, shops: &[String], rules: &WindowRules) -> Option<Pass> {
        match &self.pass {
            Some(p) if shops.get(p.shop) == Some(&p.shop_uuid) && p.page >= 1 => Some(p.clone()),
            _ => self.pass_for_shop(shops, 0, rules, rules.end()),
        }
    }

    /// Marks the pass's shop complete through its window end and moves to the next shop.
    /// Returns the next shop's pass, or `None` when the pass is over (then `self.pass` is cleared).
    pub fn finish_shop(
        &mut self,
        shops: &[String],
        done: &Pass,
        rules: &WindowRules,
    ) -> Option<Pass> {
        if done.start <= done.end {
            let through = self
                .shops
                .get(&done.shop_uuid)
                .map_or(done.end, |w| w.through.max(done.end));
            self.shops
                .insert(done.shop_uuid.clone(), ShopWatermark { through });
        }
        let next = self.pass_for_shop(shops, done.shop + 1, rules, done.end);
        self.pass = next.clone();
        next
    }
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
        let mut c = SalesCursor::default();
        let p = c.current_pass(&shops, &r).unwrap();
        assert_eq!(
            (p.shop_uuid.as_str(), p.start, p.end, p.page),
            ("a", d("2026-01-11"), d("2026-02-10"), 1)
        );
        let p2 = c.finish_shop(&shops, &p, &r).unwrap();
        assert_eq!(p2.shop_uuid, "b");
        assert_eq!(c.shops["a"].through, d("2026-02-10"));
        assert!(c.finish_shop(&shops, &p2, &r).is_none());
        assert!(c.pass.is_none());
        // Round trip through JSON, then a new pass starts at the watermark minus the overlap.
        let c = SalesCursor::from_value(Some(&c.to_value())).unwrap();
        let next = c
            .current_pass(
                &shops,
                &WindowRules {
                    today: d("2026-02-12"),
                    ..r
                },
            )
            .unwrap();
        assert_eq!((next.start, next.end), (d("2026-02-09"), d("2026-02-12")));
    }

    #[test]
    fn a_pass_for_a_removed_shop_restarts_and_garbage_is_refused() {
        let shops = vec!["b".to_string()];
        let c = SalesCursor {
            shops: BTreeMap::new(),
            pass: Some(Pass {
                shop: 0,
                shop_uuid: "a".into(),
                start: d("2026-01-01"),
                end: d("2026-01-02"),
                page: 4,
            }),
        };
        let p = c.current_pass(&shops, &rules()).unwrap();
        assert_eq!((p.shop_uuid.as_str(), p.page), ("b", 1));
        assert!(matches!(
            SalesCursor::from_value(Some(&serde_json::json!({"offset": 3}))),
            Err(ConnectorError::Config(_))
        ));
    }
}
