//! Europe/Vienna local time: Kassandro writes and reads `created` as local wall time without an
//! offset, so the connector derives the offset from the EU summer-time rule (no tz database in a
//! plugin).

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday,
};

/// The IANA name written into `Sale::timezone`.
pub const TIMEZONE: &str = "Europe/Vienna";

const WINTER: i32 = 3600;
const SUMMER: i32 = 7200;

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let first_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
    .expect("valid month");
    let last = first_next - Duration::days(1);
    let back = last.weekday().num_days_from_sunday() as i64;
    debug_assert_eq!((last - Duration::days(back)).weekday(), Weekday::Sun);
    last - Duration::days(back)
}

/// Whether summer time is in force at this UTC instant (last Sunday of March 01:00 UTC to last
/// Sunday of October 01:00 UTC).
fn is_summer(utc: NaiveDateTime) -> bool {
    let y = utc.year();
    let start = last_sunday(y, 3).and_hms_opt(1, 0, 0).expect("valid time");
    let end = last_sunday(y, 10).and_hms_opt(1, 0, 0).expect("valid time");
    utc >= start && utc < end
}

/// The same instant in Vienna local time.
pub fn to_vienna<Tz: TimeZone>(t: &DateTime<Tz>) -> DateTime<FixedOffset> {
    let utc = t.with_timezone(&Utc).naive_utc();
    let secs = if is_summer(utc) { SUMMER } else { WINTER };
    let off = FixedOffset::east_opt(secs).expect("valid offset");
    t.with_timezone(&off)
}

/// A Vienna wall time as an instant. In the autumn hour that occurs twice the earlier (summer)
/// instant is taken; a time in the spring gap is read with the winter offset.
pub fn from_local(local: NaiveDateTime) -> DateTime<FixedOffset> {
    let secs = if is_summer(local - Duration::seconds(SUMMER as i64)) {
        SUMMER
    } else {
        WINTER
    };
    let off = FixedOffset::east_opt(secs).expect("valid offset");
    off.from_local_datetime(&local)
        .single()
        .expect("a fixed offset maps every local time to one instant")
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
        assert_eq!(
            last_sunday(2026, 3),
            NaiveDate::from_ymd_opt(2026, 3, 29).unwrap()
        );
        assert_eq!(
            last_sunday(2026, 10),
            NaiveDate::from_ymd_opt(2026, 10, 25).unwrap()
        );
        let before = DateTime::parse_from_rfc3339("2026-03-29T00:59:59Z").unwrap();
        let after = DateTime::parse_from_rfc3339("2026-03-29T01:00:00Z").unwrap();
        assert_eq!(format_local(&before), "2026-03-29T01:59:59");
        assert_eq!(format_local(&after), "2026-03-29T03:00:00");
    }

    #[test]
    fn round_trip_through_local_text() {
        let t = DateTime::parse_from_rfc3339("2026-05-04T18:30:15+00:00").unwrap();
        let back = parse_created(&format_local(&t)).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.offset().local_minus_utc(), SUMMER);
    }
}
