//! Path resolution and watch matching, shared by every hook.
//!
//! Two ways to decide that an object is watched:
//! * **inode**: walk `d_parent` (crossing mounts) from the object's dentry up to the root and
//!   look each ancestor's (device, inode) up in `WATCH_INODES`. This is exact whatever the
//!   spelling: relative paths, symlinks, `..`, hard links and bind mounts all end at the same
//!   inode. Used when the kernel gives us the object (open result, exec'd file, connected
//!   socket, descriptor argument).
//! * **path string**: for path-based syscalls (unlink, rename, chmod, …) and failed calls, the
//!   user's string is appended to the base directory's path (dfd, cwd or root; its ancestry is
//!   checked by inode) and every `/`-prefix of the result is hashed (FNV-1a) and looked up in
//!   `WATCH_PATHS`, which holds the written and the canonical (symlink-free) spelling of each
//!   watch. A string with `.`, `..` or empty components cannot be matched that way; such
//!   events are forwarded flagged `PATH_UNCLEAN` and userspace normalises and decides.
//!
//! Both consult `WATCH_SUMMARY` first (`monitor_common::summary`): a key whose bit is clear
//! is in neither map, so most of a host's files, far from any watch, cost no lookup.
//!
//! Loop state is kept in the per-CPU scratch map rather than in registers: reloaded values are
//! bounded unknowns to the verifier, so states of different iterations prune each other.

use aya_ebpf::helpers::generated::bpf_probe_read_kernel;
use monitor_common::{
    epoch, flag, fnv1a_step, inode_flag, summary, InodeEntry, InodeKey, WatchValue, FIELD_CAP,
    FNV_OFFSET, MAX_PATH_DEPTH, USER_PATH_CAP,
};

use crate::job::{target_kind, Resolved, Target};
use crate::kernel::{
    dentry_inode, dentry_view, field, inode_generation, is_host_root, kernel_bytes, member, off,
    path_base, task_has_host_root, ty, DentryView, KPath,
};
use crate::{PATH_SCRATCH, WATCH_EPOCHS, WATCH_INODES, WATCH_PATHS, WATCH_SUMMARY};

/// The walk writes the path backwards so that it ends at `WALK_END`.
pub const WALK_END: usize = 4096;
const WALK_BUF: usize = 2 * WALK_END;
/// Prefixes longer than this are not hashed; userspace warns about such watches.
pub const HASH_CAP: usize = 256;

#[repr(C)]
pub struct PathScratch {
    walk: [u8; WALK_BUF],
    dentry: u64,
    vfsmount: u64,
    hash: u64,
    watch: WatchValue,
    found: u32,
    walk_flags: u32,
    pos: u32,
    comp: u32,
    dots: u32,
    unclean: u32,
    pruned: u32,
    /// See [`launder`].
    launder: [u64; 4],
    /// The length [`scan_clean`] stops at.
    scan_len: u32,
    /// [`surely_unwatched`]: where the walk stands, the spine hash met and the child
    /// component it was met through.
    quick_state: u32,
    dev: u32,
    mnt_root: u64,
    spine_hash: u64,
    child: u64,
    last_child: u64,
    /// Name (address, length) of `child` and of `last_child`, from the walk's reads.
    child_name: u64,
    child_len: u64,
    last_name: u64,
    last_len: u64,
}

/// Pass a value through map memory. The verifier does not track values stored in maps, so
/// what comes back is an unknown of the right range: code after a many-way dispatch (one
/// constant per syscall) is then verified once instead of once per constant.
#[inline(always)]
pub fn launder<T: Copy>(value: T) -> Option<T> {
    const { assert!(core::mem::size_of::<T>() <= 32) };
    let s = scratch()?;
    unsafe {
        let slot = (*s).launder.as_mut_ptr() as *mut T;
        core::ptr::write_volatile(slot, value);
        Some(core::ptr::read_volatile(slot))
    }
}

#[inline(always)]
fn scratch() -> Option<*mut PathScratch> {
    PATH_SCRATCH.get_ptr_mut(0)
}

#[inline(always)]
fn vol<T: Copy>(p: *const T) -> T {
    unsafe { core::ptr::read_volatile(p) }
}

/// A store LLVM keeps as it is: adjacent zero stores would otherwise become a call of a
/// `memset` subprogram that stores a byte per loop turn.
#[inline(always)]
fn vset<T>(p: *mut T, value: T) {
    unsafe { core::ptr::write_volatile(p, value) }
}

