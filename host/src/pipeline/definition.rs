//! The pipeline file: what it may contain, parsing with line and column in every error, and
//! validation against the loaded connectors (names, streams, config schemas) without network.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use posbridge_plugin_api::RateLimit;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::plugins::{validate_config, Registry};

/// A pipeline definition (YAML).
///
/// ```
/// let def = posbridge::pipeline::parse_pipeline(
///     "name: demo\nsource: {connector: generic, config: {path: in.ndjson}}\nsink: {connector: generic, config: {path: out.ndjson}}\n",
///     std::path::Path::new("demo.yaml"),
/// ).unwrap();
/// assert_eq!(def.source.streams, vec!["sales"]);
/// assert_eq!(def.delivery.batch_size, 500);
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineDef {
    pub name: String,
    pub source: SourceDef,
    pub sink: SinkDef,
    /// Per-sink mapping of payment methods, tax rates, stores … to the sink's ids.
    #[serde(default)]
    pub mapping: Value,
    /// Cron expression for `posbridge schedule` (informational for `run`).
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default)]
    pub delivery: Delivery,
    /// Secrets resolved from `${env:…}`/`${file:…}` (never serialized).
    #[serde(skip)]
    pub resolved_secrets: Vec<String>,
    /// The file it was read from.
    #[serde(skip)]
    pub file: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceDef {
    pub connector: String,
    #[serde(default = "empty_object")]
    pub config: Value,
    #[serde(default = "default_streams")]
    pub streams: Vec<String>,
    /// First business day to read (overridden by `--from`).
    #[serde(default)]
    pub start: Option<NaiveDate>,
    /// Overrides the connector's default rate limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Records per page asked of the source.
    #[serde(default)]
    pub page_size: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkDef {
    pub connector: String,
    #[serde(default = "empty_object")]
    pub config: Value,
    #[serde(default)]
    pub mode: SinkMode,
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
}

/// How sales reach the sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkMode {
    /// Each record as it is (the default).
    #[default]
    PerSale,
    /// Sales summed into one closure per business day and register, written to the `closures` stream.
    DailySummary,
}

impl SinkMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PerSale => "per_sale",
            Self::DailySummary => "daily_summary",
        }
    }
}

/// Delivery tuning.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// First retry delay; doubles each time, with jitter, capped by `retry_max_ms`.
    #[serde(default = "default_retry_base_ms")]
    pub retry_base_ms: u64,
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Per plugin call timeout.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Validate canonical sales (reconciliation to the cent) before writing.
    #[serde(default = "yes")]
    pub validate: bool,
    /// Pages buffered between source and sink (backpressure).
    #[serde(default = "default_channel")]
    pub buffer_pages: usize,
    /// Pages in a row without records, while the source says more follow, after which a read
    /// stops as going round in circles (`pipeline::pages`).
    #[serde(default = "default_max_empty_pages")]
    pub max_empty_pages: NonZeroU32,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            batch_size: default_batch_size(),
            max_retries: default_max_retries(),
            retry_base_ms: default_retry_base_ms(),
            retry_max_ms: default_retry_max_ms(),
            timeout_secs: default_timeout_secs(),
            validate: true,
            buffer_pages: default_channel(),
            max_empty_pages: default_max_empty_pages(),
        }
    }
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}
fn default_streams() -> Vec<String> {
    vec!["sales".into()]
}
fn default_batch_size() -> usize {
    500
}
fn default_max_retries() -> u32 {
    8
}
fn default_retry_base_ms() -> u64 {
    500
}
fn default_retry_max_ms() -> u64 {
    60_000
}
fn default_timeout_secs() -> u64 {
    120
}
fn default_channel() -> usize {
    4
}
fn default_max_empty_pages() -> NonZeroU32 {
    NonZeroU32::new(100).expect("not zero")
}
fn yes() -> bool {
    true
}

/// A problem with a pipeline file, with its location where known.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot read {file}: {message}")]
    Io { file: String, message: String },
    #[error("{file}:{line}:{column}: {message}")]
    At {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    File { file: String, message: String },
}

/// Reads a config file (JSON or YAML by extension; YAML also accepts JSON).
pub fn load_config_file(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let is_json = path.extension().and_then(|e| e.to_str()) == Some("json");
    if is_json {
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))
    } else {
        serde_yaml::from_str::<Value>(&text).map_err(|e| match e.location() {
            Some(l) => anyhow::anyhow!("{}:{}:{}: {e}", path.display(), l.line(), l.column()),
            None => anyhow::anyhow!("{}: {e}", path.display()),
        })
    }
}

