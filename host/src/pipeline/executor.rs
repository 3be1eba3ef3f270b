//! Runs blocking plugin calls off the async runtime: on `spawn_blocking` threads, at most
//! `max_concurrent` at a time, each with a timeout, retried per [`RetryPolicy`].
//!
//! A call that runs past its timeout is *cancelled*, not abandoned: its [`CallScope`] flag is
//! set, which aborts its in-flight HTTP requests and makes `is_cancelled` true for the plugin,
//! and the executor waits for the call to return — holding its concurrency permit — before it
//! retries. So two attempts of one write never run at once, and what a cancelled write did
//! finish (its per-record outcomes) is kept, not thrown away.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use posbridge_plugin_api::ConnectorError;
use tokio::sync::Semaphore;

use super::retry::RetryPolicy;
use crate::runtime::{CallScope, CancelFlag};

/// Executes plugin calls with bounded concurrency, timeouts and retries.
#[derive(Clone)]
pub struct PluginExecutor {
    permits: Arc<Semaphore>,
    timeout: Duration,
    policy: RetryPolicy,
    cancel: CancelFlag,
    retries: Arc<AtomicU64>,
}

impl PluginExecutor {
    pub fn new(
        max_concurrent: usize,
        timeout: Duration,
        policy: RetryPolicy,
        cancel: CancelFlag,
    ) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            timeout,
            policy,
            cancel,
            retries: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many retries were made so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The retry policy calls are made under.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// One attempt: the call on a blocking thread, under the timeout. On timeout the call is
    /// cancelled and awaited; if it still returns a value, that value stands (the work is done).
    pub async fn call_once<T, F>(&self, what: &str, f: F) -> Result<T, ConnectorError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, ConnectorError> + Send + 'static,
    {
        // Held until the thread has ended, not merely until we stop waiting for it.
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ConnectorError::Cancelled)?;
        let call = self.cancel.child();
        let scope_flag = call.clone();
        let mut job = tokio::task::spawn_blocking(move || {
            let _scope = CallScope::enter(scope_flag);
            f()
        });
        let timed_out = tokio::select! {
            r = &mut job => return joined(what, r),
            _ = tokio::time::sleep(self.timeout) => true,
            _ = self.cancel.cancelled() => false,
        };
        call.cancel();
        if timed_out {
            tracing::warn!(
                call = what,
                timeout_s = self.timeout.as_secs(),
                "no answer within the timeout: cancelling the call and waiting for it to stop"
            );
        }
        match joined(what, job.await) {
            Ok(v) => Ok(v),
            Err(ConnectorError::Cancelled) | Err(ConnectorError::Transient(_)) if timed_out => {
                Err(ConnectorError::Transient(format!(
                    "{what}: no answer within {} s (cancelled)",
                    self.timeout.as_secs()
                )))
            }
            Err(e) => Err(e),
        }
    }

    /// The call, retried while it fails with a retryable error and retries are left.
    pub async fn call<T, F>(&self, what: &str, f: F) -> Result<T, ConnectorError>
    where
        T: Send + 'static,
        F: Fn() -> Result<T, ConnectorError> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let mut attempt = 0u32;
        loop {
            let g = f.clone();
            match self.call_once(what, move || g()).await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt < self.policy.max_retries => {
                    let wait = self.policy.delay(attempt, &e);
                    tracing::warn!(call = what, attempt = attempt + 1, max = self.policy.max_retries,
                        wait_ms = wait.as_millis() as u64, error = %e, "retrying");
                    self.pause(wait).await?;
                    attempt += 1;
                }
                Err(e) if e.is_retryable() => return Err(gave_up(e, attempt)),
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits `wait` before a retry, counting it; ends early with `Cancelled` on Ctrl-C.
    pub async fn pause(&self, wait: Duration) -> Result<(), ConnectorError> {
        if self.cancel.is_cancelled() {
            return Err(ConnectorError::Cancelled);
        }
        self.retries.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            _ = tokio::time::sleep(wait) => Ok(()),
            _ = self.cancel.cancelled() => Err(ConnectorError::Cancelled),
        }
    }
}

fn joined<T>(
    what: &str,
    r: Result<Result<T, ConnectorError>, tokio::task::JoinError>,
) -> Result<T, ConnectorError> {
    match r {
        Ok(r) => r,
        Err(join) => Err(ConnectorError::Bug(format!(
            "{what}: the plugin call failed: {join}"
        ))),
    }
}

/// The error of the last attempt, saying that retries ran out.
pub(crate) fn gave_up(e: ConnectorError, attempts: u32) -> ConnectorError {
    match e {
        ConnectorError::Transient(m) => {
            ConnectorError::Transient(format!("{m} (gave up after {attempts} retries)"))
        }
        ConnectorError::RateLimited {
            retry_after,
            message,
        } => ConnectorError::RateLimited {
            retry_after,
            message: format!("{message} (gave up after {attempts} retries)"),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    fn executor(timeout_ms: u64, max_retries: u32) -> PluginExecutor {
        PluginExecutor::new(
            4,
            Duration::from_millis(timeout_ms),
            RetryPolicy {
                max_retries,
                base: Duration::from_millis(1),
                max: Duration::from_millis(5),
            },
            CancelFlag::new(),
        )
    }

    /// A call that ignores its flag for a while: the retry must not start before it ended.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timed_out_call_is_awaited_before_its_retry() {
        let exec = executor(50, 2);
        let running = Arc::new(AtomicUsize::new(0));
        let overlap = Arc::new(AtomicUsize::new(0));
        let attempts = Arc::new(AtomicUsize::new(0));
        let (r, o, a) = (running.clone(), overlap.clone(), attempts.clone());
        let result: Result<u32, _> = exec
            .call("slow", move || {
                if r.fetch_add(1, Ordering::SeqCst) > 0 {
                    o.fetch_add(1, Ordering::SeqCst);
                }
                let n = a.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(if n == 0 { 300 } else { 1 }));
                r.fetch_sub(1, Ordering::SeqCst);
                if n == 0 {
                    Err(ConnectorError::Cancelled)
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        assert_eq!(
            overlap.load(Ordering::SeqCst),
            0,
            "two attempts ran at once"
        );
    }

    /// The plugin sees its own call cancelled through the scope flag.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timed_out_call_sees_its_flag_and_its_answer_stands() {
        let exec = executor(50, 0);
        let started = Instant::now();
        let result: Result<&str, _> = exec
            .call_once("cooperative", || {
                let flag = CallScope::current().expect("a call scope");
                while !flag.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                // Work done up to the cancellation is reported, not lost.
                Ok("partial outcomes")
            })
            .await;
        assert_eq!(result.unwrap(), "partial outcomes");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_call_becomes_a_transient_timeout() {
        let exec = executor(30, 0);
        let result: Result<(), _> = exec
            .call_once("cancelled", || {
                let flag = CallScope::current().unwrap();
                while !flag.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(ConnectorError::Cancelled)
            })
            .await;
        match result {
            Err(ConnectorError::Transient(m)) => assert!(m.contains("no answer within"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ctrl_c_ends_a_backoff_at_once() {
        let cancel = CancelFlag::new();
        let exec = PluginExecutor::new(
            1,
            Duration::from_secs(5),
            RetryPolicy {
                max_retries: 3,
                base: Duration::from_secs(60),
                max: Duration::from_secs(60),
            },
            cancel.clone(),
        );
        let started = Instant::now();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            c.cancel();
        });
        let r = exec.pause(Duration::from_secs(60)).await;
        assert_eq!(r, Err(ConnectorError::Cancelled));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
