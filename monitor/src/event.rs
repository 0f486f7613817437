//! The source-agnostic event: what every source (eBPF, audit, capture) produces and what
//! enrichment, rule matching and the sinks consume.

pub use monitor_common::Ids;

/// What happened, independent of which syscall did it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Exec,
    Connect,
    SetId,
    Fork,
    Exit,
    Open,
    Unlink,
    Rmdir,
    Rename,
    Link,
    Symlink,
    Mkdir,
    Mknod,
    Truncate,
    Chmod,
    Chown,
    SetXattr,
    RemoveXattr,
    /// Bytes sent on a captured connection (not alerted by itself; see `enrich::http`).
    Payload,
    /// A signal sent to the monitor (self-defence).
    Signal,
    /// ptrace aimed at the monitor.
    Ptrace,
    /// process_vm_readv/writev on the monitor.
    ProcessVm,
    /// A syscall none of the above describes (audit sources report any audited syscall).
    Other,
    /// A message from a user-space program to the audit subsystem (sudo, PAM, useradd...):
    /// `args[0]` is its record type, `payload` its text. Only audit sources have them.
    UserMessage,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Exec => "exec",
            Action::Connect => "connect",
            Action::SetId => "setid",
            Action::Fork => "fork",
            Action::Exit => "exit",
            Action::Open => "open",
            Action::Unlink => "unlink",
            Action::Rmdir => "rmdir",
            Action::Rename => "rename",
            Action::Link => "link",
            Action::Symlink => "symlink",
            Action::Mkdir => "mkdir",
            Action::Mknod => "mknod",
            Action::Truncate => "truncate",
            Action::Chmod => "chmod",
            Action::Chown => "chown",
            Action::SetXattr => "setxattr",
            Action::RemoveXattr => "removexattr",
            Action::Payload => "payload",
            Action::Signal => "signal",
            Action::Ptrace => "ptrace",
            Action::ProcessVm => "process-vm",
            Action::Other => "syscall",
            Action::UserMessage => "user-message",
        }
    }
}

/// One observed event. Strings from the kernel are raw bytes: they may be invalid UTF-8.
#[derive(Clone, Debug)]
pub struct Event {
    pub action: Action,
    /// x86-64 syscall number, -1 for scheduler events.
    pub syscall: i32,
    pub ret: i64,
    pub args: [u64; 4],
    /// Nanoseconds since boot (CLOCK_BOOTTIME).
    pub ts_boot_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub ids: Ids,
    pub old_ids: Ids,
    pub auid: u32,
    pub sessionid: u32,
    /// cgroup v2 id of the task; the container enrichment keys on it.
    #[allow(dead_code)]
    pub cgroup_id: u64,
    /// Name of the task's cgroup (see `enrich::container`).
    pub cgroup_name: Vec<u8>,
    pub comm: Vec<u8>,
    /// The object: file, executable, or (connect) the path the caller passed.
    pub path: Option<Vec<u8>>,
    /// Rename/link destination, symlink target text, or (connect) the canonical socket path.
    pub path2: Option<Vec<u8>>,
    /// exec: the new argv.
    pub argv: Vec<Vec<u8>>,
    /// Payload: the captured bytes (`args` = fd, stream offset, bytes sent).
    pub payload: Vec<u8>,
    pub ino: u64,
    pub dev: u32,
    /// The inode's generation, when the source knows it (the eBPF sensors do; audit records
    /// and older captures do not): `ino` alone may be the number of a freed inode reused.
    pub generation: Option<u32>,
    pub mode: u32,
    /// Watch ids the kernel filter matched (0: none).
    pub watch: u32,
    pub watch2: u32,
    pub open_flags: u32,
    /// `monitor_common::flag` bits.
    pub flags: u32,
    /// fork: the child's pid. exit: the exit code.
    pub child_or_code: u64,
    /// Audit sources: the key(s) the audit record itself carried (`key=`; several are
    /// split at \x01), when it had any; printed as `monitor.audit.key`.
    pub audit_key: Option<Vec<Vec<u8>>>,
}

impl Event {
    pub fn success(&self) -> bool {
        self.ret >= 0
    }

    pub fn flag(&self, bit: u32) -> bool {
        self.flags & bit != 0
    }
}

/// The acting process of an event, as matching sees it: its executable (for a successful
/// exec, the new one) and its parent's.
#[derive(Clone, Copy, Debug, Default)]
pub struct Actor<'e> {
    pub exe: Option<&'e [u8]>,
    pub parent_exe: Option<&'e [u8]>,
}

impl<'e> Actor<'e> {
    /// A process known by its executable only.
    pub fn exe(exe: Option<&'e [u8]>) -> Actor<'e> {
        Actor { exe, parent_exe: None }
    }
}
