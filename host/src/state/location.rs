//! Where the state lives: the parsing of `--state` values.

use std::path::PathBuf;

use super::StateError;

/// The state file used when `--state` is not given, in the working directory.
pub const DEFAULT_STATE_FILE: &str = "posbridge.db";

/// A parsed `--state` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (recognised so that it can be refused clearly; not implemented yet).
    Postgres(String),
}

impl StateLocation {
    /// Parses a `--state` value.
    ///
    /// - none: `posbridge.db` in the working directory;
    /// - `sqlite:PATH`, or `sqlite://PATH` (so `sqlite:///abs/file.db` is an absolute path);
    /// - `postgres://…` / `postgresql://…`;
    /// - anything else without a `scheme://` is a bare file path.
    pub fn parse(spec: Option<&str>) -> Result<Self, StateError> {
        let Some(spec) = spec else {
            return Ok(Self::Sqlite(PathBuf::from(DEFAULT_STATE_FILE)));
        };
        let invalid = |reason: &str| StateError::InvalidSpec {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        if spec.trim().is_empty() {
            return Err(invalid("it is empty"));
        }
        if let Some(rest) = spec.strip_prefix("sqlite:") {
            // `sqlite://x` is the URL form of `sqlite:x`.
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(invalid(
                    "sqlite: needs a file path, e.g. sqlite:posbridge.db",
                ));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = spec.split_once("://") {
            return match scheme.to_ascii_lowercase().as_str() {
                "postgres" | "postgresql" => Ok(Self::Postgres(spec.to_string())),
                _ => Err(invalid("unknown scheme; use sqlite:PATH or a file path")),
            };
        }
        Ok(Self::Sqlite(PathBuf::from(spec)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(path: &str) -> StateLocation {
        StateLocation::Sqlite(PathBuf::from(path))
    }

    #[test]
    fn default_is_posbridge_db_in_working_directory() {
        assert_eq!(StateLocation::parse(None).unwrap(), sqlite("posbridge.db"));
    }

    #[test]
    fn sqlite_prefix_and_bare_paths() {
        assert_eq!(
            StateLocation::parse(Some("sqlite:state/p.db")).unwrap(),
            sqlite("state/p.db")
        );
        assert_eq!(
            StateLocation::parse(Some("sqlite:///var/lib/p.db")).unwrap(),
            sqlite("/var/lib/p.db")
        );
        assert_eq!(
            StateLocation::parse(Some("sqlite://p.db")).unwrap(),
            sqlite("p.db")
        );
        assert_eq!(
            StateLocation::parse(Some("/tmp/x.db")).unwrap(),
            sqlite("/tmp/x.db")
        );
        assert_eq!(StateLocation::parse(Some("x.db")).unwrap(), sqlite("x.db"));
        // A Windows drive letter is a path, not a scheme.
        assert_eq!(
            StateLocation::parse(Some(r"C:\data\p.db")).unwrap(),
            sqlite(r"C:\data\p.db")
        );
    }

    #[test]
    fn postgres_urls_are_recognised() {
        let url = "postgres://user@localhost/posbridge";
        assert_eq!(
            StateLocation::parse(Some(url)).unwrap(),
            StateLocation::Postgres(url.into())
        );
        let url = "postgresql://localhost/db";
        assert_eq!(
            StateLocation::parse(Some(url)).unwrap(),
            StateLocation::Postgres(url.into())
        );
    }

    #[test]
    fn empty_and_unknown_values_are_refused() {
        for bad in ["", "  ", "sqlite:", "sqlite://", "mysql://localhost/db"] {
            let err = StateLocation::parse(Some(bad)).unwrap_err();
            assert!(
                matches!(err, StateError::InvalidSpec { .. }),
                "{bad:?} gave {err:?}"
            );
        }
    }
}
