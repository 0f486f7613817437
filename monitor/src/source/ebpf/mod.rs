//! The eBPF source: load the kernel programs with this kernel's struct offsets and the
//! rule set's filter, attach them to their tracepoints, keep the watch maps current
//! ([`watches`]), and hand out what the kernel sent through the ring buffer, decoded.

pub mod btf;
pub mod decode;
pub mod kfunc;
mod loader;
pub mod offsets;
mod reader;
mod resident;
pub mod ring;
pub mod summary;
pub mod tracefs;
pub mod watches;

use super::{Arrival, Input, Source};
use crate::plan::FilterPlan;
use aya::maps::{Map, MapData, PerCpuArray, ProgramArray};
use aya::programs::{RawTracePoint, TracePoint};
use aya::Ebpf;
use monitor_common::{sys, Config, InodeKey};
use std::os::fd::{AsRawFd, RawFd};
use tracing::{debug, warn};

static PROGRAMS: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/monitor-ebpf"));

/// Why the sensors could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The kernel lacks something the programs need (BTF, tracefs, a kfunc, a struct).
    #[error("{0}")]
    Unsupported(String),
    /// The kernel refused a step (a map update, the verifier, an attach).
    #[error("{what}: {source}")]
    Kernel {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<LoadError> for crate::Error {
    fn from(e: LoadError) -> crate::Error {
        match e {
            LoadError::Unsupported(why) => crate::Error::KernelUnsupported(why),
            kernel => crate::Error::Kernel(error_chain(&kernel)),
        }
    }
}

/// An error and its causes, on one line (the verifier's log is in the causes).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// `.kernel("what was being done")` for the results of aya and the kernel.
pub trait KernelContext<T> {
    fn kernel(self, what: impl std::fmt::Display) -> Result<T, LoadError>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> KernelContext<T> for Result<T, E> {
    fn kernel(self, what: impl std::fmt::Display) -> Result<T, LoadError> {
        self.map_err(|e| LoadError::Kernel { what: what.to_string(), source: Box::new(e) })
    }
}

/// Program `name` of the loaded object, as a `P`.
fn program<'e, P>(ebpf: &'e mut Ebpf, name: &str) -> Result<&'e mut P, LoadError>
where
    &'e mut P: TryFrom<&'e mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| LoadError::Unsupported(format!("program {name} missing from the object")))?;
    prog.try_into().kernel(format!("program {name}"))
}

/// A map of the loaded object, by name.
fn map_mut<'e>(ebpf: &'e mut Ebpf, name: &str) -> Result<&'e mut aya::maps::Map, LoadError> {
    ebpf.map_mut(name)
        .ok_or_else(|| LoadError::Unsupported(format!("the programs have no {name} map")))
}

/// The loaded and attached sensors, and the ring buffer they write into.
pub struct EbpfSource {
    ebpf: Ebpf,
    ring: reader::RingReader,
    /// Hooks attached, as `category:name`.
    attached: Vec<String>,
    watches: watches::Watches,
    /// Keep each record's bytes with its event (a capture is being written).
    keep_raw: bool,
}

impl EbpfSource {
    /// Load the programs with a ring buffer of `ring` bytes, put `plan` in the maps and
    /// attach every hook. With `keep_raw`, each event carries its record as the kernel wrote
    /// it (for a capture).
    ///
    /// Kernel BTF is parsed once, by our reader (offsets, type ids, the kfunc's id), and
    /// dropped before anything else large exists; aya's loader holds none ([`loader`]).
    pub fn load(
        plan: &FilterPlan,
        keep_raw: bool,
        ring: ring::RingSize,
    ) -> Result<EbpfSource, LoadError> {
        tracefs::ensure_mounted()?;
        resident::bound_freed_heap();
        // What ran before (arguments, settings, rules) is not needed again soon.
        resident::release_clean_binary_pages();
        let (config, rdonly_cast) = kernel_config(plan)?;
        let mut loader = loader::without_kernel_btf();
        let (object, casts) = kfunc::patch(PROGRAMS, rdonly_cast)
            .map_err(unsupported("linking the programs' kfunc calls"))?;
        debug!(casts, "bpf_rdonly_cast calls linked");
        let mut ebpf = loader
            .map_max_entries("EVENTS", ring.bytes())
            .override_global("CONFIG", &config, true)
            .load(object.bytes())
            .kernel("loading the eBPF programs into the kernel")?;
        drop((loader, object));
        let host_root = InodeKey { ino: config.host_root_ino, dev: config.host_root_dev, _pad: 0 };
        let mut watches = watches::Watches::new(host_root);
        watches.sync(&mut ebpf, plan)?;
        let mut hooks = Hooks { ebpf: &mut ebpf, attached: Vec::new() };
        hooks.attach()?;
        let attached = hooks.attached;
        // What loading freed and the code that did it go before the ring buffer is mapped:
        // the kernel maps every page of it at once, so from here on they are resident.
        resident::release_freed_heap();
        resident::release_clean_binary_pages();
        let Some(Map::RingBuf(ring_map)) = ebpf.take_map("EVENTS") else {
            return Err(LoadError::Unsupported("the programs have no EVENTS ring buffer".into()));
        };
        let page = ring::page_size() as usize;
        let ring = reader::RingReader::new(ring_map, ring.bytes() as usize, page)
            .kernel("mapping the EVENTS ring buffer")?;
        Ok(EbpfSource { ebpf, ring, attached, watches, keep_raw })
    }

