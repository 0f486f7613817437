//! The syscall vocabulary every part shares: x86-64 numbers of the calls the monitor hooks
//! or names, and their families (which hook observes a call, which calls change ids). The
//! kernel programs dispatch on these numbers, the rules classify by them and the sinks
//! name actions by them, so each is written here once.
//!
//! Only the calls the monitor itself needs are listed: names for every number come from the
//! `syscalls` crate in userspace (`monitor::vocab`), which does not build for the BPF target;
//! a userspace test holds these numbers to that crate's.

pub const WRITE: u32 = 1;
pub const OPEN: u32 = 2;
pub const WRITEV: u32 = 20;
pub const CONNECT: u32 = 42;
pub const SENDTO: u32 = 44;
pub const SENDMSG: u32 = 46;
pub const EXECVE: u32 = 59;
pub const TRUNCATE: u32 = 76;
pub const FTRUNCATE: u32 = 77;
pub const RENAME: u32 = 82;
pub const MKDIR: u32 = 83;
pub const RMDIR: u32 = 84;
pub const CREAT: u32 = 85;
pub const LINK: u32 = 86;
pub const UNLINK: u32 = 87;
pub const SYMLINK: u32 = 88;
pub const CHMOD: u32 = 90;
pub const FCHMOD: u32 = 91;
pub const CHOWN: u32 = 92;
pub const FCHOWN: u32 = 93;
pub const LCHOWN: u32 = 94;
pub const PTRACE: u32 = 101;
pub const SETUID: u32 = 105;
pub const SETGID: u32 = 106;
pub const SETREUID: u32 = 113;
pub const SETREGID: u32 = 114;
pub const SETRESUID: u32 = 117;
pub const SETRESGID: u32 = 119;
pub const SETFSUID: u32 = 122;
pub const SETFSGID: u32 = 123;
pub const MKNOD: u32 = 133;
pub const SETXATTR: u32 = 188;
pub const LSETXATTR: u32 = 189;
pub const FSETXATTR: u32 = 190;
pub const REMOVEXATTR: u32 = 197;
pub const LREMOVEXATTR: u32 = 198;
pub const FREMOVEXATTR: u32 = 199;
pub const OPENAT: u32 = 257;
pub const MKDIRAT: u32 = 258;
pub const MKNODAT: u32 = 259;
pub const FCHOWNAT: u32 = 260;
pub const UNLINKAT: u32 = 263;
pub const RENAMEAT: u32 = 264;
pub const LINKAT: u32 = 265;
pub const SYMLINKAT: u32 = 266;
pub const FCHMODAT: u32 = 268;
pub const PROCESS_VM_READV: u32 = 310;
pub const PROCESS_VM_WRITEV: u32 = 311;
pub const RENAMEAT2: u32 = 316;
pub const EXECVEAT: u32 = 322;
pub const OPENAT2: u32 = 437;
pub const FCHMODAT2: u32 = 452;
pub const SETXATTRAT: u32 = 463;
pub const REMOVEXATTRAT: u32 = 466;

/// The setuid family: what the setid hook observes, and what may turn an id into 0.
pub const SETID: [u32; 8] =
    [SETUID, SETGID, SETREUID, SETREGID, SETRESUID, SETRESGID, SETFSUID, SETFSGID];

/// Whether `nr` is of the setuid family.
#[inline(always)]
pub fn is_setid(nr: u32) -> bool {
    matches!(
        nr,
        SETUID | SETGID | SETREUID | SETREGID | SETRESUID | SETRESGID | SETFSUID | SETFSGID
    )
}

