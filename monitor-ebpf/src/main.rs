//! Kernel side of the monitor: tracepoint programs that observe, filter and emit.
//!
//! Pipeline inside the kernel: the per-class exit programs ([`syscalls`]) read the call's
//! arguments from the task's entry registers (`sys_enter` stashes the credentials before a
//! setid call, which the exit compares with), resolve the object (file, socket, credentials),
//! decide against the watch maps ([`path`]) and emit a record ([`event`]); the scheduler raw
//! tracepoints ([`sched`]) report exec/fork/exit so userspace can keep its process table.
//! Programs only read: they always return 0 and never alter a syscall.
#![no_std]
#![no_main]
// Inline assembly for the one kfunc call (`kernel::typed`).
#![feature(asm_experimental_arch)]
// Map keys are passed by reference, as the helpers take them: a copy made for a by-value
// argument is one more stack slot the verifier tracks, in programs near its limits.
#![allow(clippy::needless_borrows_for_generic_args)]

mod capture;
mod event;
mod job;
mod kernel;
mod path;
mod resolve;
mod sched;
mod syscalls;
mod tamper;

use aya_ebpf::{
    macros::{map, raw_tracepoint, tracepoint},
    maps::{HashMap, LruHashMap, PerCpuArray, ProgramArray, RingBuf},
    programs::{RawTracePointContext, TracePointContext},
};
use monitor_common::{CaptureKey, Config, InodeEntry, InodeKey, WatchValue};

/// The object's licence as the kernel reads it. The helpers these programs call
/// (`bpf_probe_read_kernel`/`_user`, `bpf_probe_read_user_str`, `bpf_get_current_task_btf`)
/// are GPL-only: the verifier refuses them to a program without a GPL-compatible licence.
/// The kernel side is dual-licensed MIT or GPL-2.0 (see monitor-ebpf/Cargo.toml).
#[no_mangle]
#[link_section = "license"]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

/// Filled by userspace at load time (kernel offsets, filter settings).
#[no_mangle]
static CONFIG: Config = unsafe { core::mem::zeroed() };

/// Records for userspace. Its size is set by the loader (`monitor run --ring-buffer-size`).
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(monitor_common::RING_BUFFER_DEFAULT, 0);

/// When a record last asked for the reader to be woken (`bpf_ktime_get_boot_ns`), for all
/// CPUs: see `event` on why most records do not.
#[map]
static LAST_WAKE: aya_ebpf::maps::Array<u64> = aya_ebpf::maps::Array::with_max_entries(1, 0);

/// Ring-buffer output failures, per CPU.
#[map]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(monitor_common::DROP_COUNTERS, 0);

#[map]
static EVENT_SCRATCH: PerCpuArray<event::EventScratch> = PerCpuArray::with_max_entries(1, 0);

#[map]
static PATH_SCRATCH: PerCpuArray<path::PathScratch> = PerCpuArray::with_max_entries(1, 0);

/// The current event's objects, between the stages of [`resolve`].
#[map]
static JOB: PerCpuArray<job::Job> = PerCpuArray::with_max_entries(1, 0);

/// The stage programs of [`resolve`], filled by userspace before any hook is attached.
#[map]
static STAGES: ProgramArray = ProgramArray::with_max_entries(2, 0);

/// Connections to watched sockets whose outgoing bytes are reported, by process and
/// descriptor. No hook on close: a send checks that its descriptor still reaches the same
/// socket, and LRU eviction bounds what closed descriptors leave behind.
#[map]
static CAPTURE: LruHashMap<CaptureKey, capture::Capture> = LruHashMap::with_max_entries(4096, 0);

/// A byte per tgid hash (`syscalls::capturing_slot`), set before a process's first
/// `CAPTURE` entry and never cleared: a send from a process whose byte is clear has no
/// captured connection, and skips the hash lookup. Bytes, not bits: a plain store sets
/// one without a read-modify-write that could lose another CPU's.
#[map]
static CAPTURING: aya_ebpf::maps::Array<[u8; capture::CAPTURING_SLOTS]> =
    aya_ebpf::maps::Array::with_max_entries(1, 0);

/// `class::*` bits for which every event goes to userspace (a rule without a path filter),
/// and `FILTER_READ_OPENS`. A map, not `CONFIG`, so that a rules reload can change it.
#[map]
static FILTER: aya_ebpf::maps::Array<u32> = aya_ebpf::maps::Array::with_max_entries(1, 0);

/// Watched objects and the spine of the watch set (every existing directory on the way to
/// a watched path), by identity. See `path::surely_unwatched`.
#[map]
static WATCH_INODES: HashMap<InodeKey, InodeEntry> = HashMap::with_max_entries(16384, 0);

/// Epochs of the watches (`monitor_common::epoch`): bumped here when a watched name or an
/// ancestor of one is unlinked or renamed, compared with what each `WATCH_INODES` entry was
/// armed at.
#[map]
static WATCH_EPOCHS: aya_ebpf::maps::Array<u64> =
    aya_ebpf::maps::Array::with_max_entries(monitor_common::epoch::SLOTS, 0);

