//! Where the monitor's resident memory is, from /proc/PID/smaps: the ring buffer (the
//! `anon_inode:bpf-map` mappings: the only map the monitor maps is `EVENTS`, every page of
//! it resident from the start), the heap (`[heap]` and anonymous mappings: malloc's arenas and
//! large blocks), the binary's own file mappings, and the rest (shared libraries, stacks,
//! vdso).

use serde_json::{json, Value};
use std::path::Path;

/// Resident KiB by part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Breakdown {
    pub ring_buffer: u64,
    pub heap: u64,
    pub binary: u64,
    pub other: u64,
}

impl Breakdown {
    pub fn total(&self) -> u64 {
        self.ring_buffer + self.heap + self.binary + self.other
    }

    pub fn json(&self) -> Value {
        json!({"ring_buffer": self.ring_buffer, "heap": self.heap, "binary": self.binary, "other": self.other})
    }

    /// The breakdown of a running process (`binary`: its executable's path).
    pub fn of(pid: u32, binary: &Path) -> Option<Breakdown> {
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
        Some(parse(&smaps, &binary.display().to_string()))
    }
}

/// Sum the `Rss:` lines of smaps text by the mapping they follow.
pub fn parse(smaps: &str, binary: &str) -> Breakdown {
    let mut b = Breakdown::default();
    let mut part: Option<&mut u64> = None;
    for line in smaps.lines() {
        if let Some(kib) = line.strip_prefix("Rss:") {
            if let Some(p) = part.as_mut() {
                **p += kib.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0);
            }
            continue;
        }
        // A mapping's header: `start-end perms offset dev inode [name]`.
        let fields: Vec<&str> = line.splitn(6, ' ').collect();
        let is_header = fields.len() >= 5
            && fields[0].contains('-')
            && fields[0].chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        if !is_header {
            continue;
        }
        let name = fields.get(5).map(|n| n.trim()).unwrap_or("");
        part = Some(match name {
            n if n.starts_with("anon_inode:bpf-map") => &mut b.ring_buffer,
            "" | "[heap]" => &mut b.heap,
            n if n == binary || n.strip_suffix(" (deleted)") == Some(binary) => &mut b.binary,
            _ => &mut b.other,
        });
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_are_summed_by_part() {
        let smaps = "\
55d0c0000000-55d0c0100000 r--p 00000000 fe:01 123 /usr/bin/monitor
Rss:                1024 kB
Pss:                1024 kB
55d0c0100000-55d0c0400000 r-xp 00100000 fe:01 123 /usr/bin/monitor
Rss:                3000 kB
55d0c1000000-55d0c1200000 rw-p 00000000 00:00 0                          [heap]
Rss:                1300 kB
7f0000000000-7f0000200000 rw-p 00000000 00:00 0 
Rss:                 200 kB
7f0000200000-7f0002200000 r--s 00000000 00:0f 99                         anon_inode:bpf-map
Rss:                2048 kB
7f0003000000-7f0003100000 r-xp 00000000 fe:01 77                         /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                1400 kB
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]
Rss:                  48 kB
";
        let b = parse(smaps, "/usr/bin/monitor");
        assert_eq!(b, Breakdown { ring_buffer: 2048, heap: 1500, binary: 4024, other: 1448 });
        assert_eq!(b.total(), 9020);
    }

    #[test]
    fn this_process_has_a_binary_and_a_heap() {
        let b = Breakdown::of(std::process::id(), &std::env::current_exe().unwrap()).unwrap();
        assert!(b.binary > 0 && b.heap > 0 && b.other > 0, "{b:?}");
        assert_eq!(b.ring_buffer, 0);
    }
}
