//! Where the scheduler gets the time from.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// A future the scheduler awaits.
pub type Wait<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The scheduler's time: "now", and a wait until a moment.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// Completes at `at` or later (it may complete early; the scheduler looks at `now` again).
    fn sleep_until(&self, at: DateTime<Utc>) -> Wait<'_>;
}

/// The system clock. Waits are cut into pieces of at most a minute, so a clock set forward or
/// back (NTP, suspend) is noticed soon.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// The longest single wait of [`SystemClock`].
const MAX_SYSTEM_WAIT: Duration = Duration::from_secs(60);

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Wait<'_> {
        let wait = (at - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_SYSTEM_WAIT);
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that only moves when told to (tests): waits complete when [`ManualClock::set`] or
/// [`ManualClock::advance`] reaches their time.
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: watch::Sender::new(start),
        }
    }

    /// Moves the clock to `at` (also backwards).
    pub fn set(&self, at: DateTime<Utc>) {
        self.now.send_replace(at);
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        self.now.send_modify(|t| *t += by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Wait<'_> {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            // The sender lives as long as the clock, which outlives this wait.
            let _ = rx.wait_for(|now| *now >= at).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn a_manual_clock_wakes_waiters_when_it_reaches_their_time() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock = std::sync::Arc::new(ManualClock::new(t0));
        let c = clock.clone();
        let waiter =
            tokio::spawn(async move { c.sleep_until(t0 + chrono::Duration::minutes(5)).await });
        clock.advance(chrono::Duration::minutes(4));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "woke before its time");
        clock.advance(chrono::Duration::minutes(1));
        waiter.await.unwrap();
        assert_eq!(clock.now(), t0 + chrono::Duration::minutes(5));
    }
}
