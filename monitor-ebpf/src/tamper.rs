//! Self-defence: signals sent to the monitor, and ptrace or cross-process memory access
//! aimed at it. (Writes to its binary and rule files are ordinary watches; runs of
//! auditctl/bpftool are judged in userspace from the exec events.)

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid,
    programs::{BtfTracePointContext, TracePointContext},
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

/// `signal_generate(sig, info, task, group, result)`: a signal for the monitor from
/// another process.
pub fn signal(ctx: &BtfTracePointContext) {
    let task: u64 = ctx.arg(2);
    if task_tgid(task) != self_tgid() || is_self((bpf_get_current_pid_tgid() >> 32) as u32) {
        return;
    }
    let sig: i32 = ctx.arg(0);
    let result: i32 = ctx.arg(4);
    report(tamper_op::SIGNAL, -1, [sig as u64, self_tgid() as u64, result as u64, 0]);
}

/// sys_enter of ptrace (pid in a1) and process_vm_readv/writev (pid in a0).
pub fn enter_access(ctx: &TracePointContext) {
    if is_self((bpf_get_current_pid_tgid() >> 32) as u32) {
        return;
    }
    let nr = tp_field::<i32>(ctx, TP_SYSCALL_NR);
    // All read before choosing: the verifier takes context loads at constant offsets only.
    let args: [u64; 4] = core::array::from_fn(|i| tp_arg(ctx, i));
    // ptrace 101, process_vm_readv 310, process_vm_writev 311.
    let (op, target) = match nr {
        101 => (tamper_op::PTRACE, args[1]),
        310 | 311 => (tamper_op::PROCESS_VM, args[0]),
        _ => return,
    };
    if target as u32 != self_tgid() {
        return;
    }
    report(op, nr, args);
}
