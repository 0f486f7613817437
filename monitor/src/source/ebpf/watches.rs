//! The kernel filter's watch maps, kept equal to the plan: watched inodes and the spine
//! (`WATCH_INODES`), watched spellings and their ancestors (`WATCH_PATHS`), their
//! membership summaries (`WATCH_SUMMARY`), the filter word (`FILTER`), and the epochs the
//! entries are armed at (`WATCH_EPOCHS`, see `monitor_common::epoch`).

use super::{map_mut, summary, KernelContext, LoadError};
use crate::plan::{FilterPlan, Target};
use aya::maps::{HashMap as BpfHashMap, MapData};
use aya::Ebpf;
use monitor_common::{class, fnv1a, inode_flag, InodeEntry, InodeKey, WatchValue};
use std::collections::HashSet;
use tracing::debug;

/// What the maps hold, as last written.
pub struct Watches {
    inode_keys: HashSet<InodeKey>,
    path_keys: HashSet<u64>,
    /// What `WATCH_SUMMARY` holds.
    summaries: summary::Summaries,
    /// The host's root directory (see `FILTER_ROOT_WATCHED`).
    host_root: InodeKey,
    /// The epochs the entries were last armed at: (slot, value) of the slots in use.
    armed_epochs: Vec<(u32, u32)>,
}

impl Watches {
    pub fn new(host_root: InodeKey) -> Watches {
        Watches {
            inode_keys: HashSet::new(),
            path_keys: HashSet::new(),
            summaries: summary::Summaries::default(),
            host_root,
            armed_epochs: Vec::new(),
        }
    }

    /// Make the kernel's watch maps and filter match the plan (at load, after a refresh or
    /// a reload).
    pub fn sync(&mut self, ebpf: &mut Ebpf, plan: &FilterPlan) -> Result<(), LoadError> {
        let effective = effective_classes(plan);
        // The epochs first, the identities after: a rename in between leaves the entries
        // stale (matching nothing) until the next sync, never armed on the wrong inode.
        let mut slots: Vec<u32> = std::iter::once(0)
            .chain(plan.targets.iter().map(|t| monitor_common::epoch::slot(t.id)))
            .collect();
        slots.sort_unstable();
        slots.dedup();
        let epochs: std::collections::HashMap<u32, u32> =
            slots.iter().copied().zip(read_epochs(ebpf, &slots)?).collect();
        let mut inodes: std::collections::HashMap<InodeKey, WatchValue> = Default::default();
        let mut generations: std::collections::HashMap<InodeKey, u32> = Default::default();
        let mut paths: std::collections::HashMap<u64, WatchValue> = Default::default();
        for (t, classes) in plan.targets.iter().zip(effective) {
            if classes == 0 {
                continue;
            }
            let value = WatchValue { watch_id: t.id, classes };
            let merge = |old: Option<&WatchValue>| match old {
                Some(o) => WatchValue { watch_id: o.watch_id, classes: o.classes | classes },
                None => value,
            };
            for spelling in [&t.written, &t.canonical] {
                let h = fnv1a(spelling.as_bytes());
                let v = merge(paths.get(&h));
                paths.insert(h, v);
            }
            if let Some((dev, ino)) = t.identity {
                let key = InodeKey { ino, dev, _pad: 0 };
                let v = merge(inodes.get(&key));
                inodes.insert(key, v);
                if let Some(g) = t.generation {
                    generations.insert(key, g);
                }
            }
        }
        // Every ancestor of a watched spelling, with watch id 0: the kernel stops hashing a
        // path at the first prefix that is not there.
        for t in &plan.targets {
            for spelling in [&t.written, &t.canonical] {
                for prefix in ancestors(spelling) {
                    paths
                        .entry(fnv1a(prefix.as_bytes()))
                        .or_insert(WatchValue { watch_id: 0, classes: 0 });
                }
            }
        }
        let spine = spine(plan);
        for (key, (_, generation)) in &spine {
            if let Some(g) = generation {
                generations.insert(*key, *g);
            }
        }
        let spine_hashes = spine.iter().map(|(k, (h, _))| (*k, *h)).collect();
        let entries = inode_entries(&inodes, &spine_hashes, &generations, |slot| {
            epochs.get(&slot).copied().unwrap_or(0)
        });
        let mut filter: aya::maps::Array<_, u32> =
            aya::maps::Array::try_from(map_mut(ebpf, "FILTER")?).kernel("the FILTER map")?;
        filter.set(0, filter_word(plan, &inodes, &self.host_root), 0).kernel("updating FILTER")?;
        // The summaries cover the old and the new keys while the maps change, then the new.
        let summaries = summary::Summaries::of(&entries, &paths);
        let summaries_changed = summaries != self.summaries;
        if summaries_changed {
            self.summaries.union(&summaries).write(ebpf)?;
        }
        sync_map(ebpf, "WATCH_INODES", &mut self.inode_keys, &entries)?;
        sync_map(ebpf, "WATCH_PATHS", &mut self.path_keys, &paths)?;
        if summaries_changed {
            summaries.write(ebpf)?;
            self.summaries = summaries;
        }
        self.armed_epochs = slots.into_iter().map(|slot| (slot, epochs[&slot])).collect();
        debug!(
            inodes = inodes.len(),
            spine = spine.len(),
            paths = paths.len(),
            "watch maps synchronised"
        );
        Ok(())
    }

