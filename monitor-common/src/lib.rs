//! Types shared by the eBPF programs (`monitor-ebpf`) and the userspace monitor.
//!
//! Everything here is `#[repr(C)]` plain data: the kernel writes it into the ring buffer or
//! reads it from maps and read-only globals, and userspace decodes it. Layout changes must
//! be made on both sides at once; the size assertions at the bottom catch accidental drift.
#![no_std]

/// Kernel event kinds (the `kind` field of [`Event`]).
pub mod kind {
    pub const EXEC: u16 = 1;
    pub const CONNECT: u16 = 2;
    pub const SETID: u16 = 3;
    pub const FILE: u16 = 4;
    pub const FORK: u16 = 5;
    pub const EXIT: u16 = 6;
    /// Bytes a process sent on a connection to a watched socket (see `CaptureKey`).
    pub const PAYLOAD: u16 = 7;
    /// Something reached for the monitor itself (see `tamper_op`).
    pub const TAMPER: u16 = 8;
}

/// File operations (the `op` field of a [`kind::FILE`] event).
/// Operation of a TAMPER event.
pub mod tamper_op {
    /// A signal for the monitor (args: signal, target tgid, result).
    pub const SIGNAL: u16 = 1;
    /// ptrace aimed at the monitor (args: the syscall's).
    pub const PTRACE: u16 = 2;
    /// process_vm_readv/writev on the monitor (args: the syscall's).
    pub const PROCESS_VM: u16 = 3;
}

pub mod file_op {
    pub const OPEN: u16 = 1;
    pub const UNLINK: u16 = 2;
    pub const RMDIR: u16 = 3;
    pub const RENAME: u16 = 4;
    pub const LINK: u16 = 5;
    pub const SYMLINK: u16 = 6;
    pub const MKDIR: u16 = 7;
    pub const TRUNCATE: u16 = 8;
    pub const CHMOD: u16 = 9;
    pub const CHOWN: u16 = 10;
    pub const SETXATTR: u16 = 11;
    pub const REMOVEXATTR: u16 = 12;
    pub const MKNOD: u16 = 13;
}

/// Bits of [`Event::flags`].
pub mod flag {
    /// The first variable field (path) was cut at its capacity.
    pub const PATH1_TRUNCATED: u32 = 1 << 0;
    /// The second variable field (argv or second path) was cut at its capacity.
    pub const PATH2_TRUNCATED: u32 = 1 << 1;
    /// An inode on the object's ancestry is watched.
    pub const WATCH_INODE: u32 = 1 << 2;
    /// A prefix of the object's absolute path string is watched.
    pub const WATCH_PATH: u32 = 1 << 3;
    /// The path was built from a user string, not from the kernel's dentry (failed call or
    /// path-based syscall): symlinks inside the string are not resolved.
    pub const PATH_FROM_STRING: u32 = 1 << 4;
    /// The process's root directory is not the host's (container or chroot).
    pub const FOREIGN_ROOT: u32 = 1 << 5;
    /// The dentry walk hit its depth bound before reaching the root.
    pub const PATH_DEPTH_EXCEEDED: u32 = 1 << 6;
    /// Sent because a rule asked for every event of this class (no kernel filter).
    pub const UNFILTERED: u32 = 1 << 7;
    /// The second watched object (rename/link destination) matched.
    pub const WATCH_PATH2: u32 = 1 << 8;
    /// The process is a thread-group leader's exit (EXIT events).
    pub const GROUP_EXIT: u32 = 1 << 9;
    /// The user string had `.`, `..` or empty components: the kernel could not decide and
    /// forwarded the event; userspace normalises the path and matches it.
    pub const PATH_UNCLEAN: u32 = 1 << 10;
    /// The call unlinked or renamed a watched name or an ancestor of one: the kernel bumped
    /// the watch's epoch (`monitor_common::epoch`), and its inode entries are stale until
    /// userspace arms them again. Sent whether or not a watch selects the event.
    pub const EPOCH_BUMPED: u32 = 1 << 11;
}

