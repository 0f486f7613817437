//! The process table: pid → parent, executable, argv, start time. Seeded from /proc at
//! start, then kept current from the kernel's fork/exec/exit events, so that short-lived
//! processes and their parents are known even after they are gone from /proc. A process's
//! start time with the host's id makes its `process.entity_id` ([`EntityIds`]), the same
//! on every line about it.

use crate::enrich::next_version;
use crate::event::{Action, Event};
use crate::hash::FastMap;
use std::os::unix::ffi::OsStrExt;

#[derive(Clone, Debug, Default)]
pub struct ProcInfo {
    pub ppid: u32,
    pub exe: Option<Vec<u8>>,
    pub args: Vec<Vec<u8>>,
    pub comm: Vec<u8>,
    /// When the process started, in clock ticks since boot (/proc/PID/stat `starttime`;
    /// for a fork seen live, the fork's time in ticks), when known.
    pub start: Option<u64>,
}

/// Nanoseconds per clock tick (`starttime` is in ticks of `_SC_CLK_TCK`, 100 per second
/// on Linux).
pub fn tick_ns() -> u64 {
    static NS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *NS.get_or_init(|| {
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if hz > 0 {
            1_000_000_000 / hz as u64
        } else {
            10_000_000
        }
    })
}

/// `process.entity_id`s of one host: FNV-1a (128 bits) of the host's key, the pid and the
/// start time, as 32 hex digits. The same process gives the same id on every line (and
/// across an exec); a reused pid, another start time, gives another.
///
/// FNV-1a's state after `host_key:` is kept, so that each id hashes only its pid and start:
/// an alert names its process, the parent and every ancestor, and the host's key is two
/// thirds of the bytes.
///
/// Made without allocating: formatting each id through `format!` was the monitor's
/// largest source of allocations at 1,000 execs/s (heaptrack: 27 per exec).
#[derive(Clone, Copy, Debug)]
pub struct EntityIds(u128);

impl EntityIds {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;

    pub fn new(host_key: &str) -> EntityIds {
        EntityIds(Self::hash(Self::OFFSET, [host_key.as_bytes(), b":"]))
    }

    fn hash<const N: usize>(mut h: u128, parts: [&[u8]; N]) -> u128 {
        for b in parts.into_iter().flatten() {
            h ^= *b as u128;
            h = h.wrapping_mul(Self::PRIME);
        }
        h
    }

    /// The id of the process `pid` started at `start` (clock ticks since boot).
    pub fn id(&self, pid: u32, start: u64) -> EntityId {
        let (mut pid_digits, mut start_digits) = (itoa::Buffer::new(), itoa::Buffer::new());
        let h = Self::hash(
            self.0,
            [pid_digits.format(pid).as_bytes(), b":", start_digits.format(start).as_bytes()],
        );
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut id = [0u8; 32];
        for (i, digit) in id.iter_mut().enumerate() {
            *digit = HEX[(h >> (4 * (31 - i)) & 0xf) as usize];
        }
        EntityId(id)
    }
}

/// A `process.entity_id`: 32 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntityId([u8; 32]);

impl EntityId {
    pub fn as_str(&self) -> &str {
        // Hex digits only: always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// An ancestor as alerts name it: (pid, executable, start).
pub type Ancestor<'t> = (u32, Option<&'t [u8]>, Option<u64>);

/// At most this many ancestors are listed (a guard against cycles in stale data).
const MAX_ANCESTORS: usize = 64;
/// Table size beyond which `note` drops the processes that are gone.
const MAX_NOTED: usize = 65_536;

pub struct ProcessTable {
    procs: FastMap<u32, ProcInfo>,
    /// Whether /proc may be read (false when replaying a capture from elsewhere).
    live: bool,
    /// Entries read from /proc since the last `take_learned` (a capture records them).
    learned: Vec<u32>,
    /// Changes whenever an entry is added, changed or removed (see [`ProcessTable::version`]).
    version: u64,
}

impl Default for ProcessTable {
    fn default() -> Self {
        ProcessTable {
            procs: FastMap::default(),
            live: true,
            learned: Vec::new(),
            version: next_version(),
        }
    }
}

impl ProcessTable {
    pub fn new() -> ProcessTable {
        ProcessTable::default()
    }

    /// A table that never reads /proc: it knows what it is told (replay).
    pub fn offline() -> ProcessTable {
        ProcessTable { live: false, ..ProcessTable::default() }
    }

    /// Set what is known of `pid` (replay of a recorded entry).
    pub fn insert(&mut self, pid: u32, info: ProcInfo) {
        self.changed();
        self.procs.insert(pid, info);
    }

    /// A number that is the same only while no entry was added, changed or removed: what
    /// was worked out from the table (an alert's process members) still holds while it is.
    /// Unique across tables too, so a table put in another's place is not mistaken for it.
    pub fn version(&self) -> u64 {
        self.version
    }

