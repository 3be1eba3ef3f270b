//! The host's own I/O runtime, clock and cancellation flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

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

/// A shared "please stop" flag: set by Ctrl-C, read by plugins through `is_cancelled`.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst)
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
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
