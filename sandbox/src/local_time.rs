//! Wall time in the simulated stores' time zones (Europe/Berlin, Europe/Vienna), by the IANA
//! rules `chrono-tz` carries (EU summer time included), instead of a hand-written copy of them.

use chrono::{DateTime, Duration, FixedOffset, LocalResult, NaiveDateTime, TimeZone};
pub use chrono_tz::Europe::{Berlin, Vienna};
pub use chrono_tz::Tz;

/// The wall time of an instant in `tz`.
pub fn to_local<T: TimeZone>(tz: Tz, t: &DateTime<T>) -> NaiveDateTime {
    t.with_timezone(&tz).naive_local()
}

/// The instant of a wall time in `tz`, with its offset: the earlier one in the hour repeated in
/// autumn; a time in the hour skipped in spring is read with the offset before the switch.
pub fn from_local(tz: Tz, local: NaiveDateTime) -> DateTime<FixedOffset> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.fixed_offset(),
        LocalResult::None => {
            let before = tz
                .from_local_datetime(&(local - Duration::hours(1)))
                .earliest()
                .expect("the hour before a skipped hour exists");
            (before + Duration::hours(1)).fixed_offset()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(d: (i32, u32, u32), h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(d.0, d.1, d.2)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
    }

    #[test]
    fn the_eu_switch_days_of_2026() {
        // 2026-03-29 and 2026-10-25 are the last Sundays of March and October.
        assert_eq!(
            from_local(Berlin, at((2026, 3, 29), 1, 59))
                .offset()
                .local_minus_utc(),
            3600
        );
        assert_eq!(
            from_local(Berlin, at((2026, 3, 29), 3, 0))
                .offset()
                .local_minus_utc(),
            7200
        );
        assert_eq!(
            from_local(Vienna, at((2026, 10, 25), 1, 0))
                .offset()
                .local_minus_utc(),
            7200
        );
        assert_eq!(
            from_local(Vienna, at((2026, 10, 25), 3, 0))
                .offset()
                .local_minus_utc(),
            3600
        );
        // The repeated hour: the earlier instant (still summer time).
        assert_eq!(
            from_local(Vienna, at((2026, 10, 25), 2, 30)).to_rfc3339(),
            "2026-10-25T02:30:00+02:00"
        );
        // The skipped hour: read with winter time, i.e. 01:30 UTC.
        assert_eq!(
            from_local(Berlin, at((2026, 3, 29), 2, 30)).naive_utc(),
            at((2026, 3, 29), 1, 30)
        );
    }

    #[test]
    fn wall_time_round_trips() {
        for local in [
            at((2026, 1, 5), 9, 15),
            at((2026, 7, 1), 10, 0),
            at((2026, 12, 31), 23, 59),
        ] {
            assert_eq!(to_local(Vienna, &from_local(Vienna, local)), local);
        }
    }
}
