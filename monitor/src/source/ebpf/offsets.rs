//! The kernel struct offsets the eBPF programs need, looked up in the running kernel's BTF.

use super::btf::Btf;
use crate::error::{Malformed, OrMalformed};

type Result<T, E = Malformed> = std::result::Result<T, E>;
use monitor_common::{KernelOffsets, KernelTypes};

pub fn from_btf(btf: &Btf) -> Result<KernelOffsets> {
    let o = |s: &str, m: &str| btf.offset(s, m);
    let cred_uid = o("cred", "uid")?;
    // The programs read the eight ids as one array: they must be contiguous.
    for (i, id) in ["gid", "suid", "sgid", "euid", "egid", "fsuid", "fsgid"].iter().enumerate() {
        crate::ensure_well_formed!(
            o("cred", id)? == cred_uid + 4 * (i as u32 + 1),
            "struct cred ids are not laid out contiguously"
        );
    }
    Ok(KernelOffsets {
        task_real_parent: o("task_struct", "real_parent")?,
        task_tgid: o("task_struct", "tgid")?,
        task_pid: o("task_struct", "pid")?,
        task_fs: o("task_struct", "fs")?,
        task_files: o("task_struct", "files")?,
        task_mm: o("task_struct", "mm")?,
        task_cred: o("task_struct", "cred")?,
        task_loginuid: o("task_struct", "loginuid")?,
        task_sessionid: o("task_struct", "sessionid")?,
        task_exit_code: o("task_struct", "exit_code")?,
        fs_root: o("fs_struct", "root")?,
        fs_pwd: o("fs_struct", "pwd")?,
        path_mnt: o("path", "mnt")?,
        path_dentry: o("path", "dentry")?,
        dentry_parent: o("dentry", "d_parent")?,
        dentry_name: o("dentry", "d_name")?,
        dentry_inode: o("dentry", "d_inode")?,
        qstr_len: o("qstr", "len")?,
        qstr_name: o("qstr", "name")?,
        inode_ino: o("inode", "i_ino")?,
        inode_sb: o("inode", "i_sb")?,
        inode_mode: o("inode", "i_mode")?,
        inode_generation: o("inode", "i_generation")?,
        sb_dev: o("super_block", "s_dev")?,
        mount_mnt: o("mount", "mnt")?,
        mount_parent: o("mount", "mnt_parent")?,
        mount_mountpoint: o("mount", "mnt_mountpoint")?,
        vfsmount_root: o("vfsmount", "mnt_root")?,
        files_fdt: o("files_struct", "fdt")?,
        fdtable_fd: o("fdtable", "fd")?,
        fdtable_max_fds: o("fdtable", "max_fds")?,
        file_path: o("file", "f_path")?,
        file_private_data: o("file", "private_data")?,
        socket_sk: o("socket", "sk")?,
        unix_sock_path: o("unix_sock", "path")?,
        unix_sock_peer: o("unix_sock", "peer")?,
        mm_arg_start: o("mm_struct", "arg_start")?,
        mm_arg_end: o("mm_struct", "arg_end")?,
        cred_uid,
        bprm_file: o("linux_binprm", "file")?,
        task_cgroups: o("task_struct", "cgroups")?,
        css_set_subsys: o("css_set", "subsys")?,
        css_set_dfl_cgrp: o("css_set", "dfl_cgrp")?,
        css_cgroup: o("cgroup_subsys_state", "cgroup")?,
        cgroup_kn: o("cgroup", "kn")?,
        kernfs_node_name: o("kernfs_node", "name")?,
        kernfs_node_id: o("kernfs_node", "id")?,
        sock_family: o("sock", "__sk_common")? + o("sock_common", "skc_family")?,
    })
}

/// The BTF ids of the structs the programs cast addresses to (`bpf_rdonly_cast`).
pub fn types_from_btf(btf: &Btf) -> Result<KernelTypes> {
    let id = |s: &str| btf.struct_id(s).with_context(|| format!("kernel BTF has no struct {s}"));
    // An fd-table slot is read as the first member of a kiocb: it must be the file pointer.
    crate::ensure_well_formed!(
        btf.offset("kiocb", "ki_filp")? == 0,
        "struct kiocb does not start with ki_filp"
    );
    Ok(KernelTypes {
        dentry: id("dentry")?,
        inode: id("inode")?,
        vfsmount: id("vfsmount")?,
        mount: id("mount")?,
        file: id("file")?,
        socket: id("socket")?,
        unix_sock: id("unix_sock")?,
        file_slot: id("kiocb")?,
        sock: id("sock")?,
        task: id("task_struct")?,
        binprm: id("linux_binprm")?,
    })
}
