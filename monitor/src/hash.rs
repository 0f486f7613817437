//! The hasher of the monitor's hot lookup tables (rule paths, processes, users, cgroups):
//! rustc's Fx hash from the `rustc-hash` crate.
//!
//! A multiply-rotate hash, several times cheaper than the standard SipHash on short keys.
//! Its keys are pids, ids and cgroups the kernel assigns and paths from our own rules, never
//! a key set an attacker picks freely, so SipHash's flooding resistance buys nothing here;
//! SipHash was the largest single cost of rule matching.

pub use rustc_hash::FxBuildHasher as FastHash;

pub type FastMap<K, V> = rustc_hash::FxHashMap<K, V>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn sequential_pids_spread_over_the_buckets() {
        // hashbrown picks buckets by the low bits: consecutive pids must spread there at least
        // as well as a random hash, which fills 256 * (1 - 1/e) = 162 of 256 buckets.
        let mut low: Vec<u64> = (1000u32..1256).map(|pid| FastHash.hash_one(pid) & 0xff).collect();
        low.sort();
        low.dedup();
        assert!(low.len() >= 162, "{} of 256 buckets", low.len());
    }
}
