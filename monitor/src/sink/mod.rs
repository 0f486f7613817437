//! Sinks, the last stage: verdicts and in-band records become lines. [`Sink`] numbers them
//! (one gap-free `event.sequence`), keeps what many alerts share (a rule's, a process's, a
//! user's members, rendered once while unchanged) and hands them to [`output`], which
//! renders inline (live) or on a thread (replays) and writes to the destination.
//!
//! `json` renders alerts and records; `writer` is the byte-level JSON writer; `line` is the
//! destination of finished lines (the [`line::LineSink`] trait, stdout, the fan-out to
//! several), `file` and `syslog` the other destinations, `target` parses and opens them;
//! `text` makes readable lines of alerts (replays for a person); `state` writes
//! `monitor check` reports; `progress` reports long replays.

pub mod file;
pub mod json;
pub mod line;
pub mod output;
pub mod progress;
pub mod state;
pub mod syslog;
pub mod target;
pub mod text;
pub mod writer;

use crate::detect::{Raised, Verdict};
use crate::enrich::container::ContainerInfo;
use crate::enrich::{Clock, ProcessView};
use crate::event::Event;
use crate::rules::model::Rule;
use json::{Alert, ProcessParts, RaisedBy, RuleJson, RuleRef, RuleSource, UserParts};
use output::{Item, Output};
use std::io::Write;
use std::sync::Arc;

/// Lines out, numbered, with the members alerts share sent to the output when they change.
pub struct Sink<W: Write> {
    out: Output<W>,
    /// Flush after every line (live: a SIEM tails it); a replay flushes at the end.
    flush_each_line: bool,
    sequence: u64,
    clock: Clock,
    /// The host the alerts are about (`None`: the input does not say).
    hostname: Option<Arc<str>>,
    /// What the output's host member holds (`None` inside: sent as unknown).
    hostname_sent: Option<Option<Arc<str>>>,
    /// The host the monitor runs on.
    observer: Arc<str>,
    /// What the output's process members were made from: (table version, pid, ppid).
    process_of: Option<(u64, u32, u32)>,
    /// What the output's user members were made from: (names version, ids).
    user_of: Option<(u64, [u32; 5])>,
    /// The loaded rules whose JSON the output holds, by position.
    rules_sent: Vec<bool>,
    /// The (live, or recorded) monitor's pid, in tamper alerts.
    monitor_pid: u32,
}

impl<W: Write> Sink<W> {
    /// Lines to `out`; times from `clock`; `observer` is the host the monitor runs on (the
    /// host each alert is about is set by [`Sink::set_host`]).
    pub fn new(
        out: W,
        clock: Clock,
        observer: &str,
        monitor_pid: u32,
        flush_each_line: bool,
    ) -> Sink<W> {
        let mut out = Output::inline(out);
        // An inline output takes it in at once: nothing can fail.
        let _ = out.send(Item::Observer(observer.to_string()));
        Sink {
            out,
            flush_each_line,
            sequence: 0,
            clock,
            hostname: None,
            hostname_sent: None,
            observer: observer.into(),
            process_of: None,
            user_of: None,
            rules_sent: Vec::new(),
            monitor_pid,
        }
    }

    /// Write lines in `format` (before the output moves to a thread).
    pub fn set_format(&mut self, format: output::LineFormat) {
        self.out.set_format(format);
    }

    /// Whether the output's process members are those of `key` (see `Enricher::process_key`).
    pub fn has_process(&self, key: (u64, u32, u32)) -> bool {
        self.process_of == Some(key)
    }

    /// The process members for the alerts from now on.
    pub fn set_process(&mut self, key: (u64, u32, u32), view: &ProcessView) -> std::io::Result<()> {
        let mut parts = ProcessParts::default();
        parts.render(view.exe, view.args, view.ppid, view.parent_exe, &view.ancestors);
        self.process_of = Some(key);
        self.out.send(Item::Process(parts))
    }

    /// Whether the output's user members are those of `key` (see `Enricher::user_key`).
    pub fn has_user(&self, key: (u64, [u32; 5])) -> bool {
        self.user_of == Some(key)
    }

