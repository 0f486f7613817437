//! The pipeline's own lines: in-band records about the monitor (start, heartbeat, events
//! lost, stop, rules reloaded) and the `alerts-suppressed` records of closed aggregation
//! windows, with the counts they carry.

use super::Pipeline;
use crate::detect::aggregate::About;
use crate::detect::{Detector, Raised};
use crate::enrich::rfc3339;
use crate::error::{Error, Result};
use serde_json::json;
use std::io::Write;
use tracing::warn;

impl<W: Write> Pipeline<W> {
    /// Write an in-band record (`event.dataset: "monitor.status"`, `event.action` =
    /// `action`, the record's content in `monitor`); a capture keeps it, to write it again
    /// on replay.
    pub fn record(&mut self, action: &str, monitor: serde_json::Value) -> Result<()> {
        let line = self.sink.record(action, monitor).map_err(Error::Output)?;
        if let Some(r) = self.recorder.as_mut() {
            r.line(line.as_bytes());
        }
        Ok(())
    }

    /// The clock reached `boot_ns` (a live tick, or one a capture recorded): aggregation
    /// windows that ended close. A capture records a tick that closed any.
    pub fn tick(&mut self, boot_ns: u64) -> Result<()> {
        self.aggregate.expire(boot_ns, &mut self.closed);
        if !self.closed.is_empty() {
            if let Some(r) = self.recorder.as_mut() {
                r.tick(boot_ns);
            }
        }
        self.write_closed()
    }

    /// Windows closed by an event's time.
    pub(super) fn close_windows(&mut self) -> Result<()> {
        self.write_closed()
    }

    /// One `alerts-suppressed` record per closed window. Not kept in a capture: a replay
    /// aggregates again, and closes its windows where the live run did.
    pub(super) fn write_closed(&mut self) -> Result<()> {
        let clock = self.sink.clock();
        for s in std::mem::take(&mut self.closed) {
            let body = json!({
                "suppressed": {
                    "count": s.count,
                    "of_sequence": s.sequence,
                    "window": {"start": rfc3339(clock.wall_ns(s.opened_ns)), "end": rfc3339(clock.wall_ns(s.ends_ns))},
                    "last": rfc3339(clock.wall_ns(s.last_ns)),
                    "about": about(&s.about, &self.detect),
                }
            });
            self.sink.record("alerts-suppressed", body).map_err(Error::Output)?;
        }
        Ok(())
    }

    /// The kernel's loss counter reads `total`: an `events-lost` record for what was lost
    /// since `window_start` (wall ns), if anything. Returns the end of this window.
    pub fn report_loss(&mut self, total: u64, window_start: i128) -> Result<i128> {
        let now = self.sink.clock().now_wall_ns();
        if total > self.counts.lost {
            let lost = total - self.counts.lost;
            warn!(lost, total, "events lost in the kernel (ring buffer full or stage unreachable)");
            self.counts.lost = total;
            let window = json!({"start": rfc3339(window_start), "end": rfc3339(now)});
            self.record(
                "events-lost",
                json!({"lost": lost, "lost_total": total, "window": window}),
            )?;
        }
        Ok(now)
    }

    /// Counters for heartbeat and stop records.
    pub fn totals(&self) -> serde_json::Value {
        let c = &self.counts;
        json!({
            "events": c.events,
            "alerts": c.alerts,
            "trail": c.trail,
            "alerts_suppressed": c.suppressed,
            "lost": c.lost,
            "decode_errors": c.decode_errors,
        })
    }
}

/// What a window's verdicts were about, as its record shows it: the rule, the process, the
/// action and the objects (lossy: a record names them for reading).
fn about(a: &About, detect: &Detector) -> serde_json::Value {
    let (key, source) = match &a.raised {
        Raised::Rule(i) => {
            let r = detect.rule(*i);
            (r.key().to_string(), r.source.to_string())
        }
        Raised::Builtin { keys, source } => {
            (keys.first().cloned().unwrap_or_default(), source.to_string())
        }
    };
    let mut about = json!({
        "rule": {"key": key, "source": source},
        "process": {"pid": a.pid},
        "action": a.action,
    });
    for (k, b) in [("path", &a.path), ("path2", &a.path2)] {
        if let Some(b) = b {
            about[k] = json!(String::from_utf8_lossy(b));
        }
    }
    about
}
