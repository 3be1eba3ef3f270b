//! The host's own I/O runtime, clock and cancellation flag.

use std::cell::RefCell;
use std::sync::OnceLock;

use tokio_util::sync::CancellationToken;

/// The tokio runtime that serves plugins' HTTP requests. Plugin calls run on blocking threads
/// and wait on it, so it must be separate from whatever runtime the caller is on.
pub fn io_runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("posbridge-io")
            .enable_all()
            .build()
            .expect("cannot start the I/O runtime")
    })
}

/// A shared "please stop" flag: set by Ctrl-C, read by plugins through `is_cancelled`, and
/// awaited by the host's waits (HTTP requests, backoffs) so they end at once.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(CancellationToken);

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.cancel()
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
    /// Completes when the flag is set.
    pub async fn cancelled(&self) {
        self.0.cancelled().await
    }
    /// A flag of its own that is also set when this one is (one plugin call under a run).
    pub fn child(&self) -> CancelFlag {
        CancelFlag(self.0.child_token())
    }
}

thread_local! {
    static CURRENT_CALL: RefCell<Option<CancelFlag>> = const { RefCell::new(None) };
}

/// Marks the plugin call running on this thread, so the capabilities it calls back into (HTTP,
/// `is_cancelled`) can be stopped by the host: a call that timed out is cancelled, its in-flight
/// requests are aborted, and the host waits for it to return before retrying (two attempts of
/// one write never run at once). Plugins are synchronous, so their callbacks come on this thread.
///
/// ```
/// use posbridge::runtime::{CallScope, CancelFlag};
/// let call = CancelFlag::new();
/// {
///     let _scope = CallScope::enter(call.clone());
///     call.cancel();
///     assert!(CallScope::current().unwrap().is_cancelled());
/// }
/// assert!(CallScope::current().is_none());
/// ```
pub struct CallScope {
    previous: Option<CancelFlag>,
}

impl CallScope {
    /// Makes `flag` the current call's flag on this thread until the scope is dropped.
    pub fn enter(flag: CancelFlag) -> Self {
        let previous = CURRENT_CALL.with(|c| c.borrow_mut().replace(flag));
        Self { previous }
    }

    /// The flag of the plugin call running on this thread, if any.
    pub fn current() -> Option<CancelFlag> {
        CURRENT_CALL.with(|c| c.borrow().clone())
    }
}

impl Drop for CallScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT_CALL.with(|c| *c.borrow_mut() = previous);
    }
}

/// Milliseconds since the Unix epoch.
///
/// `POSBRIDGE_NOW` (RFC 3339) pins this clock, for the demo and the end-to-end tests that need a
/// fixed "today" — only in a build with the `sandbox` feature (the default, which also carries
/// the simulators and `posbridge demo`). A production build (`--no-default-features`) ignores
/// it, with one warning, so that no environment variable can move a real run's clock.
pub fn now_millis() -> i64 {
    pinned_millis(std::env::var("POSBRIDGE_NOW").ok().as_deref())
        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis())
}

/// The test clock's reading of a `POSBRIDGE_NOW` value, where this build honours one.
fn pinned_millis(value: Option<&str>) -> Option<i64> {
    let value = value?;
    if cfg!(feature = "sandbox") {
        chrono::DateTime::parse_from_rfc3339(value)
            .ok()
            .map(|t| t.timestamp_millis())
    } else {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            tracing::warn!("POSBRIDGE_NOW is ignored: this build has no `sandbox` feature")
        });
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "sandbox")]
    fn posbridge_now_pins_the_clock_in_a_sandbox_build() {
        // 2026-01-05 09:00 UTC.
        assert_eq!(
            pinned_millis(Some("2026-01-05T10:00:00+01:00")),
            Some(1_767_603_600_000)
        );
        assert_eq!(pinned_millis(Some("yesterday")), None);
        assert_eq!(pinned_millis(None), None);
    }

    #[test]
    #[cfg(not(feature = "sandbox"))]
    fn a_production_build_ignores_posbridge_now() {
        assert_eq!(pinned_millis(Some("2026-01-05T10:00:00+01:00")), None);
        // Safe to set here: in this build nothing reads the variable but to ignore it.
        std::env::set_var("POSBRIDGE_NOW", "2001-01-01T00:00:00Z");
        let before = chrono::Utc::now().timestamp_millis();
        assert!(
            now_millis() >= before,
            "the real clock, not the pinned 2001"
        );
    }
}