    fn changed(&mut self) {
        self.version = next_version();
    }

    /// The entries read from /proc since the last call, as they are now.
    pub fn take_learned(&mut self) -> Vec<(u32, ProcInfo)> {
        let pids = std::mem::take(&mut self.learned);
        pids.into_iter().filter_map(|p| self.procs.get(&p).map(|i| (p, i.clone()))).collect()
    }

    /// Every entry (the start of a capture).
    pub fn entries(&self) -> Vec<(u32, ProcInfo)> {
        self.procs.iter().map(|(p, i)| (*p, i.clone())).collect()
    }

    fn read(&mut self, pid: u32) -> Option<ProcInfo> {
        if !self.live {
            return None;
        }
        let info = read_proc(pid)?;
        self.learned.push(pid);
        Some(info)
    }

    /// Read every process in /proc.
    pub fn seed_from_proc(&mut self) {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in dir.flatten() {
            if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
                if let Some(info) = read_proc(pid) {
                    self.procs.insert(pid, info);
                }
            }
        }
        self.changed();
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// Apply a lifecycle event (and learn about processes first seen in any event).
    pub fn observe(&mut self, ev: &Event) {
        match ev.action {
            Action::Fork => {
                let child = ev.child_or_code as u32;
                let mut info = self.procs.get(&ev.pid).cloned().unwrap_or_default();
                info.ppid = ev.pid;
                info.start = Some(ev.ts_boot_ns / tick_ns());
                self.procs.insert(child, info);
                self.changed();
            }
            Action::Exec if ev.success() => {
                if !self.procs.contains_key(&ev.pid) {
                    // Its fork was not seen: the start time, at least, is in /proc.
                    let start = self.read(ev.pid).and_then(|p| p.start);
                    self.procs.insert(ev.pid, ProcInfo { start, ..ProcInfo::default() });
                }
                let info = self.procs.entry(ev.pid).or_default();
                info.ppid = ev.ppid;
                info.exe = ev.path.clone();
                info.args = ev.argv.clone();
                info.comm = ev.comm.clone();
                self.changed();
            }
            Action::Exit => {
                if self.procs.remove(&ev.pid).is_some() {
                    self.changed();
                }
            }
            _ => {
                if !self.procs.contains_key(&ev.pid) {
                    let read = self.read(ev.pid).unwrap_or_default();
                    self.procs.insert(ev.pid, read);
                    self.changed();
                }
                let info = self.procs.entry(ev.pid).or_default();
                if info.ppid != ev.ppid || (info.comm.is_empty() && !ev.comm.is_empty()) {
                    info.ppid = ev.ppid;
                    if info.comm.is_empty() {
                        info.comm = ev.comm.clone();
                    }
                    self.changed();
                }
            }
        }
    }

    /// What an audit record says about `pid` at the time of its event (audit sources have
    /// no fork/exit events to keep the table current): it wins over what the table held.
    /// `args` (the process title, cut at 128 bytes) only fills an empty or outdated argv.
    pub fn note(
        &mut self,
        pid: u32,
        ppid: Option<u32>,
        exe: Option<Vec<u8>>,
        comm: &[u8],
        args: Option<Vec<Vec<u8>>>,
    ) {
        self.changed();
        if self.procs.len() >= MAX_NOTED {
            // Without exit events nothing leaves the table: keep the processes still running.
            let live = self.live;
            self.procs.retain(|p, _| live && std::path::Path::new(&format!("/proc/{p}")).exists());
        }
        if !self.procs.contains_key(&pid) {
            if let Some(info) = self.read(pid) {
                self.procs.insert(pid, info);
            }
        }
        let info = self.procs.entry(pid).or_default();
        let new_image = exe.is_some() && info.exe != exe;
        if let Some(ppid) = ppid {
            info.ppid = ppid;
        }
        if exe.is_some() {
            info.exe = exe;
        }
        if !comm.is_empty() {
            info.comm = comm.to_vec();
        }
        if let Some(args) = args {
            if new_image || info.args.is_empty() {
                info.args = args;
            }
        }
    }

    /// What we know of `pid`; reads /proc for a process we have not seen yet.
    pub fn get(&mut self, pid: u32) -> Option<&ProcInfo> {
        if !self.procs.contains_key(&pid) {
            let info = self.read(pid)?;
            self.procs.insert(pid, info);
            self.changed();
        }
        self.procs.get(&pid)
    }

    /// Load `pid` and its ancestors (up to pid 1) into the table, so that `peek` and
    /// `ancestors` see them.
    pub fn load_lineage(&mut self, pid: u32) {
        let mut cur = pid;
        for _ in 0..=MAX_ANCESTORS {
            match self.get(cur) {
                Some(p) if cur != 1 && p.ppid != 0 => cur = p.ppid,
                _ => break,
            }
        }
    }

