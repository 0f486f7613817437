//! The per-CPU job the stages of `resolve` share: the event's objects (up to two, each a
//! path the kernel gave, a user path string relative to a base directory, or a string
//! copied as is), their strings, and what resolving each gave.

use aya_ebpf::helpers::generated::bpf_probe_read_user_str;
use monitor_common::{flag, WatchValue, USER_PATH_CAP};

use crate::kernel::{path_base, task_has_host_root, KPath};
use crate::JOB;

/// Result of resolving one path into an event field.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Resolved {
    /// Bytes written to the destination field.
    pub len: usize,
    /// `flag::*` bits (truncation, which kind of match, string-based).
    pub flags: u32,
    /// The watch that selected the object; `watch_id == 0` when none did.
    pub watch: WatchValue,
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
        self.push(Target { kind: target_kind::KERNEL, absolute: 0, base: path, len: 0, flags: 0 })
    }

    /// Copy the user string at `addr` (at most `cap` bytes) into the next string slot.
    #[inline(always)]
    fn copy_string(&mut self, addr: u64, cap: u32) -> Option<(u32, u32)> {
        let i = (self.count as usize) & 1;
        let cap = if cap as usize > USER_PATH_CAP { USER_PATH_CAP as u32 } else { cap };
        let dst = self.strings[i].as_mut_ptr();
        let n = unsafe { bpf_probe_read_user_str(dst.cast(), cap, addr as *const _) };
        if n <= 0 {
            return None;
        }
        let len = (n - 1) as u32;
        let flags = if len >= cap - 1 { flag::PATH1_TRUNCATED } else { 0 };
        Some((len, flags))
    }

    /// The user path string at `addr`, relative to descriptor `dfd` (or `AT_FDCWD`) of `task`.
    #[inline(always)]
    pub fn push_user(&mut self, task: u64, dfd: i64, addr: u64, cap: u32) -> Option<()> {
        let (len, flags) = self.copy_string(addr, cap)?;
        let i = (self.count as usize) & 1;
        let absolute = len > 0 && self.strings[i][0] == b'/';
        let base = path_base(task, dfd, absolute)?;
        self.push(Target { kind: target_kind::USER, absolute: absolute as u32, base, len, flags })
    }

    /// A string reported as written. Returns its length.
    #[inline(always)]
    pub fn push_raw(&mut self, addr: u64, cap: u32) -> Option<u32> {
        let (len, flags) = self.copy_string(addr, cap)?;
        let base = KPath { vfsmount: 0, dentry: 0 };
        self.push(Target { kind: target_kind::RAW, absolute: 0, base, len, flags })?;
        Some(len)
    }
}
