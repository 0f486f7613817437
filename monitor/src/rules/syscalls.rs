//! Syscall names, numbers, and which of our hooks observes each one.

use super::syscall_table::SYSCALLS;

pub fn number(name: &str) -> Option<u32> {
    SYSCALLS.iter().find(|(n, _)| *n == name).map(|(_, nr)| *nr)
}

/// The name of syscall `nr` (every alert names its call: a table by number, not a search).
pub fn name(nr: u32) -> Option<&'static str> {
    static BY_NUMBER: std::sync::OnceLock<Vec<Option<&'static str>>> = std::sync::OnceLock::new();
    let table = BY_NUMBER.get_or_init(|| {
        let mut t = vec![None; SYSCALLS.iter().map(|(_, nr)| *nr as usize + 1).max().unwrap_or(0)];
        for (name, nr) in SYSCALLS.iter().rev() {
            t[*nr as usize] = Some(*name); // the first name listed for a number wins
        }
        t
    });
    table.get(nr as usize).copied().flatten()
}

/// The highest syscall number we know, bounding syscall sets.
pub const MAX_NR: u32 = 512;

/// Event classes (monitor_common::class bits) that observe syscall `nr`.
pub fn class_of(nr: u32) -> u32 {
    use monitor_common::class;
    match nr {
        59 | 322 => class::EXEC,
        42 => class::CONNECT,
        105 | 106 | 113 | 114 | 117 | 119 | 122 | 123 => class::SETID,
        n if FILE_SYSCALLS.contains(&n) => class::FILE,
        _ => 0,
    }
}

/// Syscalls whose exits the file hook handles (see monitor-ebpf/src/syscalls.rs).
pub const FILE_SYSCALLS: &[u32] = &[
    2, 85, 257, 437, // open, creat, openat, openat2
    87, 263, 84, // unlink, unlinkat, rmdir
    82, 264, 316, // rename, renameat, renameat2
    86, 265, 88, 266, // link, linkat, symlink, symlinkat
    83, 258, 133, 259, // mkdir, mkdirat, mknod, mknodat
    76, 77, // truncate, ftruncate
    90, 91, 268, 452, // chmod, fchmod, fchmodat, fchmodat2
    92, 93, 94, 260, // chown, fchown, lchown, fchownat
    188, 189, 190, 463, // setxattr, lsetxattr, fsetxattr, setxattrat
    197, 198, 199, 466, // removexattr, lremovexattr, fremovexattr, removexattrat
];

/// The file syscalls split by how they name their object (one eBPF exit program each).
pub const OPEN_SYSCALLS: &[u32] = &[2, 85, 257, 437];
pub const TWO_PATH_SYSCALLS: &[u32] = &[82, 264, 316, 86, 265];
pub const FD_SYSCALLS: &[u32] = &[77, 91, 93, 190, 199];
pub const PATH_SYSCALLS: &[u32] = &[
    87, 263, 84, 88, 266, 83, 258, 133, 259, 76, 90, 268, 452, 92, 94, 260, 188, 189, 463, 197,
    198, 466,
];

pub const EXEC_SYSCALLS: &[u32] = &[59, 322];
pub const CONNECT_SYSCALLS: &[u32] = &[42];
pub const SETID_SYSCALLS: &[u32] = &[105, 106, 113, 114, 117, 119, 122, 123];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        assert_eq!(number("openat"), Some(257));
        assert_eq!(number("setresuid"), Some(117));
        assert_eq!(number("fchmodat2"), Some(452));
        assert_eq!(name(59), Some("execve"));
        assert_eq!(number("no_such_call"), None);
        let mut split: Vec<u32> = OPEN_SYSCALLS
            .iter()
            .chain(TWO_PATH_SYSCALLS)
            .chain(FD_SYSCALLS)
            .chain(PATH_SYSCALLS)
            .copied()
            .collect();
        split.sort();
        let mut all = FILE_SYSCALLS.to_vec();
        all.sort();
        assert_eq!(
            split, all,
            "every file syscall is handled by exactly one exit program"
        );
        for nr in FILE_SYSCALLS
            .iter()
            .chain(SETID_SYSCALLS)
            .chain(EXEC_SYSCALLS)
        {
            assert!(name(*nr).is_some(), "{nr} has no name");
            assert!(*nr < MAX_NR);
        }
        for nr in 0..MAX_NR + 10 {
            let listed_first = SYSCALLS.iter().find(|(_, n)| *n == nr).map(|(name, _)| *name);
            assert_eq!(name(nr), listed_first, "{nr}");
        }
        assert_eq!(name(u32::MAX), None);
    }
}
