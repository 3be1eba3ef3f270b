//! Jobs the HTTP API starts: the BEEP! sync calls (`syncPOS`, `syncERP`, `pushToPOS`,
//! `pushToERP`) turned into pipelines, and the runner that keeps one run per pipeline at a time
//! with live counts.
//!
//! A sync call names a `system` (a loaded connector), a store and that system's credentials.
//! [`SyncRequest::pipeline`] turns it into an ordinary in-memory [`PipelineDef`] between the
//! connector and the built-in `hub`, so a job has every guarantee of a pipeline run: exactly
//! once, incremental (its cursors live under a pipeline name made of job, store and system),
//! listed in `posbridge runs`, its refused records dead-lettered with the reason.
//!
//! [`PipelineDef`]: crate::pipeline::PipelineDef

mod job_runner;
mod sync_job;

pub use job_runner::{JobRunner, LiveRun, RunTicket, StartError};
pub use sync_job::{SyncError, SyncKind, SyncRequest, SyncedCounts};
