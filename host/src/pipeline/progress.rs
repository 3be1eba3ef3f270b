//! What a run shows while it goes: a progress bar on a terminal, JSON log lines otherwise.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::runner::Counters;

/// Receives progress after every page.
pub trait ProgressReporter: Send + Sync {
    /// The run was recorded under `run_id` (`None` for a dry run); called once, before any page.
    fn started(&self, _run_id: Option<i64>) {}
    fn update(&self, stream: &str, c: &Counters);
    fn finish(&self);
}

/// Reports nothing (tests, library use).
pub struct NoProgress;

impl ProgressReporter for NoProgress {
    fn update(&self, _stream: &str, _c: &Counters) {}
    fn finish(&self) {}
}

/// A spinner with counts and rate on a terminal; an `info` event per page otherwise.
pub struct ConsoleProgress {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl ConsoleProgress {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new_spinner();
            b.set_style(
                ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        Self {
            bar,
            started: Instant::now(),
        }
    }
}

impl Default for ConsoleProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgressReporter for ConsoleProgress {
    fn update(&self, stream: &str, c: &Counters) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = c.read as f64 / secs;
        match &self.bar {
            Some(b) => b.set_message(format!(
                "{stream}: read {} · written {} · duplicates {} · dead-lettered {} · retries {} · {rate:.0} rec/s",
                c.read, c.written, c.duplicates, c.dead_lettered, c.retries
            )),
            None => tracing::info!(
                target: "posbridge::progress",
                stream,
                read = c.read,
                written = c.written,
                duplicates = c.duplicates,
                dead_lettered = c.dead_lettered,
                retries = c.retries,
                records_per_sec = rate.round() as u64,
                "progress"
            ),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
