//! Syscall tracepoints: the per-class exit handlers, and an argument stash on entry where the
//! exit needs what was true before the call.
//!
//! File, connect and exec exits read the arguments back from the registers the task entered
//! the syscall with ([`current_call`]): no entry program, no map traffic on the hot path.
//! `sys_enter` runs for the setuid family, storing the six arguments and the credentials
//! before the call keyed by pid_tgid for the exit handler to take back, and for execveat,
//! whose mark tells the exec tracepoint which call it was (nothing else can: the task's
//! registers then say execve either way).

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_probe_read_user,
        generated::bpf_task_pt_regs,
    },
    programs::TracePointContext,
};
use monitor_common::{class, file_op, flag, kind, CaptureKey, Ids, CAPTURE_CHUNK, CAPTURE_FULL_BYTES, CAPTURE_HEAD, USER_PATH_CAP};

use crate::event::Draft;
use crate::kernel::{
    current_task, field, file_path, member, off, task_file, task_ids, task_tgid, tp_arg, tp_field, ty, typed, KPath, AT_FDCWD,
    TP_SYSCALL_NR, TP_SYSCALL_RET,
};
use crate::capture::capturing_slot;
use crate::job::Job;
use crate::resolve::start;
use crate::{is_self, unfiltered, CAPTURE, PENDING};

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
    pub const SETUID: i64 = sys::SETUID as i64;
    pub const SETFSGID: i64 = sys::SETFSGID as i64;
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Pending {
    nr: i64,
    args: [u64; 6],
    old_ids: Ids,
}

/// Whether `n` is of the setuid family.
#[inline(always)]
fn is_setid(n: i64) -> bool {
    monitor_common::sys::is_setid(n as u32)
}

pub fn stash(ctx: &TracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    if is_self((pid_tgid >> 32) as u32) {
        return;
    }
    let n = tp_field::<i32>(ctx, TP_SYSCALL_NR) as i64;
    let task = current_task();
    let old_ids = if is_setid(n) {
        task_ids(task)
    } else {
        Ids::default()
    };
    // From the registers, not the record: a program may only load within the record of
    // every tracepoint it is attached to, and setuid's holds one argument.
    let pending = Pending {
        nr: n,
        args: entry_args(task),
        old_ids,
    };
    let _ = PENDING.insert(&pid_tgid, &pending, 0);
}

/// The syscall the current task is returning from: its number and return value from the
/// exit tracepoint, its arguments from the registers it entered with (x86_64 `pt_regs`:
/// di, si, dx, r10, r8, r9; the kernel leaves them as the syscall used them). `None` for
/// the monitor's own calls.
#[inline(always)]
fn current_call(ctx: &TracePointContext, task: u64) -> Option<(Pending, i64)> {
    if is_self(task_tgid(task)) {
        return None;
    }
    let nr = tp_field::<i32>(ctx, TP_SYSCALL_NR) as i64;
    let ret = tp_field::<i64>(ctx, TP_SYSCALL_RET);
    let pending = Pending {
        nr,
        args: entry_args(task),
        old_ids: Ids::default(),
    };
    Some((pending, ret))
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

/// Whether the current task's successful exec was an execveat (`sys_enter` marked it;
/// the mark is taken). An execve leaves no mark: the lookup misses.
#[inline(always)]
pub fn take_execveat_mark(pid_tgid: u64) -> bool {
    match unsafe { PENDING.get(&pid_tgid) } {
        Some(p) if p.nr == nr::EXECVEAT => {
            let _ = PENDING.remove(&pid_tgid);
            true
        }
        _ => false,
    }
}

/// Take back the stashed arguments of the current task and read the return value.
#[inline(always)]
fn take(ctx: &TracePointContext) -> Option<(Pending, i64)> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let pending = unsafe { *PENDING.get(&pid_tgid)? };
    let _ = PENDING.remove(&pid_tgid);
    let ret = tp_field::<i64>(ctx, TP_SYSCALL_RET);
    Some((pending, ret))
}

