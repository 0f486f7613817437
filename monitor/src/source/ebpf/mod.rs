//! The eBPF source: load the kernel programs with this kernel's struct offsets and the rule
//! set's filter, attach them to their tracepoints, keep the watch maps current, and hand out
//! the ring buffer.

pub mod btf;
pub mod decode;
pub mod kfunc;
pub mod offsets;
pub mod ring;
pub mod summary;
pub mod tracefs;

use crate::rules::targets::{FilterPlan, Target};
use anyhow::{Context, Result};
use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, ProgramArray, RingBuf};
use aya::programs::{BtfTracePoint, TracePoint};
use aya::{Btf as AyaBtf, Ebpf, EbpfLoader};
use monitor_common::{class, fnv1a, inode_flag, Config, InodeEntry, InodeKey, WatchValue};
use std::collections::HashSet;
use tracing::{debug, warn};

static PROGRAMS: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/monitor-ebpf"));

use crate::rules::syscalls::{
    CONNECT_SYSCALLS, EXEC_SYSCALLS, FD_SYSCALLS, OPEN_SYSCALLS, PATH_SYSCALLS,
    SETID_SYSCALLS, TWO_PATH_SYSCALLS,
};

pub struct EbpfSource {
    ebpf: Ebpf,
    /// Hooks attached, as `category:name`.
    pub attached: Vec<String>,
    inode_keys: HashSet<InodeKey>,
    path_keys: HashSet<u64>,
    /// What `WATCH_SUMMARY` holds.
    summaries: summary::Summaries,
    /// The host's root directory (see `FILTER_ROOT_WATCHED`).
    host_root: InodeKey,
    /// The epochs the entries were last armed at: (slot, value) of the slots in use.
    armed_epochs: Vec<(u32, u32)>,
}

impl EbpfSource {
    /// Load the programs with a ring buffer of `ring` bytes, fill the watch maps from
    /// `plan` and attach.
    ///
    /// Kernel BTF is parsed three times, one after the other: by our reader (offsets, the
    /// kfunc's id), by aya's loader as it is created, and by aya again for the BTF
    /// tracepoints (aya 0.14 has no way to skip or share its parse). Each parse holds several
    /// MiB while alive (aya's about 18 MiB with the file it reads), so none overlaps another
    /// or anything else large: the peak resident memory of the monitor is set here.
    pub fn load(plan: &FilterPlan, ring: ring::RingSize) -> Result<EbpfSource> {
        tracefs::ensure_mounted()?;
        bound_freed_heap();
        let (config, rdonly_cast) = kernel_config(plan)?;
        let mut loader = EbpfLoader::new();
        // Linked after aya's parse: the copy (and the embedded object's pages) are not
        // resident during it.
        let (object, casts) = kfunc::patch(PROGRAMS, rdonly_cast)?;
        debug!(casts, "bpf_rdonly_cast calls linked");
        let ebpf = loader
            .map_max_entries("EVENTS", ring.bytes())
            .override_global("CONFIG", &config, true)
            .load(object.bytes())
            .context("loading the eBPF programs into the kernel")?;
        drop((loader, object));
        let mut source = EbpfSource {
            ebpf,
            attached: Vec::new(),
            inode_keys: HashSet::new(),
            path_keys: HashSet::new(),
            summaries: summary::Summaries::default(),
            host_root: InodeKey { ino: config.host_root_ino, dev: config.host_root_dev, _pad: 0 },
            armed_epochs: Vec::new(),
        };
        source.sync_watches(plan)?;
        source.attach()?;
        release_freed_heap();
        Ok(source)
    }

