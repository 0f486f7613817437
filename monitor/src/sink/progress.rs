//! Progress of long replays on stderr, only when stderr is a terminal (never in logs or
//! pipes), at most a few times a second.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    label: &'static str,
    enabled: bool,
    started: Instant,
    last: Option<Instant>,
}

const EVERY: Duration = Duration::from_millis(250);

impl Progress {
    pub fn stderr(label: &'static str) -> Progress {
        Progress {
            label,
            enabled: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: None,
        }
    }

    /// `done` of `total` bytes read (`total` 0: not known).
    pub fn bytes(&mut self, done: u64, total: u64) {
        if !self.enabled || self.last.is_some_and(|l| l.elapsed() < EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        let secs = self.started.elapsed().as_secs_f64();
        let rate = done as f64 / secs.max(1e-3) / (1 << 20) as f64;
        let _ = if total > 0 {
            let pct = (done as f64 * 100.0 / total as f64).min(100.0);
            write!(
                std::io::stderr(),
                "\r{}: {pct:5.1}% of {} MiB, {rate:.1} MiB/s ",
                self.label,
                total >> 20
            )
        } else {
            // A stream (stdin, a FIFO): its size is not known.
            write!(std::io::stderr(), "\r{}: {} MiB read, {rate:.1} MiB/s ", self.label, done >> 20)
        };
    }

    /// Clear the line (before the summary).
    pub fn finish(&mut self) {
        if self.enabled && self.last.is_some() {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
