//! Exits of the calls that name a file: the file class (open, unlink, rename, chmod, …,
//! one dispatch over [`FileShape`]) and failed execs. Each call is described as up to two
//! objects (a descriptor or a path string relative to a descriptor); objects that certainly
//! select no watch are dropped before any record is built.

use super::*;

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
    let Some((entry, ret)) = current_call(ctx, task) else {
        return;
    };
    let Some(call) = describe(entry.nr, &entry.args) else {
        return;
    };
    if shape_of(&call) != shape {
        return;
    }
    if shape == FileShape::Open
        && !crate::read_opens_wanted()
        && is_read_only(open_flags(entry.nr, &entry.args))
    {
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
        (FileShape::Fd, Obj::Fd(i)) => argn(&entry.args, i) as i32 as i64,
        _ => -1,
    };
    if fd >= 0 && !unfiltered(class::FILE) {
        if let Some(path) = task_file(task, fd).and_then(file_path) {
            if crate::path::surely_unwatched(path, task) {
                return;
            }
        }
    }
    if matches!(shape, FileShape::Path | FileShape::TwoPaths)
        && !unfiltered(class::FILE)
        && strings_surely_unwatched(task, &call, &entry.args)
    {
        return;
    }
    let Some(mut d) = Draft::begin(kind::FILE, call.op, entry.nr as i32) else {
        return;
    };
    fill_syscall(&mut d, &entry, ret);
    let Some(job) = Job::begin(class::FILE, task) else {
        return;
    };
    // What the call unlinked or renamed no longer names the inode it named: a watch there
    // must be re-armed (`path::resolve_target`).
    job.renames =
        (ret == 0 && matches!(call.op, file_op::UNLINK | file_op::RMDIR | file_op::RENAME)) as u32;
    let args = &entry.args;
    let first = match shape {
        FileShape::Open => {
            d.event().extra = open_flags(entry.nr, args) as u32;
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
    let Some((entry, ret)) = current_call(ctx, task) else {
        return;
    };
    if entry.nr == nr::EXECVEAT {
        // The mark of a failed execveat (a successful one was taken at exec).
        let _ = EXECVEAT_MARKS.remove(&bpf_get_current_pid_tgid());
    }
    if ret >= 0 || !(entry.nr == nr::EXECVE || entry.nr == nr::EXECVEAT) {
        return;
    }
    let Some(mut d) = Draft::begin(kind::EXEC, 0, entry.nr as i32) else {
        return;
    };
    fill_syscall(&mut d, &entry, ret);
    let Some(job) = Job::begin(class::EXEC, task) else {
        return;
    };
    let obj = if entry.nr == nr::EXECVE { p(0) } else { pat(0, 1) };
    let Some(obj) = crate::path::launder(obj) else {
        return;
    };
    if push_obj(job, task, obj, &entry.args).is_some() {
        start(ctx);
    }
}
