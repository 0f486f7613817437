//! Reading kernel structures through the offsets userspace took from BTF.
//!
//! aya's Rust programs have no CO-RE, so every member offset comes from the read-only
//! `CONFIG.offsets`, filled at load time from /sys/kernel/btf/vmlinux. All reads go through
//! `bpf_probe_read_kernel`; a failed read yields `None` and the caller gives up quietly.

use aya_ebpf::helpers::{
    bpf_get_current_task, bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes,
};
use monitor_common::{Ids, InodeKey, CGROUP_DEFAULT_HIERARCHY, CGROUP_NAME_LEN, CGROUP_SUBSYS_MAX};

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

/// Read a `T` at `base + offset` in kernel memory.
#[inline(always)]
pub fn read<T: Copy>(base: u64, offset: usize) -> Option<T> {
    if base == 0 {
        return None;
    }
    unsafe { bpf_probe_read_kernel((base + offset as u64) as *const T).ok() }
}

/// A `struct path`: the mount and the dentry, as raw kernel addresses.
#[derive(Clone, Copy)]
pub struct KPath {
    pub vfsmount: u64,
    pub dentry: u64,
}

impl KPath {
    /// Read the `struct path` stored at `addr`.
    #[inline(always)]
    pub fn at(addr: u64) -> Option<KPath> {
        Some(KPath {
            vfsmount: read::<u64>(addr, off!(path_mnt))?,
            dentry: read::<u64>(addr, off!(path_dentry))?,
        })
    }
}

#[inline(always)]
pub fn current_task() -> u64 {
    unsafe { bpf_get_current_task() }
}

#[inline(always)]
pub fn task_tgid(task: u64) -> u32 {
    read::<u32>(task, off!(task_tgid)).unwrap_or(0)
}

#[inline(always)]
pub fn task_ppid(task: u64) -> u32 {
    match read::<u64>(task, off!(task_real_parent)) {
        Some(parent) => task_tgid(parent),
        None => 0,
    }
}

#[inline(always)]
pub fn task_loginuid(task: u64) -> u32 {
    read::<u32>(task, off!(task_loginuid)).unwrap_or(u32::MAX)
}

#[inline(always)]
pub fn task_sessionid(task: u64) -> u32 {
    read::<u32>(task, off!(task_sessionid)).unwrap_or(u32::MAX)
}

/// The task's credential ids (`task->cred`), converted from `struct cred` order
/// (uid, gid, suid, sgid, euid, egid, fsuid, fsgid) into [`Ids`].
#[inline(always)]
pub fn task_ids(task: u64) -> Ids {
    let cred = read::<u64>(task, off!(task_cred)).unwrap_or(0);
    match read::<[u32; 8]>(cred, off!(cred_uid)) {
        Some(c) => Ids {
            uid: c[0],
            gid: c[1],
            suid: c[2],
            sgid: c[3],
            euid: c[4],
            egid: c[5],
            fsuid: c[6],
            fsgid: c[7],
        },
        None => Ids {
            uid: u32::MAX,
            euid: u32::MAX,
            suid: u32::MAX,
            fsuid: u32::MAX,
            gid: u32::MAX,
            egid: u32::MAX,
            sgid: u32::MAX,
            fsgid: u32::MAX,
        },
    }
}

/// Copy the name of the task's cgroup (in the hierarchy `CONFIG.cgroup_subsys` selects) to
/// `dst`, NUL-terminated; empty when it cannot be read.
#[inline(always)]
pub fn task_cgroup_name(task: u64, dst: &mut [u8; CGROUP_NAME_LEN]) {
    dst[0] = 0;
    let Some(css_set) = read::<u64>(task, off!(task_cgroups)) else {
        return;
    };
    let subsys = unsafe { core::ptr::read_volatile(&CONFIG.cgroup_subsys) };
    let cgroup = if subsys == CGROUP_DEFAULT_HIERARCHY {
        read::<u64>(css_set, off!(css_set_dfl_cgrp))
    } else {
        let slot = (subsys % CGROUP_SUBSYS_MAX) as usize * 8;
        read::<u64>(css_set, off!(css_set_subsys) + slot)
            .and_then(|css| read::<u64>(css, off!(css_cgroup)))
    };
    let Some(kn) = cgroup.and_then(|c| read::<u64>(c, off!(cgroup_kn))) else {
        return;
    };
    let Some(name) = read::<u64>(kn, off!(kernfs_node_name)) else {
        return;
    };
    unsafe {
        let _ = bpf_probe_read_kernel_str_bytes(name as *const u8, dst);
    }
}

/// `task->fs->root` or `task->fs->pwd`.
#[inline(always)]
pub fn task_fs_path(task: u64, pwd: bool) -> Option<KPath> {
    let fs = read::<u64>(task, off!(task_fs))?;
    let member = if pwd { off!(fs_pwd) } else { off!(fs_root) };
    KPath::at(fs + member as u64)
}

/// The `struct file *` behind descriptor `fd` of `task`.
#[inline(always)]
pub fn task_file(task: u64, fd: i64) -> Option<u64> {
    if fd < 0 {
        return None;
    }
    let files = read::<u64>(task, off!(task_files))?;
    let fdt = read::<u64>(files, off!(files_fdt))?;
    let max = read::<u32>(fdt, off!(fdtable_max_fds))?;
    if fd as u64 >= max as u64 {
        return None;
    }
    let fds = read::<u64>(fdt, off!(fdtable_fd))?;
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

/// Identity (device, inode) and mode of the inode behind `dentry`.
#[inline(always)]
pub fn dentry_inode(dentry: u64) -> Option<(InodeKey, u32)> {
    let inode = read::<u64>(dentry, off!(dentry_inode))?;
    let ino = read::<u64>(inode, off!(inode_ino))?;
    let sb = read::<u64>(inode, off!(inode_sb))?;
    let dev = read::<u32>(sb, off!(sb_dev))?;
    let mode = read::<u16>(inode, off!(inode_mode))? as u32;
    Some((InodeKey { ino, dev, _pad: 0 }, mode))
}

/// Whether the task's root directory is the host's root (not a container or chroot).
#[inline(always)]
pub fn task_has_host_root(task: u64) -> bool {
    let root = match task_fs_path(task, false) {
        Some(root) => root,
        None => return true,
    };
    match dentry_inode(root.dentry) {
        Some((key, _)) => unsafe {
            key.ino == core::ptr::read_volatile(&CONFIG.host_root_ino)
                && key.dev == core::ptr::read_volatile(&CONFIG.host_root_dev)
        },
        None => true,
    }
}
