//! The pipeline: every input, whatever its source, goes the same way through the stages,
//! sources → [`enrich`](crate::enrich) → [`detect`](crate::detect) (then aggregation) →
//! [`sink`](crate::sink), one [`Pipeline::handle`] call each. What drives it lives beside
//! it: [`live`] (a live source, timers and signals) and [`replay`] (a recording pulled to
//! its end); [`Mode`] says which, and `control` holds what they ask of it between inputs.
//! The pipeline keeps the counts the in-band records report, and tees what it took in to a
//! capture when one is written.

mod control;
pub mod live;
mod outputs;
pub mod replay;
mod report;
mod signals;
#[cfg(test)]
mod tests;

use crate::detect::aggregate::{Aggregator, Settings as Aggregation, Summary};
use crate::detect::select::{Candidate, Selection};
use crate::detect::{Detector, Verdict};
use crate::enrich::container::ContainerInfo;
use crate::enrich::Enricher;
use crate::error::{Error, Result};
use crate::plan::FilterPlan;
use crate::sink::Sink;
use crate::source::capture::recorder::{Added, Recorder};
use crate::source::{Arrival, Input};
use monitor_common::flag;
use std::io::Write;
use std::sync::Arc;
use tracing::warn;

/// What the monitor is doing: which driver pulls which source.
pub enum Mode {
    /// `monitor run`: a live source, optionally recorded into a capture.
    Live(live::RunOptions),
    /// `monitor replay`: a recording read to its end.
    Replay(replay::ReplayOptions),
}

/// Counts the in-band records report.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// Inputs that were events (undecodable ones included).
    pub events: u64,
    pub decode_errors: u64,
    /// Alert lines written.
    pub alerts: u64,
    /// Matches of `kind=event` rules (the audit trail), printed or not.
    pub trail: u64,
    /// Verdicts counted in an aggregation window instead of printed.
    pub suppressed: u64,
    /// Verdicts a replay's selection left out.
    pub filtered: u64,
    /// Events the kernel could not hand over (reported in `events-lost` records).
    pub lost: u64,
}

/// How the pipeline presents what it finds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Presentation {
    /// Print the audit trail (`kind=event` rules' matches) besides the alerts.
    pub audit_trail: bool,
    pub aggregation: Aggregation,
}

/// The container of the event in hand: decided (a recording said, or a capture records
/// it), or looked up when an alert needs it.
enum Container {
    Decided(Option<ContainerInfo>),
    Lazy,
}

/// The stages, and what passes between them.
pub struct Pipeline<W: Write> {
    enrich: Enricher,
    detect: Detector,
    aggregate: Aggregator,
    sink: Sink<W>,
    recorder: Option<Recorder>,
    counts: Counts,
    audit_trail: bool,
    /// What a replay prints (everything, unless narrowed).
    select: Selection,
    /// The kernel staled watch entries: the driver re-arms after the batch in hand.
    rearm: bool,
    /// Replaying a capture made with other rules: its plan, whose ids its events carry.
    recorded_plan: Option<FilterPlan>,
    /// Replaying a capture made with these rules: its plans are used as recorded.
    same_rules: bool,
    verdicts: Vec<Verdict>,
    closed: Vec<Summary>,
}

impl<W: Write> Pipeline<W> {
    pub fn new(
        enrich: Enricher,
        detect: Detector,
        sink: Sink<W>,
        presentation: Presentation,
    ) -> Pipeline<W> {
        Pipeline {
            enrich,
            detect,
            aggregate: Aggregator::new(presentation.aggregation),
            sink,
            recorder: None,
            counts: Counts::default(),
            audit_trail: presentation.audit_trail,
            select: Selection::default(),
            rearm: false,
            recorded_plan: None,
            same_rules: true,
            verdicts: Vec::new(),
            closed: Vec::new(),
        }
    }

