//! The kernel's quick check of a path string for empty, `.` and `..` components, eight
//! bytes at a time (called by `path::scan_string` in monitor-ebpf): a `/` followed by `/`, `.` or
//! the string's end, or a leading `.`. It may raise false alarms (a name that starts with
//! a dot), never miss one; the tests below hold it to that.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of every zero byte of `x` (and maybe of bytes above a zero byte).
#[inline(always)]
fn zeros(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGH
}

/// Whether one of the first `valid` (1..=8) of the eight path bytes in `here`
/// (little-endian) is a `/` followed, in `next` (the same bytes one further on), by
/// `/`, `.` or the terminating NUL.
#[inline(always)]
fn slash_then_special(here: u64, next: u64, valid: usize) -> bool {
    let slash = zeros(here ^ (ONES * b'/' as u64));
    let after =
        zeros(next ^ (ONES * b'/' as u64)) | zeros(next ^ (ONES * b'.' as u64)) | zeros(next);
    let valid = if valid >= 8 { HIGH } else { HIGH & ((1u64 << (8 * valid)) - 1) };
    slash & after & valid != 0
}

/// Whether the string at `buf` (`len` bytes, then a NUL) may have an empty, `.` or `..`
/// component, judging its first `8 * WORDS` bytes (callers keep `len` below that).
///
/// # Safety
/// `buf` must be readable `8 * WORDS + 8` bytes far.
#[inline(always)]
pub unsafe fn maybe_unclean<const WORDS: usize>(buf: *const u8, len: usize) -> bool {
    if len == 0 || *buf == b'.' {
        return true;
    }
    for w in 0..WORDS {
        let at = w * 8;
        if at >= len {
            break;
        }
        let here = core::ptr::read_unaligned(buf.add(at) as *const u64);
        let next = core::ptr::read_unaligned(buf.add(at + 1) as *const u64);
        if slash_then_special(here, next, len - at) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::{string::String, vec, vec::Vec};

    /// The kernel's check, on a NUL-terminated copy of `path` with room to read past.
    fn maybe_unclean(path: &[u8]) -> bool {
        let mut buf = [0u8; 8 * 8 + 8];
        buf[..path.len()].copy_from_slice(path);
        unsafe { super::maybe_unclean::<8>(buf.as_ptr(), path.len()) }
    }

    /// What the exact byte scan calls unclean: an empty, `.` or `..` component (the
    /// empty one before a leading `/` aside; `/` alone is clean).
    fn unclean(path: &[u8]) -> bool {
        if path == b"/" {
            return false;
        }
        let mut parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
        if path.first() == Some(&b'/') {
            parts.remove(0);
        }
        parts.iter().any(|c| c.is_empty() || *c == b"." || *c == b"..")
    }

    #[test]
    fn never_misses_an_unclean_path() {
        // Every string of up to 7 bytes over `/`, `.` and `a`, at every alignment, and
        // pseudo-random longer ones up to 40 bytes.
        let alphabet = [b'/', b'.', b'a'];
        let mut checked = 0;
        for len in 1..=7u32 {
            for n in 0..3usize.pow(len) {
                for pad in 0..8 {
                    let mut p = vec![b'a'; pad];
                    p.insert(0, b'/');
                    let mut k = n;
                    for _ in 0..len {
                        p.push(alphabet[k % 3]);
                        k /= 3;
                    }
                    if unclean(&p) {
                        assert!(maybe_unclean(&p), "missed {:?}", String::from_utf8_lossy(&p));
                    }
                    checked += 1;
                }
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = 1 + (x % 40) as usize;
            let p: Vec<u8> = (0..len)
                .map(|i| [b'/', b'.', b'a', b'b'][((x >> (i % 32 * 2)) & 3) as usize])
                .collect();
            if unclean(&p) {
                assert!(maybe_unclean(&p), "missed {:?}", String::from_utf8_lossy(&p));
            }
            checked += 1;
        }
        assert!(checked > 200_000);
    }

    #[test]
    fn plain_paths_pass_and_dot_names_are_false_alarms() {
        for p in [
            "/var/tmp/monitor-bench/f123",
            "/etc/docker/daemon.json",
            "relative/name",
            "a",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
        ] {
            assert!(!maybe_unclean(p.as_bytes()), "{p}");
        }
        for p in ["/home/u/.cache", "/", "./x", "/a//b", "/a/./b", "/a/../b", "/a/b/", "/a/b/.."] {
            assert!(maybe_unclean(p.as_bytes()), "{p}");
        }
    }
}