    /// Whether the kernel bumped an epoch since the entries were armed (a rename or unlink
    /// of a watched name whose event has not been handled yet, or was not sent).
    pub fn stale(&self, ebpf: &Ebpf) -> bool {
        let slots: Vec<u32> = self.armed_epochs.iter().map(|(slot, _)| *slot).collect();
        match read_epochs(ebpf, &slots) {
            Ok(now) => now.iter().zip(&self.armed_epochs).any(|(now, (_, armed))| now != armed),
            Err(_) => true,
        }
    }
}

/// The current values of epoch slots `slots` (`monitor_common::epoch`). Entries keep the
/// low half of the 64-bit counters, as the kernel compares.
fn read_epochs(ebpf: &Ebpf, slots: &[u32]) -> Result<Vec<u32>, LoadError> {
    let map = ebpf
        .map("WATCH_EPOCHS")
        .ok_or_else(|| LoadError::Unsupported("the programs have no WATCH_EPOCHS map".into()))?;
    let map: aya::maps::Array<&MapData, u64> =
        aya::maps::Array::try_from(map).kernel("the WATCH_EPOCHS map")?;
    slots.iter().map(|i| map.get(i, 0).map(|e| e as u32).kernel("reading WATCH_EPOCHS")).collect()
}

/// The directories on the way to every watched path that exist now (the root included), by
/// identity, with the FNV-1a hash of their canonical path: the kernel's quick verdict on
/// open files (`path::surely_unwatched` in monitor-ebpf). The root's hash is the empty
/// string's, so that the kernel continues it with "/" and a name. A directory met under two
/// spellings (a bind mount named in the rules) gets 0: the kernel then takes the full way.
///
/// Each directory comes with its generation, when known (see `targets::generation`).
pub fn spine(plan: &FilterPlan) -> std::collections::HashMap<InodeKey, (u64, Option<u32>)> {
    let mut spine: std::collections::HashMap<InodeKey, (u64, Option<u32>)> = Default::default();
    for t in &plan.targets {
        for prefix in std::iter::once("/").chain(ancestors(&t.canonical)) {
            let Some((dev, ino)) = crate::plan::identity(prefix) else { break };
            let hash =
                if prefix == "/" { monitor_common::FNV_OFFSET } else { fnv1a(prefix.as_bytes()) };
            let key = InodeKey { ino, dev, _pad: 0 };
            match spine.get_mut(&key) {
                Some((h, _)) if *h != hash => *h = 0,
                Some(_) => {}
                None => {
                    let generation = crate::plan::generation(std::path::Path::new(prefix), ino);
                    spine.insert(key, (hash, generation));
                }
            }
        }
    }
    spine
}

