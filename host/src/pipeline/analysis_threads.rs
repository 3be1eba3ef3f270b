//! The threads a run's pages are analysed on, at a lower priority than the rest of the run.
//!
//! A file pipeline's critical path is its writer: the sink's write and `fsync`, then the
//! ledger's commit and `fsync`, one batch after the other. The analysis (a full parse of every
//! record) runs ahead of it on threads of its own. At the same priority those threads took the
//! cores from the writer whenever it became runnable again (after an `fsync`): on 2 cores the
//! writer waited for pages 50–90 ms of a 1.9 s run of 100,000 sales, so it was never short of
//! work, only of CPU. At a nice value 10 above the run's, the analysis gets what the writer
//! leaves, and the same run took 1.71–1.78 s instead of 1.90–2.08 s (medians of 4 and 6
//! rounds, alternating; `docs/performance.md`, "2026-12-04, late night").
//!
//! The priority is a thread's own on Linux (other systems keep the run's priority). A thread
//! cannot raise its priority again without privileges, so the threads are the analysis's
//! alone (not tokio's blocking pool, whose threads go on to write and commit) and live as long
//! as the stream's run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};

use tokio::sync::oneshot;

/// How much the analysis threads' nice value is above the run's (capped at 19, the lowest
/// priority).
pub(super) const ANALYSIS_NICE_INCREMENT: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// A few threads taking jobs in the order they come. Dropping it lets the threads end once
/// their current job is done (they are not waited for).
pub(super) struct AnalysisThreads {
    jobs: mpsc::Sender<Job>,
}

/// A job that did not come back: it panicked, or its thread is gone.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct JobFailed(String);

impl AnalysisThreads {
    /// Starts `count` threads (at least one).
    pub fn start(count: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..count.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("posbridge-analysis-{i}"))
                .spawn(move || {
                    lower_this_threads_priority();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(AnalysisThreads { jobs })
    }

    /// Runs `f` on one of the threads; its answer comes on the receiver. A panic in `f` is
    /// caught and answered as [`JobFailed`]; the thread goes on with the next job.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> oneshot::Receiver<Result<T, JobFailed>> {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                JobFailed(format!("panicked: {message}"))
            });
            // The caller may have stopped waiting; then no one needs the answer.
            let _ = answer.send(result);
        });
        // The threads end only when `jobs` is dropped, so a send fails only if every thread
        // died, and then the receiver says so (its sender is dropped with the job).
        let _ = self.jobs.send(job);
        answered
    }
}

/// What a job's receiver gave, as the job's answer.
pub(super) fn answer_of<T>(
    received: Result<Result<T, JobFailed>, oneshot::error::RecvError>,
) -> Result<T, JobFailed> {
    received.unwrap_or_else(|_| Err(JobFailed("its thread is gone".into())))
}

/// Raises the calling thread's nice value by [`ANALYSIS_NICE_INCREMENT`] (Linux: nice values
/// are per thread). Best effort: a failure leaves the priority as it was.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: getpriority and setpriority only read and set the calling thread's nice value
    // (`who` 0 is the calling thread on Linux); errno is read right after the call.
    unsafe {
        *libc::__errno_location() = 0;
        let now = libc::getpriority(libc::PRIO_PROCESS, 0);
        // -1 is a valid nice value: it is an error only if errno says so.
        if now == -1 && *libc::__errno_location() != 0 {
            return;
        }
        let lowered = (now + ANALYSIS_NICE_INCREMENT).min(19);
        libc::setpriority(libc::PRIO_PROCESS, 0, lowered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_answer_in_any_order_they_are_awaited() {
        let threads = AnalysisThreads::start(2).unwrap();
        let answers: Vec<_> = (0..20u64).map(|i| threads.run(move || i * i)).collect();
        let mut got = Vec::new();
        for a in answers {
            got.push(answer_of(a.await).unwrap());
        }
        assert_eq!(got, (0..20u64).map(|i| i * i).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_threads_go_on() {
        let threads = AnalysisThreads::start(1).unwrap();
        let failed = threads.run(|| -> u32 { panic!("bad page") });
        let err = answer_of(failed.await).unwrap_err();
        assert!(err.to_string().contains("bad page"), "{err}");
        assert_eq!(answer_of(threads.run(|| 7).await).unwrap(), 7);
    }

    /// The point of the threads: they run below the priority of the thread that started them.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_threads_run_at_a_lower_priority_than_the_run() {
        fn nice() -> i32 {
            // SAFETY: reads the calling thread's nice value.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) }
        }
        let runs_at = nice();
        let threads = AnalysisThreads::start(1).unwrap();
        let analysis_at = answer_of(threads.run(nice).await).unwrap();
        assert_eq!(
            analysis_at,
            (runs_at + ANALYSIS_NICE_INCREMENT).min(19),
            "the run is at nice {runs_at}"
        );
        // The caller's own priority is untouched.
        assert_eq!(nice(), runs_at);
    }
}
