//! Event sources, the first stage: the eBPF sensors (`ebpf`), the kernel audit subsystem
//! live and auditd's logs (`audit`), and captures (`capture`); `input` opens and
//! recognises what a replay is given. Every source is pulled the same way,
//! [`Source::next`], and yields [`Input`]s: events, and for a capture the context its host
//! had. What only live sources have (readiness, the kernel's loss counter, the watch plan
//! the eBPF filter takes) has defaults the others keep.

pub mod audit;
pub mod capture;
pub mod ebpf;
pub mod input;

use crate::enrich::process::ProcInfo;
use crate::event::Event;
use crate::plan::FilterPlan;
use std::os::fd::RawFd;

/// One thing a source hands to the pipeline.
pub enum Input {
    /// An event, with what came with it.
    Event(Box<Arrival>),
    /// A record that could not be decoded (counted; the reason is logged once in a while).
    Undecodable(String),
    /// A process-table entry the recording host read from /proc (captures).
    Process(u32, ProcInfo),
    /// The recording host's user names (captures).
    Users(std::collections::HashMap<u32, String>),
    /// The recording host's group names (captures).
    Groups(std::collections::HashMap<u32, String>),
    /// The recording host's watch plan, from then on (captures).
    Plan(FilterPlan),
    /// An in-band record line the recording wrote, to write again (captures).
    Line(Vec<u8>),
    /// The recording's clock reached this time (CLOCK_BOOTTIME ns): what waits for time to
    /// pass (aggregation windows) is decided here, as it was live (captures).
    Tick(u64),
}

/// An event and what its source knows beyond it.
pub struct Arrival {
    pub ev: Event,
    /// The record as the kernel wrote it (eBPF, when a capture is being written).
    pub raw: Option<Vec<u8>>,
    /// What the capturing host had added to it (captures).
    pub recorded: Option<Recorded>,
    /// What audit records say beyond the event (audit sources).
    pub audit: Option<AuditContext>,
}

impl Arrival {
    pub fn event(ev: Event) -> Arrival {
        Arrival { ev, raw: None, recorded: None, audit: None }
    }
}

/// Host-dependent results a capture recorded for an event: the paths as resolved on the
/// capturing host and the container it came from (decided there).
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    pub path: Option<Option<Vec<u8>>>,
    pub path2: Option<Option<Vec<u8>>>,
    pub container: Option<crate::enrich::container::ContainerInfo>,
}

/// What an audit event's records add: the node that logged it, the names its ids had
/// there, the identities of the objects named (PATH records), and the process as the
/// SYSCALL and PROCTITLE records describe it.
#[derive(Clone, Debug, Default)]
pub struct AuditContext {
    /// The host that logged it (`node=`), when the log says.
    pub node: Option<String>,
    /// User and group names on the logging host (the enriched format's).
    pub names: audit::names::Names,
    pub identities: Vec<(u32, u64)>,
    /// (executable, argv) of the acting process.
    pub exe: Option<Vec<u8>>,
    pub args: Option<Vec<Vec<u8>>>,
    /// Whether `exe`/`args` describe the process (a syscall), or only name it (a user
    /// message: the program that sent it).
    pub syscall: bool,
}

/// A source of events.
pub trait Source {
    /// The next input. `Ok(None)`: nothing more for now (live sources: until readable
    /// again) or the end (recordings).
    fn next(&mut self) -> crate::Result<Option<Input>>;

    /// The input has ended (or the monitor stops): hand out what is still pending (audit
    /// events waiting for their last record) through `next`.
    fn finish(&mut self) {}

    /// Events the kernel could not hand over since the start (live sources).
    fn lost(&self) -> Option<u64> {
        None
    }

    /// The descriptor that becomes readable when `next` has something (live sources).
    fn readiness(&self) -> Option<RawFd> {
        None
    }

    /// Live sources that do not signal every arrival: read again this long after every
    /// read that found something, or an arrival may wait for the next signal.
    fn follow_up(&self) -> Option<std::time::Duration> {
        None
    }

    /// Put `plan` in force in the kernel filter (the eBPF sensors).
    fn arm(&mut self, _plan: &FilterPlan) -> crate::Result<()> {
        Ok(())
    }

    /// Whether the kernel staled watch entries since they were last armed (eBPF).
    fn stale(&self) -> bool {
        false
    }

    /// How the source proved that what it reads reaches it (audit: a probe record came
    /// back), for the start record.
    fn proof(&self) -> Option<&str> {
        None
    }

    /// The hook points attached (`syscalls:sys_exit_openat`, ...), for the start record.
    fn hook_points(&self) -> &[String] {
        &[]
    }

    /// Bytes read so far and in all (recordings: progress).
    fn progress(&self) -> (u64, u64) {
        (0, 0)
    }
}