pub const COMM_LEN: usize = 16;
/// Bytes of the task's cgroup directory name sent with each event (container runtimes name
/// it after the container: `<id>`, `docker-<id>.scope`, `libpod-<id>.scope`, ...).
pub const CGROUP_NAME_LEN: usize = 128;
/// `Config::cgroup_subsys` value selecting the v2 (default) hierarchy.
pub const CGROUP_DEFAULT_HIERARCHY: u32 = u32::MAX;
/// Number of v1 subsystem slots in `struct css_set` the programs may index.
pub const CGROUP_SUBSYS_MAX: u32 = 16;
/// Capacity of each variable field in an event (PATH_MAX).
pub const FIELD_CAP: usize = 4096;
/// Bytes of a user-supplied path string the kernel reads.
pub const USER_PATH_CAP: usize = 256;
/// Maximum number of dentries walked towards the root.
pub const MAX_PATH_DEPTH: usize = 48;
/// Per-CPU counters of events lost in the kernel, by cause.
pub mod drop_cause {
    /// The ring buffer was full.
    pub const RING_FULL: u32 = 0;
    /// A resolve stage could not be tail-called (program array slot empty).
    pub const TAIL_CALL: u32 = 1;
    /// A setid call could not be stashed for its exit to judge (the stash map was full).
    pub const STASH_FULL: u32 = 2;
}
/// Number of drop counter slots.
pub const DROP_COUNTERS: u32 = 3;

/// Default size in bytes of the `EVENTS` ring buffer; the loader sets the size of each run
/// (`monitor run --ring-buffer-size`).
pub const RING_BUFFER_DEFAULT: u32 = 4 * 1024 * 1024;

/// A record asks the kernel to wake the ring buffer's reader only when no record did in
/// this many nanoseconds (`monitor-ebpf`'s `event` module). The reader drains again
/// [`FOLLOW_UP_NS`] after every drain that found records, so that a record left without a
/// wakeup waits at most that long. The gap bounds the wakeups records ask for to 500 a
/// second however many records come (each wakeup is a drain and a write of its lines),
/// while the bench's p99 syscall→alert latency stays under 4 ms.
pub const WAKE_GAP_NS: u64 = 2_000_000;
/// How long after a drain that found records the reader drains again: the wake gap, and a
/// millisecond for a program that decided on no wakeup to commit its record.
pub const FOLLOW_UP_NS: u64 = WAKE_GAP_NS + 1_000_000;

/// The eight credential ids of a task, in `struct cred` order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
}

impl Ids {
    /// Whether some id is not 0 (the task is not wholly root).
    #[inline(always)]
    pub fn any_nonzero(&self) -> bool {
        (self.uid
            | self.euid
            | self.suid
            | self.fsuid
            | self.gid
            | self.egid
            | self.sgid
            | self.fsgid)
            != 0
    }

    /// Whether any id is 0 now that was non-zero in `old` (a transition to root).
    #[inline(always)]
    pub fn became_root(&self, old: &Ids) -> bool {
        let to0 = |o: u32, n: u32| n == 0 && o != 0;
        to0(old.uid, self.uid)
            || to0(old.euid, self.euid)
            || to0(old.suid, self.suid)
            || to0(old.fsuid, self.fsuid)
            || to0(old.gid, self.gid)
            || to0(old.egid, self.egid)
            || to0(old.sgid, self.sgid)
            || to0(old.fsgid, self.fsgid)
    }
}