#[inline(always)]
fn fill_syscall(d: &mut Draft, p: &Pending, ret: i64) {
    let ev = d.event();
    ev.ret = ret;
    ev.args = [p.args[0], p.args[1], p.args[2], p.args[3]];
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

/// `Obj::Path::dfd` meaning "relative to the working directory".
const CWD: u8 = 0xff;

#[derive(Clone, Copy)]
#[repr(C)]
struct FileCall {
    op: u16,
    first: Obj,
    second: Obj,
}

fn p(path: u8) -> Obj {
    Obj::Path { dfd: CWD, path }
}

fn pat(dfd: u8, path: u8) -> Obj {
    Obj::Path { dfd, path }
}

#[inline(always)]
fn describe(n: i64, args: &[u64; 6]) -> Option<FileCall> {
    use file_op::*;
    let (op, first, second) = match n {
        nr::OPEN | nr::CREAT => (OPEN, p(0), Obj::None),
        nr::OPENAT | nr::OPENAT2 => (OPEN, pat(0, 1), Obj::None),
        nr::UNLINK => (UNLINK, p(0), Obj::None),
        nr::UNLINKAT if args[2] & AT_REMOVEDIR != 0 => (RMDIR, pat(0, 1), Obj::None),
        nr::UNLINKAT => (UNLINK, pat(0, 1), Obj::None),
        nr::RMDIR => (RMDIR, p(0), Obj::None),
        nr::RENAME => (RENAME, p(0), p(1)),
        nr::RENAMEAT | nr::RENAMEAT2 => (RENAME, pat(0, 1), pat(2, 3)),
        nr::LINK => (LINK, p(0), p(1)),
        nr::LINKAT => (LINK, pat(0, 1), pat(2, 3)),
        nr::SYMLINK => (SYMLINK, p(1), Obj::Raw(0)),
        nr::SYMLINKAT => (SYMLINK, pat(1, 2), Obj::Raw(0)),
        nr::MKDIR => (MKDIR, p(0), Obj::None),
        nr::MKDIRAT => (MKDIR, pat(0, 1), Obj::None),
        nr::MKNOD => (MKNOD, p(0), Obj::None),
        nr::MKNODAT => (MKNOD, pat(0, 1), Obj::None),
        nr::TRUNCATE => (TRUNCATE, p(0), Obj::None),
        nr::FTRUNCATE => (TRUNCATE, Obj::Fd(0), Obj::None),
        nr::CHMOD => (CHMOD, p(0), Obj::None),
        nr::FCHMOD => (CHMOD, Obj::Fd(0), Obj::None),
        nr::FCHMODAT | nr::FCHMODAT2 => (CHMOD, pat(0, 1), Obj::None),
        nr::CHOWN | nr::LCHOWN => (CHOWN, p(0), Obj::None),
        nr::FCHOWN => (CHOWN, Obj::Fd(0), Obj::None),
        nr::FCHOWNAT => (CHOWN, pat(0, 1), Obj::None),
        nr::SETXATTR | nr::LSETXATTR => (SETXATTR, p(0), Obj::None),
        nr::FSETXATTR => (SETXATTR, Obj::Fd(0), Obj::None),
        nr::SETXATTRAT => (SETXATTR, pat(0, 1), Obj::None),
        nr::REMOVEXATTR | nr::LREMOVEXATTR => (REMOVEXATTR, p(0), Obj::None),
        nr::FREMOVEXATTR => (REMOVEXATTR, Obj::Fd(0), Obj::None),
        nr::REMOVEXATTRAT => (REMOVEXATTR, pat(0, 1), Obj::None),
        _ => return None,
    };
    Some(FileCall { op, first, second })
}

/// Effective open flags of an open-family call.
#[inline(always)]
fn open_flags(n: i64, args: &[u64; 6]) -> u64 {
    match n {
        nr::OPEN => args[1],
        nr::CREAT => O_CREAT | O_WRONLY | O_TRUNC,
        nr::OPENAT => args[2],
        nr::OPENAT2 => unsafe { bpf_probe_read_user(args[2] as *const u64).unwrap_or(0) },
        _ => 0,
    }
}

/// Whether an open with `flags` only reads: the test of userspace's `event_perm`.
#[inline(always)]
fn is_read_only(flags: u64) -> bool {
    const O_ACCMODE: u64 = 0o3;
    flags & O_ACCMODE == 0 && flags & (O_CREAT | O_TRUNC) == 0
}

/// Argument `i` without a bounds-check panic (the verifier rejects panic paths).
#[inline(always)]
fn argn(args: &[u64; 6], i: u8) -> u64 {
    // Constant offsets only: the verifier rejects variable-offset stack reads.
    match i {
        0 => args[0],
        1 => args[1],
        2 => args[2],
        3 => args[3],
        4 => args[4],
        5 => args[5],
        _ => 0,
    }
}

/// The descriptor a path string of `Obj::Path { dfd, .. }` is relative to.
#[inline(always)]
fn dfd_arg(args: &[u64; 6], dfd: u8) -> i64 {
    if dfd == CWD {
        AT_FDCWD
    } else {
        argn(args, dfd) as i32 as i64
    }
}

/// Describe `obj` (a path string or a raw string) as the job's next target.
#[inline(always)]
fn push_obj(job: &mut Job, task: u64, obj: Obj, args: &[u64; 6]) -> Option<()> {
    let cap = USER_PATH_CAP as u32;
    match obj {
        Obj::Path { dfd, path } => job.push_user(task, dfd_arg(args, dfd), argn(args, path), cap),
        Obj::Raw(i) => job.push_raw(argn(args, i), cap).map(|_| ()),
        _ => None,
    }
}

/// The open file behind descriptor `fd`: its path, and its identity recorded in the event.
#[inline(always)]
fn fd_object(d: &mut Draft, task: u64, fd: i64) -> Option<KPath> {
    let path = file_path(task_file(task, fd)?)?;
    d.set_identity(path.dentry);
    Some(path)
}

/// Which file syscalls a program handles; each program verifies only its own shape.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FileShape {
    /// open, creat, openat, openat2: the returned descriptor, or the path on failure.
    Open,
    /// One path argument (unlink, mkdir, chmod, ...; symlink's text is copied raw).
    Path,
    /// Two path arguments (rename, link).
    TwoPaths,
    /// A descriptor argument (fchmod, fchown, ftruncate, fsetxattr, fremovexattr).
    Fd,
}

