//! The vocabulary every stage shares. Syscall names and numbers (x86-64) and the families
//! the monitor hooks: the rules (`-S name`), the loader (which tracepoint takes which
//! program) and the sinks (`syscall.name`) speak it; the numbers and families the kernel
//! programs share live in `monitor_common::sys`, the names come from the `syscalls` crate.
//! Audit record types ([`records`]): the audit sources, the rules (`msgtype=`) and the sinks.

pub mod records;

pub use monitor_common::sys::{class_of, is_setgid, is_setid};
use syscalls::x86_64::Sysno;

/// Calls newer than the `syscalls` crate's table (0.7 ends at 467), by number: listed so
/// that rules naming them load. The test below fails once the crate has them.
const NEWER: &[(&str, u32)] = &[("file_getattr", 468), ("file_setattr", 469)];

/// Syscall numbers stay below this: it bounds syscall sets and the rule index.
pub const MAX_NR: u32 = 512;

/// The number of syscall `name`.
pub fn number(name: &str) -> Option<u32> {
    name.parse::<Sysno>()
        .ok()
        .map(|s| s.id() as u32)
        .or_else(|| NEWER.iter().find(|(n, _)| *n == name).map(|(_, nr)| *nr))
}

/// The name of syscall `nr`.
pub fn name(nr: u32) -> Option<&'static str> {
    Sysno::new(nr as usize)
        .map(|s| s.name())
        .or_else(|| NEWER.iter().find(|(_, n)| *n == nr).map(|(name, _)| *name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_common::sys;

    /// The numbers the kernel programs dispatch on are the crate's.
    #[test]
    fn the_shared_numbers_are_the_crates() {
        let named = [
            ("open", sys::OPEN),
            ("openat", sys::OPENAT),
            ("openat2", sys::OPENAT2),
            ("execve", sys::EXECVE),
            ("execveat", sys::EXECVEAT),
            ("connect", sys::CONNECT),
            ("setresuid", sys::SETRESUID),
            ("setfsgid", sys::SETFSGID),
            ("renameat2", sys::RENAMEAT2),
            ("fchmodat2", sys::FCHMODAT2),
            ("setxattrat", sys::SETXATTRAT),
            ("removexattrat", sys::REMOVEXATTRAT),
            ("ptrace", sys::PTRACE),
            ("process_vm_writev", sys::PROCESS_VM_WRITEV),
            ("sendmsg", sys::SENDMSG),
        ];
        for (n, nr) in named {
            assert_eq!(number(n), Some(nr), "{n}");
            assert_eq!(name(nr), Some(n));
        }
        let hooked = sys::OPENS
            .iter()
            .chain(&sys::TWO_PATHS)
            .chain(&sys::FD)
            .chain(&sys::ONE_PATH)
            .chain(&sys::SETID)
            .chain(&sys::EXEC);
        for nr in hooked.chain(&sys::SENDS).chain(&sys::TAMPER) {
            assert!(name(*nr).is_some() && *nr < MAX_NR, "{nr}");
        }
        assert_eq!(number("no_such_call"), None);
        assert_eq!(name(u32::MAX), None);
    }

    #[test]
    fn the_newer_calls_are_not_in_the_crate_yet() {
        for (n, nr) in NEWER {
            assert!(
                Sysno::new(*nr as usize).is_none(),
                "the syscalls crate now knows {n}: drop it from NEWER"
            );
            assert_eq!(number(n), Some(*nr));
        }
    }

    /// Every file call is handled by exactly one exit program.
    #[test]
    fn the_file_families_do_not_overlap() {
        let mut all: Vec<u32> = sys::OPENS
            .iter()
            .chain(&sys::TWO_PATHS)
            .chain(&sys::FD)
            .chain(&sys::ONE_PATH)
            .copied()
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
        assert!(all.iter().all(|nr| class_of(*nr) == monitor_common::class::FILE));
    }
}
