//! Building and submitting ring-buffer records, shared by every hook.
//!
//! A record is assembled in a per-CPU scratch buffer (the 512-byte stack is far too small):
//! the fixed [`Event`] header, then field 1 and field 2. It is copied into the ring buffer
//! with `bpf_ringbuf_output`; when the ring is full the per-CPU drop counter goes up instead.
//!
//! Waking the reader is what a record costs most on this VM: the kernel raises it through
//! an `irq_work` self-IPI, a write to the APIC's MSR that traps to the hypervisor, and the
//! reader, once awake, preempts the workload. With the kernel's adaptive wakeup a reader
//! that keeps up is woken for every record (setuid storm: 30 % of the workload's samples in
//! the MSR write, 20 % more in the context switches it causes). So a record asks for a
//! wakeup only when none was asked for in the last [`WAKE_GAP_NS`]
//! (`monitor_common::WAKE_GAP_NS`); the reader drains again that long after every drain
//! that found records, which reads any record that was left without one.

use aya_ebpf::helpers::{
    bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_ktime_get_boot_ns, generated as gen,
};
use core::mem::offset_of;
use monitor_common::{drop_cause, Event, COMM_LEN, EVENT_SIZE, FIELD_CAP};

use crate::kernel::{task_ids, task_loginuid, task_ppid, task_sessionid};
use crate::{DROPS, EVENTS, EVENT_SCRATCH, LAST_WAKE};

const BPF_RB_NO_WAKEUP: u64 = 1;

pub use monitor_common::WAKE_GAP_NS;

/// Scratch size: header + two full fields, rounded up so masked offsets stay inside.
pub const EVENT_BUF: usize = 16384;

#[repr(C)]
pub struct EventScratch {
    pub buf: [u8; EVENT_BUF],
}

/// A record being built in the per-CPU scratch buffer.
pub struct Draft {
    base: *mut u8,
    len1: usize,
}

impl Draft {
    /// Start a record for the current task with the common header filled in.
    #[inline(always)]
    pub fn new(kind: u16, op: u16, syscall: i32, task: u64) -> Option<Draft> {
        let mut d = Draft::begin(kind, op, syscall)?;
        d.complete(task);
        Some(d)
    }

    /// Start a record with only what the event itself says (kind, call, time); who did it
    /// is filled in by [`Draft::complete`] once the record is known to be submitted, so that
    /// filtered events cost no more than they must.
    #[inline(always)]
    pub fn begin(kind: u16, op: u16, syscall: i32) -> Option<Draft> {
        let base = EVENT_SCRATCH.get_ptr_mut(0)? as *mut u8;
        let ev = unsafe { &mut *(base as *mut Event) };
        ev.kind = kind;
        ev.op = op;
        ev.flags = 0;
        ev.size = EVENT_SIZE as u32;
        ev.syscall = syscall;
        ev.ts_boot_ns = unsafe { bpf_ktime_get_boot_ns() };
        unsafe {
            zero(base, offset_of!(Event, ret), offset_of!(Event, pid));
            zero(base, offset_of!(Event, len1), offset_of!(Event, comm));
            zero(base, offset_of!(Event, generation), EVENT_SIZE);
        }
        Some(Draft { base, len1: 0 })
    }

    /// Start a process-lifecycle record (fork, exit) with only the process and the time:
    /// userspace's process table needs no more from them, and they run for every process
    /// on the host, so the task's credentials, comm and cgroup are not read for them.
    #[inline(always)]
    pub fn lifecycle(kind: u16) -> Option<Draft> {
        let mut d = Draft::begin(kind, 0, -1)?;
        let pid_tgid = bpf_get_current_pid_tgid();
        // The scratch holds the previous record: what is not filled in is zeroed.
        unsafe { zero(d.base, offset_of!(Event, cgroup_id), offset_of!(Event, ret)) };
        unsafe { zero(d.base, offset_of!(Event, ppid), offset_of!(Event, len1)) };
        unsafe { zero(d.base, offset_of!(Event, comm), offset_of!(Event, generation)) };
        let ev = d.event();
        ev.pid = (pid_tgid >> 32) as u32;
        ev.tid = pid_tgid as u32;
        Some(d)
    }