#[inline(always)]
fn shape_of(call: &FileCall) -> FileShape {
    match (call.op, call.first, call.second) {
        (file_op::OPEN, _, _) => FileShape::Open,
        (_, Obj::Fd(_), _) => FileShape::Fd,
        (_, _, Obj::Path { .. }) => FileShape::TwoPaths,
        _ => FileShape::Path,
    }
}

/// Returns `int` because the verifier allows tail calls only in such functions.
pub fn exit_file(ctx: &TracePointContext, shape: FileShape) -> i32 {
    exit_file_inner(ctx, shape);
    0
}

#[inline(always)]
fn exit_file_inner(ctx: &TracePointContext, shape: FileShape) {
    let task = current_task();
    let Some((pending, ret)) = current_call(ctx, task) else {
        return;
    };
    let Some(call) = describe(pending.nr, &pending.args) else {
        return;
    };
    if shape_of(&call) != shape {
        return;
    }
    if shape == FileShape::Open && !crate::read_opens_wanted() && is_read_only(open_flags(pending.nr, &pending.args)) {
        return; // no rule can match it, wherever the file is
    }
    // One verification of what follows, not one per syscall constant.
    let Some(call) = crate::path::launder(call) else {
        return;
    };
    // An object the kernel resolved (an open file) is first checked by inode alone: most
    // are nowhere near a watch and need no record, no names and no stages.
    let fd = match (shape, call.first) {
        (FileShape::Open, _) => ret,
        (FileShape::Fd, Obj::Fd(i)) => argn(&pending.args, i) as i32 as i64,
        _ => -1,
    };
    if fd >= 0 && !unfiltered(class::FILE) {
        if let Some(path) = task_file(task, fd).and_then(file_path) {
            if crate::path::surely_unwatched(path, task) {
                return;
            }
        }
    }
    if matches!(shape, FileShape::Path | FileShape::TwoPaths) && !unfiltered(class::FILE) && strings_surely_unwatched(task, &call, &pending.args) {
        return;
    }
    let Some(mut d) = Draft::begin(kind::FILE, call.op, pending.nr as i32) else {
        return;
    };
    fill_syscall(&mut d, &pending, ret);
    let Some(job) = Job::begin(class::FILE, task) else {
        return;
    };
    // What the call unlinked or renamed no longer names the inode it named: a watch there
    // must be re-armed (`path::resolve_target`).
    job.renames = (ret == 0 && matches!(call.op, file_op::UNLINK | file_op::RMDIR | file_op::RENAME)) as u32;
    let args = &pending.args;
    let first = match shape {
        FileShape::Open => {
            d.event().extra = open_flags(pending.nr, args) as u32;
            if ret >= 0 {
                fd_object(&mut d, task, ret).and_then(|path| job.push_kernel(path))
            } else {
                push_obj(job, task, call.first, args)
            }
        }
        FileShape::Fd => {
            let fd = match call.first {
                Obj::Fd(i) => argn(args, i) as i32 as i64,
                _ => -1,
            };
            fd_object(&mut d, task, fd).and_then(|path| job.push_kernel(path))
        }
        FileShape::Path | FileShape::TwoPaths => push_obj(job, task, call.first, args),
    };
    if first.is_none() {
        return;
    }
    if shape != FileShape::Open && shape != FileShape::Fd {
        // rename/link's new name, symlink's target text; a failure leaves field 2 empty.
        let _ = push_obj(job, task, call.second, args);
    }
    start(ctx);
}

