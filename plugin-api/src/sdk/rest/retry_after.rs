//! `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP date, turned into a delay.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

/// The delay a `Retry-After` value asks for, measured from `now` (the host's clock).
///
/// Accepts delta-seconds (`120`) and an HTTP date in any of the three forms RFC 9110 says a
/// recipient must read: IMF-fixdate, RFC 850 and asctime. A date in the past is a zero delay;
/// anything else is `None`.
///
/// ```
/// use std::time::Duration;
/// use posbridge_plugin_api::rest::retry_after::parse_retry_after;
/// let now = "2015-10-21T07:28:00Z".parse().unwrap();
/// assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:30:00 GMT", now), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after("Wednesday, 21-Oct-15 07:28:30 GMT", now), Some(Duration::from_secs(30)));
/// assert_eq!(parse_retry_after("Wed Oct 21 07:27:00 2015", now), Some(Duration::ZERO));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let now = system_time(now);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A UTC timestamp as a `SystemTime` (what `httpdate` works with).
fn system_time(t: DateTime<Utc>) -> SystemTime {
    match u64::try_from(t.timestamp_millis()) {
        Ok(ms) => UNIX_EPOCH + Duration::from_millis(ms),
        Err(_) => UNIX_EPOCH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn seconds_and_dates_become_delays_from_the_given_clock() {
        assert_eq!(
            parse_retry_after(" 7 ", now()),
            Some(Duration::from_secs(7))
        );
        assert_eq!(parse_retry_after("0", now()), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 01 Mar 2026 12:01:30 GMT", now()),
            Some(Duration::from_secs(90))
        );
        // The same date an hour later on the clock is already past.
        let later = now() + chrono::Duration::hours(1);
        assert_eq!(
            parse_retry_after("Sun, 01 Mar 2026 12:01:30 GMT", later),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn nonsense_and_negative_numbers_are_none() {
        for bad in ["", "-5", "1.5", "tomorrow", "Sun, 32 Mar 2026 12:00:00 GMT"] {
            assert_eq!(parse_retry_after(bad, now()), None, "{bad:?}");
        }
    }
}
