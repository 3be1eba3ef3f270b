//! Page buffers handed back for reuse.
//!
//! A page of records crosses to the host as one buffer this library allocated; the host may
//! hand the same buffer back as the records of a later write to a sink of this library (see
//! the host's `plugins::page_buffers`). A page is ≈ 1.7 MB for 1,000 sales, above glibc's mmap
//! threshold, so a new buffer is fresh memory mapped one page fault per 4 KiB as it is written,
//! and unmapped again when freed: in a file pipeline that was ≈ 40,000 faults per 100,000
//! sales, the largest cost outside the JSON parse. The write keeps a buffer it was given (only
//! one of this library's own: another library's is freed through that library, as always) and
//! the next read takes it, already mapped.
//!
//! Nothing in the interface changes: a buffer still changes hands by value, and a library
//! built without this module frees what it is given.
//!
//! ```
//! use posbridge_plugin_api::sdk::page_buffer;
//!
//! let mut page = page_buffer(4096);
//! assert!(page.is_empty() && page.capacity() >= 4096);
//! page.extend_from_slice(b"{\"id\":\"1\"}\n");
//! ```

use std::sync::Mutex;

use abi_stable::std_types::RVec;

/// Buffers kept, at most: a read takes one for each page, so two cover the pages a write
/// frees while the source reads ahead.
const SPARES: usize = 2;
/// Smaller buffers are not kept: malloc reuses their memory without the system's help.
const MIN_KEPT_BYTES: usize = 64 * 1024;
/// Larger buffers are not kept: one outsized page must not stay resident for the process's
/// lifetime.
const MAX_KEPT_BYTES: usize = 16 * 1024 * 1024;

static SPARE: Spares = Spares::new();

/// An empty buffer with room for at least `capacity` bytes, for the records of a page: one
/// the host handed back when there is one, else a new one.
pub fn page_buffer(capacity: usize) -> Vec<u8> {
    SPARE.take(capacity)
}

/// Keeps the records a write was given for the next [`page_buffer`], when they are a buffer
/// of this library's (a page it read); frees them otherwise.
pub(crate) fn keep_for_reuse(records: RVec<u8>) {
    SPARE.keep(records);
}

/// A short list of this library's buffers.
struct Spares(Mutex<Vec<Vec<u8>>>);

impl Spares {
    const fn new() -> Self {
        Spares(Mutex::new(Vec::new()))
    }

    fn take(&self, capacity: usize) -> Vec<u8> {
        let spare = self.0.lock().ok().and_then(|mut spare| spare.pop());
        match spare {
            Some(mut buffer) => {
                buffer.clear();
                buffer.reserve(capacity);
                buffer
            }
            None => Vec::with_capacity(capacity),
        }
    }

    fn keep(&self, mut records: RVec<u8>) {
        records.clear();
        // With nothing in it, `into_vec` copies nothing: it answers this library's own buffer,
        // or, for another allocator's, frees that through its owner and answers an empty one.
        let buffer = records.into_vec();
        if !(MIN_KEPT_BYTES..=MAX_KEPT_BYTES).contains(&buffer.capacity()) {
            return;
        }
        if let Ok(mut spare) = self.0.lock() {
            if spare.len() < SPARES {
                spare.push(buffer);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().map(|spare| spare.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_the_next_pages_and_a_small_one_is_not_kept() {
        let spares = Spares::new();
        let mut page = spares.take(MIN_KEPT_BYTES);
        page.extend_from_slice(b"{\"id\":\"1\"}\n");
        let address = page.as_ptr();
        spares.keep(RVec::from(page));
        assert_eq!(spares.len(), 1);
        let again = spares.take(100);
        assert_eq!(again.as_ptr(), address, "the same memory");
        assert!(again.is_empty(), "emptied");
        assert_eq!(spares.len(), 0);

        spares.keep(RVec::from(Vec::with_capacity(100)));
        assert_eq!(spares.len(), 0, "below the size worth keeping");
        for _ in 0..SPARES + 3 {
            spares.keep(RVec::from(Vec::with_capacity(MIN_KEPT_BYTES)));
        }
        assert_eq!(spares.len(), SPARES);
    }
}
