//! Per-account rate limiting: a sliding window shared by every connector instance that uses
//! the same account (connector name + credentials), so two pipelines on one account still keep
//! the vendor's limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use posbridge_plugin_api::RateLimit;

use crate::runtime::CancelFlag;

/// The longest single sleep while waiting for a slot: how soon a cancel is noticed.
const CANCEL_CHECK: Duration = Duration::from_millis(50);

/// The wait for a rate-limit slot ended because the run was cancelled (Ctrl-C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled while waiting {waited:?} for the rate limit")]
pub struct Cancelled {
    pub waited: Duration,
}

/// At most `requests` calls in any window of `per_seconds` (a sliding log of the last
/// `requests` send times). Stricter than a token bucket, which lets a burst plus a refill
/// through within one window — vendors that answer 429 "past 2 requests per second" count
/// sliding windows. A small margin absorbs network jitter between our clock and theirs.
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
    sent: Mutex<std::collections::VecDeque<Instant>>,
}

/// Added to every window so that requests do not arrive at the vendor a hair too early.
const MARGIN: Duration = Duration::from_millis(30);

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            sent: Mutex::new(std::collections::VecDeque::with_capacity(
                limit.requests as usize,
            )),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.limit.per_seconds as u64) + MARGIN
    }

    /// Takes a slot if one is free now; otherwise says how long until one will be.
    pub fn try_acquire(&self) -> Option<Duration> {
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let window = self.window();
        while sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            sent.pop_front();
        }
        if sent.len() < self.limit.requests as usize {
            sent.push_back(now);
            None
        } else {
            let oldest = *sent.front().expect("full log has a front");
            Some(
                window
                    .saturating_sub(now.duration_since(oldest))
                    .max(Duration::from_millis(1)),
            )
        }
    }

    /// Blocks the calling (plugin) thread until a slot is free; returns how long it waited.
    /// It cannot be interrupted: prefer [`Self::acquire_cancellable`].
    pub fn acquire_blocking(&self) -> Duration {
        match self.acquire_cancellable(&CancelFlag::new()) {
            Ok(waited) => waited,
            Err(c) => c.waited, // a fresh flag is never cancelled
        }
    }

    /// Blocks the calling (plugin) thread until a slot is free, or until `cancel` is set
    /// (Ctrl-C): then it returns [`Cancelled`] within [`CANCEL_CHECK`] without taking a slot.
    pub fn acquire_cancellable(&self, cancel: &CancelFlag) -> Result<Duration, Cancelled> {
        let started = Instant::now();
        loop {
            if cancel.is_cancelled() {
                return Err(Cancelled {
                    waited: started.elapsed(),
                });
            }
            match self.try_acquire() {
                None => return Ok(started.elapsed()),
                Some(wait) => std::thread::sleep(wait.min(CANCEL_CHECK)),
            }
        }
    }

    /// After the vendor answered 429: treat the window as full from now on, so the next
    /// request waits a whole window.
    pub fn drain(&self) {
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        sent.clear();
        for _ in 0..self.limit.requests {
            sent.push_back(now);
        }
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
    fn never_more_than_the_limit_in_any_window() {
        let l = RateLimiter::new(RateLimit {
            requests: 2,
            per_seconds: 1,
        });
        let mut times = Vec::new();
        for _ in 0..6 {
            l.acquire_blocking();
            times.push(Instant::now());
        }
        // Any 3 consecutive requests span at least one second.
        for w in times.windows(3) {
            assert!(
                w[2].duration_since(w[0]) >= Duration::from_secs(1),
                "{:?}",
                w[2].duration_since(w[0])
            );
        }
        // And it does not wait longer than needed: 6 requests at 2/s take about 2 s.
        let took = times[5].duration_since(times[0]);
        assert!(took < Duration::from_millis(2600), "took {took:?}");
    }

    #[test]
    fn a_cancel_ends_the_wait_promptly_without_taking_a_slot() {
        let l = Arc::new(RateLimiter::new(RateLimit {
            requests: 1,
            per_seconds: 60,
        }));
        let cancel = CancelFlag::new();
        assert!(l.acquire_cancellable(&cancel).is_ok());
        // The next slot is a minute away; Ctrl-C after 200 ms must end the wait.
        let waiter = {
            let (l, cancel) = (l.clone(), cancel.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                (l.acquire_cancellable(&cancel), started.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        cancel.cancel();
        let (result, took) = waiter.join().unwrap();
        let err = result.unwrap_err();
        assert!(err.waited >= Duration::from_millis(200), "{err:?}");
        assert!(took < Duration::from_millis(500), "took {took:?}");
        assert!(err.to_string().contains("cancelled"), "{err}");
        // A cancelled flag refuses at once, and no slot was taken meanwhile.
        assert!(l.acquire_cancellable(&cancel).is_err());
        assert_eq!(l.sent.lock().unwrap().len(), 1);
    }

    #[test]
    fn same_account_shares_a_limiter() {
        let a = limiter_for(
            "x|acct",
            RateLimit {
                requests: 1,
                per_seconds: 1,
            },
        );
        let b = limiter_for(
            "x|acct",
            RateLimit {
                requests: 1,
                per_seconds: 1,
            },
        );
        assert!(Arc::ptr_eq(&a, &b));
    }
}
