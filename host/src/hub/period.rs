//! The period of an export: `from` and `to`, each a business day (`YYYY-MM-DD`, inclusive) or an
//! ISO 8601 instant (`2026-02-01T08:00:00+01:00`; without an offset it is UTC; inclusive).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

use super::error::HubError;

/// One end of a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// A whole business day (the sale's `business_day`, not its clock time).
    Day(NaiveDate),
    /// An instant, compared with the sale's `timestamp`.
    Instant(DateTime<FixedOffset>),
}

impl Bound {
    /// Parses a `from`/`to` value; `field` names it in the error.
    pub fn parse(field: &str, text: &str) -> Result<Self, HubError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(HubError::invalid(
                field,
                "is empty; give YYYY-MM-DD or an ISO 8601 date-time",
            ));
        }
        if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
            return Ok(Self::Day(d));
        }
        if let Ok(i) = DateTime::parse_from_rfc3339(t) {
            return Ok(Self::Instant(i));
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
            if let Ok(n) = NaiveDateTime::parse_from_str(t, format) {
                return Ok(Self::Instant(n.and_utc().fixed_offset()));
            }
        }
        Err(HubError::invalid(
            field,
            format!("{text:?} is not a date (YYYY-MM-DD) or an ISO 8601 date-time (e.g. 2026-02-01T08:00:00+01:00)"),
        ))
    }

    /// The day this bound falls on (for an instant: in its own offset).
    fn day(&self) -> NaiveDate {
        match self {
            Self::Day(d) => *d,
            Self::Instant(i) => i.date_naive(),
        }
    }

    /// The bound as the SQL filter compares it: a business day, or a fixed-width UTC instant.
    pub(crate) fn sql_bound(&self) -> (Option<String>, Option<String>) {
        match self {
            Self::Day(d) => (Some(d.to_string()), None),
            Self::Instant(i) => (
                None,
                Some(
                    i.with_timezone(&Utc)
                        .to_rfc3339_opts(SecondsFormat::Micros, true),
                ),
            ),
        }
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Day(d) => write!(f, "{d}"),
            Self::Instant(i) => write!(f, "{}", i.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        }
    }
}

/// An inclusive period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: Bound,
    pub to: Bound,
}

impl Period {
    /// Parses `from` and `to`; `from` after `to` is an error naming `from`.
    pub fn parse(from: &str, to: &str) -> Result<Self, HubError> {
        let period = Self {
            from: Bound::parse("from", from)?,
            to: Bound::parse("to", to)?,
        };
        let after = match (period.from, period.to) {
            (Bound::Instant(a), Bound::Instant(b)) => a > b,
            (a, b) => a.day() > b.day(),
        };
        if after {
            return Err(HubError::invalid(
                "from",
                format!("{} is after to {}", period.from, period.to),
            ));
        }
        Ok(period)
    }

    /// The period of whole business days `from..=to`.
    pub fn days(from: NaiveDate, to: NaiveDate) -> Self {
        Self {
            from: Bound::Day(from),
            to: Bound::Day(to),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_instants_parse() {
        let p = Period::parse("2026-02-01", "2026-02-27").unwrap();
        assert_eq!(
            p.from,
            Bound::Day(NaiveDate::from_ymd_opt(2026, 2, 1).unwrap())
        );
        assert_eq!(p.to.to_string(), "2026-02-27");
        let p = Period::parse("2026-02-01T08:00:00+01:00", "2026-02-01T18:00:00Z").unwrap();
        assert_eq!(
            p.from.sql_bound(),
            (None, Some("2026-02-01T07:00:00.000000Z".into()))
        );
        // No offset: UTC.
        let p = Period::parse("2026-02-01T08:00:00", "2026-02-02").unwrap();
        assert_eq!(p.from.to_string(), "2026-02-01T08:00:00Z");
    }

    #[test]
    fn bad_values_name_their_field() {
        for (from, to, field) in [
            ("2026-13-01", "2026-02-01", "from"),
            ("2026-02-01", "yesterday", "to"),
            ("", "2026-02-01", "from"),
            ("2026-02-02", "2026-02-01", "from"),
            ("2026-02-01T10:00:00Z", "2026-02-01T09:59:59Z", "from"),
        ] {
            match Period::parse(from, to) {
                Err(HubError::Invalid { field: f, message }) => {
                    assert_eq!(f, field, "{from} {to}: {message}")
                }
                other => panic!("{from} {to}: {other:?}"),
            }
        }
        // The same day twice is one day.
        assert!(Period::parse("2026-02-01", "2026-02-01").is_ok());
    }
}