/// Finds the 1-based line and column of the first occurrence of `needle` in `text`.
fn locate(text: &str, needle: &str) -> Option<(usize, usize)> {
    let idx = text.find(needle)?;
    let before = &text[..idx];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    Some((line, column))
}

/// Adds "did you mean" to serde's "unknown field `x`, expected one of `a`, `b`" messages.
fn suggest_field(message: &str) -> String {
    let Some(rest) = message.split_once("unknown field `").map(|(_, r)| r) else {
        return message.to_string();
    };
    let Some((field, tail)) = rest.split_once('`') else {
        return message.to_string();
    };
    let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
    match crate::plugins::closest_name(field, expected.iter().copied()) {
        Some(s) => format!("{message} (did you mean `{s}`?)"),
        None => message.to_string(),
    }
}

/// Parses a pipeline file's text. `file` is used in messages and to resolve `${file:…}`.
pub fn parse_pipeline(text: &str, file: &Path) -> Result<PipelineDef, PipelineError> {
    let fname = file.display().to_string();
    let mut raw: Value = serde_yaml::from_str(text).map_err(|e| yaml_error(&fname, e))?;
    if !raw.is_object() {
        return Err(PipelineError::At {
            file: fname,
            line: 1,
            column: 1,
            message: "a pipeline file must be a mapping with name, source and sink".into(),
        });
    }
    // Resolve references on the value tree, then deserialize from the text again for typed
    // errors with positions. References only ever occur inside strings.
    let base = file.parent().unwrap_or(Path::new("."));
    let secrets = super::interpolate(&mut raw, base).map_err(|message| {
        let needle = message
            .split("${")
            .nth(1)
            .and_then(|r| r.split('}').next())
            .map(|r| format!("${{{r}}}"));
        match needle.and_then(|n| locate(text, &n)) {
            Some((line, column)) => PipelineError::At {
                file: fname.clone(),
                line,
                column,
                message,
            },
            None => PipelineError::File {
                file: fname.clone(),
                message,
            },
        }
    })?;
    // Typed parse of the original text gives line/column for type errors and unknown fields.
    let mut def: PipelineDef = serde_yaml::from_str(text).map_err(|e| yaml_error(&fname, e))?;
    // Then take the resolved configs.
    def.source.config = raw["source"]
        .get("config")
        .cloned()
        .unwrap_or_else(empty_object);
    def.sink.config = raw["sink"]
        .get("config")
        .cloned()
        .unwrap_or_else(empty_object);
    if let Some(m) = raw.get("mapping") {
        def.mapping = m.clone();
    }
    def.resolved_secrets = secrets;
    def.file = file.to_path_buf();
    if def.name.trim().is_empty() {
        return Err(at(text, &fname, "name:", "name must not be empty".into()));
    }
    if def.delivery.batch_size == 0 {
        return Err(at(
            text,
            &fname,
            "batch_size",
            "delivery.batch_size must be at least 1".into(),
        ));
    }
    Ok(def)
}

fn yaml_error(fname: &str, e: serde_yaml::Error) -> PipelineError {
    let message = suggest_field(e.to_string().split(" at line ").next().unwrap_or_default());
    match e.location() {
        Some(l) => PipelineError::At {
            file: fname.to_string(),
            line: l.line(),
            column: l.column(),
            message,
        },
        None => PipelineError::File {
            file: fname.to_string(),
            message,
        },
    }
}

fn at(text: &str, fname: &str, needle: &str, message: String) -> PipelineError {
    match locate(text, needle) {
        Some((line, column)) => PipelineError::At {
            file: fname.to_string(),
            line,
            column,
            message,
        },
        None => PipelineError::File {
            file: fname.to_string(),
            message,
        },
    }
}