    /// Fill in the task: ids, credentials, login, comm, cgroup.
    #[inline(always)]
    pub fn complete(&mut self, task: u64) {
        let ev = self.event();
        let pid_tgid = bpf_get_current_pid_tgid();
        ev.cgroup_id = unsafe { bpf_get_current_cgroup_id() };
        ev.pid = (pid_tgid >> 32) as u32;
        ev.tid = pid_tgid as u32;
        ev.ppid = task_ppid(task);
        ev.ids = task_ids(task);
        ev.old_ids = ev.ids;
        ev.auid = task_loginuid(task);
        ev.sessionid = task_sessionid(task);
        // Straight into the record: the helper zeroes the buffer when it fails.
        unsafe { gen::bpf_get_current_comm(ev.comm.as_mut_ptr().cast(), COMM_LEN as u32) };
        // The id of the cgroup named, which on a cgroup v1 host is not the v2 one.
        if let Some(id) = crate::kernel::task_cgroup(task, &mut ev.cgroup_name) {
            ev.cgroup_id = id;
        }
    }

    /// Continue the record started by [`Draft::new`] in an earlier stage of this event
    /// (a tail-called program on the same CPU).
    #[inline(always)]
    pub fn resume() -> Option<Draft> {
        let base = EVENT_SCRATCH.get_ptr_mut(0)? as *mut u8;
        let len1 = unsafe { core::ptr::read_volatile(&(*(base as *const Event)).len1) } as usize;
        Some(Draft { base, len1: len1 & (FIELD_CAP - 1) })
    }

    #[inline(always)]
    pub fn event(&mut self) -> &mut Event {
        unsafe { &mut *(self.base as *mut Event) }
    }

    /// Record the identity (device, inode, generation, mode) of the object behind `dentry`.
    #[inline(always)]
    pub fn set_identity(&mut self, dentry: u64) {
        if let Some((key, mode)) = crate::kernel::dentry_inode(dentry) {
            let inode = crate::kernel::field::<u64>(
                crate::kernel::typed(dentry, crate::kernel::ty!(dentry)),
                crate::kernel::off!(dentry_inode),
            )
            .unwrap_or(0);
            let ev = self.event();
            ev.ino = key.ino;
            ev.dev = key.dev;
            ev.mode = mode;
            ev.generation = crate::kernel::inode_generation(inode);
        }
    }

    /// Where field 1 goes.
    #[inline(always)]
    pub fn field1(&mut self) -> *mut u8 {
        unsafe { self.base.add(EVENT_SIZE) }
    }

    /// Length of field 1 (where field 2 starts).
    #[inline(always)]
    pub fn len1(&self) -> usize {
        self.len1
    }

    /// Where a field starting `offset` bytes after the header goes.
    #[inline(always)]
    pub fn field_at(&mut self, offset: usize) -> *mut u8 {
        unsafe { self.base.add(EVENT_SIZE + (offset & (FIELD_CAP - 1))) }
    }

    /// Record the length of field 1; field 2 starts right after it.
    #[inline(always)]
    pub fn set_len1(&mut self, len: usize) {
        let len = if len > FIELD_CAP - 1 { FIELD_CAP - 1 } else { len };
        self.len1 = len;
        self.event().len1 = len as u32;
    }

    /// Where field 2 goes (after field 1).
    #[inline(always)]
    pub fn field2(&mut self) -> *mut u8 {
        unsafe { self.base.add(EVENT_SIZE + (self.len1 & (FIELD_CAP - 1))) }
    }

