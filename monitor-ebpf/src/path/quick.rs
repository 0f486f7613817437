//! The quick verdicts: whether an object or a caller's string certainly selects no watch,
//! decided with a few loads before any record is built ([`surely_unwatched`],
//! [`string_surely_unwatched`]). Every doubt answers "maybe watched" and the full
//! resolution in the parent module decides.

use aya_ebpf::helpers::generated::bpf_probe_read_user_str;
use monitor_common::{fnv1a_step, FNV_OFFSET};

use super::*;

mod state {
    pub const UNDECIDED: u32 = 0;
    /// The first spine directory is met: the child it was reached through decides.
    pub const SPINE: u32 = 1;
}

/// Whether the object the kernel resolved (`start`: an open file of `task`) certainly
/// selects no watch, decided before any record is built. The full resolution copies every
/// name of the path and hashes every prefix; most objects are nowhere near a watch, and this
/// answers with a few loads and one inode lookup per level:
/// * an ancestor (or the object) watched in `WATCH_INODES`: maybe watched (false);
/// * else the first ancestor on the spine (`InodeEntry::on_spine`: an existing directory on
///   the way to some watched path), reached through child component `c`: when `spine path + "/" + c` is no
///   prefix in `WATCH_PATHS`, no watched spelling can be a prefix of the object's path, so
///   a watch created since the last inode refresh cannot name it either (true);
/// * a task whose root is not the host's (a container) has only inode watches (true);
/// * anything else, and every doubt (too deep, ambiguous spine): false.
#[inline(always)]
pub fn surely_unwatched(start: KPath, task: u64) -> bool {
    surely_unwatched_below(start, task, false)
}

/// [`surely_unwatched`] for `start` and, with `subtree`, for everything below it (no `..`
/// taken): a spine directory itself then gets no verdict, since watches may lie below it.
#[inline(always)]
fn surely_unwatched_below(start: KPath, task: u64, subtree: bool) -> bool {
    let Some(s) = scratch() else { return false };
    unsafe {
        (*s).dentry = start.dentry;
        (*s).vfsmount = start.vfsmount;
        (*s).quick_state = state::UNDECIDED;
        vset(&mut (*s).spine_hash, 0);
        vset(&mut (*s).child, 0);
        vset(&mut (*s).last_child, 0);
        (*s).child_len = 0;
        (*s).last_len = 0;
        (*s).found = 0;
        (*s).walk_flags = 1; // cleared when the walk reaches the top
    }
    enter_mount(s);
    for _ in 0..MAX_PATH_DEPTH {
        let dentry = vol(unsafe { &(*s).dentry });
        let view = dentry_view(dentry).unwrap_or(NO_VIEW);
        // The spine place matters only until the first spine directory is met.
        let spine_wanted = vol(unsafe { &(*s).quick_state }) == state::UNDECIDED;
        if let Some(entry) = inode_entry(s, view.inode, true, spine_wanted) {
            // A watch, or an entry that no longer says what it was armed with: no verdict.
            if entry.watch.watch_id != 0 || !entry_current(entry, view.inode) {
                unsafe { (*s).found = 1 };
                break;
            }
            if vol(unsafe { &(*s).quick_state }) == state::UNDECIDED
                && vol(&entry.flags) & inode_flag::ON_SPINE != 0
            {
                unsafe {
                    (*s).spine_hash = entry.spine_hash;
                    (*s).child = (*s).last_child;
                    (*s).child_name = (*s).last_name;
                    (*s).child_len = (*s).last_len;
                    (*s).quick_state = state::SPINE;
                }
            }
        }
        // The step up is the one of `walk`, written out again: as a shared function that
        // returns where to go, resolve_stage exceeds the verifier's instruction limit (E2BIG).
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
        unsafe {
            (*s).last_child = dentry;
            (*s).last_name = view.name;
            (*s).last_len = view.name_len as u64;
            (*s).dentry = parent;
        }
    }
    if vol(unsafe { &(*s).found }) != 0 || vol(unsafe { &(*s).walk_flags }) != 0 {
        return false;
    }
    if vol(unsafe { &(*s).quick_state }) == state::SPINE {
        let child = vol(unsafe { &(*s).child });
        let hash = vol(unsafe { &(*s).spine_hash });
        // child 0: the object is itself a spine directory, an ancestor of watched paths and
        // not one (it would be in WATCH_INODES).
        if (child == 0 && !subtree) || (child != 0 && hash != 0 && child_prefix_pruned(s, hash)) {
            return true;
        }
    }
    // A spelling might match: that counts for host paths only.
    !task_has_host_root(task)
}

