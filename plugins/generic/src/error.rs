//! The connector's typed errors and how they map to the host's error kinds.

use std::io;
use std::path::{Path, PathBuf};

use posbridge_plugin_api::ConnectorError;

/// What can go wrong reading or writing the files.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The configuration (or a request against it) does not make sense.
    #[error("{0}")]
    Config(String),
    /// An operating-system error on a file or folder.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A record in a source file cannot be decoded.
    #[error("{}, line {line}: {message}", file.display())]
    BadRecord {
        file: PathBuf,
        line: u64,
        message: String,
    },
    /// The host sent a request that cannot be right (a malformed cursor, keys not matching records).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A file does not have the shape the cursor or the ledger says it has.
    #[error("{}: {message}", file.display())]
    Inconsistent { file: PathBuf, message: String },
}

impl FileError {
    /// An `Io` error for `op` on `path`.
    pub fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        FileError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A closure for `map_err` building an `Io` error.
    pub fn io_at<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FileError + 'a {
        move |e| FileError::io(op, path, e)
    }
}

impl From<FileError> for ConnectorError {
    fn from(e: FileError) -> Self {
        let message = e.to_string();
        match e {
            FileError::Config(_) => ConnectorError::Config(message),
            // A missing file or a refused permission will not fix itself on retry.
            FileError::Io { source, .. }
                if matches!(
                    source.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
                ) =>
            {
                ConnectorError::Config(message)
            }
            // A full disk, an interrupted read, a flaky network share: worth a retry.
            FileError::Io { .. } => ConnectorError::Transient(message),
            FileError::BadRecord { .. } | FileError::Inconsistent { .. } => {
                ConnectorError::Permanent(message)
            }
            FileError::BadRequest(_) => ConnectorError::Bug(message),
        }
    }
}
