//! Sinks, the last stage: verdicts and in-band records become lines. [`Sink`] numbers them
//! (one gap-free `event.sequence`), keeps what many alerts share (a rule's, a process's, a
//! user's members, rendered once while unchanged) and hands them to [`output`], which
//! renders inline (live) or on a thread (replays) and writes to the destination.
//!
//! `schema` defines every field of every line (and the ECS version) once, `docs` makes the
//! documentation and Elasticsearch templates from it; `json` renders
//! alerts from the members `parts` renders once per process, ids, rule and host, with the
//! `message` of each and the ECS categories of `ecs`; `record` renders the records about
//! the monitor; `writer` is the byte-level JSON writer; `line` is the destination of
//! finished lines (the [`line::LineSink`] trait, stdout, the fan-out to several), `file`
//! and `syslog` the other destinations, `target` parses and opens them; `text` makes
//! readable lines of alerts (replays for a person); `state` writes
//! `monitor check` reports; `progress` reports long replays.

pub mod docs;
pub mod ecs;
pub mod file;
pub mod json;
pub mod line;
pub mod message;
pub mod output;
pub mod parts;
pub mod progress;
pub mod record;
pub mod schema;
pub mod state;
pub mod syslog;
pub mod target;
#[cfg(test)]
mod tests;
pub mod text;
pub mod writer;

use crate::detect::{Raised, Verdict};
use crate::enrich::container::ContainerInfo;
use crate::enrich::{Clock, HostInfo, ProcessView};
use crate::event::Event;
use crate::rules::model::Rule;
use json::{Alert, RaisedBy};
use output::{Item, Output};
use parts::{HostParts, ProcessParts, RuleJson, RuleRef, RuleSource, UserParts};
use std::io::Write;
use std::sync::Arc;

/// Lines out, numbered, with the members alerts share sent to the output when they change.
pub struct Sink<W: Write> {
    out: Output<W>,
    /// Flush after every line (live: a SIEM tails it); a replay flushes at the end.
    flush_each_line: bool,
    /// Lines are held until [`Sink::release`] (a live read of the ring buffer in progress:
    /// its lines go out together when it ends).
    held: bool,
    sequence: u64,
    clock: Clock,
    /// The host the events happened on (`host.*`), `None` when the input does not say.
    host: Option<HostInfo>,
    /// This machine (`observer.hostname`; the `host` of the records about the monitor).
    observer: HostInfo,
    /// Whether the output's host members are those of `host`.
    host_sent: bool,
    /// What the output's process members were made from: (table version, pid, ppid).
    process_of: Option<(u64, u32, u32)>,
    /// What the output's user members were made from: (names version, ids).
    user_of: Option<(u64, [u32; 7])>,
    /// The loaded rules whose JSON the output holds, by position.
    rules_sent: Vec<bool>,
    /// The (live, or recorded) monitor's pid, in tamper alerts.
    monitor_pid: u32,
}

impl<W: Write> Sink<W> {
    /// Lines to `out`; times from `clock`; `host` (when known) in every alert, this machine
    /// as the observer. The host of later alerts is set by [`Sink::set_host`].
    pub fn new(
        out: W,
        clock: Clock,
        host: Option<HostInfo>,
        monitor_pid: u32,
        flush_each_line: bool,
    ) -> Sink<W> {
        Sink {
            out: Output::inline(out),
            flush_each_line,
            held: false,
            sequence: 0,
            clock,
            host,
            observer: HostInfo::read(),
            host_sent: false,
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
        parts.render(view, self.host.as_ref().map_or("", HostInfo::key), self.clock);
        self.process_of = Some(key);
        self.out.send(Item::Process(parts))
    }

    /// Whether the output's user members are those of `key` (see `Enricher::user_key`).
    pub fn has_user(&self, key: (u64, [u32; 7])) -> bool {
        self.user_of == Some(key)
    }

    /// The user members for the alerts from now on: `ev`'s ids, named by `names` (users)
    /// and `groups`.
    pub fn set_user<'n>(
        &mut self,
        key: (u64, [u32; 7]),
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
        if self.host.as_ref().map(|h| h.name.as_str()) != name {
            self.host = name.map(HostInfo::named);
            self.host_sent = false;
            // Entity ids are made with the host's key.
            self.process_of = None;
        }
    }

    /// One verdict of `ev` as a line; its `event.sequence`.
    pub fn alert(
        &mut self,
        ev: &Arc<Event>,
        v: Verdict,
        container: Option<ContainerInfo>,
    ) -> std::io::Result<u64> {
        if !self.host_sent {
            self.out
                .send(Item::Host(HostParts::render(self.host.as_ref(), &self.observer.name)))?;
            self.host_sent = true;
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

    fn frame(&self) -> record::Frame<'_> {
        record::Frame {
            host: self.host.as_ref().unwrap_or(&self.observer),
            observer: &self.observer.name,
            monitor_pid: self.monitor_pid,
        }
    }

    /// An in-band record about the monitor itself (`event.dataset: "monitor.status"`:
    /// start, heartbeat, events lost, alerts suppressed, rule reloads, stop; `monitor` its
    /// content), numbered like an alert so that a gap in `event.sequence` can only mean
    /// lines lost after they were written. Returns the line (a capture records it).
    pub fn record(&mut self, action: &str, monitor: serde_json::Value) -> std::io::Result<String> {
        self.sequence += 1;
        let now = crate::enrich::rfc3339(self.clock.now_wall_ns());
        let line = record::render(action, self.sequence, &now, &self.frame(), monitor);
        self.out.send(Item::Line(line.clone().into_bytes()))?;
        self.line_done()?;
        Ok(line)
    }

    /// A record line a capture holds, numbered into this output (in this schema).
    pub fn replay_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        let Some(line) = record::replayed(line, self.sequence + 1, &self.frame()) else {
            return Ok(());
        };
        self.sequence += 1;
        self.out.send(Item::Line(line.into_bytes()))?;
        self.line_done()
    }

    /// Hold lines until [`Sink::release`] even when every line is flushed: what one read of
    /// the kernel's buffer produced goes out in as few writes as possible.
    pub fn hold(&mut self) {
        self.held = true;
    }

    /// Flush what was held since [`Sink::hold`].
    pub fn release(&mut self) -> std::io::Result<()> {
        let was = std::mem::replace(&mut self.held, false);
        if was && self.flush_each_line {
            self.out.flush()?;
        }
        Ok(())
    }

    fn line_done(&mut self) -> std::io::Result<()> {
        if self.flush_each_line && !self.held {
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
