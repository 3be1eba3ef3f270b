//! Buffers of pages the run is done with, kept to carry the next batch to the sink.
//!
//! A page a connector read arrives as one buffer its library allocated (≈ 1.7 MB for 1,000
//! sales); the batch written to the sink was a second one the host allocated. Both are above
//! glibc's mmap threshold (see `main.rs`), so each was fresh memory, mapped one page fault per
//! 4 KiB as it was written and unmapped when freed. Instead, a page's buffer, once no record
//! refers to it, is kept here, and the next batch is joined into it and handed to the sink.
//! A sink of the same library as the source keeps it in turn for that library's next read
//! (`posbridge_plugin_api::sdk::page_buffer`); another frees it through its owner, as any
//! buffer handed over is freed. So in a file pipeline the same few buffers go round.
//!
//! The list is the process's, shared by the runs of a server: at most [`SPARES`] buffers, none
//! larger than [`MAX_KEPT_BYTES`], and none before a run has asked for one: a run that writes
//! no lines (`daily_summary`) would only hold them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use abi_stable::std_types::RVec;

/// Buffers kept, at most.
const SPARES: usize = 2;
/// Smaller buffers are not kept: malloc reuses their memory without the system's help.
const MIN_KEPT_BYTES: usize = 64 * 1024;
/// Larger buffers are not kept: one outsized page must not stay resident for the process's
/// lifetime.
const MAX_KEPT_BYTES: usize = 16 * 1024 * 1024;

static SPARE: Spares = Spares::new();

/// Keeps a page's buffer, which nothing refers to any more, for [`take`].
pub(crate) fn give_back(buffer: RVec<u8>) {
    SPARE.give_back(buffer);
}

/// An empty kept buffer with room for `capacity` bytes, when one is kept.
pub(crate) fn take(capacity: usize) -> Option<RVec<u8>> {
    SPARE.take(capacity)
}

/// A short list of buffers.
struct Spares {
    list: Mutex<Vec<RVec<u8>>>,
    /// Whether a buffer was ever asked for: until then none is kept.
    wanted: AtomicBool,
}

impl Spares {
    const fn new() -> Self {
        Spares {
            list: Mutex::new(Vec::new()),
            wanted: AtomicBool::new(false),
        }
    }

    fn give_back(&self, buffer: RVec<u8>) {
        if !self.wanted.load(Ordering::Relaxed)
            || !(MIN_KEPT_BYTES..=MAX_KEPT_BYTES).contains(&buffer.capacity())
        {
            return;
        }
        if let Ok(mut spare) = self.list.lock() {
            if spare.len() < SPARES {
                spare.push(buffer);
            }
        }
    }

    fn take(&self, capacity: usize) -> Option<RVec<u8>> {
        self.wanted.store(true, Ordering::Relaxed);
        let mut buffer = self.list.lock().ok()?.pop()?;
        buffer.clear();
        buffer.reserve(capacity);
        Some(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_given_back_carries_the_next_batch_and_the_list_stays_short() {
        let spares = Spares::new();
        spares.give_back(RVec::with_capacity(MIN_KEPT_BYTES));
        assert!(
            spares.take(10).is_none(),
            "nothing is kept before a buffer is asked for"
        );

        let mut page = RVec::with_capacity(MIN_KEPT_BYTES);
        page.extend_from_slice(b"{\"id\":\"1\"}\n");
        let address = page.as_ptr();
        spares.give_back(page);
        let batch = spares.take(10).expect("kept");
        assert_eq!(batch.as_ptr(), address, "the same memory");
        assert!(batch.is_empty(), "emptied");
        assert!(spares.take(10).is_none(), "taken once");

        spares.give_back(RVec::with_capacity(100));
        assert!(spares.take(10).is_none(), "below the size worth keeping");

        for _ in 0..SPARES + 3 {
            spares.give_back(RVec::with_capacity(MIN_KEPT_BYTES));
        }
        let mut kept = 0;
        while spares.take(1).is_some() {
            kept += 1;
        }
        assert_eq!(kept, SPARES);
    }
}
