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
    /// `Retry-After`; otherwise `base * 2^attempt`, capped, with ±25 % jitter so that many
    /// workers do not retry in lockstep.
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
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.max);
        let jitter = rand::thread_rng().gen_range(0.75..1.25);
        let backoff = exp.mul_f64(jitter);
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
}
