//! Retries of plugin calls: exponential backoff with jitter for `Transient` errors, the
//! vendor's `Retry-After` for `RateLimited` ones, nothing for the rest.

use std::time::Duration;

use posbridge_plugin_api::ConnectorError;
use rand::Rng;

use super::Delivery;

/// How often and how long to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    pub fn from_delivery(d: &Delivery) -> Self {
        Self {
            max_retries: d.max_retries,
            base: Duration::from_millis(d.retry_base_ms),
            max: Duration::from_millis(d.retry_max_ms.max(d.retry_base_ms)),
        }
    }

    /// The wait before retry number `attempt` (0-based) after `err`: at least the vendor's
    /// `Retry-After` (the vendor's word wins over the cap); otherwise `base * 2^attempt` with
    /// ±25 % jitter so that many workers do not retry in lockstep, and never more than `max`
    /// (at the cap the jitter only shortens the wait).
    ///
    /// ```
    /// use std::time::Duration;
    /// use posbridge::pipeline::RetryPolicy;
    /// use posbridge_plugin_api::ConnectorError;
    /// let p = RetryPolicy { max_retries: 3, base: Duration::from_millis(100), max: Duration::from_secs(10) };
    /// let e = ConnectorError::RateLimited { retry_after: Some(Duration::from_secs(1)), message: "429".into() };
    /// assert!(p.delay(0, &e) >= Duration::from_secs(1));
    /// ```
    pub fn delay(&self, attempt: u32, err: &ConnectorError) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX));
        // Jitter first, then the cap: the configured maximum is a promise.
        // At the cap, the waits spread over 75 %..100 % of it.
        let high = exp.mul_f64(1.25).min(self.max);
        let low = exp.mul_f64(0.75).min(self.max.mul_f64(0.75));
        let backoff = if low < high {
            rand::thread_rng().gen_range(low..=high)
        } else {
            high
        };
        match err {
            ConnectorError::RateLimited {
                retry_after: Some(ra),
                ..
            } => *ra + Duration::from_millis(rand::thread_rng().gen_range(0..50)),
            _ => backoff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_retries: 10,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let e = ConnectorError::Transient("x".into());
        let d0 = p.delay(0, &e);
        let d3 = p.delay(3, &e);
        let d9 = p.delay(9, &e);
        assert!(
            d0 >= Duration::from_millis(75) && d0 <= Duration::from_millis(125),
            "{d0:?}"
        );
        assert!(
            d3 >= Duration::from_millis(600) && d3 <= Duration::from_millis(1000),
            "{d3:?}"
        );
        assert!(d9 <= Duration::from_millis(1250), "{d9:?}");
    }

    #[test]
    fn jitter_never_exceeds_the_cap() {
        let p = RetryPolicy {
            max_retries: 30,
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        let e = ConnectorError::Transient("x".into());
        let mut at_cap = Vec::new();
        for attempt in 0..30 {
            for _ in 0..200 {
                let d = p.delay(attempt, &e);
                assert!(d <= p.max, "attempt {attempt}: {d:?} > {:?}", p.max);
                if attempt >= 4 {
                    at_cap.push(d);
                }
            }
        }
        // At the cap the waits still spread (no lockstep), within 75 %..100 % of it.
        assert!(at_cap.iter().all(|d| *d >= Duration::from_millis(750)));
        assert!(at_cap.iter().any(|d| *d < Duration::from_millis(950)));
        // Below the cap the ±25 % remains: 100 ms * 2^2 = 400 ms lies in 300..=500 ms.
        for _ in 0..200 {
            let d = p.delay(2, &e);
            assert!(
                d >= Duration::from_millis(300) && d <= Duration::from_millis(500),
                "{d:?}"
            );
        }
    }
}