/// Whether every path string `call` names certainly selects no watch (raw strings, a
/// symlink's text, never do): the event then needs no record at all.
#[inline(always)]
fn strings_surely_unwatched(task: u64, call: &FileCall, args: &[u64; 6]) -> bool {
    for i in 0..2 {
        // One verification of the check, whichever object and syscall.
        let Some(obj) = crate::path::launder(if i == 0 { call.first } else { call.second }) else {
            return false;
        };
        if let Obj::Path { dfd, path } = obj {
            if !crate::path::string_surely_unwatched(task, dfd_arg(args, dfd), argn(args, path)) {
                return false;
            }
        }
    }
    true
}

/// The `struct sock` behind descriptor `fd`; `None` when it is no socket (now: another
/// thread may have replaced the descriptor since the call) or cannot be read.
#[inline(always)]
fn socket_sock(task: u64, fd: i64) -> Option<u64> {
    const S_IFMT: u16 = 0o170000;
    const S_IFSOCK: u16 = 0o140000;
    let file = task_file(task, fd)?;
    let inode = member::<u64>(file_path(file)?.dentry, ty!(dentry), off!(dentry_inode))?;
    if member::<u16>(inode, ty!(inode), off!(inode_mode))? & S_IFMT != S_IFSOCK {
        return None;
    }
    // A socket file's `private_data` (a `void *`) is its `struct socket`; `sk` is a
    // `struct sock *`.
    let socket = member::<u64>(file, ty!(file), off!(file_private_data))?;
    member::<u64>(socket, ty!(socket), off!(socket_sk))
}

/// Address family of the socket `sk` (a `struct sock`).
#[inline(always)]
fn sock_family(sk: u64) -> Option<u16> {
    member::<u16>(sk, ty!(sock), off!(sock_family))
}

/// Path of the listening socket a connected unix socket (descriptor `fd`) reached.
#[inline(always)]
fn unix_peer_path(task: u64, fd: i64) -> Option<KPath> {
    unix_peer_of(socket_sock(task, fd)?)
}

/// Path of the listening socket the connected socket `sk` reached; `None` unless `sk` is
/// a unix socket.
#[inline(always)]
fn unix_peer_of(sk: u64) -> Option<KPath> {
    if sock_family(sk)? != AF_UNIX {
        return None;
    }
    // `peer` is a `struct sock *`, of a unix socket.
    let peer = member::<u64>(sk, ty!(unix_sock), off!(unix_sock_peer))?;
    let path = KPath::field(typed(peer, ty!(unix_sock)), off!(unix_sock_path))?;
    if path.dentry == 0 {
        None
    } else {
        Some(path)
    }
}

/// Returns `int` because the verifier allows tail calls only in such functions.
pub fn exit_connect(ctx: &TracePointContext) -> i32 {
    exit_connect_inner(ctx);
    0
}

