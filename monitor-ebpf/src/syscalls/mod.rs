//! Syscall tracepoints: the per-class exit handlers, and an argument stash on entry where the
//! exit needs what was true before the call.
//!
//! Exits read the arguments back from the registers the task entered the syscall with
//! ([`current_call`]): no entry program, no map traffic on the hot path. `sys_enter` runs
//! for the setuid family, storing the credentials before the call keyed by pid_tgid for the
//! exit to compare with, and for execveat, whose mark tells the exec tracepoint which call
//! it was (nothing else can: the task's registers then say execve either way). A setid
//! call is stashed only when it can matter (see [`stash`]): the map update is most of what
//! the setid hooks cost.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user, generated::bpf_task_pt_regs},
    programs::TracePointContext,
};
use monitor_common::{
    class, drop_cause, file_op, flag, kind, CaptureKey, Ids, CAPTURE_CHUNK, CAPTURE_FULL_BYTES,
    CAPTURE_HEAD, USER_PATH_CAP,
};

use crate::capture::capturing_slot;
use crate::event::{count_drop, Draft};
use crate::job::Job;
use crate::kernel::{
    current_task, field, file_path, member, off, task_file, task_ids, task_tgid, tp_arg, tp_field,
    ty, typed, KPath, AT_FDCWD, TP_SYSCALL_NR, TP_SYSCALL_RET,
};
use crate::resolve::start;
use crate::{is_self, unfiltered, CAPTURE, EXECVEAT_MARKS, SETID_STASH};

const AT_REMOVEDIR: u64 = 0x200;
const AF_UNIX: u16 = 1;
const SUN_PATH_MAX: u32 = 108;
const O_WRONLY: u64 = 0o1;
const O_CREAT: u64 = 0o100;
const O_TRUNC: u64 = 0o1000;

/// The syscall numbers the dispatch below matches on, as the tracepoints give them (the
/// shared vocabulary, `monitor_common::sys`).
mod nr {
    use monitor_common::sys;
    pub const OPEN: i64 = sys::OPEN as i64;
    pub const TRUNCATE: i64 = sys::TRUNCATE as i64;
    pub const FTRUNCATE: i64 = sys::FTRUNCATE as i64;
    pub const RENAME: i64 = sys::RENAME as i64;
    pub const MKDIR: i64 = sys::MKDIR as i64;
    pub const RMDIR: i64 = sys::RMDIR as i64;
    pub const CREAT: i64 = sys::CREAT as i64;
    pub const LINK: i64 = sys::LINK as i64;
    pub const UNLINK: i64 = sys::UNLINK as i64;
    pub const SYMLINK: i64 = sys::SYMLINK as i64;
    pub const CHMOD: i64 = sys::CHMOD as i64;
    pub const FCHMOD: i64 = sys::FCHMOD as i64;
    pub const CHOWN: i64 = sys::CHOWN as i64;
    pub const FCHOWN: i64 = sys::FCHOWN as i64;
    pub const LCHOWN: i64 = sys::LCHOWN as i64;
    pub const MKNOD: i64 = sys::MKNOD as i64;
    pub const SETXATTR: i64 = sys::SETXATTR as i64;
    pub const LSETXATTR: i64 = sys::LSETXATTR as i64;
    pub const FSETXATTR: i64 = sys::FSETXATTR as i64;
    pub const REMOVEXATTR: i64 = sys::REMOVEXATTR as i64;
    pub const LREMOVEXATTR: i64 = sys::LREMOVEXATTR as i64;
    pub const FREMOVEXATTR: i64 = sys::FREMOVEXATTR as i64;
    pub const OPENAT: i64 = sys::OPENAT as i64;
    pub const MKDIRAT: i64 = sys::MKDIRAT as i64;
    pub const MKNODAT: i64 = sys::MKNODAT as i64;
    pub const FCHOWNAT: i64 = sys::FCHOWNAT as i64;
    pub const UNLINKAT: i64 = sys::UNLINKAT as i64;
    pub const RENAMEAT: i64 = sys::RENAMEAT as i64;
    pub const LINKAT: i64 = sys::LINKAT as i64;
    pub const SYMLINKAT: i64 = sys::SYMLINKAT as i64;
    pub const FCHMODAT: i64 = sys::FCHMODAT as i64;
    pub const RENAMEAT2: i64 = sys::RENAMEAT2 as i64;
    pub const EXECVE: i64 = sys::EXECVE as i64;
    pub const EXECVEAT: i64 = sys::EXECVEAT as i64;
    pub const OPENAT2: i64 = sys::OPENAT2 as i64;
    pub const FCHMODAT2: i64 = sys::FCHMODAT2 as i64;
    pub const SETXATTRAT: i64 = sys::SETXATTRAT as i64;
    pub const REMOVEXATTRAT: i64 = sys::REMOVEXATTRAT as i64;
}

/// What `sys_enter` keeps for the exit of the same call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Pending {
    nr: i64,
    /// The credentials before a setid call.
    old_ids: Ids,
}

/// A syscall as the task entered it: its number and its six arguments.
#[derive(Clone, Copy)]
pub struct Entry {
    nr: i64,
    args: [u64; 6],
}

/// Whether `n` is of the setuid family.
#[inline(always)]
fn is_setid(n: i64) -> bool {
    monitor_common::sys::is_setid(n as u32)
}

