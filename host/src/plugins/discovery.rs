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

/// A file in a plugin folder that has a library's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    /// A regular file, or a symlink to one: to be checked and loaded.
    Library(PathBuf),
    /// A name that cannot be loaded at all (a dangling symlink, a symlink loop, a folder),
    /// with the reason.
    Unusable { file: PathBuf, reason: String },
}

/// Whether `path` has a library's extension (`.so`, `.dylib`, `.dll`).
fn has_library_extension(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("so" | "dylib" | "dll")
    )
}

/// Every entry with a library's name directly in `dir`, sorted by name. Entries that cannot
/// be followed (dangling symlinks, loops) are returned as [`Candidate::Unusable`] rather than
/// dropped, so that the user sees why a deployed connector is missing.
pub fn library_candidates(dir: &Path) -> Vec<Candidate> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| has_library_extension(p))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => Candidate::Library(p),
            Ok(m) if m.is_dir() => Candidate::Unusable {
                reason: "a folder, not a library file".into(),
                file: p,
            },
            Ok(_) => Candidate::Unusable {
                reason: "not a regular file".into(),
                file: p,
            },
            Err(e) => {
                let target = std::fs::read_link(&p).ok();
                let reason = match (target, e.kind()) {
                    (Some(t), std::io::ErrorKind::NotFound) => {
                        format!(
                            "dangling symlink: its target {} does not exist",
                            t.display()
                        )
                    }
                    (Some(t), _) => {
                        format!("symlink to {} cannot be followed: {e}", t.display())
                    }
                    (None, _) => format!("cannot be read: {e}"),
                };
                Candidate::Unusable { file: p, reason }
            }
        })
        .collect()
}

/// Every loadable-looking `.so` / `.dylib` / `.dll` file directly in `dir`, sorted by name
/// (see [`library_candidates`] for the ones that are not).
pub fn library_files(dir: &Path) -> Vec<PathBuf> {
    library_candidates(dir)
        .into_iter()
        .filter_map(|c| match c {
            Candidate::Library(p) => Some(p),
            Candidate::Unusable { .. } => None,
        })
        .collect()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn dangling_symlinks_and_loops_are_named_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("libgood.so"), b"x").unwrap();
        std::fs::write(d.join("notes.txt"), b"x").unwrap();
        std::os::unix::fs::symlink(d.join("gone.so.1"), d.join("libdangling.so")).unwrap();
        std::os::unix::fs::symlink(d.join("libloop_b.so"), d.join("libloop_a.so")).unwrap();
        std::os::unix::fs::symlink(d.join("libloop_a.so"), d.join("libloop_b.so")).unwrap();
        std::fs::create_dir(d.join("libdir.so")).unwrap();
        let c = library_candidates(d);
        assert_eq!(c.len(), 5, "{c:?}");
        let reason = |name: &str| {
            c.iter()
                .find_map(|c| match c {
                    Candidate::Unusable { file, reason } if file.ends_with(name) => {
                        Some(reason.clone())
                    }
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{name} not named: {c:?}"))
        };
        assert!(reason("libdangling.so").contains("dangling symlink"));
        assert!(reason("libdangling.so").contains("gone.so.1"));
        assert!(reason("libloop_a.so").contains("cannot be followed"));
        assert!(reason("libloop_b.so").contains("cannot be followed"));
        assert!(reason("libdir.so").contains("folder"));
        assert_eq!(library_files(d), vec![d.join("libgood.so")]);
    }
}
