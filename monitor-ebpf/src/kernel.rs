//! Reading kernel structures through the offsets userspace took from BTF.
//!
//! aya's Rust programs have no CO-RE, so every member offset comes from the read-only
//! `CONFIG.offsets`, filled at load time from /sys/kernel/btf/vmlinux. The verifier knows
//! those offsets as constants (the map is frozen), so members are read by direct loads
//! through pointers the verifier knows by their BTF type, with no helper call (on this
//! kernel each helper call costs more than the rest of a hook's logic):
//! * the current task and `bpf_task_pt_regs`, and the members reached from them
//!   ([`field`]);
//! * any other address, once [`typed`] gave it a type (`bpf_rdonly_cast`, whose type ids
//!   are `CONFIG.types`): raw tracepoint arguments, addresses kept in map memory between
//!   loop iterations, array slots, `container_of` results ([`member`]).
//!
//! Both are the verifier's fault-tolerant loads: a bad address reads as zero, and the
//! caller gives up quietly. Using [`field`] on an untyped value fails verification at load
//! time, so a misuse cannot go unnoticed. Kernel strings are read in place where the
//! kernel allows untyped direct loads ([`kernel_bytes`]), else copied with helpers; user
//! strings always are. The tracepoint's own record is read by direct loads too
//! ([`tp_field`]).

use aya_ebpf::helpers::{bpf_probe_read_kernel_str_bytes, generated::bpf_get_current_task_btf};
use monitor_common::{
    Ids, InodeKey, CGROUP_DEFAULT_HIERARCHY, CGROUP_NAME_LEN, CGROUP_SUBSYS_MAX, RDONLY_CAST_MARK,
};

use crate::CONFIG;

/// Read one field of `CONFIG.offsets` without copying the whole struct onto the stack.
macro_rules! off {
    ($field:ident) => {
        crate::kernel::config_u32(core::ptr::addr_of!(crate::CONFIG.offsets.$field))
    };
}

/// Volatile read of a `CONFIG` member: the loader rewrites the global, so the compiler must
/// not fold the zeroes it was compiled with.
#[inline(always)]
pub fn config_u32(field: *const u32) -> usize {
    unsafe { core::ptr::read_volatile(field) as usize }
}
pub(crate) use off;

/// BTF id of kernel struct `$t` (`CONFIG.types`), for [`typed`].
macro_rules! ty {
    ($t:ident) => {
        crate::kernel::config_u32(core::ptr::addr_of!(crate::CONFIG.types.$t)) as u32
    };
}
pub(crate) use ty;

/// Member at `offset` of a syscall tracepoint's record: a direct load from the context,
/// which the verifier allows at constant offsets, and the kernel attaches the program only
/// to tracepoints whose record reaches the furthest such load. (aya's `read_at` calls
/// `bpf_probe_read_kernel` instead, at about 30 ns per call on this kernel.)
#[inline(always)]
pub fn tp_field<T: Copy>(ctx: &aya_ebpf::programs::TracePointContext, offset: usize) -> T {
    use aya_ebpf::EbpfContext;
    unsafe { core::ptr::read_volatile((ctx.as_ptr() as *const u8).add(offset) as *const T) }
}

/// Syscall tracepoint records: the syscall number (`int`), then, on entry, its six
/// arguments; on exit, its return value.
pub const TP_SYSCALL_NR: usize = 8;
pub const TP_SYSCALL_ARGS: usize = 16;
pub const TP_SYSCALL_RET: usize = 16;

/// Argument `i` from a `sys_enter_*` record (`i` must be a constant once inlined).
#[inline(always)]
pub fn tp_arg(ctx: &aya_ebpf::programs::TracePointContext, i: usize) -> u64 {
    tp_field::<u64>(ctx, TP_SYSCALL_ARGS + 8 * i)
}

/// Load a `T` at `base + offset` through a BTF-typed pointer (see the module doc).
#[inline(always)]
pub fn field<T: Copy>(base: u64, offset: usize) -> Option<T> {
    if base == 0 {
        return None;
    }
    Some(unsafe { core::ptr::read_volatile((base as *const u8).add(offset) as *const T) })
}

/// `addr` as a pointer to the kernel struct of BTF id `ty`: the kfunc `bpf_rdonly_cast`,
/// which the verifier replaces by a register move. The object file carries it as a call to
/// helper [`RDONLY_CAST_MARK`]; the loader rewrites that into the kfunc call.
#[inline(always)]
pub fn typed(addr: u64, ty: u32) -> u64 {
    let out: u64;
    unsafe {
        core::arch::asm!(
            "call {mark}",
            mark = const RDONLY_CAST_MARK,
            inlateout("r1") addr => _,
            inlateout("r2") ty as u64 => _,
            lateout("r0") out,
            lateout("r3") _,
            lateout("r4") _,
            lateout("r5") _,
            options(pure, nomem, nostack),
        );
    }
    out
}

