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

use aya_ebpf::{helpers::generated::bpf_probe_read_user_str, programs::TracePointContext};
use monitor_common::{class, drop_cause, flag, CaptureKey, WatchValue, USER_PATH_CAP};

use crate::event::{count_drop, Draft};
use crate::kernel::{path_base, task_has_host_root, KPath};
use crate::path::{launder, resolve_target, Resolved};
use crate::{selects, unfiltered, CAPTURE, JOB, STAGES};

/// Slots of the `STAGES` program array.
pub mod stage {
    pub const RESOLVE: u32 = 0;
    pub const FINISH: u32 = 1;
}

pub mod target_kind {
    /// A path the kernel resolved (an open file, the exec'd file, a connected socket).
    pub const KERNEL: u32 = 1;
    /// A user path string, relative to `base` unless absolute.
    pub const USER: u32 = 2;
    /// A string reported as written (a symlink's target text, a socket address).
    pub const RAW: u32 = 3;
}

/// One object of an event.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Target {
    pub kind: u32,
    /// For `USER`: the string starts with `/` (base is then the task's root).
    pub absolute: u32,
    /// Where the walk starts: the object itself (`KERNEL`) or the base directory (`USER`).
    pub base: KPath,
    /// Length of the copied string (`USER`, `RAW`).
    pub len: u32,
    /// `flag::PATH1_TRUNCATED` when the string was longer than we copy.
    pub flags: u32,
}

/// What the stages of the current event work on (per CPU, like the record itself).
#[repr(C)]
pub struct Job {
    pub targets: [Target; 2],
    pub strings: [[u8; USER_PATH_CAP]; 2],
    pub results: [Resolved; 2],
    pub count: u32,
    pub current: u32,
    /// `class::*` of the event, for the filter decision in `finish`.
    pub class: u32,
    /// The task's root is not the host's: its paths are not host paths.
    pub foreign: u32,
    /// The call succeeded in unlinking or renaming its path strings (see `path::resolve_target`).
    pub renames: u32,
}

#[inline(always)]
fn vol<T: Copy>(p: *const T) -> T {
    unsafe { core::ptr::read_volatile(p) }
}

impl Job {
    /// The current CPU's job, emptied, for an event of `class` by `task`.
    #[inline(always)]
    pub fn begin(class: u32, task: u64) -> Option<&'static mut Job> {
        let job = unsafe { &mut *JOB.get_ptr_mut(0)? };
        job.count = 0;
        job.current = 0;
        job.class = class;
        job.foreign = !task_has_host_root(task) as u32;
        job.renames = 0;
        Some(job)
    }

    #[inline(always)]
    fn push(&mut self, t: Target) -> Option<()> {
        let i = self.count as usize;
        if i >= 2 {
            return None;
        }
        // A select, not an index: the compiler drops `& 1` after the check and the
        // verifier then sees an unbounded offset.
        if i == 0 {
            self.targets[0] = t;
        } else {
            self.targets[1] = t;
        }
        self.count = i as u32 + 1;
        Some(())
    }

    /// An object the kernel resolved.
    #[inline(always)]
    pub fn push_kernel(&mut self, path: KPath) -> Option<()> {
        self.push(Target {
            kind: target_kind::KERNEL,
            absolute: 0,
            base: path,
            len: 0,
            flags: 0,
        })
    }

    /// Copy the user string at `addr` (at most `cap` bytes) into the next string slot.
    #[inline(always)]
    fn copy_string(&mut self, addr: u64, cap: u32) -> Option<(u32, u32)> {
        let i = (self.count as usize) & 1;
        let cap = if cap as usize > USER_PATH_CAP {
            USER_PATH_CAP as u32
        } else {
            cap
        };
        let dst = self.strings[i].as_mut_ptr();
        let n = unsafe { bpf_probe_read_user_str(dst.cast(), cap, addr as *const _) };
        if n <= 0 {
            return None;
        }
        let len = (n - 1) as u32;
        let flags = if len >= cap - 1 {
            flag::PATH1_TRUNCATED
        } else {
            0
        };
        Some((len, flags))
    }

    /// The user path string at `addr`, relative to descriptor `dfd` (or `AT_FDCWD`) of `task`.
    #[inline(always)]
    pub fn push_user(&mut self, task: u64, dfd: i64, addr: u64, cap: u32) -> Option<()> {
        let (len, flags) = self.copy_string(addr, cap)?;
        let i = (self.count as usize) & 1;
        let absolute = len > 0 && self.strings[i][0] == b'/';
        let base = path_base(task, dfd, absolute)?;
        self.push(Target {
            kind: target_kind::USER,
            absolute: absolute as u32,
            base,
            len,
            flags,
        })
    }

    /// A string reported as written. Returns its length.
    #[inline(always)]
    pub fn push_raw(&mut self, addr: u64, cap: u32) -> Option<u32> {
        let (len, flags) = self.copy_string(addr, cap)?;
        let base = KPath {
            vfsmount: 0,
            dentry: 0,
        };
        self.push(Target {
            kind: target_kind::RAW,
            absolute: 0,
            base,
            len,
            flags,
        })?;
        Some(len)
    }
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
    let none = Resolved {
        len: 0,
        flags: 0,
        watch: WatchValue {
            watch_id: 0,
            classes: 0,
        },
    };
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
    let next = if (i as u32) + 1 < count {
        stage::RESOLVE
    } else {
        stage::FINISH
    };
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
    let mut watch2 = WatchValue {
        watch_id: 0,
        classes: 0,
    };
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
        let capture = crate::syscalls::Capture { sent: 0, peer: vol(&job.targets[1].base.dentry) };
        // Marked first: a send that finds the entry finds the mark too.
        if let Some(slot) = crate::syscalls::capturing_slot(ev.pid) {
            unsafe { core::ptr::write_volatile(slot, 1) };
        }
        let _ = CAPTURE.insert(&key, &capture, 0);
    }
    d.submit();
}
