//! The size of the kernel's event ring buffer (`EVENTS`), set at load time
//! (`monitor run --ring-buffer-size`).
//!
//! Every page of the buffer is resident from the moment the reader maps it (once:
//! [`super::reader`]), so its size is the largest part of the monitor's memory. It must be
//! large enough to absorb what arrives while the reader is busy or descheduled; what does
//! not fit is counted lost (`events-lost`).

use std::fmt;
use std::str::FromStr;

/// The default size, measured on the reference 2-core machine: no loss at a sustained
/// 400,000 matching events/s (`cargo xtask bench`), nor in tests/e2e/flood.rs's 10,000
/// writes of one file at full speed, which 2 MiB does not hold. What no size this small
/// holds is a burst faster than the reader for longer than the buffer lasts: the reader
/// takes about 6 µs per file alert, so 20,000 watched files written at full speed (60,000
/// alerts in a quarter of a second) lose about a third at 2, 4 or 8 MiB alike. Hosts with
/// such bursts raise `--ring-buffer-size`; every loss is counted.
pub const DEFAULT: u32 = monitor_common::RING_BUFFER_DEFAULT;

/// Above this the buffer would pin more memory than any burst the monitor can drain needs.
const MAX: u64 = 1 << 30;

/// A validated ring-buffer size in bytes: a power of two and a whole number of pages, as the
/// kernel requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingSize(u32);

impl RingSize {
    pub fn bytes(self) -> u32 {
        self.0
    }

    /// Check `bytes` against what the kernel accepts, with this host's page size.
    pub fn new(bytes: u64) -> Result<RingSize, String> {
        let page = page_size();
        if bytes < page {
            return Err(format!(
                "{} is smaller than a page ({}): the ring buffer is at least one page",
                human(bytes),
                human(page)
            ));
        }
        if bytes > MAX {
            return Err(format!(
                "{} is more than the largest size accepted ({})",
                human(bytes),
                human(MAX)
            ));
        }
        if !bytes.is_power_of_two() {
            let below = 1u64 << (63 - bytes.leading_zeros());
            return Err(format!(
                "{} is not a power of two, which the kernel requires: {} or {}",
                human(bytes),
                human(below),
                human(below * 2)
            ));
        }
        // A power of two at least a page long (itself a power of two) is a whole number of pages.
        Ok(RingSize(bytes as u32))
    }
}

impl Default for RingSize {
    fn default() -> Self {
        RingSize(DEFAULT)
    }
}

impl FromStr for RingSize {
    type Err = String;

    /// Bytes, or a number with a binary suffix: `K`/`KiB`, `M`/`MiB`, `G`/`GiB` (1024-based).
    fn from_str(s: &str) -> Result<RingSize, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, suffix) = t.split_at(split);
        let shift = match suffix.trim() {
            "" => 0,
            "K" | "k" | "KiB" => 10,
            "M" | "MiB" => 20,
            "G" | "GiB" => 30,
            other => {
                return Err(format!(
                    "unknown unit {other:?} in {s:?}: use bytes or K, M, G (KiB, MiB, GiB)"
                ))
            }
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("{s:?} is not a size (bytes, or a number with K, M or G)"))?;
        let bytes = n
            .checked_shl(shift)
            .filter(|b| b >> shift == n)
            .ok_or_else(|| format!("{s:?} is too large"))?;
        RingSize::new(bytes)
    }
}

impl fmt::Display for RingSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&human(self.0 as u64))
    }
}

/// `bytes` in the largest binary unit that divides it (`256K`, `4M`), else in bytes.
fn human(bytes: u64) -> String {
    for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

pub fn page_size() -> u64 {
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as u64,
        _ => 4096,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_bytes_and_binary_units() {
        assert_eq!("262144".parse::<RingSize>().unwrap().bytes(), 256 << 10);
        assert_eq!("256K".parse::<RingSize>().unwrap().bytes(), 256 << 10);
        assert_eq!("4MiB".parse::<RingSize>().unwrap().bytes(), 4 << 20);
        assert_eq!("1G".parse::<RingSize>().unwrap().bytes(), 1 << 30);
        assert_eq!(RingSize::default().bytes(), DEFAULT);
        assert_eq!(
            RingSize::default().to_string().parse::<RingSize>(),
            Ok(RingSize::default()),
            "the default round-trips through --help"
        );
    }

    #[test]
    fn what_the_kernel_would_refuse_is_refused_with_the_reason() {
        let err = |s: &str| s.parse::<RingSize>().unwrap_err();
        assert_eq!(err("3M"), "3M is not a power of two, which the kernel requires: 2M or 4M");
        assert!(err("1024").contains("smaller than a page"), "{}", err("1024"));
        assert!(err("2G").contains("more than the largest size accepted (1G)"), "{}", err("2G"));
        assert!(err("0").contains("smaller than a page"));
        assert!(err("4X").contains("unknown unit"));
        assert!(err("M").contains("not a size"));
        assert!(
            err("99999999999999999999G").contains("not a size")
                || err("99999999999999999999G").contains("too large")
        );
        assert!(err("17179869184G").contains("too large"), "{}", err("17179869184G"));
    }

    #[test]
    fn the_default_is_one_the_kernel_accepts() {
        assert_eq!(RingSize::new(DEFAULT as u64), Ok(RingSize(DEFAULT)));
    }
}