    /// Events lost in the kernel since load, over all CPUs and causes (ring buffer full,
    /// stage not reachable).
    pub fn drops(&self) -> Result<u64, LoadError> {
        let map = self
            .ebpf
            .map("DROPS")
            .ok_or_else(|| LoadError::Unsupported("the programs have no DROPS map".into()))?;
        let map: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map).kernel("the DROPS map")?;
        let mut total = 0;
        for cause in 0..monitor_common::DROP_COUNTERS {
            total += map.get(&cause, 0).kernel("reading DROPS")?.iter().sum::<u64>();
        }
        Ok(total)
    }
}

/// Loading and attaching the programs: the hooks attached so far, as `category:name`.
struct Hooks<'e> {
    ebpf: &'e mut Ebpf,
    attached: Vec<String>,
}

impl Hooks<'_> {
    /// Load the tail-called stages and put them in `STAGES`; must precede every attach, or
    /// the first events would find an empty slot.
    fn load_stages(&mut self) -> Result<(), LoadError> {
        for (slot, name) in [(0u32, "resolve_stage"), (1, "finish_stage")] {
            let prog: &mut TracePoint = program(self.ebpf, name)?;
            prog.load().kernel(format!("loading {name} (verifier)"))?;
            let fd = prog
                .fd()
                .kernel(format!("{name} has no descriptor"))?
                .try_clone()
                .kernel(format!("{name}'s descriptor"))?;
            let mut stages: ProgramArray<&mut MapData> =
                ProgramArray::try_from(map_mut(self.ebpf, "STAGES")?).kernel("the STAGES map")?;
            stages.set(slot, &fd, 0).kernel(format!("installing {name} in STAGES"))?;
        }
        Ok(())
    }

    fn attach(&mut self) -> Result<(), LoadError> {
        self.load_stages()?;
        self.attach_syscalls("sys_exit_open", "sys_exit_", &sys::OPENS)?;
        self.attach_syscalls("sys_exit_path", "sys_exit_", &sys::ONE_PATH)?;
        self.attach_syscalls("sys_exit_two_paths", "sys_exit_", &sys::TWO_PATHS)?;
        self.attach_syscalls("sys_exit_fd", "sys_exit_", &sys::FD)?;
        self.attach_syscalls("sys_exit_connect", "sys_exit_", &[sys::CONNECT])?;
        self.attach_syscalls("sys_exit_setid", "sys_exit_", &sys::SETID)?;
        self.attach_syscalls("sys_exit_exec", "sys_exit_", &sys::EXEC)?;
        // File, connect and exec exits read their arguments from the task's registers; the
        // entry stash serves the setid family (the credentials before the call) and marks
        // an execveat (the exec tracepoint cannot tell it from an execve otherwise).
        // Attached after the exits: every call it stashes for then reaches an exit program
        // that takes the entry back.
        let enter: Vec<u32> = sys::SETID.iter().chain(&[sys::EXECVEAT]).copied().collect();
        self.attach_syscalls("sys_enter", "sys_enter_", &enter)?;
        self.attach_syscalls("sys_enter_send", "sys_enter_", &sys::SENDS)?;
        self.attach_syscalls("sys_enter_access", "sys_enter_", &sys::TAMPER)?;
        for name in
            ["sched_process_exec", "sched_process_fork", "sched_process_exit", "signal_generate"]
        {
            let prog: &mut RawTracePoint = program(self.ebpf, name)?;
            prog.load().kernel(format!("loading {name} (verifier)"))?;
            prog.attach(name).kernel(format!("attaching {name}"))?;
            self.attached.push(format!("raw_tp:{name}"));
        }
        Ok(())
    }

    fn attach_syscalls(&mut self, name: &str, prefix: &str, nrs: &[u32]) -> Result<(), LoadError> {
        let prog: &mut TracePoint = program(self.ebpf, name)?;
        prog.load().kernel(format!("loading {name} (verifier)"))?;
        for nr in nrs {
            let tp = format!("{prefix}{}", crate::vocab::name(*nr).unwrap_or("?"));
            match prog.attach("syscalls", &tp) {
                Ok(_) => self.attached.push(format!("syscalls:{tp}")),
                // A tracepoint the kernel has must take the program (the kernel refuses a
                // program that loads past the end of the tracepoint's record, say).
                Err(e) if tracefs::event_exists("syscalls", &tp) => {
                    return Err(e).kernel(format!("attaching {name} to syscalls:{tp}"));
                }
                // Newer syscalls (setxattrat, ...) do not exist on every kernel.
                Err(e) => {
                    warn!(tracepoint = %tp, error = %e, "tracepoint not attached: the kernel has no such syscall")
                }
            }
        }
        Ok(())
    }
}

