//! Durability helpers: making a new directory entry survive a crash.

use std::path::Path;

use crate::error::FileError;

/// Fsyncs the folder holding `path`, so that a file just created there is not lost on a crash.
/// A no-op where folders cannot be opened for syncing (Windows).
pub fn sync_parent(path: &Path) -> Result<(), FileError> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(FileError::io_at("sync folder", parent))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
