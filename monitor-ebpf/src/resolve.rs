//! Staged resolution of an event's objects, through tail calls.
//!
//! An exit handler starts the record ([`Draft::begin`]), describes up to two objects in the
//! per-CPU [`Job`] — a path the kernel gave us, a user path string relative to a base
//! directory, or a string copied as is — and tail-calls the `resolve` stage. `resolve` turns
//! one object into its event field per run and tail-calls itself for the next one, then the
//! `finish` stage applies the filter and submits.
//!
//! Why stages: each is a separate program that the verifier checks once, from one entry state.
//! With the path walk, the prefix scan and the filter in one program, verification grew with
//! the product of their branches and hit the one-million-instruction limit.

use aya_ebpf::programs::TracePointContext;
use monitor_common::{class, drop_cause, flag, CaptureKey, WatchValue};

use crate::event::{count_drop, Draft};
use crate::job::{target_kind, Resolved};
use crate::path::{launder, resolve_target};
use crate::{selects, unfiltered, CAPTURE, JOB, STAGES};

/// Slots of the `STAGES` program array.
pub mod stage {
    pub const RESOLVE: u32 = 0;
    pub const FINISH: u32 = 1;
}

#[inline(always)]
fn vol<T: Copy>(p: *const T) -> T {
    unsafe { core::ptr::read_volatile(p) }
}

/// Hand the job to the `resolve` stage. Returns only when the tail call failed.
#[inline(always)]
pub fn start(ctx: &TracePointContext) {
    tail_call(ctx, stage::RESOLVE);
}

#[inline(always)]
fn tail_call(ctx: &TracePointContext, slot: u32) {
    unsafe { STAGES.tail_call(ctx, slot) };
    // Only reached when the slot is empty: the event is lost, and counted.
    count_drop(drop_cause::TAIL_CALL);
}

/// Stage `resolve`: turn the current target into its field, then go on.
/// Returns `int` because the verifier allows tail calls only in such functions.
pub fn resolve_stage(ctx: &TracePointContext) -> i32 {
    resolve_stage_inner(ctx);
    0
}

#[inline(always)]
fn resolve_stage_inner(ctx: &TracePointContext) {
    let Some(job) = JOB.get_ptr_mut(0) else {
        return;
    };
    let Some(mut d) = Draft::resume() else { return };
    let i = (vol(unsafe { &(*job).current }) & 1) as usize;
    let count = vol(unsafe { &(*job).count });
    let target = vol(unsafe { &(*job).targets[i] });
    // One resolver call whatever the slot: the field offset goes through map memory.
    let Some(offset) = launder(if i == 0 { 0 } else { d.len1() }) else {
        return;
    };
    let dst = d.field_at(offset);
    let string = unsafe { (*job).strings[i].as_ptr() };
    let none = Resolved { len: 0, flags: 0, watch: WatchValue { watch_id: 0, classes: 0 } };
    let foreign = vol(unsafe { &(*job).foreign }) != 0;
    let renames = vol(unsafe { &(*job).renames }) != 0;
    let r = resolve_target(&target, string, foreign, renames, dst).unwrap_or(none);
    if i == 0 {
        d.set_len1(r.len);
    } else {
        d.set_len2(r.len);
    }
    unsafe {
        (*job).results[i] = r;
        (*job).current = i as u32 + 1;
    }
    let next = if (i as u32) + 1 < count { stage::RESOLVE } else { stage::FINISH };
    tail_call(ctx, next);
}

/// Stage `finish`: decide whether a watch selects the event, and submit it.
///
/// The first non-raw target is the event's object (`watch`, `flags`); a second one (the new
/// name of a rename or link) reports through `watch2` and the `*2` flags.
pub fn finish_stage(_ctx: &TracePointContext) {
    let Some(job) = JOB.get_ptr_mut(0) else {
        return;
    };
    let Some(mut d) = Draft::resume() else { return };
    let job = unsafe { &*job };
    let class = vol(&job.class);
    let count = vol(&job.count);
    let raw0 = vol(&job.targets[0].kind) == target_kind::RAW;
    let has1 = count > 1 && vol(&job.targets[1].kind) != target_kind::RAW;
    let (primary, secondary) = if raw0 {
        (vol(&job.results[1]), None)
    } else if has1 {
        (vol(&job.results[0]), Some(vol(&job.results[1])))
    } else {
        (vol(&job.results[0]), None)
    };
    // Truncation flags are per field; the rest come from the event's object.
    let mut flags = primary.flags & !flag::PATH1_TRUNCATED;
    flags |= vol(&job.results[0].flags) & flag::PATH1_TRUNCATED;
    if count > 1 && vol(&job.results[1].flags) & flag::PATH1_TRUNCATED != 0 {
        flags |= flag::PATH2_TRUNCATED;
    }
    let mut watch2 = WatchValue { watch_id: 0, classes: 0 };
    if let Some(r2) = secondary {
        flags |= r2.flags & (flag::PATH_UNCLEAN | flag::EPOCH_BUMPED);
        watch2 = r2.watch;
    }
    let all = unfiltered(class);
    let undecided = flags & flag::PATH_UNCLEAN != 0;
    // A bumped epoch is always reported: userspace re-arms the watches at once.
    let bumped = flags & flag::EPOCH_BUMPED != 0;
    if !(all || undecided || bumped || selects(&primary.watch, class) || selects(&watch2, class)) {
        return;
    }
    if watch2.watch_id != 0 {
        flags |= flag::WATCH_PATH2;
    }
    if all {
        flags |= flag::UNFILTERED;
    }
    if vol(&job.foreign) != 0 {
        flags |= flag::FOREIGN_ROOT;
    }
    d.complete(crate::kernel::current_task());
    let ev = d.event();
    ev.watch = primary.watch.watch_id;
    ev.watch2 = watch2.watch_id;
    ev.flags |= flags;
    if class == class::CONNECT && ev.ret == 0 && selects(&primary.watch, class) {
        // From now on, what this process sends on the connection is reported too.
        // A successful connect's second target is the socket path the kernel reached (the
        // first is the caller's text).
        let key = CaptureKey { tgid: ev.pid, fd: ev.args[0] as u32 };
        let capture = crate::capture::Capture { sent: 0, peer: vol(&job.targets[1].base.dentry) };
        // Marked first: a send that finds the entry finds the mark too.
        if let Some(slot) = crate::capture::capturing_slot(ev.pid) {
            unsafe { core::ptr::write_volatile(slot, 1) };
        }
        let _ = CAPTURE.insert(&key, &capture, 0);
    }
    d.submit();
}
