//! Reading YAML (pipeline files, connector configs) within bounds: a size limit checked before
//! parsing and a nesting-depth and node budget enforced while parsing, so that a hostile or
//! broken file fails fast with a clear message instead of taking minutes (deeply nested
//! documents cost time quadratic in their depth in naive parsers).

use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;

/// The largest YAML file read (256 KiB): pipeline files and configs are a few KiB.
pub const MAX_YAML_BYTES: usize = 256 * 1024;
/// The deepest nesting of mappings and sequences accepted.
pub const MAX_YAML_DEPTH: usize = 32;
/// The most YAML nodes (scalars, mappings, sequences) in one document.
const MAX_YAML_NODES: usize = 50_000;

/// Why a YAML text could not be read.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the file is larger than {limit} bytes; a pipeline or config file is a few KiB")]
    TooLarge { limit: usize },
    /// A syntax, type or budget error, at a 1-based line and column where known.
    #[error("{message}")]
    Parse {
        message: String,
        location: Option<(usize, usize)>,
    },
}

impl YamlError {
    /// The 1-based line and column of the problem, if known.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            Self::Parse { location, .. } => *location,
            _ => None,
        }
    }

    /// The message without the location.
    pub fn message(&self) -> String {
        match self {
            Self::Parse { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

/// The parser options every host YAML read uses: bounded depth and size, duplicate keys
/// refused, and only `true`/`false` for booleans (not YAML 1.1's `yes`/`on`).
fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_YAML_DEPTH;
    budget.flow_nesting_limit = MAX_YAML_DEPTH;
    budget.max_nodes = MAX_YAML_NODES;
    budget.max_reader_input_bytes = Some(MAX_YAML_BYTES);
    serde_saphyr::options! {
        budget: Some(budget),
        strict_booleans: true,
        with_snippet: false,
    }
}

/// Parses `text` as one YAML document into `T`.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    if text.len() > MAX_YAML_BYTES {
        return Err(YamlError::TooLarge {
            limit: MAX_YAML_BYTES,
        });
    }
    // The JSON path of the field that failed, for type errors deep in the document.
    let mut failed_at = None;
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            failed_at = Some(e.path().to_string()).filter(|p| p != ".");
            e.into_inner()
        })
    });
    parsed.map_err(|e| {
        let location = e
            .location()
            .filter(|l| l.line() > 0)
            .map(|l| (l.line() as usize, l.column() as usize));
        let mut message = plain_message(&e.without_snippet().to_string());
        if message.contains("recursion limit") || message.contains("depth") {
            message = format!(
                "the document is nested deeper than {MAX_YAML_DEPTH} levels of mappings and sequences ({message})"
            );
        }
        YamlError::Parse {
            message: match failed_at {
                Some(path) => format!("$.{path}: {message}"),
                None => message,
            },
            location,
        }
    })
}

/// Reads a file of at most [`MAX_YAML_BYTES`] (refusing a larger one without reading it all).
pub fn read_bounded(path: &Path) -> Result<String, YamlError> {
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(MAX_YAML_BYTES as u64 + 1)
        .read_to_string(&mut text)?;
    if text.len() > MAX_YAML_BYTES {
        return Err(YamlError::TooLarge {
            limit: MAX_YAML_BYTES,
        });
    }
    Ok(text)
}

/// The parser's message without its own " at line L column C" suffix (we print the location
/// in front, as `file:line:column:`).
fn plain_message(m: &str) -> String {
    let first = m.lines().next().unwrap_or(m);
    match first.find(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::time::{Duration, Instant};

    #[test]
    fn a_deeply_nested_document_fails_fast_with_the_limit_named() {
        for text in [
            // Block style: 5,000 nested sequences on one line.
            "- ".repeat(5_000) + "x\n",
            // Block style: nested mappings, one per line.
            (0..500)
                .map(|i| format!("{}k:\n", " ".repeat(i)))
                .collect::<String>(),
            // Flow style: 100,000 nested sequences.
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
            // Block sequences nested properly, deeper than the limit.
            (0..40)
                .map(|i| format!("{}- \n", "  ".repeat(i)))
                .collect::<String>()
                + &"  ".repeat(40)
                + "x\n",
        ] {
            let started = Instant::now();
            let e = from_str::<Value>(&text).unwrap_err();

            let m = e.to_string();
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "took {:?}: {m}",
                started.elapsed()
            );
            assert!(
                m.contains(&format!("nested deeper than {MAX_YAML_DEPTH} levels")),
                "{m}"
            );
        }
    }

    #[test]
    fn nesting_within_the_limit_parses() {
        let text = format!("{}1{}", "[".repeat(20), "]".repeat(20));
        let v: Value = from_str(&text).unwrap();
        assert!(v.is_array());
    }

    #[test]
    fn a_large_text_is_refused_before_parsing() {
        let text = format!("a: \"{}\"\n", "x".repeat(MAX_YAML_BYTES));
        assert!(matches!(
            from_str::<Value>(&text),
            Err(YamlError::TooLarge { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.yaml");
        std::fs::write(&p, &text).unwrap();
        assert!(matches!(read_bounded(&p), Err(YamlError::TooLarge { .. })));
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let e = from_str::<Value>("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        let (line, column) = e.location().expect("a location");
        assert!(line >= 2, "{line}:{column}: {e}");
        assert!(!e.message().contains(" at line "), "{e}");
    }

    #[test]
    fn yaml_1_1_booleans_and_duplicate_keys_are_refused() {
        #[derive(serde::Deserialize, Debug)]
        struct B {
            #[allow(dead_code)]
            on: bool,
        }
        assert!(from_str::<B>("on: true\n").is_ok());
        assert!(from_str::<B>("on: yes\n").is_err());
        assert!(from_str::<Value>("a: 1\na: 2\n").is_err());
    }
}