/// Walk from `start` to the root. Leaves the path in `s.walk[s.pos..WALK_END]`. Every
/// loop-carried value lives in scratch memory: a value kept in a register (say "found a
/// watch at level k") would split the verifier's states at every level and make the walk's
/// verification exponential in its depth.
#[inline(always)]
fn walk(s: *mut PathScratch, start: KPath) -> (WatchValue, u32) {
    unsafe {
        (*s).dentry = start.dentry;
        (*s).vfsmount = start.vfsmount;
        (*s).found = 0;
        (*s).watch = WatchValue { watch_id: 0, classes: 0 };
        (*s).walk_flags = flag::PATH_DEPTH_EXCEEDED;
        (*s).pos = WALK_END as u32;
    }
    enter_mount(s);
    for _ in 0..MAX_PATH_DEPTH {
        let dentry = vol(unsafe { &(*s).dentry });
        let view = dentry_view(dentry).unwrap_or(NO_VIEW);
        if vol(unsafe { &(*s).found }) == 0 {
            if let Some(v) = watched_inode(s, view.inode) {
                unsafe {
                    (*s).found = 1;
                    (*s).watch = v;
                }
            }
        }
        if dentry == vol(unsafe { &(*s).mnt_root }) {
            if !cross_to_mountpoint(s, vol(unsafe { &(*s).vfsmount })) {
                break;
            }
            enter_mount(s);
            continue;
        }
        let parent = view.parent;
        if parent == dentry || parent == 0 {
            unsafe { (*s).walk_flags = 0 };
            break;
        }
        unsafe { (*s).dentry = parent };
        let len = view.name_len;
        let pos = (vol(unsafe { &(*s).pos }) as usize) & (WALK_BUF - 1);
        if pos < len + 1 {
            unsafe { (*s).walk_flags = flag::PATH1_TRUNCATED };
            break;
        }
        let new_pos = pos - len - 1;
        unsafe {
            let walk = (*s).walk.as_mut_ptr();
            bpf_probe_read_kernel(
                walk.add((new_pos + 1) & (WALK_END - 1)).cast(),
                len as u32,
                view.name as *const _,
            );
            *walk.add(new_pos & (WALK_END - 1)) = b'/';
            (*s).pos = new_pos as u32;
        }
    }
    let mut flags = vol(unsafe { &(*s).walk_flags });
    if vol(unsafe { &(*s).found }) != 0 {
        flags |= flag::WATCH_INODE;
    }
    (unsafe { core::ptr::read_volatile(&(*s).watch) }, flags)
}

const NO_VIEW: DentryView = DentryView { parent: 0, inode: 0, name: 0, name_len: 0 };

/// The identity of `inode`, of the current mount (whose device [`enter_mount`] noted).
#[inline(always)]
fn mount_inode_key(s: *mut PathScratch, inode: u64) -> Option<InodeKey> {
    let ino = member::<u64>(inode, ty!(inode), off!(inode_ino))?;
    Some(InodeKey { ino, dev: vol(unsafe { &(*s).dev }), _pad: 0 })
}

/// Whether `bit` is set in summary `which` (`monitor_common::summary`). A summary that
/// cannot be read counts as all ones: the lookup is then made.
#[inline(always)]
fn summary_has(which: u32, bit: usize) -> bool {
    match WATCH_SUMMARY.get(which) {
        Some(bits) => {
            let word = vol(unsafe { bits.as_ptr().add((bit >> 6) & (summary::WORDS - 1)) });
            (word >> (bit & 63)) & 1 != 0
        }
        None => true,
    }
}

/// What the filter knows of `inode` (of the current mount): its watch (when `watch`), its
/// spine place (when `spine`). `None` without a lookup when the summaries of the wanted
/// kinds prove it absent.
#[inline(always)]
fn inode_entry(
    s: *mut PathScratch,
    inode: u64,
    watch: bool,
    spine: bool,
) -> Option<&'static InodeEntry> {
    let key = mount_inode_key(s, inode)?;
    let bit = summary::inode_bit(key.ino, key.dev);
    if !(watch && summary_has(summary::INODE_WATCHED, bit))
        && !(spine && summary_has(summary::INODE_SPINE, bit))
    {
        return None;
    }
    unsafe { WATCH_INODES.get(&key) }
}

