//! Reading kernel structures through the offsets userspace took from BTF.
//!
//! aya's Rust programs have no CO-RE, so every member offset comes from the read-only
//! `CONFIG.offsets`, filled at load time from /sys/kernel/btf/vmlinux. The verifier knows
//! those offsets as constants (the map is frozen), which allows two ways to read:
//! * [`Btf`]: a direct load through a pointer the verifier knows by its BTF type (the
//!   current task, a `tp_btf` argument, and the members reached from them). No helper call:
//!   on this kernel each helper call costs more than the rest of a hook's logic. Using it on
//!   any other value fails verification at load time, so a misuse cannot go unnoticed.
//! * [`Probe`]: `bpf_probe_read_kernel`, for addresses that lost their type (read from an
//!   array, carried in map memory, reached through `container_of`).
//!
//! A failed read yields `None` (a direct load of a bad address yields zero) and the caller
//! gives up quietly.

use aya_ebpf::helpers::{
    bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes, generated::bpf_get_current_task_btf,
};
use monitor_common::{Ids, InodeKey, CGROUP_DEFAULT_HIERARCHY, DENTRY_WINDOW, CGROUP_NAME_LEN, CGROUP_SUBSYS_MAX};

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

/// How a kernel pointer is dereferenced; see the module doc.
pub trait Deref {
    fn get<T: Copy>(base: u64, offset: usize) -> Option<T>;
}

/// Direct loads through BTF-typed pointers.
pub struct Btf;

/// `bpf_probe_read_kernel`, for any address.
pub struct Probe;

impl Deref for Btf {
    #[inline(always)]
    fn get<T: Copy>(base: u64, offset: usize) -> Option<T> {
        if base == 0 {
            return None;
        }
        Some(unsafe { core::ptr::read_volatile((base as *const u8).add(offset) as *const T) })
    }
}

impl Deref for Probe {
    #[inline(always)]
    fn get<T: Copy>(base: u64, offset: usize) -> Option<T> {
        read(base, offset)
    }
}

/// Read a `T` at `base + offset` in kernel memory (`bpf_probe_read_kernel`).
#[inline(always)]
pub fn read<T: Copy>(base: u64, offset: usize) -> Option<T> {
    if base == 0 {
        return None;
    }
    unsafe { bpf_probe_read_kernel((base + offset as u64) as *const T).ok() }
}

/// Load a `T` at `base + offset` through a BTF-typed pointer ([`Btf`]).
#[inline(always)]
pub fn field<T: Copy>(base: u64, offset: usize) -> Option<T> {
    Btf::get(base, offset)
}

/// A `struct path`: the mount and the dentry, as raw kernel addresses.
#[derive(Clone, Copy)]
pub struct KPath {
    pub vfsmount: u64,
    pub dentry: u64,
}

impl KPath {
    /// Read the `struct path` stored at `addr` (one read: userspace checked that it is the
    /// pair mount, dentry).
    #[inline(always)]
    pub fn at(addr: u64) -> Option<KPath> {
        let [vfsmount, dentry] = read::<[u64; 2]>(addr, 0)?;
        Some(KPath { vfsmount, dentry })
    }

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
/// `dst`, NUL-terminated; empty when it cannot be read.
#[inline(always)]
pub fn task_cgroup_name(task: u64, dst: &mut [u8; CGROUP_NAME_LEN]) {
    dst[0] = 0;
    let Some(css_set) = field::<u64>(task, off!(task_cgroups)) else {
        return;
    };
    let subsys = unsafe { core::ptr::read_volatile(&CONFIG.cgroup_subsys) };
    let cgroup = if subsys == CGROUP_DEFAULT_HIERARCHY {
        field::<u64>(css_set, off!(css_set_dfl_cgrp))
    } else {
        let slot = (subsys % CGROUP_SUBSYS_MAX) as usize * 8;
        field::<u64>(css_set, off!(css_set_subsys) + slot)
            .and_then(|css| field::<u64>(css, off!(css_cgroup)))
    };
    let Some(kn) = cgroup.and_then(|c| field::<u64>(c, off!(cgroup_kn))) else {
        return;
    };
    let Some(name) = field::<u64>(kn, off!(kernfs_node_name)) else {
        return;
    };
    unsafe {
        let _ = bpf_probe_read_kernel_str_bytes(name as *const u8, dst);
    }
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
    // An array of pointers: its elements have no BTF type the verifier follows.
    let fds = field::<u64>(fdt, off!(fdtable_fd))?;
    let file = read::<u64>(fds, (fd as usize) * 8)?;
    if file == 0 {
        None
    } else {
        Some(file)
    }
}

/// `file->f_path`.
#[inline(always)]
pub fn file_path(file: u64) -> Option<KPath> {
    KPath::at(file + off!(file_path) as u64)
}

/// The members of a `struct dentry` a path walk needs, read with one helper call.
#[derive(Clone, Copy)]
pub struct DentryView {
    pub parent: u64,
    pub inode: u64,
    pub name: u64,
    pub name_len: usize,
}

/// Read `dentry`'s parent, inode and name in one `bpf_probe_read_kernel` (a walk reads them
/// at every level, and on this kernel the helper call costs more than the rest).
#[inline(always)]
pub fn dentry_view(dentry: u64) -> Option<DentryView> {
    let base = off!(dentry_parent);
    let w = read::<[u64; DENTRY_WINDOW / 8]>(dentry, base)?;
    // A select, not an index: an indexed stack address left in a register can reach a
    // subprogram's exit, which the verifier rejects.
    let word = |at: usize| {
        let v = match at / 8 {
            0 => w[0],
            1 => w[1],
            2 => w[2],
            _ => w[3],
        };
        v >> ((at % 8) * 8)
    };
    let name = off!(dentry_name) - base;
    Some(DentryView {
        parent: w[0],
        inode: word(off!(dentry_inode) - base),
        name: word(name + off!(qstr_name)),
        name_len: (word(name + off!(qstr_len)) as u32 & 0xff) as usize,
    })
}

/// Identity (device, inode) and mode of the inode behind `dentry`.
#[inline(always)]
pub fn dentry_inode(dentry: u64) -> Option<(InodeKey, u32)> {
    dentry_inode_by::<Probe>(dentry)
}

/// [`dentry_inode`], reading through `D`.
#[inline(always)]
pub fn dentry_inode_by<D: Deref>(dentry: u64) -> Option<(InodeKey, u32)> {
    let inode = D::get::<u64>(dentry, off!(dentry_inode))?;
    let ino = D::get::<u64>(inode, off!(inode_ino))?;
    let sb = D::get::<u64>(inode, off!(inode_sb))?;
    let dev = D::get::<u32>(sb, off!(sb_dev))?;
    let mode = D::get::<u16>(inode, off!(inode_mode))? as u32;
    Some((InodeKey { ino, dev, _pad: 0 }, mode))
}

/// Whether the task's root directory is the host's root (not a container or chroot).
#[inline(always)]
pub fn task_has_host_root(task: u64) -> bool {
    let root = match task_fs_path(task, false) {
        Some(root) => root,
        None => return true,
    };
    match dentry_inode_by::<Btf>(root.dentry) {
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