/// Whether `spine + "/" + name of the child` (noted by the walk) is no prefix of any
/// watched spelling.
#[inline(always)]
fn child_prefix_pruned(s: *mut PathScratch, spine_hash: u64) -> bool {
    let len = (vol(unsafe { &(*s).child_len }) & 0xff) as usize;
    let name = vol(unsafe { &(*s).child_name });
    if len == 0 || name == 0 {
        return false;
    }
    // Read in place where the kernel allows it, else copied first.
    let bytes = match kernel_bytes(name) {
        Some(direct) => direct,
        None => unsafe {
            let buf = (*s).walk.as_mut_ptr();
            if bpf_probe_read_kernel(buf.cast(), len as u32, name as *const _) != 0 {
                return false;
            }
            buf as u64
        },
    };
    unsafe { (*s).hash = fnv1a_step(spine_hash, b'/') };
    for i in 0..256 {
        if i >= len {
            break;
        }
        let c = field::<u8>(bytes, i).unwrap_or(0);
        unsafe { (*s).hash = fnv1a_step((*s).hash, c) };
    }
    path_entry(vol(unsafe { &(*s).hash })).is_none()
}

/// Whether the string at `buf` (`len` bytes, then a NUL) may have an empty, `.` or `..`
/// component ([`monitor_common::clean_scan`], which the host tests exhaustively). A false
/// alarm (a name starting with a dot) only costs the exact byte scan of [`scan_path`].
/// `buf` must be readable `HASH_CAP + 8` bytes far.
///
/// A function of its own: the loop's leftovers then vanish with its stack frame, instead
/// of keeping the verifier from merging the states of the scan that follows.
#[inline(never)]
fn maybe_unclean(buf: *const u8, len: usize) -> bool {
    unsafe { monitor_common::clean_scan::maybe_unclean::<{ HASH_CAP / 8 }>(buf, len) }
}

/// What [`scan_string`] found.
mod spelling {
    /// Clean, and no prefix is a watched spelling (meaningless for a relative string).
    pub const UNWATCHED: u32 = 0;
    /// Clean, and a prefix is a watched spelling.
    pub const WATCHED: u32 = 1;
    /// An empty, `.` or `..` component.
    pub const UNCLEAN: u32 = 2;
    /// Clean, and the whole string is (maybe: the summary says so) an ancestor of a watched
    /// spelling: unlinking or renaming it moves the watches below.
    pub const ANCESTOR: u32 = 3;
}

/// The [`spelling`] verdict on a caller's string (`len` bytes at `buf`). Most strings are
/// plainly clean ([`maybe_unclean`]): then only an absolute one is hashed, and only up to
/// its first prefix that leads to no watch ([`scan_clean`]); the rest take [`scan_path`].
///
/// A function of its own: the scans end at a different step for every string, and each
/// such end would otherwise carry the rest of the caller through the verifier again.
#[inline(never)]
fn scan_string(s: *mut PathScratch, buf: *const u8, len: usize, absolute: bool) -> u32 {
    if !maybe_unclean(buf, len) {
        return if absolute { scan_clean(s, buf, len) } else { spelling::UNWATCHED };
    }
    let (watch, unclean) = scan_path(s, buf, len, false);
    if unclean {
        spelling::UNCLEAN
    } else if watch.watch_id != 0 {
        spelling::WATCHED
    } else if absolute && path_entry(vol(unsafe { &(*s).hash })).is_some() {
        spelling::ANCESTOR // the whole string's hash: `scan_path` hashes a caller's string to its end
    } else {
        spelling::UNWATCHED
    }
}

