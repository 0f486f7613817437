//! The hasher of the monitor's hot lookup tables (rule paths, processes, users, cgroups).
//!
//! A multiply-rotate hash (rustc's Fx hash): several times cheaper than the standard
//! SipHash on short keys. Its keys are pids, ids and cgroups the kernel assigns and paths
//! from our own rules, never a key set an attacker picks freely, so SipHash's flooding
//! resistance buys nothing here; SipHash was the largest single cost of rule matching.

use std::hash::{BuildHasher, Hasher};

pub type FastMap<K, V> = std::collections::HashMap<K, V, FastHash>;

#[derive(Clone, Copy, Debug, Default)]
pub struct FastHash;

pub struct FastHasher(u64);

const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl BuildHasher for FastHash {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(0)
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap()));
        }
        for &b in chunks.remainder() {
            self.add(b as u64);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.add(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_pids_fill_distinct_buckets() {
        // hashbrown picks buckets by the low bits: consecutive pids must not collide there.
        let mut low: Vec<u64> = (1000u32..1256).map(|pid| FastHash.hash_one(pid) & 0xff).collect();
        low.sort();
        low.dedup();
        assert_eq!(low.len(), 256);
    }
}