/// The current value of epoch slot `slot` (`monitor_common::epoch`; entries keep the low
/// half of the map's 64-bit counters).
#[inline(always)]
fn epoch_of(slot: u32) -> u32 {
    WATCH_EPOCHS.get(slot).map_or(0, |e| vol(e) as u32)
}

/// Whether `entry`, found for `inode`, still says what userspace armed it with (see
/// `InodeEntry`): the same inode, and no ancestor of a watch unlinked or renamed since.
/// Its watch, if any, must also pass [`watch_current`].
#[inline(always)]
fn entry_current(entry: &InodeEntry, inode: u64) -> bool {
    if vol(&entry.armed_global) != epoch_of(0) {
        return false;
    }
    vol(&entry.flags) & inode_flag::GENERATION == 0
        || inode_generation(inode) == vol(&entry.generation)
}

/// Whether no spelling of `entry`'s watch was unlinked or renamed since it was armed.
#[inline(always)]
fn watch_current(entry: &InodeEntry) -> bool {
    vol(&entry.armed) == epoch_of(epoch::slot(vol(&entry.watch.watch_id)))
}

/// The watch on `inode` (of the current mount), if any, and if it still holds.
#[inline(always)]
fn watched_inode(s: *mut PathScratch, inode: u64) -> Option<WatchValue> {
    let entry = inode_entry(s, inode, true, false)?;
    (entry.watch.watch_id != 0 && entry_current(entry, inode) && watch_current(entry))
        .then_some(entry.watch)
}

/// A successful unlink or rename changed what the name `hash` (an absolute path's FNV-1a
/// hash) refers to: when it is a watched spelling, its watch's epoch is bumped; when it is
/// an ancestor of one, the ancestors' epoch (slot 0), which stales every entry. Returns
/// whether anything was bumped. The summaries only rule a name out (most unlinked names
/// are neither, and a lookup of a new key each time misses the cache); a set bit is
/// confirmed by an exact lookup, since a false alarm here would re-arm every watch.
#[inline(always)]
fn bump_epoch(hash: u64) -> bool {
    let bit = summary::path_bit(hash);
    if !summary_has(summary::PATH_WATCHED, bit) && !summary_has(summary::PATH_PREFIX, bit) {
        return false;
    }
    let Some(v) = (unsafe { WATCH_PATHS.get(&hash) }) else { return false };
    let slot = if v.watch_id != 0 { epoch::slot(v.watch_id) } else { 0 };
    // A plain increment (this target has no atomic add in Rust): two CPUs bumping at once
    // may leave one increment, but the value changes either way, and a change is all that
    // stales the entries armed before both calls.
    match WATCH_EPOCHS.get_ptr_mut(slot) {
        Some(e) => {
            unsafe { core::ptr::write_volatile(e, core::ptr::read_volatile(e).wrapping_add(1)) };
            true
        }
        None => false,
    }
}

/// What `WATCH_PATHS` says of the spelling with FNV-1a `hash`: `None` when it is no watched
/// spelling and no ancestor of one, a `watch_id` 0 for an ancestor only. Only a possible
/// watched spelling is looked up; a possible ancestor (a summary bit, maybe another
/// key's) is taken as one without a lookup: the scan then only hashes further.
#[inline(always)]
fn path_entry(hash: u64) -> Option<WatchValue> {
    const PREFIX: WatchValue = WatchValue { watch_id: 0, classes: 0 };
    let bit = summary::path_bit(hash);
    if summary_has(summary::PATH_WATCHED, bit) {
        if let Some(v) = unsafe { WATCH_PATHS.get(&hash) } {
            return Some(*v);
        }
    }
    summary_has(summary::PATH_PREFIX, bit).then_some(PREFIX)
}

/// The walk stands at the root of mount `vfsmount`: go on at its mountpoint in the parent
/// mount (the mount's root and its mountpoint are one component of the path). False at the
/// top of the mount tree, where the walk is complete (`walk_flags` cleared).
#[inline(always)]
fn cross_to_mountpoint(s: *mut PathScratch, vfsmount: u64) -> bool {
    let mount_mnt = off!(mount_mnt) as u64;
    let mount = vfsmount.wrapping_sub(mount_mnt);
    let parent = member::<u64>(mount, ty!(mount), off!(mount_parent)).unwrap_or(0);
    if parent == mount || parent == 0 {
        unsafe { (*s).walk_flags = 0 };
        return false;
    }
    unsafe {
        (*s).dentry = member::<u64>(mount, ty!(mount), off!(mount_mountpoint)).unwrap_or(0);
        (*s).vfsmount = parent + mount_mnt;
    }
    true
}