#[inline(always)]
fn exit_connect_inner(ctx: &TracePointContext) {
    let task = current_task();
    let Some((pending, ret)) = current_call(ctx, task) else {
        return;
    };
    let fd = pending.args[0] as i32 as i64;
    // The socket's own family, from kernel memory: other families (TCP and the like) end
    // here without the copy of the caller's address (a user copy costs more than the rest).
    // Without a readable socket, the caller's address decides, as it always did.
    let sk = socket_sock(task, fd);
    if sk.and_then(sock_family).is_some_and(|f| f != AF_UNIX) {
        return;
    }
    // A connected unix socket reached a listener the kernel names by its dentry: most are
    // nowhere near a watch, and are judged like an open file, before any copy or record.
    if ret == 0 && !unfiltered(class::CONNECT) {
        if let Some(peer) = sk.and_then(unix_peer_of) {
            if crate::path::surely_unwatched(peer, task) {
                return;
            }
        }
    }
    let uaddr = pending.args[1];
    let family = unsafe { bpf_probe_read_user(uaddr as *const u16).unwrap_or(0) };
    if family != AF_UNIX {
        return;
    }
    let Some(mut d) = Draft::begin(kind::CONNECT, 0, pending.nr as i32) else {
        return;
    };
    fill_syscall(&mut d, &pending, ret);
    let Some(job) = Job::begin(class::CONNECT, task) else {
        return;
    };
    // Field 1: the path exactly as the caller passed it (abstract sockets have none).
    match job.push_raw(uaddr + 2, SUN_PATH_MAX) {
        Some(len) if len > 0 => {}
        _ => return,
    }
    // Field 2: the socket the kernel reached (connected) or the caller's path resolved.
    let peer = if ret == 0 {
        sk.and_then(unix_peer_of)
    } else {
        None
    };
    let second = match peer {
        Some(path) => {
            d.set_identity(path.dentry);
            job.push_kernel(path)
        }
        None => job.push_user(task, AT_FDCWD, uaddr + 2, SUN_PATH_MAX),
    };
    if second.is_some() {
        start(ctx);
    }
}

pub fn exit_setid(ctx: &TracePointContext) {
    let Some((pending, ret)) = take(ctx) else {
        return;
    };
    if !(nr::SETUID..=nr::SETFSGID).contains(&pending.nr) {
        return;
    }
    let task = current_task();
    let new = task_ids(task);
    let old = pending.old_ids;
    // A failed request for id 0 by a non-root caller is an attempt worth seeing too.
    let asked_root = (0..3).any(|i| pending.args[i] as u32 == 0);
    let attempt = ret < 0 && old.euid != 0 && asked_root;
    let all = unfiltered(class::SETID);
    if !(all || new.became_root(&old) || attempt) {
        return;
    }
    let Some(mut d) = Draft::new(kind::SETID, 0, pending.nr as i32, task) else {
        return;
    };
    fill_syscall(&mut d, &pending, ret);
    let ev = d.event();
    ev.old_ids = old;
    ev.ids = new;
    if all {
        ev.flags |= flag::UNFILTERED;
    }
    d.submit();
}

/// Failed execve/execveat (successful ones are reported by `sched_process_exec`).
/// Returns `int` because the verifier allows tail calls only in such functions.
pub fn exit_exec(ctx: &TracePointContext) -> i32 {
    exit_exec_inner(ctx);
    0
}

#[inline(always)]
fn exit_exec_inner(ctx: &TracePointContext) {
    let task = current_task();
    // A failed exec leaves the registers as the task entered with them.
    let Some((pending, ret)) = current_call(ctx, task) else {
        return;
    };
    if pending.nr == nr::EXECVEAT {
        // The mark of a failed execveat (a successful one was taken at exec).
        let _ = PENDING.remove(&bpf_get_current_pid_tgid());
    }
    if ret >= 0 || !(pending.nr == nr::EXECVE || pending.nr == nr::EXECVEAT) {
        return;
    }
    let Some(mut d) = Draft::begin(kind::EXEC, 0, pending.nr as i32) else {
        return;
    };
    fill_syscall(&mut d, &pending, ret);
    let Some(job) = Job::begin(class::EXEC, task) else {
        return;
    };
    let obj = if pending.nr == nr::EXECVE {
        p(0)
    } else {
        pat(0, 1)
    };
    let Some(obj) = crate::path::launder(obj) else {
        return;
    };
    if push_obj(job, task, obj, &pending.args).is_some() {
        start(ctx);
    }
}