impl Source for EbpfSource {
    fn next(&mut self) -> crate::Result<Option<Input>> {
        let keep_raw = self.keep_raw;
        Ok(self.ring.next(|record| match decode::decode(record) {
            Ok(ev) => {
                let raw = keep_raw.then(|| record.to_vec());
                Input::Event(Box::new(Arrival { raw, ..Arrival::event(ev) }))
            }
            Err(e) => Input::Undecodable(e.to_string()),
        }))
    }

    fn lost(&self) -> Option<u64> {
        self.drops().ok()
    }

    fn readiness(&self) -> Option<RawFd> {
        Some(self.ring.as_raw_fd())
    }

    /// A record does not wake the reader when another did less than
    /// `monitor_common::WAKE_GAP_NS` ago (monitor-ebpf's `event` module).
    fn follow_up(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_nanos(monitor_common::FOLLOW_UP_NS))
    }

    fn arm(&mut self, plan: &FilterPlan) -> crate::Result<()> {
        Ok(self.watches.sync(&mut self.ebpf, plan)?)
    }

    fn stale(&self) -> bool {
        self.watches.stale(&self.ebpf)
    }

    fn hook_points(&self) -> &[String] {
        &self.attached
    }
}

/// A `Malformed` (BTF, the object) as the kernel lacking what the programs need.
fn unsupported(what: &'static str) -> impl Fn(crate::error::Malformed) -> LoadError {
    move |e| LoadError::Unsupported(format!("{what}: {e}"))
}

/// The programs' `CONFIG` and the BTF id of the kfunc `bpf_rdonly_cast`, from this kernel's
/// BTF (read here and dropped on return).
fn kernel_config(plan: &FilterPlan) -> Result<(Config, u32), LoadError> {
    let btf = btf::Btf::from_sys_fs().map_err(unsupported("reading the kernel's BTF"))?;
    let offsets = offsets::from_btf(&btf)
        .map_err(unsupported("the running kernel lacks a structure the programs read"))?;
    let types = offsets::types_from_btf(&btf)
        .map_err(unsupported("the running kernel lacks a structure the programs read"))?;
    let rdonly_cast = btf.func_id("bpf_rdonly_cast").ok_or_else(|| {
        LoadError::Unsupported("the running kernel has no kfunc bpf_rdonly_cast, which the programs use to read kernel structures".into())
    })?;
    let root = std::fs::metadata("/").kernel("stat /")?;
    use std::os::unix::fs::MetadataExt;
    let config = Config {
        offsets,
        types,
        unfiltered: plan.unfiltered,
        host_root_dev: crate::plan::kernel_dev(root.dev()),
        host_root_ino: root.ino(),
        self_tgid: std::process::id(),
        cgroup_subsys: container_hierarchy(),
        rdonly_cast_void: btf.has_enumerator("BPF_FEAT_RDONLY_CAST_TO_VOID") as u32,
    };
    debug!(rdonly_cast_void = config.rdonly_cast_void, "kernel strings read by direct loads");
    Ok((config, rdonly_cast))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_object_declares_a_gpl_compatible_licence() {
        // The kernel reads the `license` section; GPL-only helpers need a GPL-compatible one.
        assert!(
            PROGRAMS.windows(13).any(|w| w == b"Dual MIT/GPL\0"),
            "monitor-ebpf declares its licence"
        );
    }
}
