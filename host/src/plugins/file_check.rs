//! Checking a library file before `dlopen`: the dynamic loader maps a file's segments as its
//! headers describe them, and touching a mapped page beyond the end of a truncated file (a
//! half-finished copy during a deployment) raises SIGBUS, which kills the host with no message.
//! So the headers are parsed here first, and every segment and section must lie inside the file.

use std::path::Path;

use object::{Object, ObjectSection, ObjectSegment};

/// Why a file is not handed to the dynamic loader.
#[derive(Debug, thiserror::Error)]
pub enum FileCheckError {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the file is empty")]
    Empty,
    #[error("unreadable object file headers ({0}); the file may be truncated or not a library")]
    Headers(String),
    #[error("truncated: {what} covers bytes {start}..{end} but the file has only {len} bytes")]
    Truncated {
        what: String,
        start: u64,
        end: u64,
        len: u64,
    },
}

/// Parses the ELF/Mach-O/PE headers of `path` and checks that every segment's and section's
/// file range lies within the file.
pub fn check_library_file(path: &Path) -> Result<(), FileCheckError> {
    // Only the headers and tables are read (a library is megabytes; reading it whole made
    // `plugins list` spend most of its start-up copying files).
    let f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len == 0 {
        return Err(FileCheckError::Empty);
    }
    let data = object::ReadCache::new(f);
    let file = object::File::parse(&data).map_err(|e| FileCheckError::Headers(e.to_string()))?;
    let beyond = |what: String, (start, size): (u64, u64)| {
        let end = start.saturating_add(size);
        (end > len).then_some(FileCheckError::Truncated {
            what,
            start,
            end,
            len,
        })
    };
    for (i, segment) in file.segments().enumerate() {
        let name = segment.name().ok().flatten().map(str::to_string);
        let what = match name {
            Some(n) if !n.is_empty() => format!("segment {n}"),
            _ => format!("segment {i}"),
        };
        if let Some(e) = beyond(what, segment.file_range()) {
            return Err(e);
        }
    }
    for section in file.sections() {
        let Some(range) = section.file_range() else {
            continue; // no bytes in the file (.bss)
        };
        let what = format!("section {}", section.name().unwrap_or("?"));
        if let Some(e) = beyond(what, range) {
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test binary itself is a complete object file of this platform.
    fn own_executable() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn a_complete_file_passes_and_truncated_copies_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let whole = own_executable();
        let p = dir.path().join("whole");
        std::fs::write(&p, &whole).unwrap();
        check_library_file(&p).unwrap();
        for cut in [
            whole.len() - 1,
            whole.len() * 9 / 10,
            whole.len() / 2,
            64,
            1,
        ] {
            std::fs::write(&p, &whole[..cut]).unwrap();
            let e = check_library_file(&p).unwrap_err();
            assert!(
                matches!(
                    e,
                    FileCheckError::Truncated { .. } | FileCheckError::Headers(_)
                ),
                "cut at {cut}: {e}"
            );
        }
        std::fs::write(&p, b"").unwrap();
        assert!(matches!(check_library_file(&p), Err(FileCheckError::Empty)));
    }

    /// A file whose section table is gone (stripped, or never written) still has program
    /// headers: a segment that runs past the end of the file is named.
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    #[test]
    fn a_segment_past_the_end_of_the_file_is_named() {
        let mut elf = own_executable();
        assert_eq!(&elf[..4], b"\x7fELF");
        // e_shoff (0x28, 8 bytes), e_shnum (0x3c) and e_shstrndx (0x3e): no section table.
        elf[0x28..0x30].fill(0);
        elf[0x3c..0x40].fill(0);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nosections");
        std::fs::write(&p, &elf).unwrap();
        check_library_file(&p).unwrap();
        // Cut in the middle of what the segments map (debug info after them is not mapped).
        let mapped_end = object::File::parse(&*elf)
            .unwrap()
            .segments()
            .map(|s| s.file_range().0 + s.file_range().1)
            .max()
            .unwrap();
        let cut = mapped_end as usize / 2;
        std::fs::write(&p, &elf[..cut]).unwrap();
        match check_library_file(&p) {
            Err(FileCheckError::Truncated { what, end, len, .. }) => {
                assert!(what.starts_with("segment"), "{what}");
                assert!(end > len);
                assert_eq!(len, cut as u64);
            }
            other => panic!("expected a truncated segment, got {other:?}"),
        }
    }
}
