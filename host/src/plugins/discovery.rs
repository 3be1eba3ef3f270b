//! Where plugin libraries are looked for.

use std::path::{Path, PathBuf};

/// The folders to search when no `--plugin-dir` is given: `POSBRIDGE_PLUGIN_DIR`
/// (`:`-separated), else `./plugins` and the folder of the executable.
pub fn default_plugin_dirs() -> Vec<PathBuf> {
    if let Ok(v) = std::env::var("POSBRIDGE_PLUGIN_DIR") {
        let dirs: Vec<PathBuf> = std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if !dirs.is_empty() {
            return dirs;
        }
    }
    let mut dirs = vec![PathBuf::from("plugins")];
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        dirs.push(exe_dir);
    }
    dirs
}

/// Every `.so` / `.dylib` / `.dll` file directly in `dir`, sorted by name.
pub fn library_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("so" | "dylib" | "dll")
            )
        })
        .collect();
    files.sort();
    files
}