/// Reads and parses a pipeline file.
pub fn read_pipeline(path: &Path) -> Result<(PipelineDef, String), PipelineError> {
    let text = std::fs::read_to_string(path).map_err(|e| PipelineError::Io {
        file: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok((parse_pipeline(&text, path)?, text))
}

impl PipelineDef {
    /// The stream the sink writes for a source stream.
    pub fn sink_stream(&self, source_stream: &str) -> String {
        match self.sink.mode {
            SinkMode::DailySummary if source_stream == "sales" => "closures".into(),
            _ => source_stream.to_string(),
        }
    }

    /// Checks the definition against the loaded connectors without any network call:
    /// connector names, streams, modes and both configs against their schemas. Returns every
    /// problem, each located in `text` where possible.
    pub fn validate(&self, reg: &Registry, text: &str) -> Vec<PipelineError> {
        let fname = self.file.display().to_string();
        let mut errs = Vec::new();
        let src = reg.get(&self.source.connector);
        let snk = reg.get(&self.sink.connector);
        for (role, name, entry) in [
            ("source", &self.source.connector, src),
            ("sink", &self.sink.connector, snk),
        ] {
            if entry.is_none() {
                let hint = reg
                    .suggest(name)
                    .map(|s| format!(" (did you mean {s:?}?)"))
                    .unwrap_or_default();
                let known = reg.names().join(", ");
                errs.push(at(
                    text,
                    &fname,
                    &format!("connector: {name}"),
                    format!("{role}: unknown connector {name:?}{hint}; loaded connectors: {known}"),
                ));
            }
        }
        if let Some(src) = src {
            for s in &self.source.streams {
                match src.manifest.find_stream(s) {
                    Some(d) if d.read => {}
                    _ => {
                        let readable: Vec<&str> = src
                            .manifest
                            .streams
                            .iter()
                            .filter(|d| d.read)
                            .map(|d| d.name.as_str())
                            .collect();
                        let hint = crate::plugins::closest_name(s, readable.iter().copied())
                            .map(|x| format!(" (did you mean {x:?}?)"))
                            .unwrap_or_default();
                        errs.push(at(
                            text,
                            &fname,
                            s,
                            format!(
                                "source: connector {} does not read stream {s:?}{hint}; it reads: {}",
                                self.source.connector,
                                readable.join(", ")
                            ),
                        ));
                    }
                }
            }
            for v in validate_config(&src.manifest.config_schema, &self.source.config) {
                errs.push(config_error(text, &fname, "source", &v));
            }
        }
        if let Some(snk) = snk {
            for s in &self.source.streams {
                let target = self.sink_stream(s);
                match snk.manifest.find_stream(&target) {
                    Some(d) if d.write => {}
                    _ => errs.push(at(
                        text,
                        &fname,
                        "sink:",
                        format!(
                            "sink: connector {} does not write stream {target:?} (mode {}); it writes: {}",
                            self.sink.connector,
                            self.sink.mode.as_str(),
                            snk.manifest
                                .streams
                                .iter()
                                .filter(|d| d.write)
                                .map(|d| d.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )),
                }
            }
            for v in validate_config(&snk.manifest.config_schema, &self.sink.config) {
                errs.push(config_error(text, &fname, "sink", &v));
            }
        }
        if self.sink.mode == SinkMode::DailySummary
            && !self.source.streams.iter().any(|s| s == "sales")
        {
            errs.push(at(
                text,
                &fname,
                "mode:",
                "sink mode daily_summary needs the source stream \"sales\"".into(),
            ));
        }
        errs
    }
}

fn config_error(
    text: &str,
    fname: &str,
    role: &str,
    v: &crate::plugins::ConfigViolation,
) -> PipelineError {
    // Locate the offending key inside the file: the last path segment that is a name.
    let key = v
        .path
        .rsplit('.')
        .next()
        .map(|k| k.split('[').next().unwrap_or(k).to_string())
        .filter(|k| k != "$");
    let message = format!(
        "{role}.config: {}: {}",
        v.path.replacen('$', &format!("$.{role}.config"), 1),
        v.message
    );
    match key {
        Some(k) => at(text, fname, &format!("{k}:"), message),
        None => at(text, fname, &format!("{role}:"), message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PipelineDef, PipelineError> {
        parse_pipeline(text, Path::new("p.yaml"))
    }

    #[test]
    fn bad_yaml_has_line_and_column() {
        let e = parse("name: x\nsource: {connector: a\nsink: b\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.yaml:"), "{e}");
        assert!(e.contains(':'), "{e}");
    }

    #[test]
    fn unknown_field_suggests() {
        let e = parse("name: x\nsource: {connector: a}\nsinc: {connector: b}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `sinc`"), "{e}");
        assert!(e.contains("did you mean `sink`"), "{e}");
        assert!(e.starts_with("p.yaml:3:"), "{e}");
    }

    #[test]
    fn wrong_type_is_located() {
        let e = parse(
            "name: x\nsource: {connector: a}\nsink: {connector: b}\ndelivery: {batch_size: lots}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("p.yaml:4:"), "{e}");
        assert!(
            e.contains("batch_size") || e.contains("invalid type"),
            "{e}"
        );
    }

    #[test]
    fn missing_env_is_located() {
        let e = parse("name: x\nsource: {connector: a, config: {key: \"${env:POSBRIDGE_NOPE_1}\"}}\nsink: {connector: b}\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.yaml:2:"), "{e}");
        assert!(e.contains("POSBRIDGE_NOPE_1 is not set"), "{e}");
    }
}