/// Append `len` bytes from `src` at `dst + at`, bounded by the field capacity.
#[inline(always)]
unsafe fn append(dst: *mut u8, at: usize, src: *const u8, len: usize) -> usize {
    let room = FIELD_CAP - 1 - (at & (FIELD_CAP - 1));
    let n = if len > room { room } else { len };
    let n = n & (FIELD_CAP - 1);
    bpf_probe_read_kernel(dst.add(at & (FIELD_CAP - 1)).cast(), n as u32, src.cast());
    n
}

/// Copy the walked path into the field at `dst`; returns its length.
#[inline(always)]
fn copy_walk(s: *mut PathScratch, dst: *mut u8) -> usize {
    let pos = vol(unsafe { &(*s).pos }) as usize;
    if pos >= WALK_END {
        // Nothing walked: the start was the root.
        return 0;
    }
    let pos = pos & (WALK_END - 1);
    let len = WALK_END - pos;
    unsafe { append(dst, 0, (*s).walk.as_ptr().add(pos), len) }
}

/// Look every `/`-prefix of the absolute path at `buf` up in `WATCH_PATHS`, and tell whether
/// the path has empty, `.` or `..` components (then prefixes do not name real directories:
/// the caller forwards the event for userspace to normalise).
#[inline(always)]
fn scan_path(s: *mut PathScratch, buf: *const u8, len: usize, clean: bool) -> (WatchValue, bool) {
    // Hash, component length, dots in it, the match and the unclean flag all live in map
    // memory (see module doc). `WATCH_PATHS` also holds every ancestor of a watched path
    // (with watch id 0): once a prefix is not there, no watch lies below it and hashing
    // stops. A path the kernel produced (`clean`) has no `.`/`..` to look for after that,
    // so the scan ends there; a caller's string is still checked for them.
    unsafe {
        (*s).hash = FNV_OFFSET;
        (*s).comp = 0;
        (*s).dots = 0;
        (*s).unclean = 0;
        (*s).found = 0;
        (*s).pruned = 0;
        (*s).watch = WatchValue { watch_id: 0, classes: 0 };
    }
    for i in 0..HASH_CAP {
        if i >= len {
            break;
        }
        let c = unsafe { *buf.add(i) };
        let hash = vol(unsafe { &(*s).hash });
        if c == b'/' {
            let comp = vol(unsafe { &(*s).comp });
            let dots = vol(unsafe { &(*s).dots });
            if i > 0 && (comp == 0 || (dots == comp && comp <= 2)) {
                unsafe { (*s).unclean = 1 };
            } else if i > 0 && vol(unsafe { &(*s).found }) == 0 && vol(unsafe { &(*s).pruned }) == 0
            {
                match path_entry(hash) {
                    Some(v) if v.watch_id != 0 => unsafe {
                        (*s).watch = v;
                        (*s).found = 1;
                    },
                    Some(_) => {}
                    None => unsafe { (*s).pruned = 1 },
                }
            }
            if clean && (vol(unsafe { &(*s).found }) != 0 || vol(unsafe { &(*s).pruned }) != 0) {
                break;
            }
            unsafe {
                (*s).comp = 0;
                (*s).dots = 0;
            }
        } else {
            unsafe {
                (*s).comp += 1;
                (*s).dots += (c == b'.') as u32;
            }
        }
        unsafe { (*s).hash = fnv1a_step(hash, c) };
    }
    let comp = vol(unsafe { &(*s).comp });
    let dots = vol(unsafe { &(*s).dots });
    if !clean && len > 1 && (comp == 0 || (dots == comp && comp <= 2)) {
        unsafe { (*s).unclean = 1 };
    } else if vol(unsafe { &(*s).found }) == 0
        && vol(unsafe { &(*s).pruned }) == 0
        && len <= HASH_CAP
    {
        let hash = vol(unsafe { &(*s).hash });
        if let Some(v) = path_entry(hash) {
            if v.watch_id != 0 {
                unsafe {
                    (*s).watch = v;
                    (*s).found = 1;
                }
            }
        }
    }
    let watch = unsafe { core::ptr::read_volatile(&(*s).watch) };
    (watch, vol(unsafe { &(*s).unclean }) != 0)
}