/// The kernel's filter word: the plan's bits, and whether the host's root is watched.
fn filter_word(
    plan: &FilterPlan,
    watches: &std::collections::HashMap<InodeKey, WatchValue>,
    host_root: &InodeKey,
) -> u32 {
    let root =
        if watches.contains_key(host_root) { monitor_common::FILTER_ROOT_WATCHED } else { 0 };
    plan.filter_word() | root
}

/// The kernel's one entry per inode: its watch (if any), its place on the spine (if any),
/// its generation (when known) and the epochs it is armed at (`epoch(slot)` reads a slot).
fn inode_entries(
    watches: &std::collections::HashMap<InodeKey, WatchValue>,
    spine: &std::collections::HashMap<InodeKey, u64>,
    generations: &std::collections::HashMap<InodeKey, u32>,
    epoch: impl Fn(u32) -> u32,
) -> std::collections::HashMap<InodeKey, InodeEntry> {
    let mut entries: std::collections::HashMap<InodeKey, InodeEntry> = watches
        .iter()
        .map(|(k, w)| {
            (
                *k,
                InodeEntry {
                    watch: *w,
                    armed: epoch(monitor_common::epoch::slot(w.watch_id)),
                    ..Default::default()
                },
            )
        })
        .collect();
    for (k, hash) in spine {
        let e = entries.entry(*k).or_default();
        e.spine_hash = *hash;
        e.flags |= inode_flag::ON_SPINE;
    }
    for (k, e) in entries.iter_mut() {
        e.armed_global = epoch(0);
        if let Some(g) = generations.get(k) {
            e.generation = *g;
            e.flags |= inode_flag::GENERATION;
        }
    }
    entries
}

/// The proper ancestors of an absolute `path` as written, the root excepted: `/a/b/c` gives
/// `/a` and `/a/b`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.bytes().enumerate().skip(1).filter(|&(_, b)| b == b'/').map(|(i, _)| &path[..i])
}

/// Make kernel hash map `name` hold exactly `want`: the keys put there last time (`keys`)
/// that `want` lacks are removed, the rest written.
fn sync_map<K, V>(
    ebpf: &mut Ebpf,
    name: &str,
    keys: &mut HashSet<K>,
    want: &std::collections::HashMap<K, V>,
) -> Result<(), LoadError>
where
    K: aya::Pod + Eq + std::hash::Hash,
    V: aya::Pod,
{
    let mut map: BpfHashMap<_, K, V> =
        BpfHashMap::try_from(map_mut(ebpf, name)?).kernel(format!("the {name} map"))?;
    for stale in keys.iter().filter(|k| !want.contains_key(k)) {
        let _ = map.remove(stale);
    }
    for (k, v) in want {
        map.insert(k, v, 0).kernel(format!("updating {name}"))?;
    }
    *keys = want.keys().copied().collect();
    Ok(())
}

