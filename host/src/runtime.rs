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

/// Milliseconds since the Unix epoch. `POSBRIDGE_NOW` (RFC 3339) pins the clock, for demos and
/// tests that need a fixed "today".
pub fn now_millis() -> i64 {
    if let Ok(v) = std::env::var("POSBRIDGE_NOW") {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&v) {
            return t.timestamp_millis();
        }
    }
    chrono::Utc::now().timestamp_millis()
}
