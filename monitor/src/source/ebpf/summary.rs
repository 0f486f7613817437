//! The membership summaries of the kernel's watch maps (`monitor_common::summary`): built
//! from the entries the maps are given, and written around each map update so that no key
//! the kernel could find ever has a clear bit.

use std::collections::HashMap;

use super::{map_mut, KernelContext, LoadError};
use aya::{maps::Array, Ebpf};
use monitor_common::{summary, InodeEntry, InodeKey, WatchValue};

/// The four summaries, indexed by `summary::INODE_WATCHED` ... `summary::PATH_PREFIX`.
#[derive(Clone, PartialEq, Eq)]
pub struct Summaries(Vec<summary::Bits>);

impl Default for Summaries {
    fn default() -> Self {
        Summaries(vec![[0; summary::WORDS]; summary::COUNT as usize])
    }
}

impl Summaries {
    /// The summaries of `WATCH_INODES` (`inodes`) and `WATCH_PATHS` (`paths`).
    pub fn of(
        inodes: &HashMap<InodeKey, InodeEntry>,
        paths: &HashMap<u64, WatchValue>,
    ) -> Summaries {
        let mut s = Summaries::default();
        for (key, entry) in inodes {
            let bit = summary::inode_bit(key.ino, key.dev);
            if entry.watch.watch_id != 0 {
                summary::set(&mut s.0[summary::INODE_WATCHED as usize], bit);
            }
            if entry.flags & monitor_common::inode_flag::ON_SPINE != 0 {
                summary::set(&mut s.0[summary::INODE_SPINE as usize], bit);
            }
        }
        for (hash, value) in paths {
            let which =
                if value.watch_id != 0 { summary::PATH_WATCHED } else { summary::PATH_PREFIX };
            summary::set(&mut s.0[which as usize], summary::path_bit(*hash));
        }
        s
    }

    /// Every bit set in either.
    pub fn union(&self, other: &Summaries) -> Summaries {
        let mut u = self.clone();
        for (mine, theirs) in u.0.iter_mut().zip(&other.0) {
            for (a, b) in mine.iter_mut().zip(theirs) {
                *a |= b;
            }
        }
        u
    }

    /// Whether summary `which` has `bit` (what the kernel tests).
    pub fn has(&self, which: u32, bit: usize) -> bool {
        summary::has(&self.0[which as usize], bit)
    }

    /// Write them into the kernel's `WATCH_SUMMARY`.
    pub fn write(&self, ebpf: &mut Ebpf) -> Result<(), LoadError> {
        let mut map: Array<_, summary::Bits> =
            Array::try_from(map_mut(ebpf, "WATCH_SUMMARY")?).kernel("the WATCH_SUMMARY map")?;
        for (i, bits) in self.0.iter().enumerate() {
            map.set(i as u32, bits, 0).kernel("updating WATCH_SUMMARY")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ino: u64, dev: u32) -> InodeKey {
        InodeKey { ino, dev, _pad: 0 }
    }

    #[test]
    fn every_key_has_its_bit_in_its_kind() {
        let mut inodes = HashMap::new();
        inodes.insert(
            key(12, 8),
            InodeEntry { watch: WatchValue { watch_id: 3, classes: 1 }, ..Default::default() },
        );
        inodes.insert(
            key(2, 8),
            InodeEntry {
                spine_hash: 77,
                flags: monitor_common::inode_flag::ON_SPINE,
                ..Default::default()
            },
        );
        let mut paths = HashMap::new();
        paths.insert(monitor_common::fnv1a(b"/etc/docker"), WatchValue { watch_id: 3, classes: 1 });
        paths.insert(monitor_common::fnv1a(b"/etc"), WatchValue::default());
        let s = Summaries::of(&inodes, &paths);
        assert!(s.has(summary::INODE_WATCHED, summary::inode_bit(12, 8)));
        assert!(!s.has(summary::INODE_SPINE, summary::inode_bit(12, 8)));
        assert!(s.has(summary::INODE_SPINE, summary::inode_bit(2, 8)));
        assert!(!s.has(summary::INODE_WATCHED, summary::inode_bit(2, 8)));
        assert!(
            s.has(summary::PATH_WATCHED, summary::path_bit(monitor_common::fnv1a(b"/etc/docker")))
        );
        assert!(s.has(summary::PATH_PREFIX, summary::path_bit(monitor_common::fnv1a(b"/etc"))));
        assert!(!s.has(summary::PATH_WATCHED, summary::path_bit(monitor_common::fnv1a(b"/etc"))));
        // Nothing else: a neighbour inode and an unrelated spelling have clear bits.
        assert!(!s.has(summary::INODE_WATCHED, summary::inode_bit(13, 8)));
        assert!(!s.has(summary::PATH_PREFIX, summary::path_bit(monitor_common::fnv1a(b"/var/tmp"))));
        let set: usize = s.0.iter().flatten().map(|w| w.count_ones() as usize).sum();
        assert_eq!(set, 4);
    }

    #[test]
    fn bits_spread_over_nearby_keys() {
        // Inode numbers of one directory are often consecutive; devices differ by one.
        let mut seen = std::collections::HashSet::new();
        for ino in 0..4096u64 {
            for dev in [8u32, 9, 0x800001] {
                seen.insert(summary::inode_bit(ino, dev));
            }
        }
        // Uniform draws would give 11 213 on average.
        assert!(seen.len() > 11_000, "{} distinct bits of 12 288 keys", seen.len());
        let paths: std::collections::HashSet<_> = (0..4096)
            .map(|i| summary::path_bit(monitor_common::fnv1a(format!("/var/tmp/f{i}").as_bytes())))
            .collect();
        // 4096 uniform draws of 65 536 bits give 3971 distinct ones on average (s.d. 8).
        assert!(paths.len() > 3_930, "{} distinct bits of 4096 paths", paths.len());
    }

    #[test]
    fn union_keeps_both() {
        let mut a = Summaries::default();
        let mut b = Summaries::default();
        summary::set(&mut a.0[0], 5);
        summary::set(&mut b.0[3], 65_535);
        let u = a.union(&b);
        assert!(u.has(0, 5) && u.has(3, 65_535));
        assert!(!u.has(0, 65_535) && !u.has(3, 5));
    }
}
