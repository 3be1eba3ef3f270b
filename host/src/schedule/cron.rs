//! A pipeline's `schedule:` value, parsed once.

use chrono::{DateTime, Utc};
use croner::Cron;

/// A cron expression that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{expression:?} is not a valid cron expression ({reason}); use five fields: minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\" for 03:00 UTC every day")]
pub struct ScheduleError {
    /// The expression as given.
    pub expression: String,
    /// croner's reason.
    pub reason: String,
}

/// A parsed cron expression: minute, hour, day of month, month, day of week (or a nickname such
/// as `@daily`), evaluated in UTC.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    cron: Cron,
}

impl CronSchedule {
    /// Parses an expression; croner does the parsing.
    pub fn parse(expression: &str) -> Result<Self, ScheduleError> {
        let error = |reason: String| ScheduleError {
            expression: expression.to_string(),
            reason,
        };
        if expression.trim().is_empty() {
            return Err(error("it is empty".into()));
        }
        let cron = Cron::new(expression.trim())
            .parse()
            .map_err(|e| error(e.to_string()))?;
        Ok(Self {
            expression: expression.to_string(),
            cron,
        })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first tick strictly after `after`, if there is one.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn parses_five_fields_and_nicknames_and_finds_the_next_tick() {
        let s = CronSchedule::parse("*/15 * * * *").unwrap();
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 10, 7, 30).unwrap();
        assert_eq!(
            s.next_after(at),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 10, 15, 0).unwrap())
        );
        // Strictly after: a tick time itself gives the next one.
        let tick = Utc.with_ymd_and_hms(2026, 1, 1, 10, 15, 0).unwrap();
        assert_eq!(
            s.next_after(tick),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 10, 30, 0).unwrap())
        );
        let daily = CronSchedule::parse("@daily").unwrap();
        assert_eq!(
            daily.next_after(at),
            Some(Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap())
        );
        assert_eq!(daily.expression(), "@daily");
    }

    #[test]
    fn bad_expressions_are_refused_with_the_expression_and_a_hint() {
        for bad in ["", "  ", "every day", "61 * * * *", "* * * *", "0 25 * * *"] {
            let e = CronSchedule::parse(bad).unwrap_err();
            let m = e.to_string();
            assert_eq!(e.expression, bad);
            assert!(m.contains("not a valid cron expression"), "{bad}: {m}");
            assert!(m.contains("five fields"), "{bad}: {m}");
        }
    }
}
