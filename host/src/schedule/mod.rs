//! Pipelines that run on a cron `schedule` (inside `posbridge serve`).
//!
//! - [`CronSchedule`]: a parsed cron expression (croner; five fields, UTC).
//! - [`Clock`]: where "now" comes from and how to wait for a time: [`SystemClock`] for real,
//!   [`ManualClock`] for tests that move time by hand, [`FileClock`] for end-to-end tests of
//!   `serve` (a file holding "now", named by [`CLOCK_FILE_VAR`] in `sandbox` builds only).
//! - [`Scheduler`]: fires each pipeline on its ticks through a callback; one run of a pipeline at
//!   a time (a tick while it runs is skipped and logged); ticks missed while posbridge was down
//!   make one run, not one each (the progress is kept in the state store).

mod clock;
mod cron;
mod scheduler;

pub use clock::{
    serve_clock, Clock, FileClock, FileClockError, ManualClock, SystemClock, CLOCK_FILE_VAR,
};
pub use cron::{CronSchedule, ScheduleError};
pub use scheduler::{
    jobs_runner, PipelineLookup, RunPipeline, ScheduledPipeline, Scheduler, TickOutcome,
};
