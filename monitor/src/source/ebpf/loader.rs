//! Creating aya's loader without its parse of the kernel's BTF.
//!
//! aya 0.14's `EbpfLoader::new()` reads /sys/kernel/btf/vmlinux and parses it, for CO-RE
//! relocations. Our programs have none (member offsets come from `CONFIG`, which [`super::btf`]
//! fills), and the parse is the largest allocation the monitor ever makes: about 19 MiB of
//! heap at its peak on this 6.18 kernel (heaptrack), which set the monitor's peak resident
//! memory. aya ≥ 0.15 reads the BTF only when the object needs it, but requires rustc 1.98,
//! and `EbpfLoader::btf(None)` only drops the parse after it was made.
//!
//! So the loader is created on a thread of its own that Landlock forbids to read files:
//! aya's read fails and the loader keeps no BTF. The restriction is the thread's alone (no
//! `TSYNC`) and ends with it. Where the kernel has no Landlock the loader is created as
//! usual: the same programs load, with the parse's memory at start.

use aya::EbpfLoader;
use landlock::{AccessFs, Ruleset, RulesetAttr, RulesetStatus};
use tracing::debug;

/// A loader that holds no kernel BTF, where Landlock allows it (see the module doc).
pub fn without_kernel_btf() -> EbpfLoader<'static> {
    let made = std::thread::Builder::new()
        .name("ebpf-loader".into())
        .spawn(|| {
            let restricted = forbid_file_reads();
            (EbpfLoader::new(), restricted)
        })
        .ok()
        .and_then(|thread| thread.join().ok());
    match made {
        Some((loader, Ok(()))) => loader,
        Some((loader, Err(why))) => {
            debug!(%why, "aya's loader parsed the kernel's BTF");
            loader
        }
        None => EbpfLoader::new(),
    }
}

/// Forbid the calling thread to read any file, for as long as it lives.
fn forbid_file_reads() -> Result<(), String> {
    let status = Ruleset::default()
        .handle_access(AccessFs::ReadFile)
        .and_then(|r| r.create())
        .and_then(|r| r.restrict_self())
        .map_err(|e| format!("Landlock: {e}"))?;
    match status.ruleset {
        RulesetStatus::FullyEnforced | RulesetStatus::PartiallyEnforced => Ok(()),
        RulesetStatus::NotEnforced => Err("the kernel has no Landlock".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restricted_thread_cannot_read_files_and_the_caller_still_can() {
        let denied = std::thread::spawn(|| {
            forbid_file_reads().map(|()| std::fs::read("/proc/self/status").is_err())
        })
        .join()
        .unwrap();
        match denied {
            Ok(denied) => assert!(denied, "a read succeeded under the restriction"),
            Err(why) if std::env::var_os("CI").is_none() => eprintln!("skipped: {why}"),
            Err(why) => panic!("{why}"),
        }
        assert!(std::fs::read("/proc/self/status").is_ok(), "the restriction leaked");
    }
}
