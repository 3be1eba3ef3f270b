//! Per-account rate limiting: a token bucket shared by every connector instance that uses the
//! same account (connector name + credentials), so two pipelines on one account still keep
//! the vendor's limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use posbridge_plugin_api::RateLimit;

/// A token bucket: `requests` per `per_seconds`, starting full.
///
/// ```
/// use posbridge::rate_limit::RateLimiter;
/// use posbridge_plugin_api::RateLimit;
/// let l = RateLimiter::new(RateLimit { requests: 2, per_seconds: 1 });
/// assert!(l.try_acquire().is_none());
/// assert!(l.try_acquire().is_none());
/// assert!(l.try_acquire().is_some()); // third one has to wait
/// ```
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            state: Mutex::new(Bucket {
                tokens: limit.requests as f64,
                last: Instant::now(),
            }),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    fn rate_per_sec(&self) -> f64 {
        self.limit.requests as f64 / self.limit.per_seconds as f64
    }

    /// Takes a token if one is there; otherwise says how long until one will be.
    pub fn try_acquire(&self) -> Option<Duration> {
        let mut b = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(b.last).as_secs_f64() * self.rate_per_sec();
        b.tokens = (b.tokens + refill).min(self.limit.requests as f64);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - b.tokens) / self.rate_per_sec()))
        }
    }

    /// Blocks the calling (plugin) thread until a token is available.
    pub fn acquire_blocking(&self) -> Duration {
        let mut waited = Duration::ZERO;
        while let Some(wait) = self.try_acquire() {
            std::thread::sleep(wait);
            waited += wait;
        }
        waited
    }

    /// Empties the bucket, e.g. after the vendor answered 429: the next request waits a full interval.
    pub fn drain(&self) {
        let mut b = self.state.lock().unwrap_or_else(|e| e.into_inner());
        b.tokens = 0.0;
        b.last = Instant::now();
    }
}

/// The process-wide limiter of an account, created on first use.
pub fn limiter_for(account: &str, limit: RateLimit) -> Arc<RateLimiter> {
    static LIMITERS: OnceLock<Mutex<HashMap<String, Arc<RateLimiter>>>> = OnceLock::new();
    let mut map = LIMITERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = format!("{account}|{}/{}", limit.requests, limit.per_seconds);
    map.entry(key)
        .or_insert_with(|| Arc::new(RateLimiter::new(limit)))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_rate_over_time() {
        let l = RateLimiter::new(RateLimit { requests: 5, per_seconds: 1 });
        let start = Instant::now();
        for _ in 0..10 {
            l.acquire_blocking();
        }
        // 5 from the full bucket, 5 more at 5/s: about one second.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(900), "took {took:?}");
        assert!(took < Duration::from_millis(2000), "took {took:?}");
    }

    #[test]
    fn same_account_shares_a_limiter() {
        let a = limiter_for("x|acct", RateLimit { requests: 1, per_seconds: 1 });
        let b = limiter_for("x|acct", RateLimit { requests: 1, per_seconds: 1 });
        assert!(Arc::ptr_eq(&a, &b));
    }
}
