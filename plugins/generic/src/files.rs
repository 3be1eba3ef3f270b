//! Which files a source reads: the configured file, or the matching files of a folder in
//! sorted order.

use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::error::FileError;
use crate::ledger::LEDGER_SUFFIX;

/// One file to read and the name the cursor knows it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The file name (single-file mode) or the path relative to the folder, with `/` separators.
    pub name: String,
    pub path: PathBuf,
}

/// Whether the source reads one file or a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    SingleFile,
    Folder,
}

/// The mode `settings.path` puts the source in: a folder when it is one (or a glob is set).
pub fn mode(settings: &Settings) -> Mode {
    if settings.glob.is_some() || settings.path.is_dir() {
        Mode::Folder
    } else {
        Mode::SingleFile
    }
}

/// The files to read, sorted by their cursor name. Ledger sidecars are never records.
pub fn list(settings: &Settings) -> Result<Vec<SourceFile>, FileError> {
    match mode(settings) {
        Mode::SingleFile => {
            let name = settings
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| {
                    FileError::Config(format!("{} does not name a file", settings.path.display()))
                })?;
            Ok(vec![SourceFile {
                name,
                path: settings.path.clone(),
            }])
        }
        Mode::Folder => list_folder(settings),
    }
}

fn list_folder(settings: &Settings) -> Result<Vec<SourceFile>, FileError> {
    let dir = &settings.path;
    if !dir.is_dir() {
        return Err(FileError::io(
            "list folder",
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a folder"),
        ));
    }
    let mut paths: Vec<PathBuf> = match &settings.glob {
        Some(pattern) => {
            let full = format!(
                "{}/{}",
                glob::Pattern::escape(&dir.to_string_lossy()),
                pattern
            );
            let options = glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: true,
                require_literal_leading_dot: true,
            };
            glob::glob_with(&full, options)
                .map_err(|e| FileError::Config(format!("glob {pattern:?}: {e}")))?
                .collect::<Result<_, _>>()
                .map_err(|e| {
                    let path = e.path().to_path_buf();
                    FileError::io("list folder", &path, e.into())
                })?
        }
        None => {
            let extensions = settings.format.extensions();
            let entries = std::fs::read_dir(dir).map_err(FileError::io_at("list folder", dir))?;
            let mut out = Vec::new();
            for entry in entries {
                let path = entry.map_err(FileError::io_at("list folder", dir))?.path();
                let matches = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| extensions.contains(&e.to_ascii_lowercase().as_str()));
                if matches {
                    out.push(path);
                }
            }
            out
        }
    };
    paths.retain(|p| p.is_file() && !p.to_string_lossy().ends_with(LEDGER_SUFFIX));
    let mut files: Vec<SourceFile> = paths
        .into_iter()
        .map(|path| SourceFile {
            name: relative_name(dir, &path),
            path,
        })
        .collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

fn relative_name(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}
