//! Europe/Vienna local time: Kassandro writes and reads `created` as local wall time without an
//! offset, so the connector derives the offset from the IANA time zone database (`chrono-tz`).

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Vienna;

/// The IANA name written into `Sale::timezone`.
pub const TIMEZONE: &str = "Europe/Vienna";

/// The same instant in Vienna local time.
pub fn to_vienna<Tz: TimeZone>(t: &DateTime<Tz>) -> DateTime<FixedOffset> {
    t.with_timezone(&Vienna).fixed_offset()
}

/// A Vienna wall time as an instant. In the autumn hour that occurs twice the earlier (summer)
/// instant is taken; a time in the spring gap (which no clock in Vienna shows) is read with the
/// winter offset, as the hour before the switch.
pub fn from_local(local: NaiveDateTime) -> DateTime<FixedOffset> {
    match Vienna.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.fixed_offset(),
        LocalResult::None => {
            let winter = FixedOffset::east_opt(3600).expect("valid offset");
            winter
                .from_local_datetime(&local)
                .single()
                .expect("a fixed offset maps every local time to one instant")
        }
    }
}

/// Today's date in Vienna at this instant.
pub fn today(now: &DateTime<Utc>) -> NaiveDate {
    to_vienna(now).date_naive()
}

/// Formats a Vienna wall time the way Kassandro writes `created`: `YYYY-MM-DDTHH:mm:ss`.
pub fn format_local<Tz: TimeZone>(t: &DateTime<Tz>) -> String {
    to_vienna(t).format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Parses `created` (`YYYY-MM-DDTHH:mm:ss`, optionally with fractional seconds). A value that
/// carries its own offset or `Z` is taken as that instant.
pub fn parse_created(s: &str) -> Option<DateTime<FixedOffset>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(to_vienna(&t));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(from_local)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUMMER: i32 = 7200;

    #[test]
    fn winter_and_summer_offsets() {
        let w = parse_created("2026-02-01T10:00:00").unwrap();
        assert_eq!(w.to_rfc3339(), "2026-02-01T10:00:00+01:00");
        let s = parse_created("2026-07-01T10:00:00").unwrap();
        assert_eq!(s.to_rfc3339(), "2026-07-01T10:00:00+02:00");
    }

    #[test]
    fn switch_days_2026() {
        // Summer time 2026: 29 March 01:00 UTC to 25 October 01:00 UTC.
        let before = DateTime::parse_from_rfc3339("2026-03-29T00:59:59Z").unwrap();
        let after = DateTime::parse_from_rfc3339("2026-03-29T01:00:00Z").unwrap();
        assert_eq!(format_local(&before), "2026-03-29T01:59:59");
        assert_eq!(format_local(&after), "2026-03-29T03:00:00");
        let before = DateTime::parse_from_rfc3339("2026-10-25T00:59:59Z").unwrap();
        let after = DateTime::parse_from_rfc3339("2026-10-25T01:00:00Z").unwrap();
        assert_eq!(format_local(&before), "2026-10-25T02:59:59");
        assert_eq!(format_local(&after), "2026-10-25T02:00:00");
    }

    #[test]
    fn the_doubled_hour_takes_the_earlier_instant_and_the_gap_the_winter_offset() {
        let doubled = parse_created("2026-10-25T02:30:00").unwrap();
        assert_eq!(doubled.to_rfc3339(), "2026-10-25T02:30:00+02:00");
        let gap = parse_created("2026-03-29T02:30:00").unwrap();
        assert_eq!(gap.to_rfc3339(), "2026-03-29T02:30:00+01:00");
    }

    #[test]
    fn round_trip_through_local_text() {
        let t = DateTime::parse_from_rfc3339("2026-05-04T18:30:15+00:00").unwrap();
        let back = parse_created(&format_local(&t)).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.offset().local_minus_utc(), SUMMER);
    }
}