/// Fixed part of every ring-buffer record; `len1` then `len2` bytes of variable data follow.
///
/// * EXEC: field 1 = executable path (resolved by the kernel), field 2 = argv, NUL-separated.
/// * CONNECT: field 1 = path passed by the caller, field 2 = canonical path of the socket.
/// * FILE: field 1 = absolute path of the object, field 2 = second path (rename/link target).
/// * SETID: no fields; `old_ids` are the ids before the call, `ids` after.
/// * FORK: `args[0]` = child pid. EXIT: `args[0]` = exit code.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Event {
    pub kind: u16,
    pub op: u16,
    pub flags: u32,
    /// Total record size: `size_of::<Event>() + len1 + len2`.
    pub size: u32,
    /// x86-64 syscall number, or -1 for scheduler events.
    pub syscall: i32,
    /// `bpf_ktime_get_boot_ns()` at the event.
    pub ts_boot_ns: u64,
    /// The id of the cgroup `cgroup_name` names (its kernfs node's, in the hierarchy the
    /// loader chose): the task's cgroup v2 id on a cgroup v2 host, its v1 controller
    /// cgroup's on a v1 or hybrid one. One id, one cgroup, one name.
    pub cgroup_id: u64,
    /// Syscall return value.
    pub ret: i64,
    /// Raw syscall arguments a0..a3.
    pub args: [u64; 4],
    /// Inode number and device of the object (file, socket, executable), 0 if unknown.
    pub ino: u64,
    pub dev: u32,
    /// `i_mode` of the object.
    pub mode: u32,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub ids: Ids,
    pub old_ids: Ids,
    pub auid: u32,
    pub sessionid: u32,
    pub len1: u32,
    pub len2: u32,
    /// Id of the watch that selected the object (0: none).
    pub watch: u32,
    /// Id of the watch that selected the second path of a rename or link (0: none).
    pub watch2: u32,
    /// OPEN: the effective open flags (`creat` and `openat2` included).
    pub extra: u32,
    pub comm: [u8; COMM_LEN],
    /// NUL-terminated name of the task's cgroup in the configured hierarchy.
    pub cgroup_name: [u8; CGROUP_NAME_LEN],
    /// `i_generation` of the object's inode (with `ino`, `dev`): tells a file from a later
    /// one that reuses its inode number. Last, so that records written before it existed
    /// (336-byte headers, see [`EVENT_SIZE_V1`]) still decode.
    pub generation: u32,
    pub _pad: u32,
}

pub const EVENT_SIZE: usize = core::mem::size_of::<Event>();
/// The header size of records without `generation` (captures of earlier versions).
pub const EVENT_SIZE_V1: usize = 336;

/// A connection whose outgoing bytes are captured: a socket descriptor of a process whose
/// `connect()` to a watched socket succeeded.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CaptureKey {
    pub tgid: u32,
    pub fd: u32,
}

/// Bytes captured from each send at most while the connection is young...
pub const CAPTURE_CHUNK: usize = 4096;
/// ... that is, until this many bytes were sent on it; after that only the start of each
/// send (where a new HTTP request line would be) is captured.
pub const CAPTURE_FULL_BYTES: u64 = 256 * 1024;
pub const CAPTURE_HEAD: usize = 512;

/// Key of the watched-inode map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InodeKey {
    pub ino: u64,
    pub dev: u32,
    pub _pad: u32,
}

/// What a watch entry (inode or path hash) means to the kernel filter.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WatchValue {
    pub watch_id: u32,
    /// WATCH_* bits: which event classes this watch selects.
    pub classes: u32,
}