    #[inline(always)]
    pub fn set_len2(&mut self, len: usize) {
        let len = if len > FIELD_CAP - 1 { FIELD_CAP - 1 } else { len };
        self.event().len2 = len as u32;
    }

    /// Copy the record into the ring buffer, or count it as dropped; wake the reader unless
    /// a wakeup was asked for less than [`WAKE_GAP_NS`] ago (see the module doc).
    #[inline(always)]
    pub fn submit(mut self) {
        let ts = self.event().ts_boot_ns;
        let last = LAST_WAKE.get_ptr_mut(0);
        let recent = match last {
            Some(last) => ts.wrapping_sub(unsafe { core::ptr::read_volatile(last) }) < WAKE_GAP_NS,
            None => false,
        };
        // 0: the kernel's adaptive wakeup, which wakes a reader that has read everything
        // before this record (it may be asleep) and spares one that is still reading.
        let flags = if recent { BPF_RB_NO_WAKEUP } else { 0 };
        if self.output(flags) && !recent {
            if let Some(last) = last {
                // Racy between CPUs: the worst outcome is one more wakeup.
                unsafe { core::ptr::write_volatile(last, ts) };
            }
        }
    }

    /// Submit without waking the reader: for the process-lifecycle records that only keep
    /// userspace's process table, which it drains on its own timer or with the next alert.
    #[inline(always)]
    pub fn submit_quietly(self) {
        self.output(BPF_RB_NO_WAKEUP);
    }

    /// Whether the record went into the ring buffer (else it is counted as dropped).
    #[inline(always)]
    fn output(mut self, flags: u64) -> bool {
        let ev = self.event();
        let len1 = (ev.len1 as usize) & (2 * FIELD_CAP - 1);
        let len2 = (ev.len2 as usize) & (2 * FIELD_CAP - 1);
        let size = EVENT_SIZE + len1 + len2;
        if size > EVENT_SIZE + 2 * FIELD_CAP {
            count_drop(drop_cause::RING_FULL);
            return false;
        }
        ev.size = size as u32;
        let record = unsafe { core::slice::from_raw_parts(self.base as *const u8, size) };
        if EVENTS.output::<[u8]>(record, flags).is_err() {
            count_drop(drop_cause::RING_FULL);
            return false;
        }
        true
    }
}

/// Zero bytes `from..to` (multiples of 4) of the record at `base`, a 4-byte store each.
/// Volatile: LLVM would merge plain stores into a call of a `memset` subprogram that stores
/// a byte per loop turn.
#[inline(always)]
unsafe fn zero(base: *mut u8, from: usize, to: usize) {
    let mut at = from;
    while at < to {
        core::ptr::write_volatile(base.add(at) as *mut u32, 0);
        at += 4;
    }
}

const _: () = {
    assert!(offset_of!(Event, ret).is_multiple_of(4) && offset_of!(Event, pid).is_multiple_of(4));
    assert!(offset_of!(Event, len1).is_multiple_of(4) && offset_of!(Event, comm).is_multiple_of(4));
    assert!(offset_of!(Event, generation).is_multiple_of(4) && EVENT_SIZE.is_multiple_of(4));
    assert!(
        offset_of!(Event, cgroup_id).is_multiple_of(4) && offset_of!(Event, ppid).is_multiple_of(4)
    );
    // `lifecycle` zeroes from `ppid` to `len1` and from `comm` to `generation`: ids, login
    // and session between the first, comm and cgroup name in the second.
    assert!(offset_of!(Event, ppid) < offset_of!(Event, ids));
    assert!(offset_of!(Event, sessionid) < offset_of!(Event, len1));
    assert!(offset_of!(Event, cgroup_name) < offset_of!(Event, generation));
};

/// Count an event lost in the kernel.
#[inline(always)]
pub fn count_drop(cause: u32) {
    if let Some(counter) = DROPS.get_ptr_mut(cause) {
        unsafe { *counter += 1 };
    }
}
