//! Where the exported records go: stdout, or a file that appears only once the export is
//! complete (written to a hidden temporary file beside it, renamed at the end).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The target of the records.
pub enum Destination {
    /// Standard output.
    Stdout,
    /// A file, written under `partial` and renamed to `path` by [`Destination::commit`].
    File {
        path: PathBuf,
        partial: PathBuf,
        committed: bool,
    },
}

impl Destination {
    /// Stdout when `path` is `None`, else the file.
    pub fn new(path: Option<&Path>) -> Self {
        match path {
            None => Destination::Stdout,
            Some(p) => {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let partial = p.with_file_name(format!(".{name}.{}.partial", std::process::id()));
                Destination::File {
                    path: p.to_path_buf(),
                    partial,
                    committed: false,
                }
            }
        }
    }

    /// Opens a buffered writer on the target (the temporary file for a file target).
    pub fn open(&self) -> std::io::Result<Box<dyn Write>> {
        match self {
            Destination::Stdout => Ok(Box::new(BufWriter::with_capacity(
                1 << 16,
                std::io::stdout(),
            ))),
            Destination::File { partial, .. } => {
                let f = File::create(partial).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot create {}: {e}", partial.display()),
                    )
                })?;
                Ok(Box::new(BufWriter::with_capacity(1 << 16, f)))
            }
        }
    }

    /// Moves a finished file export to its final name. The writer must be flushed and dropped.
    pub fn commit(&mut self) -> std::io::Result<()> {
        if let Destination::File {
            path,
            partial,
            committed,
        } = self
        {
            std::fs::rename(&*partial, &*path).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot move the export to {}: {e}", path.display()),
                )
            })?;
            *committed = true;
        }
        Ok(())
    }

    /// Whether the records go to stdout.
    pub fn is_stdout(&self) -> bool {
        matches!(self, Destination::Stdout)
    }

    /// A human name for messages.
    pub fn describe(&self) -> String {
        match self {
            Destination::Stdout => "stdout".into(),
            Destination::File { path, .. } => path.display().to_string(),
        }
    }
}

impl Drop for Destination {
    /// An export that did not finish leaves no file behind (and never half a file under the
    /// final name).
    fn drop(&mut self) {
        if let Destination::File {
            partial,
            committed: false,
            ..
        } = self
        {
            let _ = std::fs::remove_file(partial);
        }
    }
}