/// `addr` as read-only kernel memory that direct loads may index at any offset (the
/// cast to type id 0), where the kernel supports it (`CONFIG.rdonly_cast_void`); `None`
/// elsewhere, and the caller copies with a helper. A zero `addr` is `None` too.
#[inline(always)]
pub fn kernel_bytes(addr: u64) -> Option<u64> {
    if addr == 0 || config_u32(core::ptr::addr_of!(CONFIG.rdonly_cast_void)) == 0 {
        return None;
    }
    Some(typed(addr, 0))
}

/// Load a `T` at `offset` of the struct of BTF id `ty` at `addr` ([`typed`], then [`field`]).
#[inline(always)]
pub fn member<T: Copy>(addr: u64, ty: u32, offset: usize) -> Option<T> {
    if addr == 0 {
        return None;
    }
    field(typed(addr, ty), offset)
}

/// A `struct path`: the mount and the dentry, as raw kernel addresses.
#[derive(Clone, Copy)]
pub struct KPath {
    pub vfsmount: u64,
    pub dentry: u64,
}

impl KPath {
    /// The `struct path` member at `offset` of the BTF-typed `base`.
    #[inline(always)]
    pub fn field(base: u64, offset: usize) -> Option<KPath> {
        Some(KPath {
            vfsmount: field::<u64>(base, offset + off!(path_mnt))?,
            dentry: field::<u64>(base, offset + off!(path_dentry))?,
        })
    }
}

/// The current task, as a BTF-typed pointer: the `task_*` readers below load through it.
#[inline(always)]
pub fn current_task() -> u64 {
    unsafe { bpf_get_current_task_btf() as u64 }
}

#[inline(always)]
pub fn task_tgid(task: u64) -> u32 {
    field::<u32>(task, off!(task_tgid)).unwrap_or(0)
}

#[inline(always)]
pub fn task_ppid(task: u64) -> u32 {
    match field::<u64>(task, off!(task_real_parent)) {
        Some(parent) => task_tgid(parent),
        None => 0,
    }
}

#[inline(always)]
pub fn task_loginuid(task: u64) -> u32 {
    field::<u32>(task, off!(task_loginuid)).unwrap_or(u32::MAX)
}

#[inline(always)]
pub fn task_sessionid(task: u64) -> u32 {
    field::<u32>(task, off!(task_sessionid)).unwrap_or(u32::MAX)
}

/// The task's credential ids (`task->cred`), converted from `struct cred` order
/// (uid, gid, suid, sgid, euid, egid, fsuid, fsgid) into [`Ids`].
#[inline(always)]
pub fn task_ids(task: u64) -> Ids {
    let Some(cred) = field::<u64>(task, off!(task_cred)) else {
        return Ids {
            uid: u32::MAX,
            euid: u32::MAX,
            suid: u32::MAX,
            fsuid: u32::MAX,
            gid: u32::MAX,
            egid: u32::MAX,
            sgid: u32::MAX,
            fsgid: u32::MAX,
        };
    };
    let id = |i: usize| field::<u32>(cred, off!(cred_uid) + 4 * i).unwrap_or(u32::MAX);
    Ids {
        uid: id(0),
        gid: id(1),
        suid: id(2),
        sgid: id(3),
        euid: id(4),
        egid: id(5),
        fsuid: id(6),
        fsgid: id(7),
    }
}

/// Copy the name of the task's cgroup (in the hierarchy `CONFIG.cgroup_subsys` selects) to
/// `dst`, NUL-terminated (empty when it cannot be read), and return that cgroup's id.
#[inline(always)]
pub fn task_cgroup(task: u64, dst: &mut [u8; CGROUP_NAME_LEN]) -> Option<u64> {
    dst[0] = 0;
    let css_set = field::<u64>(task, off!(task_cgroups))?;
    let subsys = unsafe { core::ptr::read_volatile(&CONFIG.cgroup_subsys) };
    let cgroup = if subsys == CGROUP_DEFAULT_HIERARCHY {
        field::<u64>(css_set, off!(css_set_dfl_cgrp))
    } else {
        let slot = (subsys % CGROUP_SUBSYS_MAX) as usize * 8;
        field::<u64>(css_set, off!(css_set_subsys) + slot)
            .and_then(|css| field::<u64>(css, off!(css_cgroup)))
    };
    let kn = cgroup.and_then(|c| field::<u64>(c, off!(cgroup_kn)))?;
    let id = field::<u64>(kn, off!(kernfs_node_id));
    if let Some(name) = field::<u64>(kn, off!(kernfs_node_name)) {
        unsafe {
            let _ = bpf_probe_read_kernel_str_bytes(name as *const u8, dst);
        }
    }
    id
}

