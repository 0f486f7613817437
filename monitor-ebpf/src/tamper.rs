//! Self-defence: signals sent to the monitor, and ptrace or cross-process memory access
//! aimed at it. (Writes to its binary and rule files are ordinary watches; runs of
//! auditctl/bpftool are judged in userspace from the exec events.)

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    programs::{RawTracePointContext, TracePointContext},
};
use monitor_common::{kind, tamper_op};

use crate::event::Draft;
use crate::kernel::{current_task, task_tgid, tp_arg, tp_field, TP_SYSCALL_NR};
use crate::{is_self, CONFIG};

#[inline(always)]
fn self_tgid() -> u32 {
    unsafe { core::ptr::read_volatile(&CONFIG.self_tgid) }
}

#[inline(always)]
fn report(op: u16, syscall: i32, args: [u64; 4]) {
    let Some(mut d) = Draft::new(kind::TAMPER, op, syscall, current_task()) else { return };
    d.event().args = args;
    d.submit();
}

/// `si_code` of a signal sent without information (`SEND_SIG_NOINFO`, as `kill` from the
/// kernel's own paths) and of one the kernel sends itself (`SEND_SIG_PRIV`: a terminal's
/// ^C, a parent-death signal's).
const SI_USER: i32 = 0;
const SI_KERNEL: i32 = 0x80;

/// `signal_generate(sig, info, task, group, result)`: a signal for the monitor from
/// another process. args: signal, target tgid, result, `si_code` (who sent it: `SI_USER`
/// for kill(2), `SI_TKILL`, `SI_KERNEL`, ...).
pub fn signal(ctx: &RawTracePointContext) {
    let task = crate::kernel::typed(ctx.arg::<u64>(2), crate::kernel::ty!(task));
    if task_tgid(task) != self_tgid() || is_self((bpf_get_current_pid_tgid() >> 32) as u32) {
        return;
    }
    let sig: i32 = ctx.arg(0);
    let result: i32 = ctx.arg(4);
    // `info` is a `struct kernel_siginfo *`, or one of the kernel's two special values.
    let info: u64 = ctx.arg(1);
    let code = match info {
        0 => SI_USER,
        1 => SI_KERNEL,
        // si_signo, si_errno, si_code: read with a helper, on this rare path (the pointer
        // may be one of the special values above, which a typed load would not tell apart).
        _ => unsafe {
            aya_ebpf::helpers::bpf_probe_read_kernel((info + 8) as *const i32).unwrap_or(SI_USER)
        },
    };
    report(
        tamper_op::SIGNAL,
        -1,
        [sig as u64, self_tgid() as u64, result as u64, code as u32 as u64],
    );
}

/// sys_enter of ptrace (pid in a1) and process_vm_readv/writev (pid in a0).
pub fn enter_access(ctx: &TracePointContext) {
    if is_self((bpf_get_current_pid_tgid() >> 32) as u32) {
        return;
    }
    let nr = tp_field::<i32>(ctx, TP_SYSCALL_NR);
    // All read before choosing: the verifier takes context loads at constant offsets only.
    let args: [u64; 4] = core::array::from_fn(|i| tp_arg(ctx, i));
    use monitor_common::sys;
    let (op, target) = match nr as u32 {
        sys::PTRACE => (tamper_op::PTRACE, args[1]),
        sys::PROCESS_VM_READV | sys::PROCESS_VM_WRITEV => (tamper_op::PROCESS_VM, args[0]),
        _ => return,
    };
    if target as u32 != self_tgid() {
        return;
    }
    report(op, nr, args);
}