    /// Load the tail-called stages and put them in `STAGES`; must precede every attach, or
    /// the first events would find an empty slot.
    fn load_stages(&mut self) -> Result<()> {
        for (slot, name) in [(0u32, "resolve_stage"), (1, "finish_stage")] {
            let prog: &mut TracePoint = self
                .ebpf
                .program_mut(name)
                .with_context(|| format!("program {name} missing from the object"))?
                .try_into()?;
            prog.load()
                .with_context(|| format!("loading {name} (verifier)"))?;
            let fd = prog
                .fd()
                .with_context(|| format!("{name} has no descriptor"))?
                .try_clone()?;
            let mut stages: ProgramArray<&mut MapData> =
                ProgramArray::try_from(self.ebpf.map_mut("STAGES").context("STAGES map")?)?;
            stages
                .set(slot, &fd, 0)
                .with_context(|| format!("installing {name} in STAGES"))?;
        }
        Ok(())
    }

    fn attach(&mut self) -> Result<()> {
        self.load_stages()?;
        // File, connect and exec exits read their arguments from the task's registers; the
        // entry stash serves the setid family (the credentials before the call) and marks
        // an execveat (the exec tracepoint cannot tell it from an execve otherwise).
        let enter: Vec<u32> = SETID_SYSCALLS.iter().chain(&[322]).copied().collect(); // execveat 322
        self.attach_syscalls("sys_enter", "sys_enter_", &enter)?;
        self.attach_syscalls("sys_exit_open", "sys_exit_", OPEN_SYSCALLS)?;
        self.attach_syscalls("sys_exit_path", "sys_exit_", PATH_SYSCALLS)?;
        self.attach_syscalls("sys_exit_two_paths", "sys_exit_", TWO_PATH_SYSCALLS)?;
        self.attach_syscalls("sys_exit_fd", "sys_exit_", FD_SYSCALLS)?;
        self.attach_syscalls("sys_exit_connect", "sys_exit_", CONNECT_SYSCALLS)?;
        self.attach_syscalls("sys_exit_setid", "sys_exit_", SETID_SYSCALLS)?;
        self.attach_syscalls("sys_exit_exec", "sys_exit_", EXEC_SYSCALLS)?;
        // write 1, writev 20, sendto 44, sendmsg 46.
        self.attach_syscalls("sys_enter_send", "sys_enter_", &[1, 20, 44, 46])?;
        // ptrace 101, process_vm_readv 310, process_vm_writev 311.
        self.attach_syscalls("sys_enter_access", "sys_enter_", &[101, 310, 311])?;
        let btf = AyaBtf::from_sys_fs().context("reading kernel BTF")?;
        for name in [
            "sched_process_exec",
            "sched_process_fork",
            "sched_process_exit",
            "signal_generate",
        ] {
            let prog: &mut BtfTracePoint = self
                .ebpf
                .program_mut(name)
                .with_context(|| format!("program {name} missing from the object"))?
                .try_into()?;
            prog.load(name, &btf)
                .with_context(|| format!("loading {name}"))?;
            prog.attach().with_context(|| format!("attaching {name}"))?;
            self.attached.push(format!("tp_btf:{name}"));
        }
        Ok(())
    }

    fn attach_syscalls(&mut self, program: &str, prefix: &str, nrs: &[u32]) -> Result<()> {
        let prog: &mut TracePoint = self
            .ebpf
            .program_mut(program)
            .with_context(|| format!("program {program} missing from the object"))?
            .try_into()?;
        prog.load()
            .with_context(|| format!("loading {program} (verifier)"))?;
        for nr in nrs {
            let name = crate::rules::syscalls::name(*nr).unwrap_or("?");
            let tp = format!("{prefix}{name}");
            match prog.attach("syscalls", &tp) {
                Ok(_) => self.attached.push(format!("syscalls:{tp}")),
                // A tracepoint the kernel has must take the program (the kernel refuses a
                // program that loads past the end of the tracepoint's record, say).
                Err(e) if tracefs::event_exists("syscalls", &tp) => {
                    return Err(e).with_context(|| format!("attaching {program} to syscalls:{tp}"));
                }
                // Newer syscalls (setxattrat, ...) do not exist on every kernel.
                Err(e) => warn!(tracepoint = %tp, error = %e, "tracepoint not attached: the kernel has no such syscall"),
            }
        }
        Ok(())
    }

