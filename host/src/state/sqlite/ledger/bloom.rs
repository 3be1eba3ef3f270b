//! A Bloom filter over 64-bit key hashes: "maybe" for every hash put in, "no" for all but about
//! 1 % of the others. One per index segment of the ledger, so a look-up of a key the segment does
//! not hold (a new sale, the common case) reads none of its blocks.
//!
//! The filter is stored with its segment (`ledger_segments.bloom`), so its layout is part of the
//! file format: little-endian 64-bit words, a power-of-two number of bits, and the bit positions
//! of [`Bloom::positions`] (Kirsch–Mitzenmacher double hashing of one 64-bit hash).

use thiserror::Error;

/// Bits per key before rounding up to a power of two (10 to 20): with [`HASHES`] probes, at most
/// ≈ 1 % false positives.
const BITS_PER_KEY: usize = 10;

/// Bits probed per key.
pub(super) const HASHES: u32 = 7;

/// A stored filter that cannot be read back.
#[derive(Debug, Error)]
#[error("a ledger filter of {bytes} bytes with {hashes} hashes is not one this version writes")]
pub(super) struct BadFilter {
    bytes: usize,
    hashes: u32,
}

/// A stored filter that cannot be read.
#[derive(Debug, Error)]
pub(super) enum ReadError {
    #[error(transparent)]
    Bad(#[from] BadFilter),
    #[error("reading a ledger filter: {0}")]
    Io(#[from] std::io::Error),
}

/// See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Bloom {
    words: Vec<u64>,
    hashes: u32,
}

impl Bloom {
    /// An empty filter sized for `keys` keys.
    pub(super) fn for_keys(keys: usize) -> Self {
        let bits = keys
            .max(1)
            .saturating_mul(BITS_PER_KEY)
            .next_power_of_two()
            .max(64);
        Self {
            words: vec![0; bits / 64],
            hashes: HASHES,
        }
    }

    /// Reads a stored filter back.
    #[cfg(test)]
    pub(super) fn from_bytes(hashes: u32, bytes: &[u8]) -> Result<Self, ReadError> {
        Self::read_from(hashes, bytes.len(), bytes)
    }

    /// Reads a stored filter of `bytes` bytes from `read` a chunk at a time, so that it is held
    /// once: a filter read as one SQL value is held twice for a moment (SQLite's copy and this
    /// one), and a compacted segment's is megabytes.
    pub(super) fn read_from(
        hashes: u32,
        bytes: usize,
        mut read: impl std::io::Read,
    ) -> Result<Self, ReadError> {
        if !bytes.is_multiple_of(8) || !(bytes / 8).is_power_of_two() || hashes == 0 || hashes > 64
        {
            return Err(BadFilter { bytes, hashes }.into());
        }
        let mut words = Vec::with_capacity(bytes / 8);
        let mut chunk = [0u8; 8 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            read.read_exact(&mut chunk[..n])?;
            words.extend(
                chunk[..n]
                    .chunks_exact(8)
                    .map(|w| u64::from_le_bytes(w.try_into().expect("chunks of 8"))),
            );
            left -= n;
        }
        Ok(Self { words, hashes })
    }

    /// The stored form (see the module documentation).
    pub(super) fn to_bytes(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// Bits probed per key.
    pub(super) fn hashes(&self) -> u32 {
        self.hashes
    }

    pub(super) fn insert(&mut self, hash: u64) {
        for bit in self.positions(hash) {
            self.words[bit / 64] |= 1 << (bit % 64);
        }
    }

    /// `false`: `hash` was never inserted. `true`: it may have been.
    pub(super) fn may_contain(&self, hash: u64) -> bool {
        self.positions(hash)
            .all(|bit| self.words[bit / 64] & (1 << (bit % 64)) != 0)
    }

    /// Bit `i` is `h1 + i·h2` modulo the size, with `h1` the hash and `h2` its halves swapped
    /// (odd, so the probes of one key never repeat).
    fn positions(&self, hash: u64) -> impl Iterator<Item = usize> {
        let mask = (self.words.len() * 64 - 1) as u64;
        let step = hash.rotate_left(32) | 1;
        (0..u64::from(self.hashes))
            .map(move |i| (hash.wrapping_add(i.wrapping_mul(step)) & mask) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed spread of 64-bit hashes (splitmix64), as keys' hashes are.
    fn hashes(seed: u64, n: usize) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            })
            .collect()
    }

    #[test]
    fn every_inserted_hash_is_a_maybe_and_few_others_are() {
        for n in [1, 100, 10_000, 100_000] {
            let mut bloom = Bloom::for_keys(n);
            let inside = hashes(1, n);
            inside.iter().for_each(|&h| bloom.insert(h));
            assert!(inside.iter().all(|&h| bloom.may_contain(h)), "n = {n}");
            let outside = hashes(2, 100_000);
            let false_positives = outside.iter().filter(|&&h| bloom.may_contain(h)).count();
            assert!(
                false_positives < 1_200,
                "n = {n}: {false_positives} of 100,000 absent hashes said maybe"
            );
        }
    }

    #[test]
    fn a_stored_filter_reads_back_the_same_and_a_damaged_one_is_refused() {
        let mut bloom = Bloom::for_keys(1_000);
        hashes(3, 1_000).iter().for_each(|&h| bloom.insert(h));
        let stored = bloom.to_bytes();
        assert_eq!(stored.len(), 16_384 / 8);
        assert_eq!(Bloom::from_bytes(HASHES, &stored).unwrap(), bloom);
        assert!(Bloom::from_bytes(HASHES, &stored[..stored.len() - 8]).is_err());
        assert!(Bloom::from_bytes(HASHES, &stored[..7]).is_err());
        assert!(Bloom::from_bytes(0, &stored).is_err());
    }

    #[test]
    fn a_large_filter_reads_back_across_chunks_and_a_short_one_is_an_error() {
        let mut bloom = Bloom::for_keys(100_000);
        hashes(5, 100_000).iter().for_each(|&h| bloom.insert(h));
        let stored = bloom.to_bytes();
        assert_eq!(stored.len(), 128 * 1024, "16 chunks of 8 KiB");
        let read = Bloom::read_from(HASHES, stored.len(), stored.as_slice()).unwrap();
        assert_eq!(read, bloom);
        let short = Bloom::read_from(HASHES, stored.len(), &stored[..stored.len() - 8]);
        assert!(matches!(short, Err(ReadError::Io(_))), "{short:?}");
    }

    #[test]
    fn the_bit_positions_are_the_stored_format() {
        // Changing how bits are placed would make every stored filter lie: this pins it.
        let mut bloom = Bloom::for_keys(1);
        bloom.insert(0x0123_4567_89ab_cdef);
        let set: Vec<usize> = (0..bloom.words.len() * 64)
            .filter(|&b| bloom.words[b / 64] & (1 << (b % 64)) != 0)
            .collect();
        // h1 mod 64 = 47, h2 mod 64 = 39: 47, 86, 125, … modulo 64.
        assert_eq!(set, [11, 22, 25, 36, 47, 50, 61]);
    }
}
