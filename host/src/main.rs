fn main() {
    keep_memory_flat();
    std::process::exit(posbridge::cli::main_with_args(std::env::args_os()));
}

/// glibc's malloc serves a block above its mmap threshold with a mapping of its own, returned to
/// the system when freed; but it raises that threshold (up to 32 MiB) each time such a block is
/// freed, after which pages of records (≈ 1.6 MB per 1,000 sales), allocated on one thread and
/// freed on another, pile up in per-thread arenas: 95 MiB peak instead of 60 for a 100,000-sale
/// run (`bench/pipeline.sh`). A fixed threshold keeps it where it starts.
fn keep_memory_flat() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}