/// `task->fs->root` or `task->fs->pwd`.
#[inline(always)]
pub fn task_fs_path(task: u64, pwd: bool) -> Option<KPath> {
    let fs = field::<u64>(task, off!(task_fs))?;
    let member = if pwd { off!(fs_pwd) } else { off!(fs_root) };
    KPath::field(fs, member)
}

/// The `struct file *` behind descriptor `fd` of `task`.
#[inline(always)]
pub fn task_file(task: u64, fd: i64) -> Option<u64> {
    if fd < 0 {
        return None;
    }
    let files = field::<u64>(task, off!(task_files))?;
    let fdt = field::<u64>(files, off!(files_fdt))?;
    let max = field::<u32>(fdt, off!(fdtable_max_fds))?;
    if fd as u64 >= max as u64 {
        return None;
    }
    // An array of pointers, whose slots have no BTF type of their own: a slot is read as
    // the first member (a `struct file *`) of `CONFIG.types.file_slot`.
    let fds = field::<u64>(fdt, off!(fdtable_fd))?;
    let file = member::<u64>(fds + (fd as u64) * 8, ty!(file_slot), 0)?;
    if file == 0 {
        None
    } else {
        Some(file)
    }
}

/// `dfd` of the `*at` syscalls meaning "the working directory".
pub const AT_FDCWD: i64 = -100;

/// The directory a path string of `task` starts from: the task's root for an absolute
/// string, else its working directory (`dfd` is `AT_FDCWD`) or the directory open as `dfd`.
#[inline(always)]
pub fn path_base(task: u64, dfd: i64, absolute: bool) -> Option<KPath> {
    let dfd = dfd as i32 as i64;
    if absolute {
        task_fs_path(task, false)
    } else if dfd == AT_FDCWD {
        task_fs_path(task, true)
    } else {
        file_path(task_file(task, dfd)?)
    }
}

/// `file->f_path`.
#[inline(always)]
pub fn file_path(file: u64) -> Option<KPath> {
    KPath::field(typed(file, ty!(file)), off!(file_path))
}

/// The members of a `struct dentry` a path walk needs.
#[derive(Clone, Copy)]
pub struct DentryView {
    pub parent: u64,
    pub inode: u64,
    pub name: u64,
    pub name_len: usize,
}

/// Read `dentry`'s parent, inode and name (a walk reads them at every level).
#[inline(always)]
pub fn dentry_view(dentry: u64) -> Option<DentryView> {
    if dentry == 0 {
        return None;
    }
    let d = typed(dentry, ty!(dentry));
    let name = off!(dentry_name);
    Some(DentryView {
        parent: field::<u64>(d, off!(dentry_parent))?,
        inode: field::<u64>(d, off!(dentry_inode))?,
        name: field::<u64>(d, name + off!(qstr_name))?,
        name_len: (field::<u32>(d, name + off!(qstr_len))? & 0xff) as usize,
    })
}

/// Identity (device, inode) and mode of the inode behind `dentry`.
#[inline(always)]
pub fn dentry_inode(dentry: u64) -> Option<(InodeKey, u32)> {
    let d = typed(dentry, ty!(dentry));
    let inode = field::<u64>(d, off!(dentry_inode))?;
    let ino = field::<u64>(inode, off!(inode_ino))?;
    let sb = field::<u64>(inode, off!(inode_sb))?;
    let dev = field::<u32>(sb, off!(sb_dev))?;
    let mode = field::<u16>(inode, off!(inode_mode))? as u32;
    Some((InodeKey { ino, dev, _pad: 0 }, mode))
}

/// `i_generation` of the BTF-typed or untyped `inode` (0 when unreadable): what tells an
/// inode from a later one that reuses its number.
#[inline(always)]
pub fn inode_generation(inode: u64) -> u32 {
    member::<u32>(inode, ty!(inode), off!(inode_generation)).unwrap_or(0)
}

/// Whether the task's root directory is the host's root (not a container or chroot).
#[inline(always)]
pub fn task_has_host_root(task: u64) -> bool {
    let root = match task_fs_path(task, false) {
        Some(root) => root,
        None => return true,
    };
    match dentry_inode(root.dentry) {
        Some((key, _)) => is_host_root(&key),
        None => true,
    }
}

/// Whether `key` is the host's root directory.
#[inline(always)]
pub fn is_host_root(key: &InodeKey) -> bool {
    unsafe {
        key.ino == core::ptr::read_volatile(&CONFIG.host_root_ino)
            && key.dev == core::ptr::read_volatile(&CONFIG.host_root_dev)
    }
}
