//! Keeping what only loading needs out of the monitor's resident memory once it is done.
//!
//! Start-up runs code and reads data that the steady state never touches again: argument
//! and rule parsing, the kernel's BTF, aya's loader and the embedded eBPF object (together
//! about 4 MiB of the binary's pages, and the heap that loading frees). The loader drops them
//! before the ring buffer is mapped, so that the monitor's peak is not their sum.

/// Keep glibc from holding on to large freed blocks. By default its threshold for serving a
/// block from its own mapping (returned to the system when freed) rises to the largest block
/// freed so far, and loading frees the 5 MiB kernel BTF blob: later large blocks would then
/// come from the main heap, where freeing one keeps its pages resident.
pub fn bound_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; it is called before the loader's
    // threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Give the heap that loading freed back to the system: glibc keeps freed memory at the top
/// of its heap, and loading frees the BTF reader's index and aya's parse of the object.
pub fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own heap to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Unmap the resident pages of the binary's read-only mappings that hold nothing but the
/// file's own bytes (code, constants, the embedded object): the kernel maps a page back from
/// the page cache, unchanged, when it is next used, so only what the monitor keeps using
/// stays resident. A mapping with a page of its own (a copy made when it was written, as
/// RELRO is at relocation) or a writable one is left alone. Returns the KiB released.
pub fn release_clean_binary_pages() -> u64 {
    let (Ok(exe), Ok(smaps)) =
        (std::fs::read_link("/proc/self/exe"), std::fs::read_to_string("/proc/self/smaps"))
    else {
        return 0;
    };
    let mut released = 0;
    for m in clean_mappings(&smaps, &exe.to_string_lossy()) {
        // SAFETY: a whole private file mapping that is never written and holds no page of
        // its own: MADV_DONTNEED only unmaps its pages until the next access faults them in
        // from the file, with the same bytes.
        if unsafe {
            libc::madvise(m.start as *mut libc::c_void, m.end - m.start, libc::MADV_DONTNEED)
        } == 0
        {
            released += m.rss_kib;
        }
    }
    tracing::debug!(kib = released, "start-up pages of the binary released");
    released
}

/// A mapping of the binary that can be dropped.
#[derive(Debug, PartialEq)]
struct Clean {
    start: usize,
    end: usize,
    rss_kib: u64,
}

/// The read-only, private mappings of `exe` in `smaps` text with no anonymous (copied) page.
fn clean_mappings(smaps: &str, exe: &str) -> Vec<Clean> {
    // Every mapping, and whether it may be dropped, in the order smaps lists them.
    let mut mappings: Vec<(Clean, bool)> = Vec::new();
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            let (Ok(start), Ok(end)) =
                (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16))
            else {
                continue;
            };
            let eligible = path == exe
                && perms.starts_with('r')
                && &perms[1..2] == "-"
                && perms.ends_with('p');
            mappings.push((Clean { start, end, rss_kib: 0 }, eligible));
            continue;
        }
        let Some((m, eligible)) = mappings.last_mut() else { continue };
        let kib = fields.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        match first {
            "Rss:" => m.rss_kib = kib,
            // A private copy of a page (RELRO after relocation, a debugger's breakpoint):
            // unmapping would lose it. A dirty page of the page cache (a binary just
            // written) is the file's and comes back.
            "Anonymous:" if kib > 0 => *eligible = false,
            _ => {}
        }
    }
    mappings.into_iter().filter(|(_, eligible)| *eligible).map(|(m, _)| m).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_mappings_of_the_binary_are_chosen() {
        let smaps = "\
5560092da000-556009588000 r--p 00000000 fe:01 42 /usr/bin/monitor
Rss:                 716 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
556009588000-556009a10000 r-xp 002ae000 fe:01 42 /usr/bin/monitor
Rss:                3936 kB
Private_Dirty:      3936 kB
Anonymous:             0 kB
556009a10000-556009a3c000 r--p 00736000 fe:01 42 /usr/bin/monitor
Rss:                 176 kB
Private_Dirty:       176 kB
Anonymous:           176 kB
556009a3c000-556009a3e000 rw-p 00762000 fe:01 42 /usr/bin/monitor
Rss:                   8 kB
Anonymous:             8 kB
7f0000000000-7f0000100000 r-xp 00000000 fe:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                1000 kB
Anonymous:             0 kB
";
        let chosen = clean_mappings(smaps, "/usr/bin/monitor");
        assert_eq!(
            chosen,
            [
                Clean { start: 0x5560092da000, end: 0x556009588000, rss_kib: 716 },
                Clean { start: 0x556009588000, end: 0x556009a10000, rss_kib: 3936 },
            ],
            "not RELRO (relocated pages), not .data, not a library"
        );
    }

    #[test]
    fn released_pages_are_no_longer_resident_and_read_back_the_same() {
        // This test binary's own constants: read, dropped, read again.
        static TABLE: [u64; 4096] = {
            let mut t = [0u64; 4096];
            let mut i = 0;
            while i < t.len() {
                t[i] = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                i += 1;
            }
            t
        };
        let sum = |t: &[u64]| t.iter().fold(0u64, |a, &x| a.wrapping_add(x));
        let before = sum(std::hint::black_box(&TABLE));
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let resident = || {
            let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
            clean_mappings(&smaps, &exe.to_string_lossy()).iter().map(|m| m.rss_kib).sum::<u64>()
        };
        assert!(resident() > 0);
        let released = release_clean_binary_pages();
        assert!(released > 0, "nothing released");
        assert!(resident() < released, "{} KiB resident after {released} released", resident());
        assert_eq!(sum(std::hint::black_box(&TABLE)), before);
    }
}
