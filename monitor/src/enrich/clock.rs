//! Time: kernel timestamps (CLOCK_BOOTTIME) to wall-clock time, and RFC 3339 text.

use std::time::{SystemTime, UNIX_EPOCH};

/// Converts CLOCK_BOOTTIME nanoseconds (kernel timestamps) into wall-clock time.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Realtime minus boottime, in ns, measured at start.
    pub offset_ns: i128,
}

impl Clock {
    pub fn measure() -> Clock {
        let boot = |id| {
            let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            unsafe { libc::clock_gettime(id, &mut ts) };
            ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
        };
        let b1 = boot(libc::CLOCK_BOOTTIME);
        let real =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0);
        let b2 = boot(libc::CLOCK_BOOTTIME);
        Clock { offset_ns: real - (b1 + b2) / 2 }
    }

    pub fn wall_ns(&self, boot_ns: u64) -> i128 {
        boot_ns as i128 + self.offset_ns
    }

    /// Now, as wall-clock ns (on the same scale as event times).
    pub fn now_wall_ns(&self) -> i128 {
        self.wall_ns(self.boot_now())
    }

    /// Current CLOCK_BOOTTIME in ns.
    pub fn boot_now(&self) -> u64 {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }
}

/// Today's date in UTC (`YYYY-MM-DD`), from the wall clock.
pub fn today() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    rfc3339(now)[..10].to_string()
}

/// RFC 3339 UTC with nanoseconds, e.g. `2026-11-23T14:02:03.123456789Z`.
pub fn rfc3339(wall_ns: i128) -> String {
    let secs = wall_ns.div_euclid(1_000_000_000) as i64;
    let nanos = wall_ns.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
            rem / 3600,
            (rem / 60) % 60,
            rem % 60
        );
    }
    // Written digit by digit: this runs once per alert.
    let mut b = *b"0000-00-00T00:00:00.000000000Z";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y as u64);
    put(5, 2, m as u64);
    put(8, 2, d as u64);
    put(11, 2, (rem / 3600) as u64);
    put(14, 2, ((rem / 60) % 60) as u64);
    put(17, 2, (rem % 60) as u64);
    put(20, 9, nanos as u64);
    String::from_utf8(b.to_vec()).expect("ASCII digits")
}

/// [`rfc3339`] for a stream of times that mostly share their second (the alerts of a
/// burst): the date and time of day are worked out once per second, the nanoseconds
/// written into the same text.
#[derive(Default)]
pub struct Timestamps {
    second: Option<i64>,
    text: String,
}

impl Timestamps {
    pub fn format(&mut self, wall_ns: i128) -> &str {
        let second = wall_ns.div_euclid(1_000_000_000) as i64;
        if self.second != Some(second) {
            self.text = rfc3339(wall_ns);
            self.second = Some(second);
            return &self.text;
        }
        // `…SS.nnnnnnnnnZ`: the nine digits before the final `Z`.
        let mut nanos = wall_ns.rem_euclid(1_000_000_000) as u32;
        let end = self.text.len() - 1;
        // SAFETY: ASCII digits replace ASCII digits, so the text stays UTF-8.
        let digits = unsafe { &mut self.text.as_bytes_mut()[end - 9..end] };
        for d in digits.iter_mut().rev() {
            *d = b'0' + (nanos % 10) as u8;
            nanos /= 10;
        }
        &self.text
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_of_one_second_reuse_its_text_and_agree_with_rfc3339() {
        let mut t = Timestamps::default();
        for ns in [
            1_795_443_723_000_000_001i128,
            1_795_443_723_999_999_999,
            1_795_443_723_000_000_000,
            1_795_443_724_000_000_000,
            1_795_443_723_123_456_789,
            -1,
            -1_000_000_000,
            253_402_300_800_000_000_000,
            253_402_300_800_000_000_007,
        ] {
            assert_eq!(t.format(ns), rfc3339(ns), "{ns}");
        }
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_795_443_723_000_000_001), "2026-11-23T14:22:03.000000001Z");
        assert_eq!(rfc3339(951_782_400_000_000_000), "2000-02-29T00:00:00.000000000Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(rfc3339(253_402_300_800_000_000_000), "10000-01-01T00:00:00.000000000Z");
    }
}
