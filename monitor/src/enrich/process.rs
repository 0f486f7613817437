//! The process table: pid → parent, executable, argv. Seeded from /proc at start, then kept
//! current from the kernel's fork/exec/exit events, so that short-lived processes and their
//! parents are known even after they are gone from /proc.

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
}

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
                self.procs.insert(child, info);
                self.changed();
            }
            Action::Exec if ev.success() => {
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

    /// (pid, executable) of each ancestor of `pid` the table holds, parent first, up to pid 1
    /// (`load_lineage` first).
    pub fn ancestors(&self, pid: u32) -> Vec<(u32, Option<&[u8]>)> {
        let mut out = Vec::new();
        let mut cur = self.peek(pid).map(|p| p.ppid).unwrap_or(0);
        while cur != 0 && out.len() < MAX_ANCESTORS {
            let info = self.peek(cur);
            out.push((cur, info.and_then(|i| i.exe.as_deref())));
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
    let ppid = rest.split(' ').nth(1)?.parse().ok()?;
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
    Some(ProcInfo { ppid, exe, args, comm })
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
    }
}