    /// What the table holds for `pid`, without reading /proc.
    pub fn peek(&self, pid: u32) -> Option<&ProcInfo> {
        self.procs.get(&pid)
    }

    /// (pid, executable, start) of each ancestor of `pid` the table holds, parent first, up
    /// to pid 1 (`load_lineage` first).
    pub fn ancestors(&self, pid: u32) -> Vec<Ancestor<'_>> {
        let mut out = Vec::new();
        let mut cur = self.peek(pid).map(|p| p.ppid).unwrap_or(0);
        while cur != 0 && out.len() < MAX_ANCESTORS {
            let info = self.peek(cur);
            out.push((cur, info.and_then(|i| i.exe.as_deref()), info.and_then(|i| i.start)));
            if cur == 1 {
                break;
            }
            cur = info.map(|i| i.ppid).unwrap_or(0);
        }
        out
    }
}

/// Read one process from /proc; `None` when it is gone.
pub fn read_proc(pid: u32) -> Option<ProcInfo> {
    let base = format!("/proc/{pid}");
    let stat = std::fs::read(format!("{base}/stat")).ok()?;
    // comm is in parentheses and may itself contain ") ": split at the last ')'.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let open = stat.iter().position(|&b| b == b'(')?;
    let comm = stat.get(open + 1..close)?.to_vec();
    let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
    // After the comm: state (field 3), ppid (4), ..., starttime (22).
    let ppid = rest.split(' ').nth(1)?.parse().ok()?;
    let start = rest.split(' ').nth(19).and_then(|s| s.parse().ok());
    let exe =
        std::fs::read_link(format!("{base}/exe")).ok().map(|p| p.as_os_str().as_bytes().to_vec());
    let args = std::fs::read(format!("{base}/cmdline"))
        .map(|c| {
            let c = c.strip_suffix(&[0]).unwrap_or(&c).to_vec();
            if c.is_empty() {
                Vec::new()
            } else {
                c.split(|&b| b == 0).map(|s| s.to_vec()).collect()
            }
        })
        .unwrap_or_default();
    Some(ProcInfo { ppid, exe, args, comm, start })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_itself_from_proc() {
        let me = read_proc(std::process::id()).unwrap();
        assert!(me.exe.is_some());
        assert!(!me.args.is_empty());
        let mut table = ProcessTable::new();
        assert!(table.ancestors(std::process::id()).is_empty(), "nothing loaded yet");
        table.load_lineage(std::process::id());
        let anc = table.ancestors(std::process::id());
        assert!(!anc.is_empty());
        assert_eq!(anc.last().unwrap().0, 1, "chain ends at pid 1: {anc:?}");
        assert!(anc.iter().all(|a| a.2.is_some()), "start times from /proc/PID/stat: {anc:?}");
    }

    #[test]
    fn a_forked_child_starts_when_proc_says_and_keeps_its_id_across_exec() {
        // This process's start from /proc agrees with the boot clock (in ticks).
        let me = read_proc(std::process::id()).unwrap();
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
        let now_ticks = (now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64) / tick_ns();
        assert!(me.start.is_some_and(|s| s <= now_ticks), "{:?} {now_ticks}", me.start);
        let mut t = ProcessTable::offline();
        let mut fork = crate::rules::tests::event_at(Action::Fork, -1, "");
        fork.pid = 10;
        fork.child_or_code = 11;
        fork.ts_boot_ns = 5 * tick_ns() + 3;
        t.observe(&fork);
        assert_eq!(t.peek(11).unwrap().start, Some(5));
        let mut exec = crate::rules::tests::event_at(Action::Exec, 59, "/bin/true");
        exec.pid = 11;
        exec.ppid = 10;
        t.observe(&exec);
        assert_eq!(t.peek(11).unwrap().start, Some(5), "an exec keeps the start");
        let id = EntityIds::new("host").id(11, 5);
        // FNV-1a 128 of "host:11:5" in hex, the id's definition, computed the plain way.
        let fnv = b"host:11:5".iter().fold(0x6c62272e07bb014262b821756295c58d_u128, |h, b| {
            (h ^ *b as u128).wrapping_mul(0x0000000001000000000000000000013b)
        });
        assert_eq!(id.as_str(), format!("{fnv:032x}"));
        assert_eq!(id.as_str().len(), 32);
        let ids = EntityIds::new("host");
        assert_eq!(id, ids.id(11, 5));
        assert_ne!(id, ids.id(11, 6));
        assert_ne!(ids.id(12, 5), ids.id(11, 5));
        assert_ne!(id, EntityIds::new("other").id(11, 5));
    }
}
