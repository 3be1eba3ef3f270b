//! Where the scheduler gets the time from.

use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
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

/// The variable naming the file of the scheduler's test clock ([`FileClock`]). A testing hook:
/// honoured only in builds with the `sandbox` feature, like `POSBRIDGE_NOW`.
pub const CLOCK_FILE_VAR: &str = "POSBRIDGE_SCHEDULER_CLOCK_FILE";

/// How often a [`FileClock`] looks at its file while a wait is pending.
const FILE_CLOCK_POLL: Duration = Duration::from_millis(50);

/// The test clock's file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{CLOCK_FILE_VAR}: {path}: {reason}")]
pub struct FileClockError {
    pub path: String,
    pub reason: String,
}

/// A clock that reads "now" from a file holding one RFC 3339 time, re-read at every look and
/// every 50 ms while a wait is pending: a test moves the scheduler of a real `posbridge serve`
/// by writing the file (best by writing another file and renaming it over this one). A reading
/// that fails keeps the last good time, with a warning.
#[derive(Debug)]
pub struct FileClock {
    path: PathBuf,
    last: Mutex<(DateTime<Utc>, Option<String>)>,
}

impl FileClock {
    /// A clock reading `path`, which must hold a time now.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, FileClockError> {
        let path = path.into();
        let now = read_time(&path)?;
        Ok(Self {
            path,
            last: Mutex::new((now, None)),
        })
    }
}

fn read_time(path: &Path) -> Result<DateTime<Utc>, FileClockError> {
    let error = |reason: String| FileClockError {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read it: {e}")))?;
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            error(format!(
                "{:?} is not an RFC 3339 time such as 2026-03-02T12:00:00Z ({e})",
                text.trim()
            ))
        })
}

impl Clock for FileClock {
    fn now(&self) -> DateTime<Utc> {
        let reading = read_time(&self.path);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match reading {
            Ok(t) => *last = (t, None),
            Err(e) => {
                let message = e.to_string();
                // Once per distinct problem, not at every poll.
                if last.1.as_deref() != Some(message.as_str()) {
                    tracing::warn!("{message}; the scheduler keeps {}", last.0);
                    last.1 = Some(message);
                }
            }
        }
        last.0
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Wait<'_> {
        Box::pin(async move {
            while self.now() < at {
                tokio::time::sleep(FILE_CLOCK_POLL).await;
            }
        })
    }
}

/// The scheduler's clock in `posbridge serve`: the system clock, unless the build has the
/// `sandbox` feature and [`CLOCK_FILE_VAR`] names a file, then a [`FileClock`] on it. A
/// production build ignores the variable, with a warning, so that no environment variable can
/// move a real server's schedules.
pub fn serve_clock() -> Result<Arc<dyn Clock>, FileClockError> {
    choose_clock(std::env::var_os(CLOCK_FILE_VAR), cfg!(feature = "sandbox"))
}

fn choose_clock(file: Option<OsString>, honoured: bool) -> Result<Arc<dyn Clock>, FileClockError> {
    match file {
        None => Ok(Arc::new(SystemClock)),
        Some(_) if !honoured => {
            tracing::warn!(
                "{CLOCK_FILE_VAR} is ignored: this build has no `sandbox` feature; schedules follow the system clock"
            );
            Ok(Arc::new(SystemClock))
        }
        Some(path) => {
            let clock = FileClock::open(path)?;
            tracing::warn!(
                "the scheduler follows the test clock in {} ({CLOCK_FILE_VAR}), now {}",
                clock.path.display(),
                clock.now()
            );
            Ok(Arc::new(clock))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn write_time(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    #[tokio::test]
    async fn a_file_clock_reads_its_file_and_wakes_waiters_when_the_file_reaches_their_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("now");
        write_time(&path, "2026-03-02T12:00:00Z\n");
        let clock = Arc::new(FileClock::open(&path).unwrap());
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap();
        assert_eq!(clock.now(), t0);
        let c = clock.clone();
        let waiter =
            tokio::spawn(async move { c.sleep_until(t0 + chrono::Duration::minutes(5)).await });
        write_time(&path, "2026-03-02T13:04:00+01:00");
        tokio::time::sleep(FILE_CLOCK_POLL * 3).await;
        assert!(!waiter.is_finished(), "woke before its time");
        // A bad reading keeps the last good time.
        write_time(&path, "soon");
        assert_eq!(clock.now(), t0 + chrono::Duration::minutes(4));
        write_time(&path, "2026-03-02T12:05:00Z");
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woke once the file reached its time")
            .unwrap();
        assert_eq!(clock.now(), t0 + chrono::Duration::minutes(5));
    }

    #[test]
    fn the_serve_clock_is_the_file_only_where_the_build_honours_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("now");
        write_time(&path, "2001-01-01T00:00:00Z");
        let pinned = Utc.with_ymd_and_hms(2001, 1, 1, 0, 0, 0).unwrap();
        let honoured = choose_clock(Some(path.clone().into()), true).unwrap();
        assert_eq!(honoured.now(), pinned);
        // A production build: ignored (with a warning), the system clock.
        let ignored = choose_clock(Some(path.into()), false).unwrap();
        assert!(ignored.now() > pinned + chrono::Duration::days(365 * 20));
        assert!(choose_clock(None, true).unwrap().now() > pinned);
        // A file that is missing or holds no time refuses the start.
        let missing = choose_clock(Some(dir.path().join("nope").into()), true)
            .err()
            .unwrap();
        assert!(missing.to_string().contains(CLOCK_FILE_VAR), "{missing}");
        write_time(&dir.path().join("bad"), "noon");
        let bad = choose_clock(Some(dir.path().join("bad").into()), true)
            .err()
            .unwrap();
        assert!(bad.to_string().contains("RFC 3339"), "{bad}");
    }

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