    /// Make the kernel's watch maps and filter match the plan (at load, after a refresh or
    /// a reload).
    pub fn sync_watches(&mut self, plan: &FilterPlan) -> Result<()> {
        let effective = effective_classes(plan);
        // The epochs first, the identities after: a rename in between leaves the entries
        // stale (matching nothing) until the next sync, never armed on the wrong inode.
        let mut slots: Vec<u32> = std::iter::once(0).chain(plan.targets.iter().map(|t| monitor_common::epoch::slot(t.id))).collect();
        slots.sort_unstable();
        slots.dedup();
        let epochs: std::collections::HashMap<u32, u32> = slots.iter().copied().zip(self.read_epochs(&slots)?).collect();
        let mut inodes: std::collections::HashMap<InodeKey, WatchValue> = Default::default();
        let mut generations: std::collections::HashMap<InodeKey, u32> = Default::default();
        let mut paths: std::collections::HashMap<u64, WatchValue> = Default::default();
        for (t, classes) in plan.targets.iter().zip(effective) {
            if classes == 0 {
                continue;
            }
            let value = WatchValue {
                watch_id: t.id,
                classes,
            };
            let merge = |old: Option<&WatchValue>| match old {
                Some(o) => WatchValue {
                    watch_id: o.watch_id,
                    classes: o.classes | classes,
                },
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
                    paths.entry(fnv1a(prefix.as_bytes())).or_insert(WatchValue { watch_id: 0, classes: 0 });
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
        let entries = inode_entries(&inodes, &spine_hashes, &generations, |slot| epochs.get(&slot).copied().unwrap_or(0));
        let mut filter: aya::maps::Array<_, u32> =
            aya::maps::Array::try_from(self.ebpf.map_mut("FILTER").context("FILTER map")?)?;
        filter.set(0, filter_word(plan, &inodes, &self.host_root), 0).context("updating FILTER")?;
        // The summaries cover the old and the new keys while the maps change, then the new.
        let summaries = summary::Summaries::of(&entries, &paths);
        let summaries_changed = summaries != self.summaries;
        if summaries_changed {
            self.summaries.union(&summaries).write(&mut self.ebpf)?;
        }
        sync_map(&mut self.ebpf, "WATCH_INODES", &mut self.inode_keys, &entries)?;
        sync_map(&mut self.ebpf, "WATCH_PATHS", &mut self.path_keys, &paths)?;
        if summaries_changed {
            summaries.write(&mut self.ebpf)?;
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
    pub fn epochs_moved(&self) -> bool {
        let slots: Vec<u32> = self.armed_epochs.iter().map(|(slot, _)| *slot).collect();
        match self.read_epochs(&slots) {
            Ok(now) => now.iter().zip(&self.armed_epochs).any(|(now, (_, armed))| now != armed),
            Err(_) => true,
        }
    }

    /// The current values of epoch slots `slots` (`monitor_common::epoch`). Entries keep
    /// the low half of the 64-bit counters, as the kernel compares.
    fn read_epochs(&self, slots: &[u32]) -> Result<Vec<u32>> {
        let map: aya::maps::Array<&MapData, u64> = aya::maps::Array::try_from(self.ebpf.map("WATCH_EPOCHS").context("WATCH_EPOCHS map")?)?;
        slots.iter().map(|i| map.get(i, 0).map(|e| e as u32).context("reading WATCH_EPOCHS")).collect()
    }

    /// Take the ring buffer (once).
    pub fn take_ring(&mut self) -> Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map("EVENTS")
            .context("EVENTS ring buffer missing")?;
        Ok(RingBuf::try_from(map)?)
    }

    /// Events lost in the kernel since load, over all CPUs and causes (ring buffer full,
    /// stage not reachable).
    pub fn drops(&self) -> Result<u64> {
        let map: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(self.ebpf.map("DROPS").context("DROPS map")?)?;
        let mut total = 0;
        for cause in 0..monitor_common::DROP_COUNTERS {
            total += map.get(&cause, 0)?.iter().sum::<u64>();
        }
        Ok(total)
    }
}

/// The programs' `CONFIG` and the BTF id of the kfunc `bpf_rdonly_cast`, from this kernel's
/// BTF (read here and dropped on return, before aya reads it again).
fn kernel_config(plan: &FilterPlan) -> Result<(Config, u32)> {
    let btf = btf::Btf::from_sys_fs()?;
    let offsets = offsets::from_btf(&btf).context("the running kernel lacks a structure the programs read")?;
    let types = offsets::types_from_btf(&btf).context("the running kernel lacks a structure the programs read")?;
    let rdonly_cast = btf.func_id("bpf_rdonly_cast").ok_or_else(|| {
        tracefs::KernelUnsupported("the running kernel has no kfunc bpf_rdonly_cast, which the programs use to read kernel structures".into())
    })?;
    let root = std::fs::metadata("/").context("stat /")?;
    use std::os::unix::fs::MetadataExt;
    let config = Config {
        offsets,
        types,
        unfiltered: plan.unfiltered,
        host_root_dev: crate::rules::targets::kernel_dev(root.dev()),
        host_root_ino: root.ino(),
        self_tgid: std::process::id(),
        cgroup_subsys: container_hierarchy(),
        rdonly_cast_void: btf.has_enumerator("BPF_FEAT_RDONLY_CAST_TO_VOID") as u32,
    };
    debug!(rdonly_cast_void = config.rdonly_cast_void, "kernel strings read by direct loads");
    Ok((config, rdonly_cast))
}

/// Keep glibc from holding on to large freed blocks. By default its threshold for serving a
/// block from its own mapping (returned to the system when freed) rises to the largest block
/// freed so far, and the BTF parses free blocks of several MiB: later ones then come from
/// the main heap, where growing one copies it (old and new resident at once) and freeing it
/// keeps the pages. Fixed at glibc's initial 128 KiB, the BTF parses peak about 4 MiB lower.
fn bound_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; it is called before the loader's
    // threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Give the heap that loading freed back to the system. glibc keeps freed memory at the top
/// of its heap up to a threshold that grows with the largest block freed, and the BTF
/// parses free blocks of several MiB: without this about 20 MiB of the monitor's resident
/// memory would be heap it no longer uses.
fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own heap to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The cgroup hierarchy whose directory names say which container a task is in: a v1
/// controller that runtimes always populate (memory, pids, cpu) when this host has cgroup v1
/// hierarchies, else the v2 hierarchy. The value is the controller's index in
/// /proc/cgroups, which lists controllers in the kernel's `cgroup_subsys_id` order.
fn container_hierarchy() -> u32 {
    let Ok(text) = std::fs::read_to_string("/proc/cgroups") else {
        return monitor_common::CGROUP_DEFAULT_HIERARCHY;
    };
    // subsys_name  hierarchy  num_cgroups  enabled
    let rows: Vec<(&str, u32, bool)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((*f.first()?, f.get(1)?.parse().ok()?, f.get(3)? == &"1"))
        })
        .collect();
    for wanted in ["memory", "pids", "cpu"] {
        if let Some(i) = rows
            .iter()
            .position(|(name, hierarchy, enabled)| *name == wanted && *hierarchy != 0 && *enabled)
        {
            if (i as u32) < monitor_common::CGROUP_SUBSYS_MAX {
                debug!(
                    controller = wanted,
                    index = i,
                    "container cgroups read from a v1 hierarchy"
                );
                return i as u32;
            }
        }
    }
    debug!("container cgroups read from the v2 hierarchy");
    monitor_common::CGROUP_DEFAULT_HIERARCHY
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
            let Some((dev, ino)) = crate::rules::targets::identity(prefix) else { break };
            let hash = if prefix == "/" { monitor_common::FNV_OFFSET } else { fnv1a(prefix.as_bytes()) };
            let key = InodeKey { ino, dev, _pad: 0 };
            match spine.get_mut(&key) {
                Some((h, _)) if *h != hash => *h = 0,
                Some(_) => {}
                None => {
                    let generation = crate::rules::targets::generation(std::path::Path::new(prefix), ino);
                    spine.insert(key, (hash, generation));
                }
            }
        }
    }
    spine
}