/// The calls that send bytes on a socket (`monitor_common::sys::SENDS`).
mod send_nr {
    use monitor_common::sys;
    pub const WRITE: i64 = sys::WRITE as i64;
    pub const WRITEV: i64 = sys::WRITEV as i64;
    pub const SENDTO: i64 = sys::SENDTO as i64;
    pub const SENDMSG: i64 = sys::SENDMSG as i64;
}

/// Up to this many iovecs of a writev/sendmsg are added up for the stream offset (the data
/// reported comes from the first one).
const IOV_SUM_MAX: u64 = 8;

/// `(base, len)` of the first iovec at `iov`, and the total length of the first `count`.
#[inline(always)]
fn iovecs(iov: u64, count: u64) -> Option<(u64, u64)> {
    let first = unsafe { bpf_probe_read_user(iov as *const [u64; 2]).ok()? };
    let mut total = 0u64;
    for i in 0..IOV_SUM_MAX {
        if i >= count {
            break;
        }
        let v = unsafe { bpf_probe_read_user((iov + 16 * i) as *const [u64; 2]).unwrap_or([0, 0]) };
        total += v[1];
    }
    Some((first[0], total))
}

/// sys_enter of write, writev, sendto and sendmsg: on a captured connection, report the
/// bytes being sent (the start of them, see `CAPTURE_*`) with their offset in the stream.
pub fn enter_send(ctx: &TracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    // Most processes never connected to a watched socket (an unreadable map: look).
    if capturing_slot(tgid).is_some_and(|slot| unsafe { core::ptr::read_volatile(slot) } == 0) {
        return;
    }
    let fd = tp_arg(ctx, 0);
    let key = CaptureKey { tgid, fd: fd as u32 };
    let Some(capture) = CAPTURE.get_ptr_mut(&key) else { return };
    // The descriptor may have been closed and reused since the connect (close is not
    // hooked): it must still reach the same socket path.
    let peer = unix_peer_path(current_task(), fd as i32 as i64).map_or(0, |p| p.dentry);
    if peer != unsafe { (*capture).peer } {
        let _ = CAPTURE.remove(&key);
        return;
    }
    let n = tp_field::<i32>(ctx, TP_SYSCALL_NR) as i64;
    let (buf, len) = match n {
        send_nr::WRITE | send_nr::SENDTO => (tp_arg(ctx, 1), tp_arg(ctx, 2)),
        send_nr::WRITEV => match iovecs(tp_arg(ctx, 1), tp_arg(ctx, 2)) {
            Some(v) => v,
            None => return,
        },
        send_nr::SENDMSG => {
            // struct user_msghdr: msg_iov at 16, msg_iovlen at 24.
            let msg = tp_arg(ctx, 1);
            let iov = unsafe { bpf_probe_read_user((msg + 16) as *const u64).unwrap_or(0) };
            let count = unsafe { bpf_probe_read_user((msg + 24) as *const u64).unwrap_or(0) };
            match iovecs(iov, count) {
                Some(v) => v,
                None => return,
            }
        }
        _ => return,
    };
    let offset = unsafe { (*capture).sent };
    unsafe { (*capture).sent = offset + len };
    let cap = if offset < CAPTURE_FULL_BYTES { CAPTURE_CHUNK } else { CAPTURE_HEAD } as u64;
    let take = if len < cap { len } else { cap };
    let Some(mut d) = Draft::new(kind::PAYLOAD, 0, n as i32, current_task()) else { return };
    d.event().args = [fd, offset, len, 0];
    let dst = d.field1();
    // An explicit bound for the verifier (the field holds up to FIELD_CAP bytes).
    let take = if take as usize > CAPTURE_CHUNK { CAPTURE_CHUNK } else { take as usize };
    if unsafe { aya_ebpf::helpers::generated::bpf_probe_read_user(dst.cast(), take as u32, buf as *const _) } != 0 {
        return;
    }
    d.set_len1(take);
    d.submit();
}
