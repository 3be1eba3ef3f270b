//! What the file sink remembers of the keys it wrote, in memory of a fixed size: a blocked
//! Bloom filter. It answers "certainly not written" or "maybe written"; a "maybe" is settled
//! by looking the key up in the sidecar ledger on disk (`Ledger::written_among`).
//!
//! A set of every key would grow with the output (about 100 bytes a key: 100 MiB for a million
//! sales). The filter takes 8 MiB whatever the size, one cache line per key. With a million
//! keys a fresh key is taken for "maybe" about once in ten million (each costing one read of
//! the ledger); the re-sent batches after a crash are real "maybes" and cost one read a batch.

/// 64-byte blocks (one cache line, 512 bits each): 2^17 of them, 8 MiB.
const BLOCKS: usize = 1 << 17;
/// Bits set per key, all in one block.
const BITS_PER_KEY: u32 = 7;

/// A blocked Bloom filter of idempotency keys.
#[derive(Debug, Clone)]
pub struct KeyFilter {
    blocks: Vec<[u64; 8]>,
    len: u64,
}

impl Default for KeyFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyFilter {
    /// An empty filter. The zeroed memory is not touched (nor resident) until keys land in it.
    pub fn new() -> Self {
        Self {
            blocks: vec![[0u64; 8]; BLOCKS],
            len: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn insert(&mut self, key: &str) {
        let (block, bits) = Self::locate(key);
        let b = &mut self.blocks[block];
        for bit in bits {
            b[bit / 64] |= 1 << (bit % 64);
        }
        self.len += 1;
    }

    /// `false`: the key was never inserted. `true`: it may have been.
    pub fn might_contain(&self, key: &str) -> bool {
        let (block, bits) = Self::locate(key);
        let b = &self.blocks[block];
        bits.into_iter()
            .all(|bit| b[bit / 64] & (1 << (bit % 64)) != 0)
    }

    /// The block of a key and its bits in it, from one 128-bit hash: the block from its low
    /// half, the bits from its high half. (Two SipHash passes per key, one each half, were
    /// ≈ 2.7 % of a file pipeline's CPU; the filter lives in memory only, so the hash may
    /// change between versions.)
    fn locate(key: &str) -> (usize, [usize; BITS_PER_KEY as usize]) {
        let hash = xxhash_rust::xxh3::xxh3_128(key.as_bytes());
        let block = (hash as u64 % BLOCKS as u64) as usize;
        let mut bits_hash = (hash >> 64) as u64;
        let mut bits = [0usize; BITS_PER_KEY as usize];
        for bit in &mut bits {
            *bit = (bits_hash & 511) as usize;
            bits_hash >>= 9;
        }
        (block, bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserted_keys_are_always_found_and_others_almost_never() {
        let mut f = KeyFilter::new();
        assert!(f.is_empty());
        for i in 0..200_000 {
            f.insert(&format!("{i:032x}"));
        }
        assert!(!f.is_empty());
        assert!((0..200_000).all(|i| f.might_contain(&format!("{i:032x}"))));
        let false_positives = (200_000..400_000)
            .filter(|i| f.might_contain(&format!("{i:032x}")))
            .count();
        // About 2e-10 expected at this load; a few would still be harmless (a ledger read).
        assert!(false_positives <= 2, "{false_positives} false positives");
    }
}
