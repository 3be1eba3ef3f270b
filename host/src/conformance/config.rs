//! The suite's own config file: a working connector config, optional bad credentials, the
//! streams to read and the batch to write. Everything the suite cannot guess about a connector.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::Value;

/// What the conformance suite needs to know about one connector.
///
/// String values anywhere in `config`, `bad_config` and `write` may contain `${sandbox_url}`,
/// replaced by `--sandbox-url` (or [`SuiteConfig::with_sandbox_url`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteConfig {
    /// A config that works against the vendor (or its simulator).
    pub config: Value,
    /// The same config with credentials the vendor refuses. Without it the credential checks
    /// fail: a connector that talks to a vendor must refuse bad credentials cleanly.
    #[serde(default)]
    pub bad_config: Option<Value>,
    /// The streams to read, with their request. Default: every readable stream of the
    /// manifest, with no date bounds and `page_size` 5.
    #[serde(default)]
    pub streams: Vec<StreamRead>,
    /// A batch to write twice (sinks). Required when the connector declares a writable stream.
    #[serde(default)]
    pub write: Option<WriteBatch>,
    /// At most this many cursors of a read are resumed from (spread over the read). Default 8.
    #[serde(default = "default_resume_points")]
    pub max_resume_points: usize,
    /// A read that has not ended after this many pages fails. Default 200.
    #[serde(default = "default_max_pages")]
    pub max_pages: usize,
}

fn default_resume_points() -> usize {
    8
}

fn default_max_pages() -> usize {
    200
}

/// One stream to read, as the host would ask for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamRead {
    /// The stream's name.
    pub stream: String,
    /// Records per page asked for; small values give more cursors to resume from. Default 5.
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// Only records on or after this business day.
    #[serde(default)]
    pub from: Option<NaiveDate>,
    /// Only records on or before this business day.
    #[serde(default)]
    pub to: Option<NaiveDate>,
}

fn default_page_size() -> usize {
    5
}

/// A batch the suite writes twice to show the sink keeps one copy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteBatch {
    /// The stream to write.
    pub stream: String,
    /// The sink mode (`per_sale`, `daily_summary`, …), if the sink needs one.
    #[serde(default)]
    pub mode: Option<String>,
    /// The pipeline's `mapping` section for this sink.
    #[serde(default)]
    pub mapping: Value,
    /// The records, inline.
    #[serde(default)]
    pub records: Vec<Value>,
    /// Or an NDJSON file of records (relative to the suite config file).
    #[serde(default)]
    pub records_file: Option<PathBuf>,
}

/// Why a suite config could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SuiteConfigError {
    /// The file is not JSON/YAML.
    #[error("{0}")]
    Syntax(String),
    /// A field has the wrong shape; `path` is its JSON path.
    #[error("{file}: {path}: {message}")]
    Field {
        /// The config file.
        file: String,
        /// JSON path of the field, e.g. `$.write.records_file`.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The `records_file` could not be read.
    #[error("{file}: line {line}: {message}")]
    Records {
        /// The NDJSON file.
        file: String,
        /// 1-based line number (0 when the file cannot be opened).
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl SuiteConfig {
    /// A suite config for `config`, with every other setting at its default.
    pub fn new(config: Value) -> Self {
        Self {
            config,
            bad_config: None,
            streams: Vec::new(),
            write: None,
            max_resume_points: default_resume_points(),
            max_pages: default_max_pages(),
        }
    }

    /// Reads a suite config file (JSON, or YAML unless it ends in `.json`); a `records_file`
    /// is read relative to it.
    pub fn load(path: &Path) -> Result<Self, SuiteConfigError> {
        let value = crate::pipeline::load_config_file(path)
            .map_err(|e| SuiteConfigError::Syntax(format!("{e:#}")))?;
        let mut cfg: SuiteConfig =
            serde_path_to_error::deserialize(value).map_err(|e| SuiteConfigError::Field {
                file: path.display().to_string(),
                path: format!("$.{}", e.path()).replace("$..", "$."),
                message: e.inner().to_string(),
            })?;
        if let Some(w) = &mut cfg.write {
            if let Some(f) = w.records_file.take() {
                let f = path.parent().map(|d| d.join(&f)).unwrap_or(f);
                w.records.extend(read_ndjson(&f)?);
            }
        }
        Ok(cfg)
    }

    /// Replaces `${sandbox_url}` in every string of the connector configs and the batch.
    pub fn with_sandbox_url(mut self, url: &str) -> Self {
        let url = url.trim_end_matches('/');
        substitute(&mut self.config, url);
        if let Some(b) = &mut self.bad_config {
            substitute(b, url);
        }
        if let Some(w) = &mut self.write {
            substitute(&mut w.mapping, url);
        }
        self
    }
}

fn substitute(v: &mut Value, url: &str) {
    match v {
        Value::String(s) if s.contains("${sandbox_url}") => {
            *s = s.replace("${sandbox_url}", url);
        }
        Value::Array(a) => a.iter_mut().for_each(|x| substitute(x, url)),
        Value::Object(o) => o.values_mut().for_each(|x| substitute(x, url)),
        _ => {}
    }
}

fn read_ndjson(path: &Path) -> Result<Vec<Value>, SuiteConfigError> {
    let err = |line, message: String| SuiteConfigError::Records {
        file: path.display().to_string(),
        line,
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(0, e.to_string()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(line).map_err(|e| err(i + 1, e.to_string()))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_sandbox_url_is_put_into_every_string() {
        let mut c = SuiteConfig::new(json!({"base_url": "${sandbox_url}/api", "n": 1}));
        c.bad_config = Some(json!({"urls": ["${sandbox_url}"]}));
        let c = c.with_sandbox_url("http://127.0.0.1:9/");
        assert_eq!(c.config["base_url"], "http://127.0.0.1:9/api");
        assert_eq!(c.bad_config.unwrap()["urls"][0], "http://127.0.0.1:9");
    }

    #[test]
    fn a_wrong_field_is_named_by_its_path_and_records_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("suite.json");
        std::fs::write(
            &f,
            r#"{"config": {}, "streams": [{"stream": "sales", "page_size": "x"}]}"#,
        )
        .unwrap();
        let e = SuiteConfig::load(&f).unwrap_err().to_string();
        assert!(e.contains("$.streams[0].page_size"), "{e}");

        std::fs::write(
            dir.path().join("batch.ndjson"),
            "{\"id\": \"a\"}\n\n{\"id\": \"b\"}\n",
        )
        .unwrap();
        std::fs::write(
            &f,
            r#"{"config": {}, "write": {"stream": "sales", "records_file": "batch.ndjson"}}"#,
        )
        .unwrap();
        let c = SuiteConfig::load(&f).unwrap();
        assert_eq!(
            c.write.unwrap().records,
            vec![json!({"id": "a"}), json!({"id": "b"})]
        );

        std::fs::write(
            dir.path().join("batch.ndjson"),
            "{\"id\": \"a\"}\nnot json\n",
        )
        .unwrap();
        let e = SuiteConfig::load(&f).unwrap_err().to_string();
        assert!(e.contains("batch.ndjson: line 2"), "{e}");
    }
}
