//! The connector's configuration and what follows from it (effective format, file or folder).

use std::path::{Path, PathBuf};

use posbridge_plugin_api::model::STREAMS;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::FileError;
use crate::http::HttpConfig;

/// Configuration of the generic connector: files (`path`) or an HTTP endpoint (`http`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = require_one_transport)]
pub struct GenericConfig {
    /// A file, or a folder whose matching files are read in sorted order. As a sink, a folder
    /// means `<folder>/<stream>.<extension of the format>`. Exactly one of `path` and `http`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// An HTTP endpoint instead of files. Exactly one of `path` and `http`.
    #[serde(default)]
    pub http: Option<HttpConfig>,
    /// `ndjson`, `csv` or `json` (a top-level array). Default: from the file extension
    /// (`.ndjson`/`.jsonl`, `.csv`, `.json`; in folder mode the extension of `glob`), else `ndjson`.
    #[serde(default)]
    pub format: Option<Format>,
    /// Folder mode only: which files to read, relative to `path` (e.g. `sales-*.csv`, `**/*.ndjson`).
    /// Default: every file with an extension of the format.
    #[serde(default)]
    pub glob: Option<String>,
    /// The canonical stream the files carry (one of the canonical stream names). Default `sales`.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Upper bound for records per page; the host's `page_size` applies when it is smaller.
    #[serde(default)]
    pub page_size: Option<usize>,
}

fn default_stream() -> String {
    "sales".into()
}

/// Exactly one transport: `path` or `http`.
fn require_one_transport(schema: &mut schemars::Schema) {
    schema.insert(
        "oneOf".into(),
        serde_json::json!([{ "required": ["path"] }, { "required": ["http"] }]),
    );
}

/// Where the records are: files, or an HTTP endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    Files(Settings),
    Http {
        http: Box<HttpConfig>,
        stream: String,
        page_size: Option<usize>,
    },
}

impl Transport {
    /// Validates `config` and tells the transport it chose.
    pub fn from_config(config: GenericConfig) -> Result<Transport, FileError> {
        match (&config.path, &config.http) {
            (Some(_), Some(_)) => Err(FileError::Config(
                "give either path (files) or http (an HTTP endpoint), not both".into(),
            )),
            (None, None) => Err(FileError::Config(
                "give path (a file or folder) or http (an HTTP endpoint)".into(),
            )),
            (Some(_), None) => Ok(Transport::Files(Settings::from_config(config)?)),
            (None, Some(_)) => {
                check_common(&config)?;
                if config.format.is_some() || config.glob.is_some() {
                    return Err(FileError::Config(
                        "format and glob are for files; an HTTP endpoint speaks JSON".into(),
                    ));
                }
                let http = config.http.expect("matched above");
                http.validate()
                    .map_err(|e| FileError::Config(e.to_string()))?;
                Ok(Transport::Http {
                    http: Box::new(http),
                    stream: config.stream,
                    page_size: config.page_size,
                })
            }
        }
    }
}

/// The checks every transport shares: a canonical stream and a positive page size.
fn check_common(config: &GenericConfig) -> Result<(), FileError> {
    if !STREAMS.contains(&config.stream.as_str()) {
        return Err(FileError::Config(format!(
            "stream {:?} is not a canonical stream (one of {})",
            config.stream,
            STREAMS.join(", ")
        )));
    }
    if config.page_size == Some(0) {
        return Err(FileError::Config("page_size must be at least 1".into()));
    }
    Ok(())
}

/// A file format the connector reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per line.
    Ndjson,
    /// A header row, then one record per row (see the CSV flattening in the docs).
    Csv,
    /// One top-level JSON array of objects.
    Json,
}

impl Format {
    /// The format a file extension stands for, if any.
    pub fn from_extension(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "ndjson" | "jsonl" => Some(Format::Ndjson),
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// The extensions a file of this format carries; the first is used for new files.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Format::Ndjson => &["ndjson", "jsonl"],
            Format::Csv => &["csv"],
            Format::Json => &["json"],
        }
    }
}

/// A validated configuration: the effective format and stream, and how `path` is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub path: PathBuf,
    pub format: Format,
    pub glob: Option<String>,
    pub stream: String,
    pub page_size: Option<usize>,
}