/// The kernel's filter word: the plan's bits, and whether the host's root is watched.
fn filter_word(plan: &FilterPlan, watches: &std::collections::HashMap<InodeKey, WatchValue>, host_root: &InodeKey) -> u32 {
    let root = if watches.contains_key(host_root) { monitor_common::FILTER_ROOT_WATCHED } else { 0 };
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
        .map(|(k, w)| (*k, InodeEntry { watch: *w, armed: epoch(monitor_common::epoch::slot(w.watch_id)), ..Default::default() }))
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
fn sync_map<K, V>(ebpf: &mut Ebpf, name: &str, keys: &mut HashSet<K>, want: &std::collections::HashMap<K, V>) -> Result<()>
where
    K: aya::Pod + Eq + std::hash::Hash,
    V: aya::Pod,
{
    let mut map: BpfHashMap<_, K, V> = BpfHashMap::try_from(ebpf.map_mut(name).with_context(|| format!("{name} map"))?)?;
    for stale in keys.iter().filter(|k| !want.contains_key(k)) {
        let _ = map.remove(stale);
    }
    for (k, v) in want {
        map.insert(k, v, 0).with_context(|| format!("updating {name}"))?;
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
            plan.targets
                .iter()
                .filter(|o| under(t, o))
                .fold(0, |acc, o| acc | o.classes)
                & (class::EXEC | class::CONNECT | class::FILE | class::SETID)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_object_declares_a_gpl_compatible_licence() {
        // The kernel reads the `license` section; GPL-only helpers need a GPL-compatible one.
        assert!(PROGRAMS.windows(13).any(|w| w == b"Dual MIT/GPL\0"), "monitor-ebpf declares its licence");
    }

    fn target(id: u32, canonical: &str) -> Target {
        Target { id, written: canonical.into(), canonical: canonical.into(), classes: class::FILE, identity: None, generation: None }
    }

    fn key(path: &std::path::Path) -> InodeKey {
        let (dev, ino) = crate::rules::targets::identity(path.to_str().unwrap()).unwrap_or((0, 0));
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
        let spine: std::collections::HashMap<InodeKey, u64> = spine(&plan).into_iter().map(|(k, (h, _))| (k, h)).collect();
        assert_eq!(spine[&key(std::path::Path::new("/"))], monitor_common::FNV_OFFSET, "the root: the empty hash");
        let sub = format!("{d}/real/sub");
        assert_eq!(spine[&key(std::path::Path::new(&sub))], fnv1a(sub.as_bytes()));
        assert_eq!(spine[&key(&dir)], fnv1a(d.to_string().as_bytes()));
        assert!(!spine.contains_key(&key(&dir.join("real/sub/missing"))), "does not exist");
        assert_eq!(spine[&key(&dir.join("real"))], 0, "real and alias are one directory under two spellings");
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
        assert_eq!((e[&k(2)].watch.watch_id, on_spine(k(2)), e[&k(2)].spine_hash), (8, true, 0xabc), "both");
        assert_eq!((e[&k(3)].watch.watch_id, on_spine(k(3)), e[&k(3)].spine_hash), (0, true, 0), "ambiguous spine only");
        assert_eq!((e[&k(1)].flags & inode_flag::GENERATION != 0, e[&k(1)].generation), (true, 41), "generation known");
        assert_eq!(e[&k(2)].flags & inode_flag::GENERATION, 0, "generation unknown: not checked");
        assert_eq!((e[&k(1)].armed, e[&k(2)].armed), (100 + monitor_common::epoch::slot(7), 100 + monitor_common::epoch::slot(8)));
        assert!(e.values().all(|x| x.armed_global == 100), "every entry is armed at the ancestors' epoch");
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
        assert_eq!(filter_word(&plan, &on_root, &root) & !monitor_common::FILTER_ROOT_WATCHED, plan.filter_word());
    }
}