/// Whether a call `nr` of the setuid family with arguments `args` asks for an id of 0: one
/// of its id arguments (one for setuid, setgid, setfsuid, setfsgid; two for setre*id; three
/// for setres*id) is 0. No call of the family turns an id into 0 without asking for it, so
/// a call that does not ask can neither make its caller root nor be a failed attempt to.
#[inline(always)]
pub fn setid_asks_root(nr: u32, args: &[u64; 3]) -> bool {
    let ids = match nr {
        SETREUID | SETREGID => 2,
        SETRESUID | SETRESGID => 3,
        _ => 1,
    };
    args[0] as u32 == 0 || (ids >= 2 && args[1] as u32 == 0) || (ids >= 3 && args[2] as u32 == 0)
}

/// Whether `nr` (of the setuid family) changes group ids rather than user ids.
#[inline(always)]
pub fn is_setgid(nr: u32) -> bool {
    matches!(nr, SETGID | SETREGID | SETRESGID | SETFSGID)
}

pub const EXEC: [u32; 2] = [EXECVE, EXECVEAT];

/// The file calls, split by how they name their object: one exit program each.
/// open, creat, openat, openat2: the descriptor returned, or the path on failure.
pub const OPENS: [u32; 4] = [OPEN, CREAT, OPENAT, OPENAT2];
/// Two path strings (the old and the new name).
pub const TWO_PATHS: [u32; 5] = [RENAME, RENAMEAT, RENAMEAT2, LINK, LINKAT];
/// A descriptor argument.
pub const FD: [u32; 5] = [FTRUNCATE, FCHMOD, FCHOWN, FSETXATTR, FREMOVEXATTR];
/// One path string (symlink's target text is copied as is).
pub const ONE_PATH: [u32; 22] = [
    UNLINK,
    UNLINKAT,
    RMDIR,
    SYMLINK,
    SYMLINKAT,
    MKDIR,
    MKDIRAT,
    MKNOD,
    MKNODAT,
    TRUNCATE,
    CHMOD,
    FCHMODAT,
    FCHMODAT2,
    CHOWN,
    LCHOWN,
    FCHOWNAT,
    SETXATTR,
    LSETXATTR,
    SETXATTRAT,
    REMOVEXATTR,
    LREMOVEXATTR,
    REMOVEXATTRAT,
];

/// The calls that may send bytes on a captured connection (write, writev, sendto, sendmsg).
pub const SENDS: [u32; 4] = [WRITE, WRITEV, SENDTO, SENDMSG];
/// The calls that reach into another process (self-defence): ptrace, process_vm_readv/writev.
pub const TAMPER: [u32; 3] = [PTRACE, PROCESS_VM_READV, PROCESS_VM_WRITEV];

/// Whether `nr` is a file call some exit program handles.
pub fn is_file(nr: u32) -> bool {
    OPENS.contains(&nr) || TWO_PATHS.contains(&nr) || FD.contains(&nr) || ONE_PATH.contains(&nr)
}

/// The event classes (`class::*` bits) that observe syscall `nr`: 0 when no hook does.
pub fn class_of(nr: u32) -> u32 {
    use crate::class;
    match nr {
        EXECVE | EXECVEAT => class::EXEC,
        CONNECT => class::CONNECT,
        n if is_setid(n) => class::SETID,
        n if is_file(n) => class::FILE,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_id_arguments_of_each_call_ask_for_root() {
        let none = u32::MAX as u64; // -1: "unchanged"
        assert!(setid_asks_root(SETUID, &[0, 7, 7]));
        // setuid has one argument: what the other registers hold is not asked for.
        assert!(!setid_asks_root(SETUID, &[1000, 0, 0]));
        assert!(!setid_asks_root(SETFSGID, &[1000, 0, 0]));
        assert!(setid_asks_root(SETREUID, &[none, 0, 7]));
        assert!(!setid_asks_root(SETREGID, &[none, 1000, 0]));
        assert!(setid_asks_root(SETRESUID, &[none, none, 0]));
        assert!(!setid_asks_root(SETRESGID, &[none, none, none]));
        // Only the low 32 bits are the id (uid_t).
        assert!(setid_asks_root(SETRESUID, &[1 << 32, none, none]));
    }
}
