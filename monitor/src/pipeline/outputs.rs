//! The live monitor's records about its outputs: what each delivered and lost (in every
//! heartbeat and stop record), an `output-lost` record for what an output failed to
//! deliver since the last report, and `outputs-reopened` on SIGUSR1. The outputs are seen
//! through the fan-out's [`OutputsHandle`]; the records go to every output, the failing
//! one included (which may lose them too, and says so a tick later).

use super::signals::Request;
use super::Pipeline;
use crate::enrich::{rfc3339, Clock};
use crate::error::Result;
use crate::sink::line::{Fanout, OutputsHandle};
use serde_json::json;
use tracing::warn;

pub(super) struct Outputs {
    handle: OutputsHandle,
    /// Each output's losses already reported, by position.
    reported: Vec<u64>,
    clock: Clock,
}

impl Outputs {
    pub(super) fn new(handle: OutputsHandle, clock: Clock) -> Outputs {
        Outputs { handle, reported: Vec::new(), clock }
    }

    /// Each output's counters, for heartbeat and stop records.
    pub(super) fn stats(&self) -> serde_json::Value {
        self.handle
            .stats()
            .into_iter()
            .map(|(name, s)| {
                json!({"name": name, "lines": s.lines, "lost": s.lost, "rotations": s.rotations})
            })
            .collect()
    }

    /// SIGUSR1: every output reopens before the next line, which is this record (the
    /// first line of a reopened file).
    pub(super) fn reopen(&self, pipeline: &mut Pipeline<Fanout>, request: &Request) -> Result<()> {
        self.handle.request_reopen();
        let by = request.requested_by(pipeline.monitor_ppid());
        pipeline.record("outputs-reopened", json!({"requested_by": by}))
    }

    /// An `output-lost` record for each output that lost lines since the last report, in
    /// the window that started at `window_start` (wall ns).
    pub(super) fn report_loss(
        &mut self,
        pipeline: &mut Pipeline<Fanout>,
        window_start: i128,
    ) -> Result<()> {
        let stats = self.handle.stats();
        self.reported.resize(stats.len(), 0);
        for ((name, s), reported) in stats.iter().zip(self.reported.iter_mut()) {
            if s.lost <= *reported {
                continue;
            }
            let lost = s.lost - *reported;
            *reported = s.lost;
            warn!(output = %name, lost, total = s.lost, "lines lost by an output");
            let window =
                json!({"start": rfc3339(window_start), "end": rfc3339(self.clock.now_wall_ns())});
            pipeline.record(
                "output-lost",
                json!({"output": {"name": name, "lost": lost, "lost_total": s.lost}, "window": window}),
            )?;
        }
        Ok(())
    }
}
