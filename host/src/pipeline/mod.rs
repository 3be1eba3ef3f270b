//! Pipelines: their definition files, the runner that moves records from a source to a sink
//! exactly once, and the pieces it is made of (retries, daily summaries).

mod definition;
mod interpolate;

pub use definition::{
    load_config_file, parse_pipeline, read_pipeline, Delivery, PipelineDef, PipelineError, SinkDef, SinkMode,
    SourceDef,
};
pub use interpolate::interpolate;