/// What the kernel filter knows about one inode (`WATCH_INODES`): the watch on it, and
/// whether it is on the spine, the existing directories on the way to watched paths (see
/// `path::surely_unwatched` in monitor-ebpf). One entry, so that a walk looks each level
/// up once.
///
/// An entry says what was at a watched path when userspace armed it. It holds only while
/// that is still true, which the kernel checks whenever a walk finds it:
/// * the inode is the same object, not a new one that reuses the number of a freed one
///   (`generation`, the inode's `i_generation`, when userspace could learn it);
/// * no watched name, and no ancestor of one, was unlinked or renamed since it was armed
///   (`armed` against `WATCH_EPOCHS[watch_id]`, `armed_global` against
///   `WATCH_EPOCHS[0]`; the kernel bumps them, see [`epoch`]).
///
/// A stale entry matches nothing: the object is then judged by its path's spelling until
/// userspace has armed the watch again.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct InodeEntry {
    /// `watch_id` 0: the inode is only on the spine, not watched itself.
    pub watch: WatchValue,
    /// On the spine: the FNV-1a hash of its canonical path (the root: the empty hash; 0:
    /// the directory is reached under several spellings, no verdict).
    pub spine_hash: u64,
    /// [`inode_flag`] bits.
    pub flags: u32,
    /// The inode's `i_generation` (checked when `inode_flag::GENERATION` is set).
    pub generation: u32,
    /// `WATCH_EPOCHS[watch.watch_id]` when the entry was armed.
    pub armed: u32,
    /// `WATCH_EPOCHS[0]` when the entry was armed.
    pub armed_global: u32,
}

/// Bits of [`InodeEntry::flags`].
pub mod inode_flag {
    /// The directory is on the spine.
    pub const ON_SPINE: u32 = 1 << 0;
    /// `generation` is known and must match the inode's.
    pub const GENERATION: u32 = 1 << 1;
}

/// Epochs of the watches (`WATCH_EPOCHS` in monitor-ebpf): slot `watch_id % SLOTS` counts
/// the successful unlinks and renames of that watch's spellings, slot 0 those of their
/// ancestors (which move or remove every watch below them). An inode entry armed at other
/// epochs is stale (see [`InodeEntry`]). Watches sharing a slot only re-arm each other.
pub mod epoch {
    pub const SLOTS: u32 = 4096;
    /// The slot of `watch_id` (never 0, the ancestors' slot).
    #[inline(always)]
    pub fn slot(watch_id: u32) -> u32 {
        1 + (watch_id.wrapping_sub(1) % (SLOTS - 1))
    }
}

/// Bits of [`WatchValue::classes`] and [`Config::unfiltered`].
pub mod class {
    pub const EXEC: u32 = 1 << 0;
    pub const CONNECT: u32 = 1 << 1;
    pub const FILE: u32 = 1 << 2;
    pub const SETID: u32 = 1 << 3;
}

/// A bit of the kernel's filter word beside the `class` bits: some rule can match an open
/// for reading only (no write access, no O_CREAT, no O_TRUNC). Without it such opens, most
/// of a host's file activity, are dropped before their file is even looked at.
pub const FILTER_READ_OPENS: u32 = 1 << 16;

/// A bit of the kernel's filter word: the host's root directory is itself watched, so every
/// absolute host path is under a watch (saves a map lookup per path string otherwise).
pub const FILTER_ROOT_WATCHED: u32 = 1 << 17;

pub mod summary;
pub mod sys;

/// Byte offsets of the kernel struct members the programs read, taken from the running
/// kernel's BTF by userspace at load time (aya's Rust programs have no CO-RE relocations).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelOffsets {
    pub task_real_parent: u32,
    pub task_tgid: u32,
    pub task_pid: u32,
    pub task_fs: u32,
    pub task_files: u32,
    pub task_mm: u32,
    pub task_cred: u32,
    pub task_loginuid: u32,
    pub task_sessionid: u32,
    pub task_exit_code: u32,
    pub fs_root: u32,
    pub fs_pwd: u32,
    pub path_mnt: u32,
    pub path_dentry: u32,
    pub dentry_parent: u32,
    pub dentry_name: u32,
    pub dentry_inode: u32,
    pub qstr_len: u32,
    pub qstr_name: u32,
    pub inode_ino: u32,
    pub inode_sb: u32,
    pub inode_mode: u32,
    /// `inode.i_generation`.
    pub inode_generation: u32,
    pub sb_dev: u32,
    pub mount_mnt: u32,
    pub mount_parent: u32,
    pub mount_mountpoint: u32,
    pub vfsmount_root: u32,
    pub files_fdt: u32,
    pub fdtable_fd: u32,
    pub fdtable_max_fds: u32,
    pub file_path: u32,
    pub file_private_data: u32,
    pub socket_sk: u32,
    pub unix_sock_path: u32,
    pub unix_sock_peer: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub cred_uid: u32,
    pub bprm_file: u32,
    pub task_cgroups: u32,
    pub css_set_subsys: u32,
    pub css_set_dfl_cgrp: u32,
    pub css_cgroup: u32,
    pub cgroup_kn: u32,
    pub kernfs_node_name: u32,
    pub kernfs_node_id: u32,
    /// `sock.__sk_common.skc_family`: a socket's address family.
    pub sock_family: u32,
}

