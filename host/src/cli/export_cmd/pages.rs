//! What `posbridge export` keeps of the pages it reads: the `--from`/`--to` window. The pages
//! themselves come from the one page loop (`pipeline::BlockingPageLoop`), as in `run`.

use chrono::NaiveDate;
use serde_json::Value;

/// The business-day window of `--from`/`--to`. Sources should apply it themselves (it is in
/// the read request); this drops what a source returns outside it anyway, judged by the
/// record's top-level `business_day`. Records without one are kept.
#[derive(Debug, Clone, Copy, Default)]
pub struct DayWindow {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl DayWindow {
    /// Whether `record` belongs in the export.
    pub fn contains(&self, record: &Value) -> bool {
        let Some(day) = record
            .get("business_day")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<NaiveDate>().ok())
        else {
            return true;
        };
        !matches!(self.from, Some(f) if day < f) && !matches!(self.to, Some(t) if day > t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_window_is_inclusive_and_keeps_records_without_a_business_day() {
        let w = DayWindow {
            from: NaiveDate::from_ymd_opt(2026, 2, 1),
            to: NaiveDate::from_ymd_opt(2026, 2, 3),
        };
        assert!(w.contains(&json!({"business_day": "2026-02-01"})));
        assert!(w.contains(&json!({"business_day": "2026-02-03"})));
        assert!(!w.contains(&json!({"business_day": "2026-01-31"})));
        assert!(!w.contains(&json!({"business_day": "2026-02-04"})));
        assert!(w.contains(&json!({"id": "p1"})));
        assert!(DayWindow::default().contains(&json!({"business_day": "1999-01-01"})));
    }
}