/// [`scan_path`] for an absolute string known to be clean: hash up to the first prefix
/// that is not in `WATCH_PATHS` (no watch lies below it) or that is watched.
#[inline(always)]
fn scan_clean(s: *mut PathScratch, buf: *const u8, len: usize) -> u32 {
    unsafe {
        (*s).hash = FNV_OFFSET;
        (*s).scan_len = len as u32;
    }
    for i in 0..HASH_CAP {
        // Reloaded: a length the verifier tracks would split its states at every step.
        if i >= vol(unsafe { &(*s).scan_len }) as usize {
            break;
        }
        let c = unsafe { *buf.add(i) };
        let hash = vol(unsafe { &(*s).hash });
        if c == b'/' && i > 0 {
            match path_entry(hash) {
                Some(v) if v.watch_id != 0 => return spelling::WATCHED,
                Some(_) => {}
                None => return spelling::UNWATCHED,
            }
        }
        unsafe { (*s).hash = fnv1a_step(hash, c) };
    }
    match path_entry(vol(unsafe { &(*s).hash })) {
        Some(v) if v.watch_id != 0 => spelling::WATCHED,
        Some(_) => spelling::ANCESTOR,
        None => spelling::UNWATCHED,
    }
}

/// Strings this long (with their NUL) or shorter are read onto the program's stack first:
/// a copy into map memory pays the kernel's hardened-usercopy check of its destination
/// (5–25 ns a string here), a copy onto the stack does not.
const SHORT_STRING: usize = 96;

/// Read the user string at `addr` into `buf` (at most `HASH_CAP` bytes with the NUL), as
/// `bpf_probe_read_user_str` does: the length with the NUL, or a negative error. A short
/// string comes through the stack (whole words: what follows its NUL is never read as path
/// bytes); a longer one is read again, into `buf` directly.
#[inline(always)]
fn read_user_string(buf: *mut u8, addr: u64) -> i64 {
    let mut short = core::mem::MaybeUninit::<[u64; SHORT_STRING / 8]>::uninit();
    let n = unsafe {
        bpf_probe_read_user_str(short.as_mut_ptr().cast(), SHORT_STRING as u32, addr as *const _)
    };
    if n < 0 {
        return n; // unreadable
    }
    if (n as usize) < SHORT_STRING {
        for w in 0..SHORT_STRING / 8 {
            unsafe { core::ptr::write_volatile((buf as *mut u64).add(w), (*short.as_ptr())[w]) };
        }
        return n;
    }
    unsafe { bpf_probe_read_user_str(buf.cast(), HASH_CAP as u32, addr as *const _) }
}

/// Whether the object a path syscall names by string (`addr`, relative to descriptor `dfd`
/// or `AT_FDCWD` of `task`) certainly selects no watch: the verdict the full resolution
/// ([`resolve_target`]) would reach, without building a record.
/// * absolute, host root: the root is not a watched inode and no `/`-prefix of the string
///   is in `WATCH_PATHS` (the scan stops at the first prefix that is not);
/// * otherwise: the base directory's ancestry holds no watched inode and its path lies
///   under a pruned spine child ([`surely_unwatched_below`]); the string stays below it.
///
/// Strings with `.`, `..` or empty components, strings too long to hash and unreadable ones
/// get no verdict (false): the full resolution forwards or decides them.
#[inline(always)]
pub fn string_surely_unwatched(task: u64, dfd: i64, addr: u64) -> bool {
    let Some(s) = scratch() else { return false };
    let buf = unsafe { (*s).walk.as_mut_ptr() };
    let n = read_user_string(buf, addr);
    if n <= 1 || n as usize >= HASH_CAP {
        return false;
    }
    let len = (n - 1) as usize;
    let absolute = unsafe { *buf } == b'/';
    let Some(len) = launder(len) else { return false };
    let len = len & (HASH_CAP - 1);
    let spelled_watched = match scan_string(s, buf, len, absolute) {
        spelling::UNWATCHED => false,
        spelling::WATCHED => true,
        // Unclean, or an ancestor of watches: the full resolution decides (and bumps the
        // epoch when such a name is unlinked or renamed).
        _ => return false,
    };
    let Some(base) = path_base(task, dfd, absolute) else { return false };
    if absolute {
        let Some((key, _)) = dentry_inode(base.dentry) else { return false };
        if is_host_root(&key) {
            return !spelled_watched && !crate::filter_has(monitor_common::FILTER_ROOT_WATCHED);
        }
    }
    surely_unwatched_below(base, task, true)
}