/// Resolve the object at `start` (a dentry the kernel gave us) into the field at `dst`.
#[inline(always)]
pub fn resolve_kpath(start: KPath, dst: *mut u8) -> Option<Resolved> {
    // Inode matching only: the kernel's own dentry needs no string comparison. Watched paths
    // that do not exist yet are caught by the string match of the syscall that creates them,
    // and userspace then adds their inode.
    let s = scratch()?;
    let (watch, flags) = launder(walk(s, start))?;
    let mut len = copy_walk(s, dst);
    if len == 0 {
        unsafe { *dst = b'/' };
        len = 1;
    }
    Some(Resolved { len, flags, watch })
}

/// Resolve a job target (see [`crate::resolve`]) into the field at `dst`: the base's path
/// from the kernel, then, for a user string, `/` and the string as the caller wrote it.
///
/// `foreign`: the task's root is not the host's (a container, a chroot), so the path is not
/// a host path and only inode matches count.
///
/// `renames`: the call succeeded in unlinking or renaming this name; when it was a watched
/// spelling or an ancestor of one, the epoch is bumped ([`bump_epoch`]) and the result
/// flagged `EPOCH_BUMPED`.
#[inline(always)]
pub fn resolve_target(
    t: &Target,
    string: *const u8,
    foreign: bool,
    renames: bool,
    dst: *mut u8,
) -> Option<Resolved> {
    let s = scratch()?;
    let kind = t.kind;
    if kind == target_kind::RAW {
        let n = unsafe { append(dst, 0, string, (t.len as usize) & (USER_PATH_CAP - 1)) };
        return Some(Resolved {
            len: n,
            flags: t.flags,
            watch: WatchValue { watch_id: 0, classes: 0 },
        });
    }
    let (mut watch, mut flags) = launder(walk(s, t.base))?;
    let mut len = copy_walk(s, dst);
    if kind == target_kind::USER {
        let n = (t.len as usize) & (USER_PATH_CAP - 1);
        flags |= flag::PATH_FROM_STRING | t.flags;
        if t.absolute == 0 && n > 0 {
            unsafe { *dst.add(len & (FIELD_CAP - 1)) = b'/' };
            len += 1;
        }
        len += unsafe { append(dst, len, string, n) };
    }
    if len == 0 {
        unsafe { *dst = b'/' };
        len = 1;
    }
    // A container's paths are not host paths. A path the kernel resolved whose inode walk
    // found a watch needs no spelling: the spelling only stands in for an inode the watch
    // maps do not hold yet, and a kernel path has no `.` or `..` to look for.
    if foreign || (kind == target_kind::KERNEL && watch.watch_id != 0) {
        return Some(Resolved { len, flags, watch });
    }
    // Through map memory: every clamp above yields its own constant length, and the scan
    // loop would otherwise be verified once per constant.
    let len = launder(len)? & (2 * FIELD_CAP - 1);
    // Also for kernel paths: a watched path created after the last inode refresh is known
    // by its spelling only.
    let (by_path, unclean) = scan_path(s, dst, len, kind != target_kind::USER);
    // A caller's string is hashed to its end (`scan_path` stops early only for the kernel's
    // own paths): the hash left in scratch is the whole path's.
    if renames
        && kind == target_kind::USER
        && !unclean
        && len <= HASH_CAP
        && bump_epoch(vol(unsafe { &(*s).hash }))
    {
        flags |= flag::EPOCH_BUMPED;
    }
    if unclean {
        // The base's inode says nothing about where `..` leads: let userspace decide.
        watch = WatchValue { watch_id: 0, classes: 0 };
        flags = (flags | flag::PATH_UNCLEAN) & !flag::WATCH_INODE;
    } else if watch.watch_id == 0 && by_path.watch_id != 0 {
        watch = by_path;
        flags |= flag::WATCH_PATH;
    }
    Some(Resolved { len, flags, watch })
}

/// Note the current mount's root dentry and device (the device of every inode under it).
#[inline(always)]
fn enter_mount(s: *mut PathScratch) {
    let vfsmount = vol(unsafe { &(*s).vfsmount });
    let root = member::<u64>(vfsmount, ty!(vfsmount), off!(vfsmount_root)).unwrap_or(0);
    let dev = field::<u64>(root, off!(dentry_inode))
        .and_then(|inode| field::<u64>(inode, off!(inode_sb)))
        .and_then(|sb| field::<u32>(sb, off!(sb_dev)))
        .unwrap_or(0);
    unsafe {
        (*s).mnt_root = root;
        (*s).dev = dev;
    }
}

mod quick;
pub use quick::{string_surely_unwatched, surely_unwatched};
