//! Pipelines: their definition files, the runner that moves records from a source to a sink
//! exactly once, and the pieces it is made of (retries, keys, progress, the page loop).

mod analyse;
mod analysis_threads;
mod canonical;
mod daily_summary;
mod dead_letters;
mod definition;
mod executor;
mod interpolate;
mod keys;
mod migrations;
mod pages;
mod progress;
mod retry;
mod runner;
pub mod yaml;

pub use analyse::check_sale;
pub use dead_letters::{retry_dead_letter, RetryOutcome};
pub use definition::{
    load_config_file, parse_pipeline, read_pipeline, Delivery, PipelineDef, PipelineError, SinkDef,
    SinkMode, SourceDef,
};
pub use executor::PluginExecutor;
pub use interpolate::interpolate;
pub use keys::{
    closure_key, conflict_key, content_fingerprint, idempotency_key, is_document_stream,
    DOCUMENT_STREAMS,
};
pub use migrations::{
    migrate_cursors, migrated_configs, recorded as recorded_versions, ConnectorVersions,
    PipelineVersions, VERSIONS_NAMESPACE,
};
pub use pages::{standalone_executor, BlockingPageLoop, PageError, PageLoop, PageSource};
pub use progress::{ConsoleProgress, NoProgress, ProgressReporter};
pub use retry::RetryPolicy;
pub use runner::{open_connectors, run_pipeline, Counters, RunOptions, RunReport, StreamCounters};