    /// Hold the output's lines until [`Pipeline::release_output`] (see [`Sink::hold`]).
    pub fn hold_output(&mut self) {
        self.sink.hold();
    }

    /// Write out the lines held since [`Pipeline::hold_output`].
    pub fn release_output(&mut self) -> Result<()> {
        self.sink.release().map_err(Error::Output)
    }

    /// One input through the stages.
    pub fn handle(&mut self, input: Input) -> Result<()> {
        match input {
            Input::Event(a) => self.event(*a),
            Input::Undecodable(why) => {
                self.counts.events += 1;
                self.counts.decode_errors += 1;
                warn!(error = %why, "undecodable record");
                Ok(())
            }
            Input::Process(pid, info) => {
                self.enrich.insert(pid, info);
                Ok(())
            }
            Input::Users(names) => {
                self.enrich.set_users(names);
                Ok(())
            }
            Input::Groups(names) => {
                self.enrich.set_groups(names);
                Ok(())
            }
            Input::Plan(plan) => {
                if self.same_rules {
                    self.detect.use_plan(plan);
                } else {
                    self.recorded_plan = Some(plan);
                }
                Ok(())
            }
            // A recording's in-band records are about the whole run: not part of a selection.
            Input::Line(_) if !self.select.is_everything() => Ok(()),
            Input::Line(line) => self.sink.replay_line(&line).map_err(Error::Output),
            Input::Tick(ns) => self.tick(ns),
        }
    }

    fn event(&mut self, a: Arrival) -> Result<()> {
        self.counts.events += 1;
        let Arrival { mut ev, raw, recorded, audit } = a;
        let mut container = Container::Lazy;
        if let Some(r) = recorded {
            // What the capturing host resolved and decided.
            if let Some(p) = r.path {
                ev.path = p;
            }
            if let Some(p) = r.path2 {
                ev.path2 = p;
            }
            container = Container::Decided(r.container);
        }
        if let Some(recorded) = &self.recorded_plan {
            // Other rules: what the capturing kernel said of the object, by inode, carries
            // over under its path.
            ev.watch = self.detect.translate_watch(recorded, ev.watch);
            ev.watch2 = self.detect.translate_watch(recorded, ev.watch2);
        }
        if let Some(audit) = &audit {
            self.enrich.learn_names(&audit.names.users, &audit.names.groups);
            (ev.watch, ev.watch2) = self.detect.watch_ids(&audit.identities);
            if audit.syscall || ev.action == crate::event::Action::UserMessage {
                self.enrich.note(&ev, audit.exe.clone(), audit.args.clone(), audit.syscall);
            }
        }
        let recording = raw.is_some() && self.recorder.is_some();
        let raw_paths = recording.then(|| (ev.path.clone(), ev.path2.clone()));
        let bumped = ev.flag(flag::EPOCH_BUMPED);
        let ev = self.enrich.observe(ev, self.detect.plan());
        if recording {
            container = Container::Decided(self.enrich.container(&ev));
        }
        // Where it happened: the enricher decides from what the source says.
        self.sink.set_host(self.enrich.host_of(audit.as_ref().and_then(|a| a.node.as_deref())));
        let mut verdicts = std::mem::take(&mut self.verdicts);
        self.detect.judge(&ev, self.enrich.actor(&ev), &mut verdicts);
        let reported = verdicts.drain(..).try_for_each(|v| self.report(&ev, v, &mut container));
        self.verdicts = verdicts;
        reported?;
        if let (Some(raw), Some(raw_paths), Some(recorder)) =
            (raw, raw_paths, self.recorder.as_mut())
        {
            let container = match &container {
                Container::Decided(c) => c.as_ref(),
                Container::Lazy => None,
            };
            recorder.event(
                &raw,
                self.enrich.take_learned(),
                Added { raw_paths, paths: (&ev.path, &ev.path2), container },
            );
        }
        if bumped {
            // A watched name (or an ancestor) was unlinked or renamed: what the watches
            // name now is read before the next event, and the driver re-arms the kernel.
            if self.detect.refresh() {
                self.plan_changed();
            }
            self.rearm = true;
        }
        Ok(())
    }

