//! Scheduler raw tracepoints: successful exec, fork and exit.
//!
//! Raw rather than BTF tracepoints: the same arguments at the same cost, but attached by
//! name, so loading needs no parse of the kernel's BTF by aya (its largest allocation). A
//! pointer argument is a number until [`typed`] casts it to its struct.
//!
//! Every exec is reported (with argv) so userspace knows each process's executable and
//! arguments for ancestry and for alerts raised later by that process; `flags` and `watch`
//! say whether the executable itself is watched. Fork and exit records carry the pids only
//! (see `Draft::lifecycle`).

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, generated::bpf_probe_read_user},
    programs::RawTracePointContext,
};
use monitor_common::{class, flag, kind, FIELD_CAP};

use crate::event::Draft;
use crate::kernel::{current_task, field, off, task_tgid, ty, typed, KPath};
use crate::path::resolve_kpath;
use crate::{is_self, selects, unfiltered};

const EXECVE: i32 = monitor_common::sys::EXECVE as i32;
const EXECVEAT: i32 = monitor_common::sys::EXECVEAT as i32;

pub fn exec(ctx: &RawTracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    if is_self((pid_tgid >> 32) as u32) {
        return;
    }
    // `old_pid`: the thread that called exec, which the exec made the thread-group leader.
    let old_pid: i32 = ctx.arg(1);
    let caller = (pid_tgid & !0xffff_ffff) | old_pid as u32 as u64;
    let syscall = if crate::syscalls::take_execveat_mark(caller) { EXECVEAT } else { EXECVE };
    let task = current_task();
    let bprm = typed(ctx.arg::<u64>(2), ty!(binprm));
    let Some(mut d) = Draft::new(kind::EXEC, 0, syscall, task) else {
        return;
    };
    let Some(file) = field::<u64>(bprm, off!(bprm_file)) else {
        return;
    };
    let Some(path) = KPath::field(file, off!(file_path)) else { return };
    d.set_identity(path.dentry);
    let Some(r) = resolve_kpath(path, d.field1()) else {
        return;
    };
    d.set_len1(r.len);
    let mut flags = r.flags;
    if selects(&r.watch, class::EXEC) {
        d.event().watch = r.watch.watch_id;
    } else {
        flags &= !(flag::WATCH_INODE | flag::WATCH_PATH);
    }
    if unfiltered(class::EXEC) {
        flags |= flag::UNFILTERED;
    }
    // argv lives in the new image's memory, NUL-separated, between arg_start and arg_end.
    let mm = field::<u64>(task, off!(task_mm)).unwrap_or(0);
    let start = field::<u64>(mm, off!(mm_arg_start)).unwrap_or(0);
    let end = field::<u64>(mm, off!(mm_arg_end)).unwrap_or(0);
    let mut len = end.saturating_sub(start) as usize;
    if len > FIELD_CAP - 1 {
        len = FIELD_CAP - 1;
        flags |= flag::PATH2_TRUNCATED;
    }
    let dst = d.field2();
    let len = len & (FIELD_CAP - 1);
    if unsafe { bpf_probe_read_user(dst.cast(), len as u32, start as *const _) } == 0 {
        d.set_len2(len);
    }
    d.event().ret = 0;
    d.event().flags = flags;
    if d.event().watch != 0 || flags & flag::UNFILTERED != 0 {
        d.submit();
    } else {
        d.submit_quietly();
    }
}

pub fn fork(ctx: &RawTracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    if is_self((pid_tgid >> 32) as u32) {
        return;
    }
    let child = typed(ctx.arg::<u64>(1), ty!(task));
    let child_tgid = task_tgid(child);
    let child_pid = field::<u32>(child, off!(task_pid)).unwrap_or(0);
    if child_pid != child_tgid {
        return; // a new thread, not a new process
    }
    let Some(mut d) = Draft::lifecycle(kind::FORK) else {
        return;
    };
    d.event().args[0] = child_tgid as u64;
    d.submit_quietly();
}

pub fn exit(ctx: &RawTracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    if (pid_tgid >> 32) as u32 != pid_tgid as u32 || is_self((pid_tgid >> 32) as u32) {
        return; // only the thread-group leader's exit ends the process
    }
    let task = typed(ctx.arg::<u64>(0), ty!(task));
    let code = field::<i32>(task, off!(task_exit_code)).unwrap_or(0);
    let Some(mut d) = Draft::lifecycle(kind::EXIT) else {
        return;
    };
    d.event().args[0] = code as u32 as u64;
    d.event().flags = flag::GROUP_EXIT;
    d.submit_quietly();
}
