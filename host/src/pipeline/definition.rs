//! The pipeline file: what it may contain, parsing with line and column in every error, and
//! validation against the loaded connectors (names, streams, config schemas) without network.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use posbridge_plugin_api::RateLimit;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::yaml::{self, YamlError};
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
    /// Cron expression (five fields, UTC) on which `posbridge serve` runs the pipeline;
    /// `posbridge run` ignores it.
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
/// Two pages ahead keep the reader busy while a page is analysed and the one before it written;
/// each more page is held in memory (≈ 1.6 MB per 1,000 sales) for no gain on a file source
/// (`bench/pipeline.sh`: 4 pages 68 MiB peak, 2 pages 63 MiB, same time).
fn default_channel() -> usize {
    2
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

/// Reads a config file (JSON or YAML by extension; YAML also accepts JSON), refusing files
/// larger than [`super::yaml::MAX_YAML_BYTES`] or nested deeper than
/// [`super::yaml::MAX_YAML_DEPTH`].
pub fn load_config_file(path: &Path) -> anyhow::Result<Value> {
    let text = super::yaml::read_bounded(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let is_json = path.extension().and_then(|e| e.to_str()) == Some("json");
    if is_json {
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}:{}:{}: {e}", path.display(), e.line(), e.column()))
    } else {
        super::yaml::from_str::<Value>(&text).map_err(|e| match e.location() {
            Some((line, column)) => {
                anyhow::anyhow!("{}:{line}:{column}: {}", path.display(), e.message())
            }
            None => anyhow::anyhow!("{}: {}", path.display(), e.message()),
        })
    }
}

/// Finds the 1-based line and column of the first occurrence of `needle` in `text`.
fn locate(text: &str, needle: &str) -> Option<(usize, usize)> {
    text.find(needle).map(|idx| line_column(text, idx))
}

/// The 1-based line and column of byte `idx` of `text`.
fn line_column(text: &str, idx: usize) -> (usize, usize) {
    let before = &text[..idx];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// Adds "did you mean" to "unknown field `x`, expected one of `a`, `b`" messages (the
/// expected names with or without backticks).
fn suggest_field(message: &str) -> String {
    let Some(rest) = message.split_once("unknown field `").map(|(_, r)| r) else {
        return message.to_string();
    };
    let Some((field, tail)) = rest.split_once('`') else {
        return message.to_string();
    };
    let Some((_, expected)) = tail
        .split_once("expected one of ")
        .or_else(|| tail.split_once("expected "))
    else {
        return message.to_string();
    };
    let expected: Vec<&str> = expected
        .split(", ")
        .map(|n| n.trim().trim_matches('`'))
        .collect();
    match crate::plugins::closest_name(field, expected.iter().copied()) {
        Some(s) => format!("{message} (did you mean `{s}`?)"),
        None => message.to_string(),
    }
}

/// Parses a pipeline file's text. `file` is used in messages and to resolve `${file:…}`.
pub fn parse_pipeline(text: &str, file: &Path) -> Result<PipelineDef, PipelineError> {
    let fname = file.display().to_string();
    let mut raw: Value = yaml::from_str(text).map_err(|e| yaml_error(&fname, e))?;
    if !raw.is_object() {
        return Err(PipelineError::At {
            file: fname,
            line: 1,
            column: 1,
            message: "a pipeline file must be a mapping with name, source and sink".into(),
        });
    }
    let untyped = raw.clone();
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
    let mut def: PipelineDef = yaml::from_str(text).map_err(|e| yaml_error(&fname, e))?;
    // YAML lets a quoted "true" or "10" through to a boolean or number field; the value tree
    // keeps them strings, so a typed read of the tree refuses them, naming the field.
    if let Err(e) = serde_path_to_error::deserialize::<_, PipelineDef>(&untyped) {
        let path = format!("$.{}", e.path());
        return Err(at_path(
            text,
            &fname,
            &path,
            format!("{path}: {}", e.inner()),
        ));
    }
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
    if let Some(Nonsense { path, message }) = def.nonsense() {
        return Err(at_path(text, &fname, &path, format!("{path}: {message}")));
    }
    Ok(def)
}

/// A value that parses but cannot be meant, with the JSON path of its field.
struct Nonsense {
    path: String,
    message: String,
}

fn nonsense(path: impl Into<String>, message: impl Into<String>) -> Option<Nonsense> {
    Some(Nonsense {
        path: path.into(),
        message: message.into(),
    })
}

/// Checks that `value` of the field at `path` lies in `min..=max`.
fn out_of_range<T: PartialOrd + std::fmt::Display>(
    path: &str,
    value: T,
    min: T,
    max: T,
    unit: &str,
) -> Option<Nonsense> {
    if value < min || value > max {
        nonsense(
            path,
            format!("{value} is out of range: between {min} and {max}{unit}"),
        )
    } else {
        None
    }
}

/// The longest pipeline name: it names the run history and state, and appears in every line.
const MAX_NAME_CHARS: usize = 100;

impl PipelineDef {
    /// The first value in the definition that parses but makes no sense (a zero timeout, no
    /// streams, a name that is a path), if any.
    fn nonsense(&self) -> Option<Nonsense> {
        let name = &self.name;
        if name.trim().is_empty() {
            return nonsense("$.name", "must not be empty");
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return nonsense(
                "$.name",
                format!("is longer than {MAX_NAME_CHARS} characters"),
            );
        }
        if name.contains(['/', '\\']) || name.contains("..") {
            return nonsense(
                "$.name",
                format!(
                    "{name:?} must not contain '/', '\\' or '..': a pipeline name is not a path"
                ),
            );
        }
        if name.chars().any(char::is_control) {
            return nonsense("$.name", format!("{name:?} contains control characters"));
        }
        if name.trim() != name {
            return nonsense(
                "$.name",
                format!("{name:?} starts or ends with white space"),
            );
        }
        for (role, connector) in [
            ("source", &self.source.connector),
            ("sink", &self.sink.connector),
        ] {
            if connector.trim().is_empty() {
                return nonsense(format!("$.{role}.connector"), "must not be empty");
            }
        }
        if let Some(expr) = &self.schedule {
            if let Err(e) = crate::schedule::CronSchedule::parse(expr) {
                return nonsense("$.schedule", e.to_string());
            }
        }
        let streams = &self.source.streams;
        if streams.is_empty() {
            return nonsense(
                "$.source.streams",
                "must name at least one stream (leave it out to read \"sales\")",
            );
        }
        for (i, s) in streams.iter().enumerate() {
            if s.trim().is_empty() {
                return nonsense(format!("$.source.streams[{i}]"), "must not be empty");
            }
            if streams[..i].contains(s) {
                return nonsense(
                    format!("$.source.streams[{i}]"),
                    format!("{s:?} is listed twice"),
                );
            }
        }
        if let Some(n) = self.source.page_size {
            let r = out_of_range("$.source.page_size", n, 1, 100_000, " records");
            if r.is_some() {
                return r;
            }
        }
        for (role, limit) in [
            ("source", self.source.rate_limit),
            ("sink", self.sink.rate_limit),
        ] {
            if let Some(l) = limit {
                let path = format!("$.{role}.rate_limit");
                let r = out_of_range(&format!("{path}.requests"), l.requests, 1, 100_000, "")
                    .or_else(|| {
                        out_of_range(
                            &format!("{path}.per_seconds"),
                            l.per_seconds,
                            1,
                            86_400,
                            " seconds",
                        )
                    });
                if r.is_some() {
                    return r;
                }
            }
        }
        let d = &self.delivery;
        out_of_range(
            "$.delivery.batch_size",
            d.batch_size,
            1,
            100_000,
            " records",
        )
        .or_else(|| out_of_range("$.delivery.max_retries", d.max_retries, 0, 100, " retries"))
        .or_else(|| {
            out_of_range(
                "$.delivery.retry_base_ms",
                d.retry_base_ms,
                0,
                3_600_000,
                " ms",
            )
        })
        .or_else(|| {
            out_of_range(
                "$.delivery.retry_max_ms",
                d.retry_max_ms,
                0,
                3_600_000,
                " ms",
            )
        })
        .or_else(|| {
            (d.retry_max_ms < d.retry_base_ms).then(|| Nonsense {
                path: "$.delivery.retry_max_ms".into(),
                message: format!(
                    "{} is below retry_base_ms ({}): the cap must be at least the first delay",
                    d.retry_max_ms, d.retry_base_ms
                ),
            })
        })
        .or_else(|| {
            out_of_range(
                "$.delivery.timeout_secs",
                d.timeout_secs,
                1,
                86_400,
                " seconds",
            )
        })
        .or_else(|| {
            out_of_range(
                "$.delivery.buffer_pages",
                d.buffer_pages,
                1,
                1_024,
                " pages",
            )
        })
    }
}

fn yaml_error(fname: &str, e: YamlError) -> PipelineError {
    let message = suggest_field(&e.message());
    match e.location() {
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

/// An error located at the field of a JSON path (`$.delivery.timeout_secs`,
/// `$.source.streams[1]`): each key is looked for after the previous one.
fn at_path(text: &str, fname: &str, path: &str, message: String) -> PipelineError {
    let mut from = 0;
    let mut found = None;
    for part in path
        .trim_start_matches('$')
        .split('.')
        .filter(|p| !p.is_empty())
    {
        let key = format!("{}:", part.split('[').next().unwrap_or(part));
        let Some(i) = text[from..].find(&key) else {
            break;
        };
        found = Some(from + i);
        from += i + key.len();
    }
    match found {
        Some(idx) => {
            let (line, column) = line_column(text, idx);
            PipelineError::At {
                file: fname.to_string(),
                line,
                column,
                message,
            }
        }
        None => PipelineError::File {
            file: fname.to_string(),
            message,
        },
    }
}

/// Reads and parses a pipeline file (at most [`yaml::MAX_YAML_BYTES`]).
pub fn read_pipeline(path: &Path) -> Result<(PipelineDef, String), PipelineError> {
    let text = yaml::read_bounded(path).map_err(|e| PipelineError::Io {
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
            for v in config_violations(reg, &src.manifest, &self.source.config) {
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
            for v in config_violations(reg, &snk.manifest, &self.sink.config) {
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

/// A pipeline's config checked against the connector's schema. A config the connector does not
/// take as it is, but that an earlier config version of it migrates into a valid one, passes:
/// the runner migrates it from the version it recorded for the pipeline (an upgraded connector
/// keeps the pipelines written for its older versions).
fn config_violations(
    reg: &Registry,
    manifest: &posbridge_plugin_api::Manifest,
    config: &serde_json::Value,
) -> Vec<crate::plugins::ConfigViolation> {
    let violations = validate_config(&manifest.config_schema, config);
    if violations.is_empty() || manifest.config_version <= 1 {
        return violations;
    }
    let migrates_to_valid = (1..manifest.config_version).any(|from| {
        reg.migrate(
            &manifest.name,
            posbridge_plugin_api::abi::migration_kind::CONFIG,
            from,
            config,
        )
        .is_ok_and(|migrated| validate_config(&manifest.config_schema, &migrated).is_empty())
    });
    if migrates_to_valid {
        Vec::new()
    } else {
        violations
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

    const BASE: &str = "name: x\nsource: {connector: a}\nsink: {connector: b}\n";

    /// The error for `BASE` plus `extra`, which must be refused.
    fn refused(extra: &str) -> String {
        parse(&format!("{BASE}{extra}"))
            .map(|_| panic!("accepted: {extra}"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn nonsense_values_are_refused_with_their_json_path_and_line() {
        for (extra, path, line) in [
            (
                "delivery: {timeout_secs: 0}\n",
                "$.delivery.timeout_secs",
                4,
            ),
            ("delivery:\n  batch_size: 0\n", "$.delivery.batch_size", 5),
            (
                "delivery: {max_retries: 100000}\n",
                "$.delivery.max_retries",
                4,
            ),
            (
                "delivery: {buffer_pages: 0}\n",
                "$.delivery.buffer_pages",
                4,
            ),
            (
                "delivery: {retry_base_ms: 1000, retry_max_ms: 10}\n",
                "$.delivery.retry_max_ms",
                4,
            ),
            (
                "delivery: {timeout_secs: 100000000}\n",
                "$.delivery.timeout_secs",
                4,
            ),
        ] {
            let e = refused(extra);
            assert!(e.contains(path), "{extra}: {e}");
            assert!(e.starts_with(&format!("p.yaml:{line}:")), "{extra}: {e}");
        }
        let e = parse("name: x\nsource: {connector: a, streams: []}\nsink: {connector: b}\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("p.yaml:2:")
                && e.contains("$.source.streams: must name at least one stream"),
            "{e}"
        );
        let e = parse(
            "name: x\nsource: {connector: a, streams: [sales, sales]}\nsink: {connector: b}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("$.source.streams[1]: \"sales\" is listed twice"),
            "{e}"
        );
        for extra in [
            "page_size: 0",
            "rate_limit: {requests: 0, per_seconds: 1}",
            "rate_limit: {requests: 2, per_seconds: 0}",
        ] {
            let e = parse(&format!(
                "name: x\nsource:\n  connector: a\n  {extra}\nsink: {{connector: b}}\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(
                e.starts_with("p.yaml:4:") && e.contains("$.source."),
                "{extra}: {e}"
            );
        }
    }

    #[test]
    fn a_bad_schedule_is_refused_with_its_path_and_line() {
        let e = refused("schedule: \"61 * * * *\"\n");
        assert!(e.starts_with("p.yaml:4:"), "{e}");
        assert!(
            e.contains("$.schedule: \"61 * * * *\" is not a valid cron expression"),
            "{e}"
        );
        let def = parse(&format!("{BASE}schedule: \"0 3 * * *\"\n")).unwrap();
        assert_eq!(def.schedule.as_deref(), Some("0 3 * * *"));
    }

    #[test]
    fn a_string_for_a_boolean_or_a_number_is_refused_with_its_path() {
        for extra in [
            "delivery: {validate: \"false\"}\n",
            "delivery: {validate: no}\n",
            "delivery: {validate: 'yes'}\n",
            "delivery: {batch_size: \"10\"}\n",
        ] {
            let e = refused(extra);
            assert!(e.starts_with("p.yaml:4:"), "{extra}: {e}");
            assert!(e.contains("$.delivery."), "{extra}: {e}");
        }
        // The real thing still works.
        let def = parse(&format!(
            "{BASE}delivery: {{validate: false, batch_size: 10}}\n"
        ))
        .unwrap();
        assert!(!def.delivery.validate);
        assert_eq!(def.delivery.batch_size, 10);
    }

    #[test]
    fn a_pipeline_name_is_not_a_path() {
        for name in [
            "../etc",
            "a/b",
            "a\\\\b",
            "\"a\\u0000b\"",
            "\"a\\nb\"",
            "\"a\\u001bb\"",
            "..",
            "\" \"",
        ] {
            let e = parse(&format!(
                "name: {name}\nsource: {{connector: a}}\nsink: {{connector: b}}\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(e.starts_with("p.yaml:1:1: $.name: "), "{name}: {e}");
        }
        for name in ["daily-sales", "Filiale 3 (Köln)", "a.b_c"] {
            parse(&format!(
                "name: {name}\nsource: {{connector: a}}\nsink: {{connector: b}}\n"
            ))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn a_file_larger_than_the_limit_is_refused_before_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.yaml");
        std::fs::write(
            &p,
            format!("{BASE}# {}\n", "x".repeat(yaml::MAX_YAML_BYTES)),
        )
        .unwrap();
        let e = read_pipeline(&p).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
    }
}
