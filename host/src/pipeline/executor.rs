//! Runs blocking plugin calls off the async runtime: on `spawn_blocking` threads, at most
//! `max_concurrent` at a time, each with a timeout, retried per [`RetryPolicy`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use posbridge_plugin_api::ConnectorError;
use tokio::sync::Semaphore;

use super::retry::RetryPolicy;
use crate::runtime::CancelFlag;

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

    /// One attempt: the call on a blocking thread, under the timeout.
    pub async fn call_once<T, F>(&self, what: &str, f: F) -> Result<T, ConnectorError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, ConnectorError> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ConnectorError::Cancelled)?;
        let job = tokio::task::spawn_blocking(f);
        match tokio::time::timeout(self.timeout, job).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(ConnectorError::Bug(format!(
                "{what}: the plugin call failed: {join}"
            ))),
            Err(_) => Err(ConnectorError::Transient(format!(
                "{what}: no answer within {} s",
                self.timeout.as_secs()
            ))),
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
                    if self.cancel.is_cancelled() {
                        return Err(ConnectorError::Cancelled);
                    }
                    let wait = self.policy.delay(attempt, &e);
                    tracing::warn!(call = what, attempt = attempt + 1, max = self.policy.max_retries,
                        wait_ms = wait.as_millis() as u64, error = %e, "retrying");
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    // Sleep in short steps so Ctrl-C is not held up by a long Retry-After.
                    let deadline = tokio::time::Instant::now() + wait;
                    while tokio::time::Instant::now() < deadline {
                        if self.cancel.is_cancelled() {
                            return Err(ConnectorError::Cancelled);
                        }
                        let step = (deadline - tokio::time::Instant::now())
                            .min(Duration::from_millis(200));
                        tokio::time::sleep(step).await;
                    }
                    attempt += 1;
                }
                Err(e) if e.is_retryable() => {
                    return Err(match e {
                        ConnectorError::Transient(m) => ConnectorError::Transient(format!(
                            "{m} (gave up after {attempt} retries)"
                        )),
                        ConnectorError::RateLimited {
                            retry_after,
                            message,
                        } => ConnectorError::RateLimited {
                            retry_after,
                            message: format!("{message} (gave up after {attempt} retries)"),
                        },
                        other => other,
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }
}