/// Whether the setid call `n` with `args` asks for an id of 0 (`sys::setid_asks_root`).
#[inline(always)]
fn asks_root(n: i64, args: &[u64; 6]) -> bool {
    monitor_common::sys::setid_asks_root(n as u32, &[args[0], args[1], args[2]])
}

/// sys_enter of the setid family and execveat. A setid call is stashed only when its exit
/// may report it: every call while a rule wants them all, else a call that asks for an id
/// of 0 by a task with a non-zero id. A task whose ids are all 0 can neither become root
/// nor fail to; a call that asks for no 0 can do neither either (`sys::setid_asks_root`).
pub fn stash(ctx: &TracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    if is_self((pid_tgid >> 32) as u32) {
        return;
    }
    let n = tp_field::<i32>(ctx, TP_SYSCALL_NR) as i64;
    if n == nr::EXECVEAT {
        let _ = EXECVEAT_MARKS.insert(&pid_tgid, &1, 0);
        return;
    }
    if !is_setid(n) {
        return;
    }
    let task = current_task();
    let old_ids = task_ids(task);
    // From the registers, not the record: a program may only load within the record of
    // every tracepoint it is attached to, and setuid's holds one argument.
    if !(unfiltered(class::SETID) || (old_ids.any_nonzero() && asks_root(n, &entry_args(task)))) {
        return;
    }
    if SETID_STASH.insert(&pid_tgid, &Pending { nr: n, old_ids }, 0).is_err() {
        // Full: the exit cannot judge the call.
        count_drop(drop_cause::STASH_FULL);
    }
}

/// The syscall the current task is returning from: its number from the exit tracepoint,
/// its arguments from the registers it entered with (x86_64 `pt_regs`: di, si, dx, r10,
/// r8, r9; the kernel leaves them as the syscall used them), and its return value. `None`
/// for the monitor's own calls.
#[inline(always)]
fn current_call(ctx: &TracePointContext, task: u64) -> Option<(Entry, i64)> {
    if is_self(task_tgid(task)) {
        return None;
    }
    let nr = tp_field::<i32>(ctx, TP_SYSCALL_NR) as i64;
    let ret = tp_field::<i64>(ctx, TP_SYSCALL_RET);
    Some((Entry { nr, args: entry_args(task) }, ret))
}

/// The six syscall arguments the current task entered the kernel with (x86_64 `pt_regs`:
/// di, si, dx, r10, r8, r9).
#[inline(always)]
fn entry_args(task: u64) -> [u64; 6] {
    // Words of x86_64 `struct pt_regs` (r15 is word 0): direct loads through its BTF type.
    let regs = unsafe { bpf_task_pt_regs(task as *mut _) as u64 };
    let r = |word: usize| field::<u64>(regs, 8 * word).unwrap_or(0);
    [r(14), r(13), r(12), r(7), r(9), r(8)]
}

/// Whether the exec that thread `pid_tgid` started was an execveat (`sys_enter` marked it;
/// the mark is taken). An execve leaves no mark: the lookup misses.
#[inline(always)]
pub fn take_execveat_mark(pid_tgid: u64) -> bool {
    let marked = unsafe { EXECVEAT_MARKS.get(&pid_tgid) }.is_some();
    if marked {
        let _ = EXECVEAT_MARKS.remove(&pid_tgid);
    }
    marked
}

#[inline(always)]
fn fill_syscall(d: &mut Draft, e: &Entry, ret: i64) {
    let ev = d.event();
    ev.ret = ret;
    ev.args = [e.args[0], e.args[1], e.args[2], e.args[3]];
}

/// How a syscall names its object.
#[derive(Clone, Copy)]
#[repr(C, u8)]
enum Obj {
    None,
    /// Descriptor in argument `i`.
    Fd(u8),
    /// Path string in argument `path`, relative to the descriptor in argument `dfd`
    /// (`CWD`: the working directory).
    Path {
        dfd: u8,
        path: u8,
    },
    /// A string copied as is (the target text of a symlink).
    Raw(u8),
}

pub fn exit_setid(ctx: &TracePointContext) {
    let task = current_task();
    let Some((entry, ret)) = current_call(ctx, task) else {
        return;
    };
    if !is_setid(entry.nr) {
        return;
    }
    let all = unfiltered(class::SETID);
    let asked_root = asks_root(entry.nr, &entry.args);
    // Without either, `stash` kept nothing for this call (the lookup would miss).
    if !(all || asked_root) {
        return;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(pending) = (unsafe { SETID_STASH.get(&pid_tgid) }).copied() else {
        return; // nothing that can matter (see `stash`)
    };
    let _ = SETID_STASH.remove(&pid_tgid);
    if pending.nr != entry.nr {
        return;
    }
    let new = task_ids(task);
    let old = pending.old_ids;
    // A failed request for id 0 by a non-root caller is an attempt worth seeing too.
    let attempt = ret < 0 && old.euid != 0 && asked_root;
    if !(all || new.became_root(&old) || attempt) {
        return;
    }
    let Some(mut d) = Draft::new(kind::SETID, 0, entry.nr as i32, task) else {
        return;
    };
    fill_syscall(&mut d, &entry, ret);
    let ev = d.event();
    ev.old_ids = old;
    ev.ids = new;
    if all {
        ev.flags |= flag::UNFILTERED;
    }
    d.submit();
}

mod file;
mod socket;

pub use file::{exit_exec, exit_file, FileShape};
pub use socket::{enter_send, exit_connect};
