//! [`KeyRateLimiter`]: a token bucket per API key. A key may send `burst` requests at once and
//! `per_sec` a second after that; past it the answer is 429 with `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before idle (full) ones are dropped, so unknown ids cannot grow the map forever.
const MAX_BUCKETS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key id.
#[derive(Debug)]
pub struct KeyRateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl KeyRateLimiter {
    /// `per_sec` 0 lets everything through.
    pub fn new(per_sec: u32, burst: u32) -> Self {
        Self {
            per_sec: per_sec as f64,
            burst: burst.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`, or answers how long until one is free.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.per_sec <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            let (per_sec, burst) = (self.per_sec, self.burst);
            buckets
                .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < burst);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * self.per_sec;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_sec,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_per_key() {
        let l = KeyRateLimiter::new(2, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at("a", t0).is_ok());
        }
        let wait = l.check_at("a", t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another key has its own bucket.
        assert!(l.check_at("b", t0).is_ok());
        // Half a second later one token is back, not two.
        let t1 = t0 + Duration::from_millis(500);
        assert!(l.check_at("a", t1).is_ok());
        assert!(l.check_at("a", t1).is_err());
    }

    #[test]
    fn zero_turns_it_off() {
        let l = KeyRateLimiter::new(0, 0);
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert!(l.check_at("a", t0).is_ok());
        }
    }
}