    /// The user members for the alerts from now on: `ev`'s ids, named by `names` (users)
    /// and `groups`.
    pub fn set_user<'n>(
        &mut self,
        key: (u64, [u32; 5]),
        ev: &Event,
        names: impl Fn(u32) -> Option<&'n str>,
        groups: impl Fn(u32) -> Option<&'n str>,
    ) -> std::io::Result<()> {
        let mut parts = UserParts::default();
        parts.render(ev, names, groups);
        self.user_of = Some(key);
        self.out.send(Item::User(parts))
    }

    /// Whether the output holds the JSON of loaded rule `i`.
    pub fn has_rule(&self, i: usize) -> bool {
        self.rules_sent.get(i).copied().unwrap_or(false)
    }

    /// The JSON of loaded rule `i`.
    pub fn set_rule(&mut self, i: usize, rule: &Rule) -> std::io::Result<()> {
        if self.rules_sent.len() <= i {
            self.rules_sent.resize(i + 1, false);
        }
        self.rules_sent[i] = true;
        let json =
            RuleJson::render(&RuleRef { keys: &rule.keys, source: RuleSource::Line(&rule.source) });
        self.out.send(Item::Rule(i, json))
    }

    /// Other rules are in force: their JSON is sent again when they first alert.
    pub fn forget_rules(&mut self) {
        self.rules_sent.clear();
    }

    /// The host the next alerts are about (as the enricher decided), `None` when unknown.
    pub fn set_host(&mut self, name: Option<&str>) {
        if self.hostname.as_deref() != name {
            self.hostname = name.map(Arc::from);
        }
    }

    /// One verdict of `ev` as a line; its `event.sequence`.
    pub fn alert(
        &mut self,
        ev: &Arc<Event>,
        v: Verdict,
        container: Option<ContainerInfo>,
    ) -> std::io::Result<u64> {
        let same = |a: &Option<Arc<str>>, b: &Option<Arc<str>>| match (a, b) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if self.hostname_sent.as_ref().is_none_or(|h| !same(h, &self.hostname)) {
            self.out.send(Item::Hostname(self.hostname.as_deref().map(str::to_string)))?;
            self.hostname_sent = Some(self.hostname.clone());
        }
        let rule = match v.raised {
            Raised::Rule(i) => RaisedBy::Loaded(i),
            Raised::Builtin { keys, source } => RaisedBy::Builtin(RuleJson::render(&RuleRef {
                keys: &keys,
                source: RuleSource::Builtin(source),
            })),
        };
        self.sequence += 1;
        let alert = Alert {
            ev: ev.clone(),
            kind: v.kind,
            rule,
            sequence: self.sequence,
            wall_ns: self.clock.wall_ns(ev.ts_boot_ns),
            container,
            docker: v.docker,
            tamper: v.tamper,
            monitor_pid: self.monitor_pid,
        };
        self.out.send(Item::Alert(alert))?;
        self.line_done()?;
        Ok(self.sequence)
    }

    /// An in-band record about the monitor itself (`event.kind: "metric"`: start,
    /// heartbeat, events lost, alerts suppressed, stop), numbered like an alert so that a
    /// gap in `event.sequence` can only mean lines lost after they were written. Returns
    /// the line (a capture records it).
    pub fn record(&mut self, action: &str, monitor: serde_json::Value) -> std::io::Result<String> {
        self.sequence += 1;
        let now = self.clock.now_wall_ns();
        let line = json::render_record(
            action,
            self.sequence,
            &crate::enrich::rfc3339(now),
            &self.observer,
            monitor,
        );
        self.out.send(Item::Line(line.clone().into_bytes()))?;
        self.line_done()?;
        Ok(line)
    }

    /// A record line a capture holds, numbered into this output.
    pub fn replay_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(line) else { return Ok(()) };
        self.sequence += 1;
        v["event"]["sequence"] = serde_json::json!(self.sequence);
        self.out.send(Item::Line(v.to_string().into_bytes()))?;
        self.line_done()
    }

    fn line_done(&mut self) -> std::io::Result<()> {
        if self.flush_each_line {
            self.out.flush()?;
        }
        Ok(())
    }

    /// Lines numbered so far.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Write out everything sent and flush (a render thread stops and reports its error).
    pub fn finish(&mut self) -> std::io::Result<()> {
        self.out.finish()
    }

    /// What an inline output wrote (tests and fuzz targets read it).
    pub fn inline_writer(&self) -> &W {
        self.out.inline_writer()
    }
}

impl<W: Write + Send + 'static> Sink<W> {
    /// Render and write on a thread of its own (replays; see [`output`]).
    pub fn render_on_thread(self) -> std::io::Result<Sink<W>> {
        let out = self.out.threaded()?;
        Ok(Sink { out, ..self })
    }
}