/// Watched absolute paths by FNV-1a hash (written and canonical spellings).
#[map]
static WATCH_PATHS: HashMap<u64, WatchValue> = HashMap::with_max_entries(16384, 0);

/// Membership summaries of `WATCH_INODES` and `WATCH_PATHS` (`monitor_common::summary`):
/// a clear bit proves a key absent, and the lookup is skipped.
#[map]
static WATCH_SUMMARY: aya_ebpf::maps::Array<monitor_common::summary::Bits> =
    aya_ebpf::maps::Array::with_max_entries(monitor_common::summary::COUNT, 0);

/// The credentials before a setid call, from `sys_enter` to the call's exit, by pid_tgid.
/// Every entry is taken by the exit of its call (the exit is attached before `sys_enter`,
/// and both decide from the same registers whether there is one). Not preallocated: the
/// kernel then reuses a freed element, still in the cache, for the next call, where a
/// preallocated LRU map hands out a cold element each time and keeps its lists up to date.
#[map]
static SETID_STASH: HashMap<u64, syscalls::Pending> =
    HashMap::with_max_entries(16384, BPF_F_NO_PREALLOC);

/// A mark per execveat in progress, by pid_tgid, taken when it ends (exec or failure).
/// LRU: a task killed in the middle of an exec never takes its mark.
#[map]
static EXECVEAT_MARKS: LruHashMap<u64, u8> = LruHashMap::with_max_entries(4096, 0);

const BPF_F_NO_PREALLOC: u32 = 1;

#[tracepoint]
pub fn sys_enter(ctx: TracePointContext) -> u32 {
    syscalls::stash(&ctx);
    0
}

#[tracepoint]
pub fn sys_exit_open(ctx: TracePointContext) -> u32 {
    syscalls::exit_file(&ctx, syscalls::FileShape::Open);
    0
}

#[tracepoint]
pub fn sys_exit_path(ctx: TracePointContext) -> u32 {
    syscalls::exit_file(&ctx, syscalls::FileShape::Path);
    0
}

#[tracepoint]
pub fn sys_exit_two_paths(ctx: TracePointContext) -> u32 {
    syscalls::exit_file(&ctx, syscalls::FileShape::TwoPaths);
    0
}

#[tracepoint]
pub fn sys_exit_fd(ctx: TracePointContext) -> u32 {
    syscalls::exit_file(&ctx, syscalls::FileShape::Fd);
    0
}

#[tracepoint]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    syscalls::exit_connect(&ctx);
    0
}

#[tracepoint]
pub fn sys_exit_setid(ctx: TracePointContext) -> u32 {
    syscalls::exit_setid(&ctx);
    0
}

#[tracepoint]
pub fn sys_exit_exec(ctx: TracePointContext) -> u32 {
    syscalls::exit_exec(&ctx);
    0
}

#[tracepoint]
pub fn sys_enter_send(ctx: TracePointContext) -> u32 {
    syscalls::enter_send(&ctx);
    0
}

/// Stage of [`resolve`] (tail-called, never attached).
#[tracepoint]
pub fn resolve_stage(ctx: TracePointContext) -> u32 {
    resolve::resolve_stage(&ctx);
    0
}

/// Stage of [`resolve`] (tail-called, never attached).
#[tracepoint]
pub fn finish_stage(ctx: TracePointContext) -> u32 {
    resolve::finish_stage(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_process_exec(ctx: RawTracePointContext) -> i32 {
    sched::exec(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_process_fork(ctx: RawTracePointContext) -> i32 {
    sched::fork(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(ctx: RawTracePointContext) -> i32 {
    sched::exit(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "signal_generate")]
pub fn signal_generate(ctx: RawTracePointContext) -> i32 {
    tamper::signal(&ctx);
    0
}

#[tracepoint]
pub fn sys_enter_access(ctx: TracePointContext) -> u32 {
    tamper::enter_access(&ctx);
    0
}

/// Whether `tgid` is the monitor itself (its own activity is never reported).
#[inline(always)]
fn is_self(tgid: u32) -> bool {
    tgid == unsafe { core::ptr::read_volatile(&CONFIG.self_tgid) }
}

/// Whether every event of `class` goes to userspace (a rule without a path filter).
#[inline(always)]
fn unfiltered(class: u32) -> bool {
    filter_has(class)
}

/// Whether some rule can match an open for reading only (`FILTER_READ_OPENS`).
#[inline(always)]
fn read_opens_wanted() -> bool {
    filter_has(monitor_common::FILTER_READ_OPENS)
}

#[inline(always)]
fn filter_has(bits: u32) -> bool {
    match FILTER.get(0) {
        Some(word) => (unsafe { core::ptr::read_volatile(word as *const u32) } & bits) != 0,
        None => false,
    }
}

/// Whether the watch (if any) selects events of `class`.
#[inline(always)]
fn selects(watch: &WatchValue, class: u32) -> bool {
    watch.watch_id != 0 && watch.classes & class != 0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