/// A watched object is also below every watched ancestor: it inherits their classes, so a
/// narrow watch deep in the tree never hides a broad one above it (the kernel stops at the
/// first watched ancestor it finds).
fn effective_classes(plan: &FilterPlan) -> Vec<u32> {
    let under = |inner: &Target, outer: &Target| {
        let (i, o) = (inner.canonical.as_str(), outer.canonical.as_str());
        o == "/" || i == o || (i.starts_with(o) && i.as_bytes().get(o.len()) == Some(&b'/'))
    };
    plan.targets
        .iter()
        .map(|t| {
            plan.targets.iter().filter(|o| under(t, o)).fold(0, |acc, o| acc | o.classes)
                & (class::EXEC | class::CONNECT | class::FILE | class::SETID)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: u32, canonical: &str) -> Target {
        Target {
            id,
            written: canonical.into(),
            canonical: canonical.into(),
            classes: class::FILE,
            identity: None,
            generation: None,
        }
    }

    fn key(path: &std::path::Path) -> InodeKey {
        let (dev, ino) = crate::plan::identity(path.to_str().unwrap()).unwrap_or((0, 0));
        InodeKey { ino, dev, _pad: 0 }
    }

    #[test]
    fn the_spine_holds_existing_ancestors_with_their_path_hash_and_flags_ambiguity() {
        let dir = std::env::temp_dir().join(format!("monitor-spine-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("real/sub")).unwrap();
        let _ = std::fs::remove_file(dir.join("alias"));
        std::os::unix::fs::symlink(dir.join("real"), dir.join("alias")).unwrap();
        let d = dir.display();
        let mut plan = FilterPlan::default();
        // Deeper than what exists: only the existing ancestors are on the spine.
        plan.add(target(0, &format!("{d}/real/sub/missing/file")));
        // The same directory spelled another way (as a bind mount would be).
        plan.add(target(0, &format!("{d}/alias/x")));
        let spine: std::collections::HashMap<InodeKey, u64> =
            spine(&plan).into_iter().map(|(k, (h, _))| (k, h)).collect();
        assert_eq!(
            spine[&key(std::path::Path::new("/"))],
            monitor_common::FNV_OFFSET,
            "the root: the empty hash"
        );
        let sub = format!("{d}/real/sub");
        assert_eq!(spine[&key(std::path::Path::new(&sub))], fnv1a(sub.as_bytes()));
        assert_eq!(spine[&key(&dir)], fnv1a(d.to_string().as_bytes()));
        assert!(!spine.contains_key(&key(&dir.join("real/sub/missing"))), "does not exist");
        assert_eq!(
            spine[&key(&dir.join("real"))],
            0,
            "real and alias are one directory under two spellings"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn one_inode_entry_carries_both_its_watch_and_its_spine_place() {
        let k = |ino| InodeKey { ino, dev: 1, _pad: 0 };
        let w = |watch_id| WatchValue { watch_id, classes: class::FILE };
        let watches = [(k(1), w(7)), (k(2), w(8))].into_iter().collect();
        let spine = [(k(2), 0xabc), (k(3), 0)].into_iter().collect();
        let generations = [(k(1), 41)].into_iter().collect();
        let epoch = |slot: u32| 100 + slot;
        let e = inode_entries(&watches, &spine, &generations, epoch);
        let on_spine = |k| e[&k].flags & inode_flag::ON_SPINE != 0;
        assert_eq!(e.len(), 3);
        assert_eq!((e[&k(1)].watch.watch_id, on_spine(k(1))), (7, false), "watched only");
        assert_eq!(
            (e[&k(2)].watch.watch_id, on_spine(k(2)), e[&k(2)].spine_hash),
            (8, true, 0xabc),
            "both"
        );
        assert_eq!(
            (e[&k(3)].watch.watch_id, on_spine(k(3)), e[&k(3)].spine_hash),
            (0, true, 0),
            "ambiguous spine only"
        );
        assert_eq!(
            (e[&k(1)].flags & inode_flag::GENERATION != 0, e[&k(1)].generation),
            (true, 41),
            "generation known"
        );
        assert_eq!(e[&k(2)].flags & inode_flag::GENERATION, 0, "generation unknown: not checked");
        assert_eq!(
            (e[&k(1)].armed, e[&k(2)].armed),
            (100 + monitor_common::epoch::slot(7), 100 + monitor_common::epoch::slot(8))
        );
        assert!(
            e.values().all(|x| x.armed_global == 100),
            "every entry is armed at the ancestors' epoch"
        );
    }

    #[test]
    fn the_filter_word_says_when_the_host_root_is_watched() {
        let root = InodeKey { ino: 2, dev: 8, _pad: 0 };
        let other = InodeKey { ino: 3, dev: 8, _pad: 0 };
        let w = WatchValue { watch_id: 1, classes: class::FILE };
        let plan = FilterPlan::default();
        let none = std::collections::HashMap::new();
        let on_other = [(other, w)].into_iter().collect();
        let on_root = [(other, w), (root, w)].into_iter().collect();
        assert_eq!(filter_word(&plan, &none, &root) & monitor_common::FILTER_ROOT_WATCHED, 0);
        assert_eq!(filter_word(&plan, &on_other, &root) & monitor_common::FILTER_ROOT_WATCHED, 0);
        assert_ne!(filter_word(&plan, &on_root, &root) & monitor_common::FILTER_ROOT_WATCHED, 0);
        assert_eq!(
            filter_word(&plan, &on_root, &root) & !monitor_common::FILTER_ROOT_WATCHED,
            plan.filter_word()
        );
    }
}
