//! What the drivers ([`live`](super::live), [`replay`](super::replay)) ask of the pipeline
//! between inputs: the rules and plan in force, counts, re-arming, reloads, upkeep, the
//! capture, and the end of the run. The stages' own flow is in the parent module.

use super::{Counts, Pipeline};
use crate::detect::select::Selection;
use crate::error::{Error, Result};
use crate::plan::FilterPlan;
use crate::rules::RuleSet;
use crate::source::capture::recorder::Recorder;
use std::io::Write;

impl<W: Write> Pipeline<W> {
    /// The kernel filter plan of the rules in force (for the source to put in the kernel).
    pub fn plan(&self) -> &FilterPlan {
        self.detect.plan()
    }

    pub fn rules(&self) -> &RuleSet {
        self.detect.rules()
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Whether the kernel staled watch entries since the last call: re-arm the source.
    pub fn take_rearm(&mut self) -> bool {
        std::mem::take(&mut self.rearm)
    }

    /// Print only what `select` takes (a replay's filters).
    pub fn select(&mut self, select: Selection) {
        self.select = select;
    }

    /// A capture replay: whether it was made with the rules in force (its plans are then
    /// used as recorded; otherwise its watch ids are translated).
    pub fn replaying_same_rules(&mut self, same: bool) {
        self.same_rules = same;
    }

    /// Live upkeep: user names re-read if /etc/passwd changed, containers long gone
    /// forgotten, the watched paths' identities re-read. Whether the plan changed.
    pub fn refresh(&mut self) -> bool {
        if self.enrich.refresh() {
            if let Some(r) = self.recorder.as_mut() {
                r.users(self.enrich.users_now());
                r.groups(self.enrich.groups_now());
            }
        }
        let changed = self.detect.refresh();
        if changed {
            self.plan_changed();
        }
        changed
    }

    /// Put new rules in force (a reload). The open aggregation windows close first: their
    /// verdicts name the old rules.
    pub fn reload(&mut self, rules: RuleSet) -> Result<()> {
        self.aggregate.close_all(&mut self.closed);
        self.write_closed()?;
        self.detect.replace(rules);
        self.sink.forget_rules();
        self.plan_changed();
        Ok(())
    }

    pub(super) fn plan_changed(&mut self) {
        if let Some(r) = self.recorder.as_mut() {
            r.plan(self.detect.plan());
        }
    }

    /// Start writing a capture to `path`: the header, then the plan, the process table and
    /// the user names as they are now.
    pub fn start_capture(
        &mut self,
        path: &std::path::Path,
        header: serde_json::Value,
    ) -> Result<()> {
        let mut recorder = Recorder::create(path, &header)?;
        recorder.plan(self.detect.plan());
        for (pid, info) in self.enrich.processes_now() {
            recorder.process(pid, &info);
        }
        self.enrich.take_learned();
        recorder.users(self.enrich.users_now());
        recorder.groups(self.enrich.groups_now());
        self.recorder = Some(recorder);
        Ok(())
    }

    /// The end: open windows closed, the output flushed (a render thread joined), the
    /// capture flushed; (events, bytes) of the capture.
    pub fn finish(&mut self) -> Result<Option<(u64, u64)>> {
        self.aggregate.close_all(&mut self.closed);
        self.write_closed()?;
        self.sink.finish().map_err(Error::Output)?;
        match self.recorder.as_mut() {
            Some(r) => r
                .finish()
                .map_err(|source| Error::Io { context: "finishing the capture".into(), source }),
            None => Ok(None),
        }
    }

    /// The monitor's parent when it started (a stop request from it is orderly).
    pub fn monitor_ppid(&self) -> u32 {
        self.detect.monitor_ppid()
    }

    /// Close every aggregation window now (before the stop record).
    pub fn finish_windows(&mut self) -> Result<()> {
        self.aggregate.close_all(&mut self.closed);
        self.write_closed()
    }

    /// How many processes the table holds (a debug log's detail).
    pub fn processes(&self) -> usize {
        self.enrich.processes()
    }

    /// The output's writer, when it renders inline (tests, fuzz targets).
    pub fn written(&self) -> &W {
        self.sink.inline_writer()
    }
}