    /// One verdict: counted on the audit trail, in an aggregation window, or printed.
    fn report(
        &mut self,
        ev: &Arc<crate::event::Event>,
        v: Verdict,
        container: &mut Container,
    ) -> Result<()> {
        use crate::detect::aggregate::Admit;
        use crate::rules::model::Kind;
        if v.kind == Kind::Event {
            self.counts.trail += 1;
            if !self.audit_trail {
                return Ok(());
            }
        }
        if !self.select.is_everything() && !self.selected(ev, &v, container) {
            self.counts.filtered += 1;
            return Ok(());
        }
        let admit = self.aggregate.admit(ev, &v, &mut self.closed);
        self.close_windows()?;
        if admit == Admit::Counted {
            self.counts.suppressed += 1;
            return Ok(());
        }
        if v.kind == Kind::Alert {
            self.counts.alerts += 1;
        }
        self.send_members(ev, &v).map_err(Error::Output)?;
        let container = self.container(ev, container).cloned();
        let sequence = self.sink.alert(ev, v, container).map_err(Error::Output)?;
        self.aggregate.printed(ev, sequence);
        Ok(())
    }

    /// The container of `ev`, looked up once.
    fn container<'c>(
        &mut self,
        ev: &crate::event::Event,
        container: &'c mut Container,
    ) -> Option<&'c ContainerInfo> {
        if let Container::Lazy = container {
            *container = Container::Decided(self.enrich.container(ev));
        }
        match container {
            Container::Decided(c) => c.as_ref(),
            Container::Lazy => None,
        }
    }

    /// Whether a replay's selection takes verdict `v` of `ev`.
    fn selected(
        &mut self,
        ev: &crate::event::Event,
        v: &Verdict,
        container: &mut Container,
    ) -> bool {
        let lineage =
            if self.select.needs_lineage() { self.enrich.lineage(ev.pid) } else { Vec::new() };
        let container = if self.select.needs_container() {
            self.container(ev, container).cloned()
        } else {
            None
        };
        let candidate = Candidate {
            wall_ns: self.sink.clock().wall_ns(ev.ts_boot_ns),
            keys: self.detect.keys(v),
            audit_keys: ev.audit_key.as_deref().unwrap_or_default(),
            severity: self.detect.severity(v),
            action: if v.docker.is_some() { "docker-request" } else { ev.action_name() },
            lineage: &lineage,
            container: container.as_ref(),
        };
        self.select.admits(&candidate)
    }

    /// The members the alert shares with others (process, user, rule), sent when changed.
    fn send_members(&mut self, ev: &crate::event::Event, v: &Verdict) -> std::io::Result<()> {
        if !self.sink.has_process(self.enrich.process_key(ev)) {
            let (key, view) = self.enrich.process_view(ev);
            self.sink.set_process(key, &view)?;
        }
        let key = self.enrich.user_key(ev);
        if !self.sink.has_user(key) {
            let enrich = &self.enrich;
            self.sink.set_user(
                key,
                ev,
                |uid| enrich.user_name(uid),
                |gid| enrich.group_name(gid),
            )?;
        }
        if let crate::detect::Raised::Rule(i) = v.raised {
            if !self.sink.has_rule(i) {
                self.sink.set_rule(i, self.detect.rule(i))?;
            }
        }
        Ok(())
    }
}

impl<W: Write + Send + 'static> Pipeline<W> {
    /// Render and write on a thread of its own (replays).
    pub fn render_on_thread(mut self) -> Result<Pipeline<W>> {
        self.sink = self
            .sink
            .render_on_thread()
            .map_err(|source| Error::Io { context: "starting the render thread".into(), source })?;
        Ok(self)
    }
}