impl Settings {
    /// Validates a file `config`: a path, a canonical stream, a parsable glob, a positive page
    /// size, and no glob on a path that is a file.
    pub fn from_config(config: GenericConfig) -> Result<Settings, FileError> {
        check_common(&config)?;
        if config.http.is_some() {
            return Err(FileError::Config(
                "give either path (files) or http (an HTTP endpoint), not both".into(),
            ));
        }
        let path = config
            .path
            .clone()
            .ok_or_else(|| FileError::Config("path is missing".into()))?;
        if path.as_os_str().is_empty() {
            return Err(FileError::Config("path is empty".into()));
        }
        if let Some(g) = &config.glob {
            glob::Pattern::new(g).map_err(|e| {
                FileError::Config(format!("glob {g:?} is not a valid pattern: {e}"))
            })?;
            if path.is_file() {
                return Err(FileError::Config(format!(
                    "glob is only for folders, but {} is a file",
                    path.display()
                )));
            }
        }
        let format = config.format.unwrap_or_else(|| {
            let named = match &config.glob {
                Some(g) => Path::new(g).to_path_buf(),
                None => path.clone(),
            };
            Format::from_extension(&named).unwrap_or(Format::Ndjson)
        });
        Ok(Settings {
            path,
            format,
            glob: config.glob,
            stream: config.stream,
            page_size: config.page_size,
        })
    }

    /// Fails with a `Config` error unless `stream` is the stream this connector carries.
    pub fn expect_stream(&self, stream: &str) -> Result<(), FileError> {
        if stream == self.stream {
            Ok(())
        } else {
            Err(FileError::Config(format!(
                "this connector carries the stream {:?}, not {stream:?}",
                self.stream
            )))
        }
    }

    /// The file a sink writes: `path` itself, or `<path>/<stream>.<ext>` when `path` is a folder
    /// (or a glob is set).
    pub fn sink_file(&self) -> PathBuf {
        if self.glob.is_some() || self.path.is_dir() {
            self.path
                .join(format!("{}.{}", self.stream, self.format.extensions()[0]))
        } else {
            self.path.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> Result<GenericConfig, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn format_defaults_from_extension_then_ndjson() {
        let s = |p: &str| {
            Settings::from_config(config(serde_json::json!({ "path": p })).unwrap())
                .unwrap()
                .format
        };
        assert_eq!(s("/data/x.csv"), Format::Csv);
        assert_eq!(s("/data/x.JSON"), Format::Json);
        assert_eq!(s("/data/x.jsonl"), Format::Ndjson);
        assert_eq!(s("/data/x.txt"), Format::Ndjson);
    }

    #[test]
    fn unknown_fields_and_streams_are_refused() {
        assert!(config(serde_json::json!({ "path": "a", "pathh": "b" })).is_err());
        let cfg = config(serde_json::json!({ "path": "a", "stream": "salez" })).unwrap();
        assert!(matches!(
            Settings::from_config(cfg),
            Err(FileError::Config(_))
        ));
        let cfg = config(serde_json::json!({ "path": "a", "stream": "closures" })).unwrap();
        assert_eq!(Settings::from_config(cfg).unwrap().stream, "closures");
    }

    #[test]
    fn bad_glob_and_zero_page_size_are_refused() {
        let cfg = config(serde_json::json!({ "path": "a", "glob": "[" })).unwrap();
        assert!(matches!(
            Settings::from_config(cfg),
            Err(FileError::Config(_))
        ));
        let cfg = config(serde_json::json!({ "path": "a", "page_size": 0 })).unwrap();
        assert!(matches!(
            Settings::from_config(cfg),
            Err(FileError::Config(_))
        ));
    }

    #[test]
    fn exactly_one_transport() {
        let http = serde_json::json!({ "url": "https://api.example.com/sales" });
        let both = config(serde_json::json!({ "path": "a", "http": http })).unwrap();
        assert!(matches!(
            Transport::from_config(both),
            Err(FileError::Config(_))
        ));
        let none = config(serde_json::json!({ "stream": "sales" })).unwrap();
        assert!(matches!(
            Transport::from_config(none),
            Err(FileError::Config(_))
        ));
        let files = config(serde_json::json!({ "path": "a.csv" })).unwrap();
        assert!(matches!(
            Transport::from_config(files),
            Ok(Transport::Files(_))
        ));
        let web = config(serde_json::json!({ "http": http, "page_size": 5 })).unwrap();
        assert!(matches!(
            Transport::from_config(web),
            Ok(Transport::Http {
                page_size: Some(5),
                ..
            })
        ));
        let web_csv = config(serde_json::json!({ "http": http, "format": "csv" })).unwrap();
        assert!(matches!(
            Transport::from_config(web_csv),
            Err(FileError::Config(_))
        ));
        let bad_url = config(serde_json::json!({ "http": { "url": "nope" } })).unwrap();
        assert!(matches!(
            Transport::from_config(bad_url),
            Err(FileError::Config(_))
        ));
    }
}