/// BTF type ids (in the running kernel's vmlinux BTF) of the structs the programs give a
/// type to with `bpf_rdonly_cast`, so that their members are read by direct loads.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelTypes {
    pub dentry: u32,
    pub inode: u32,
    pub vfsmount: u32,
    pub mount: u32,
    pub file: u32,
    pub socket: u32,
    pub unix_sock: u32,
    /// A struct whose first member is a `struct file *` (`kiocb.ki_filp`): an fd-table
    /// slot cast to it yields the file as a typed pointer.
    pub file_slot: u32,
    pub sock: u32,
    /// `struct task_struct` and `struct linux_binprm`: the raw tracepoints' pointer
    /// arguments are plain numbers until cast to them.
    pub task: u32,
    pub binprm: u32,
}

/// The helper number the kernel programs' `bpf_rdonly_cast` calls carry in the object file.
/// No helper has it: the loader rewrites each such call into the kfunc call (aya has no
/// kfunc relocation), with the kfunc's BTF id from the running kernel.
pub const RDONLY_CAST_MARK: i32 = 0x0bad_ca57;

/// Read-only configuration of the kernel programs (global `CONFIG`), set at load time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Config {
    pub offsets: KernelOffsets,
    pub types: KernelTypes,
    /// Unused (kept for layout): the unfiltered classes live in the `FILTER` map so that a
    /// rules reload can change them.
    pub unfiltered: u32,
    /// Device and inode of the host's root directory, to tell chroots and containers apart.
    pub host_root_dev: u32,
    pub host_root_ino: u64,
    /// The monitor's own tgid: its activity is never reported to itself.
    pub self_tgid: u32,
    /// Which cgroup hierarchy names the task's container: a v1 subsystem index (the order
    /// of /proc/cgroups), or [`CGROUP_DEFAULT_HIERARCHY`] for the v2 (default) hierarchy.
    pub cgroup_subsys: u32,
    /// 1 when `bpf_rdonly_cast` takes type id 0 (`BPF_FEAT_RDONLY_CAST_TO_VOID`, Linux
    /// 6.17): kernel strings are then read by direct loads instead of a helper call.
    pub rdonly_cast_void: u32,
}

/// FNV-1a, 64-bit: the path-prefix hash both sides compute over normalised absolute paths.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[inline(always)]
pub fn fnv1a_step(hash: u64, byte: u8) -> u64 {
    (hash ^ byte as u64).wrapping_mul(FNV_PRIME)
}

pub mod clean_scan;

/// Hash of a whole path (userspace side of the prefix match).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h = fnv1a_step(h, b);
    }
    h
}

const _: () = assert!(EVENT_SIZE == 344);
const _: () = assert!(core::mem::offset_of!(Event, generation) == EVENT_SIZE_V1);
const _: () = assert!(core::mem::size_of::<Ids>() == 32);
const _: () = assert!(core::mem::size_of::<InodeKey>() == 16);
const _: () = assert!(core::mem::size_of::<InodeEntry>() == 32);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    unsafe impl aya::Pod for Config {}
    unsafe impl aya::Pod for InodeKey {}
    unsafe impl aya::Pod for WatchValue {}
    unsafe impl aya::Pod for InodeEntry {}
    unsafe impl aya::Pod for Event {}
}
