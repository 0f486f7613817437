//! The pipeline: a source's events → enrich → match → JSON line on stdout. Live (eBPF ring
//! buffer or audit multicast) and replayed (captures here, audit logs in `audit`).

pub mod audit;
mod signals;

use crate::enrich::{self, container::Containers, process::ProcessTable, users::Users, Clock};
use crate::event::{Action, Event};
use crate::rules::model::Kind;
use crate::rules::{matcher::{Actor, Matcher}, targets::FilterPlan, RuleSet};
use crate::enrich::http::Stream;
use crate::rules::docker_api::{self, DockerRequest};
use crate::rules::self_defence;
use crate::sink::json::{Alert, ContainerInfo, ProcessParts, RaisedBy, RuleJson, RuleRef, RuleSource, UserParts};
use crate::sink::output::{Item, Output};
use std::collections::HashMap;
use std::sync::Arc;
use crate::source::capture;
use crate::source::ebpf::{decode::decode, EbpfSource};
use anyhow::{Context, Result};
use std::io::Write;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tracing::{debug, info, warn};

/// What raised an alert: a loaded rule (its position), or a built-in detection.
#[derive(Clone, Copy)]
enum Raised<'k> {
    Rule(usize),
    Builtin { keys: &'k [String], source: &'static str },
}

/// Everything between a decoded event and an alert line.
pub struct Pipeline<W: Write> {
    /// Replaced through [`Pipeline::set_rules`] (alerts keep each rule's JSON).
    rules: RuleSet,
    pub plan: FilterPlan,
    pub table: ProcessTable,
    pub users: Users,
    pub containers: Containers,
    /// Captured connections by (pid, fd).
    pub streams: HashMap<(u32, u32), Tracked>,
    pub clock: Clock,
    pub hostname: Arc<str>,
    pub sequence: u64,
    pub out: Output<W>,
    /// Flush after every line (live: a SIEM tails it); a replay flushes at the end.
    pub flush_each_line: bool,
    pub events: u64,
    pub decode_errors: u64,
    /// Alert lines written.
    pub alerts: u64,
    /// Matches of `kind=event` rules (the audit trail), printed or not.
    pub trail: u64,
    /// Print the audit trail (`--audit-trail`): `event.kind: "event"` lines.
    pub audit_trail: bool,
    /// Events the kernel could not hand over (reported in `events-lost` records).
    pub lost: u64,
    /// Recording for `monitor replay` (`monitor run --capture`).
    pub capture: Option<capture::Writer>,
    /// The monitor's pid (the recorded one when replaying).
    pub monitor_pid: u32,
    /// The monitor's parent when it started (the recorded one when replaying): a stop
    /// request from it is orderly (`self_defence::judge`).
    pub monitor_ppid: u32,
    /// The container of the event being handled, when decided before handling it (capture
    /// and replay); otherwise it is looked up when an alert needs it.
    container_override: Option<Option<ContainerInfo>>,
    /// What the process members the output holds were made from: (table version, pid,
    /// ppid). A burst of alerts from one process renders them once.
    process_parts_of: Option<(u64, u32, u32)>,
    /// What the user members the output holds were made from: (names version, uid, euid,
    /// auid, gid, egid).
    user_parts_of: Option<(u64, [u32; 5])>,
    /// The loaded rules whose JSON the output holds, by position (made when a rule first
    /// alerts).
    rules_sent: Vec<bool>,
    /// The host name the output holds.
    hostname_sent: Option<Arc<str>>,
    /// The kernel staled watch entries (an event flagged `EPOCH_BUMPED`): the live loop
    /// re-arms them after the batch in hand.
    pub rearm: bool,
}

impl<W: Write> Pipeline<W> {
    /// The live pipeline: process table from /proc, user names, containers from this host.
    pub fn new(rules: RuleSet, plan: FilterPlan, out: W) -> Pipeline<W> {
        let mut p = Pipeline::offline(rules, plan, out, Clock::measure(), enrich::hostname().into(), std::process::id());
        p.table = ProcessTable::new();
        p.table.seed_from_proc();
        p.users = Users::new();
        p.containers = Containers::new();
        p.container_override = None;
        p.flush_each_line = true;
        p.monitor_ppid = std::os::unix::process::parent_id();
        p
    }

    /// A pipeline for replaying a capture: nothing is read from this host.
    pub fn offline(rules: RuleSet, plan: FilterPlan, out: W, clock: Clock, hostname: Arc<str>, monitor_pid: u32) -> Pipeline<W> {
        Pipeline {
            rules,
            plan,
            table: ProcessTable::offline(),
            users: Users::from_map(Default::default()),
            containers: Containers::with_docker_root("/nonexistent".into()),
            streams: HashMap::new(),
            clock,
            hostname,
            sequence: 0,
            out: Output::inline(out),
            flush_each_line: false,
            events: 0,
            decode_errors: 0,
            alerts: 0,
            trail: 0,
            audit_trail: false,
            lost: 0,
            capture: None,
            monitor_pid,
            monitor_ppid: 0,
            container_override: Some(None),
            process_parts_of: None,
            user_parts_of: None,
            rules_sent: Vec::new(),
            hostname_sent: None,
            rearm: false,
        }
    }

    /// Start recording into `writer`: the header, the watch plan, the process table and the
    /// user names as they are now.
    pub fn start_capture(&mut self, mut writer: capture::Writer) -> std::io::Result<()> {
        let header = serde_json::json!({
            "format": "monitor-capture",
            "version": 1,
            "host": &*self.hostname,
            "kernel": enrich::kernel_release(),
            "monitor_version": env!("CARGO_PKG_VERSION"),
            "created": enrich::rfc3339(self.clock.now_wall_ns()),
            "clock_offset_ns": self.clock.offset_ns.to_string(),
            "monitor_pid": self.monitor_pid,
            "monitor_ppid": self.monitor_ppid,
            "rules_hash": self.rules.hash(),
            "prelude": self.rules.prelude,
        });
        writer.record(capture::rec::HEADER, header.to_string().as_bytes())?;
        writer.record(capture::rec::PLAN, serde_json::to_string(&self.plan).unwrap_or_default().as_bytes())?;
        for (pid, info) in self.table.entries() {
            writer.record(capture::rec::PROCESS, &capture::encode_process(pid, &info))?;
        }
        self.table.take_learned();
        writer.record(capture::rec::USERS, serde_json::to_string(self.users.snapshot()).unwrap_or_default().as_bytes())?;
        self.capture = Some(writer);
        Ok(())
    }

    /// Record something in the capture; a failing capture (disk full) is reported once and
    /// stops, the alerts go on.
    fn capture_record(&mut self, kind: u8, payload: &[u8]) {
        if let Some(w) = self.capture.as_mut() {
            if let Err(e) = w.record(kind, payload) {
                tracing::error!(error = %e, "writing the capture failed; capturing stops here (the file is readable up to this point)");
                self.capture = None;
            }
        }
    }

    /// The users table changed (live): record it.
    pub fn users_changed(&mut self) {
        if self.capture.is_some() {
            let text = serde_json::to_string(self.users.snapshot()).unwrap_or_default();
            self.capture_record(capture::rec::USERS, text.as_bytes());
        }
    }

    /// The plan changed (refresh or reload): record it.
    pub fn plan_changed(&mut self) {
        if self.capture.is_some() {
            let text = serde_json::to_string(&self.plan).unwrap_or_default();
            self.capture_record(capture::rec::PLAN, text.as_bytes());
        }
    }

    /// Handle one raw record. Errors are output failures (the sink is gone).
    pub fn handle_record(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.events += 1;
        match decode(bytes) {
            Ok(mut ev) => {
                let capturing = self.capture.is_some();
                // The capture records what this host changed: keep the paths as sent.
                let raw = capturing.then(|| (ev.path.clone(), ev.path2.clone()));
                enrich::paths::canonicalise_event(&mut ev);
                let mut canonical = None;
                if let Some(raw) = raw {
                    // Decided now, for the alert and for the record.
                    self.container_override = Some(container_of(&mut self.containers, &ev));
                    canonical = Some((raw, (ev.path.clone(), ev.path2.clone())));
                }
                let plan = &self.plan;
                enrich::paths::name_detached(&mut ev, |dev, ino, generation| plan.by_identity(dev, ino, generation).map(|t| t.canonical.clone()));
                let bumped = ev.flag(monitor_common::flag::EPOCH_BUMPED);
                let result = self.handle_event(ev);
                if let Some((raw, canonical)) = canonical {
                    self.capture_event(bytes, raw, canonical);
                }
                self.container_override = None;
                if bumped {
                    // A watched name (or an ancestor) was unlinked or renamed: what the
                    // watches name now is read again before the next event is matched, and
                    // the kernel's entries are re-armed after this batch (`rearm`).
                    if self.plan.refresh() {
                        self.plan_changed();
                    }
                    self.rearm = true;
                }
                result
            }
            Err(e) => {
                self.decode_errors += 1;
                warn!(error = %e, "undecodable kernel record");
                Ok(())
            }
        }
    }

    /// Record one event and what this host added to it: entries read from /proc while
    /// handling it, paths resolved on this filesystem, the container.
    fn capture_event(&mut self, bytes: &[u8], raw: (Option<Vec<u8>>, Option<Vec<u8>>), canonical: (Option<Vec<u8>>, Option<Vec<u8>>)) {
        self.capture_record(capture::rec::EVENT, bytes);
        for (pid, info) in self.table.take_learned() {
            self.capture_record(capture::rec::PROCESS, &capture::encode_process(pid, &info));
        }
        let mut enrich = serde_json::Map::new();
        if canonical.0 != raw.0 {
            enrich.insert("path".into(), serde_json::json!(canonical.0));
        }
        if canonical.1 != raw.1 {
            enrich.insert("path2".into(), serde_json::json!(canonical.1));
        }
        if let Some(Some(c)) = &self.container_override {
            enrich.insert("container".into(), container_json(c));
        }
        if !enrich.is_empty() {
            let text = serde_json::Value::Object(enrich).to_string();
            self.capture_record(capture::rec::ENRICH, text.as_bytes());
        }
    }

    /// Replay one recorded event with what the capturing host had added to it.
    pub fn replay_event(&mut self, bytes: &[u8], enrich: Option<&serde_json::Value>, recorded_plan: Option<&FilterPlan>) -> std::io::Result<()> {
        self.events += 1;
        let mut ev = match decode(bytes) {
            Ok(ev) => ev,
            Err(e) => {
                self.decode_errors += 1;
                warn!(error = %e, "undecodable recorded event");
                return Ok(());
            }
        };
        let bytes_of = |v: &serde_json::Value| -> Option<Vec<u8>> { serde_json::from_value(v.clone()).ok() };
        if let Some(e) = enrich {
            if let Some(p) = e.get("path") {
                ev.path = bytes_of(p);
            }
            if let Some(p) = e.get("path2") {
                ev.path2 = bytes_of(p);
            }
        }
        if let Some(recorded) = recorded_plan {
            // Other rules: the ids name targets of the capturing run's plan. What they say —
            // the object is at or below that path, by inode — carries over under the path.
            ev.watch = self.translate_watch(recorded, ev.watch);
            ev.watch2 = self.translate_watch(recorded, ev.watch2);
        }
        self.container_override = Some(enrich.and_then(|e| e.get("container")).and_then(container_from_json));
        let plan = &self.plan;
        enrich::paths::name_detached(&mut ev, |dev, ino, generation| plan.by_identity(dev, ino, generation).map(|t| t.canonical.clone()));
        let r = self.handle_event(ev);
        self.container_override = Some(None);
        r
    }

    /// The id in this plan of the recorded plan's target `id` (added, selecting nothing of
    /// its own, when these rules do not name that path).
    fn translate_watch(&mut self, recorded: &FilterPlan, id: u32) -> u32 {
        let Some(t) = recorded.target(id) else { return 0 };
        if let Some(mine) = self.plan.targets.iter().find(|m| m.canonical == t.canonical) {
            return mine.id;
        }
        self.plan.add(crate::rules::targets::Target { classes: 0, ..t.clone() })
    }

    /// Write a recorded in-band record again, renumbered into this output.
    pub fn replay_output(&mut self, line: &[u8]) -> std::io::Result<()> {
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(line) else { return Ok(()) };
        self.sequence += 1;
        v["event"]["sequence"] = serde_json::json!(self.sequence);
        self.out.send(Item::Line(v.to_string().into_bytes()))?;
        self.line_done()
    }

    pub fn handle_event(&mut self, ev: Event) -> std::io::Result<()> {
        // Shared from here on: the alerts it raises hold it until they are rendered.
        let ev = Arc::new(ev);
        let ev = &ev;
        self.table.observe(ev);
        if ev.action == Action::Exec && self.container_override.is_none() {
            // Live: a container's metadata is read while it runs (see `note_exec`).
            self.containers.note_exec(&ev.cgroup_name);
        }
        match ev.action {
            Action::Fork => return Ok(()),
            Action::Exit => {
                self.streams.retain(|(pid, _), _| *pid != ev.pid);
                return Ok(());
            }
            Action::Payload => return self.handle_payload(ev),
            Action::Signal | Action::Ptrace | Action::ProcessVm => return self.handle_tamper(ev),
            _ => {}
        }
        // Both loaded first (from /proc when new), then read together.
        self.table.get(ev.pid);
        if ev.ppid != 0 {
            self.table.get(ev.ppid);
        }
        let exe: Option<&[u8]> = if ev.action == Action::Exec && ev.success() {
            ev.path.as_deref()
        } else {
            self.table.peek(ev.pid).and_then(|p| p.exe.as_deref())
        };
        let parent_exe = self.table.peek(ev.ppid).and_then(|p| p.exe.as_deref());
        let matcher = Matcher { rules: &self.rules.rules, plan: &self.plan };
        let Some(rule) = matcher.evaluate_at(ev, Actor { exe, parent_exe }) else {
            tracing::trace!(action = ev.action.as_str(), pid = ev.pid, path = ?ev.path.as_deref().map(String::from_utf8_lossy), flags = ev.flags, "no rule matched");
            return self.handle_tamper(ev);
        };
        if ev.action == Action::Connect && ev.success() {
            // What the process now sends on this connection is decoded (Docker API requests).
            self.open_stream(ev);
        }
        self.emit(ev, Raised::Rule(rule), None, None)?;
        self.handle_tamper(ev)
    }

    /// Self-defence: alert when the event reaches for the monitor itself.
    fn handle_tamper(&mut self, ev: &Arc<Event>) -> std::io::Result<()> {
        let Some((key, detail)) = self_defence::judge(ev, self.monitor_ppid) else { return Ok(()) };
        let keys = [key.to_string()];
        self.emit(ev, Raised::Builtin { keys: &keys, source: self_defence::SOURCE }, None, Some(detail))
    }

    fn open_stream(&mut self, ev: &Event) {
        if self.streams.len() >= MAX_STREAMS {
            if let Some(oldest) = self.streams.iter().min_by_key(|(_, t)| t.opened).map(|(k, _)| *k) {
                self.streams.remove(&oldest);
            }
        }
        let socket = ev.path2.clone().or_else(|| ev.path.clone()).unwrap_or_default();
        self.streams.insert((ev.pid, ev.args[0] as u32), Tracked { stream: Stream::default(), socket, opened: self.events });
    }

    /// Bytes sent on a connection that raised a connect alert: every complete HTTP request
    /// in them becomes an alert of its own (see `rules::docker_api`).
    fn handle_payload(&mut self, ev: &Arc<Event>) -> std::io::Result<()> {
        let key = (ev.pid, ev.args[0] as u32);
        let Some(tracked) = self.streams.get_mut(&key) else { return Ok(()) };
        let requests = tracked.stream.feed(ev.args[1], ev.args[2], &ev.payload);
        let socket = tracked.socket.clone();
        for req in requests {
            let decoded = docker_api::decode(&req);
            let keys: Vec<String> = decoded.keys().into_iter().map(str::to_string).collect();
            let rule = Raised::Builtin { keys: &keys, source: docker_api::SOURCE };
            self.emit(ev, rule, Some(Box::new((decoded, socket.clone()))), None)?;
        }
        Ok(())
    }

    fn emit(
        &mut self,
        ev: &Arc<Event>,
        rule: Raised,
        docker: Option<Box<(DockerRequest, Vec<u8>)>>,
        tamper: Option<String>,
    ) -> std::io::Result<()> {
        let kind = match rule {
            Raised::Rule(ri) => self.rules.rules[ri].kind,
            Raised::Builtin { .. } => Kind::Alert,
        };
        if kind == Kind::Event {
            // The audit trail: counted always, printed when asked for.
            self.trail += 1;
            if !self.audit_trail {
                return Ok(());
            }
        } else {
            self.alerts += 1;
        }
        self.sequence += 1;
        let container = match &self.container_override {
            Some(decided) => decided.clone(),
            None => container_of(&mut self.containers, ev),
        };
        self.render_process_parts(ev)?;
        self.render_user_parts(ev)?;
        if self.hostname_sent.as_ref().is_none_or(|h| !Arc::ptr_eq(h, &self.hostname)) {
            self.out.send(Item::Hostname(self.hostname.to_string()))?;
            self.hostname_sent = Some(self.hostname.clone());
        }
        let rule = match rule {
            Raised::Rule(ri) => {
                if self.rules_sent.len() <= ri {
                    self.rules_sent.resize(ri + 1, false);
                }
                if !self.rules_sent[ri] {
                    let r = &self.rules.rules[ri];
                    let json = RuleJson::render(&RuleRef { keys: &r.keys, source: RuleSource::Line(&r.source) });
                    self.out.send(Item::Rule(ri, json))?;
                    self.rules_sent[ri] = true;
                }
                RaisedBy::Loaded(ri)
            }
            Raised::Builtin { keys, source } => RaisedBy::Builtin(RuleJson::render(&RuleRef { keys, source: RuleSource::Builtin(source) })),
        };
        let alert = Alert {
            ev: ev.clone(),
            kind,
            rule,
            sequence: self.sequence,
            wall_ns: self.clock.wall_ns(ev.ts_boot_ns),
            container,
            docker,
            tamper,
            monitor_pid: self.monitor_pid,
        };
        self.out.send(Item::Alert(alert))?;
        self.line_done()
    }
}

impl<W: Write + Send + 'static> Pipeline<W> {
    /// Render and write alerts on a thread of their own (replays; see `sink::output`).
    pub fn render_on_thread(self) -> std::io::Result<Pipeline<W>> {
        let out = self.out.threaded()?;
        Ok(Pipeline { out, ..self })
    }
}

impl<W: Write> Pipeline<W> {
    /// The alert's process members, rendered and sent to the output again only when the
    /// process, its parent or the table changed since the last alert. They come from the table, which
    /// has taken in the event first (an exec's new image and argv included).
    fn render_process_parts(&mut self, ev: &Event) -> std::io::Result<()> {
        if self.process_parts_of == Some((self.table.version(), ev.pid, ev.ppid)) {
            return Ok(());
        }
        self.table.load_lineage(ev.pid);
        self.table.get(ev.ppid);
        let process = self.table.peek(ev.pid);
        let exe = process.and_then(|p| p.exe.as_deref());
        let args = process.map(|p| p.args.as_slice()).unwrap_or_default();
        let parent_exe = self.table.peek(ev.ppid).and_then(|p| p.exe.as_deref());
        let mut parts = ProcessParts::default();
        parts.render(exe, args, ev.ppid, parent_exe, &self.table.ancestors(ev.pid));
        self.process_parts_of = Some((self.table.version(), ev.pid, ev.ppid));
        self.out.send(Item::Process(parts))
    }

    /// The alert's user members, rendered and sent to the output again only when the ids
    /// or the user names changed since the last alert.
    fn render_user_parts(&mut self, ev: &Event) -> std::io::Result<()> {
        let key = (self.users.version(), [ev.ids.uid, ev.ids.euid, ev.auid, ev.ids.gid, ev.ids.egid]);
        if self.user_parts_of == Some(key) {
            return Ok(());
        }
        let mut parts = UserParts::default();
        parts.render(ev, |uid| self.users.name(uid));
        self.user_parts_of = Some(key);
        self.out.send(Item::User(parts))
    }

    /// Put new rules (and their plan) in place of the loaded ones.
    pub fn set_rules(&mut self, rules: RuleSet, plan: FilterPlan) {
        self.rules = rules;
        self.plan = plan;
        self.rules_sent.clear();
        self.plan_changed();
    }

    fn line_done(&mut self) -> std::io::Result<()> {
        if self.flush_each_line {
            self.out.flush()?;
        }
        Ok(())
    }

    /// Write an in-band record about the monitor itself (`event.kind: "metric"`): start,
    /// heartbeat, events lost, stop. It takes a sequence number like an alert, so a gap in
    /// `event.sequence` can only mean lines lost after the monitor wrote them.
    pub fn record(&mut self, action: &str, monitor: serde_json::Value) -> std::io::Result<()> {
        self.sequence += 1;
        let now = self.clock.now_wall_ns();
        let line = crate::sink::json::render_record(action, self.sequence, &enrich::rfc3339(now), &self.hostname, monitor);
        self.capture_record(capture::rec::OUTPUT, line.as_bytes());
        self.out.send(Item::Line(line.into_bytes()))?;
        self.line_done()
    }

    /// Handle every record the ring buffer holds now.
    pub fn drain(&mut self, ring: &mut aya::maps::RingBuf<aya::maps::MapData>) -> std::io::Result<()> {
        while let Some(item) = ring.next() {
            self.handle_record(&item)?;
        }
        Ok(())
    }

    /// The kernel's loss counter reads `total`: write an `events-lost` record for what was
    /// lost since `window_start` (if anything). Returns the end of this window.
    pub fn report_loss(&mut self, total: u64, window_start: i128) -> std::io::Result<i128> {
        let now = self.clock.now_wall_ns();
        if total > self.lost {
            let lost = total - self.lost;
            warn!(lost, total, "events lost in the kernel (ring buffer full or stage unreachable)");
            self.lost = total;
            let window = serde_json::json!({"start": enrich::rfc3339(window_start), "end": enrich::rfc3339(now)});
            self.record("events-lost", serde_json::json!({"lost": lost, "lost_total": total, "window": window}))?;
        }
        Ok(now)
    }

    /// Counters for heartbeat and stop records.
    pub fn totals(&self) -> serde_json::Value {
        serde_json::json!({
            "events": self.events,
            "alerts": self.alerts,
            "trail": self.trail,
            "lost": self.lost,
            "decode_errors": self.decode_errors,
        })
    }
}

/// Connections whose requests are decoded, at most (the oldest is dropped).
const MAX_STREAMS: usize = 4096;

/// A connection to a watched socket whose outgoing bytes are decoded.
pub struct Tracked {
    stream: Stream,
    /// The socket's path, for the alerts.
    socket: Vec<u8>,
    /// `events` count when it was opened (for eviction).
    opened: u64,
}

fn container_json(c: &ContainerInfo) -> serde_json::Value {
    let m = c.meta.clone().unwrap_or_default();
    serde_json::json!({"id": c.id, "runtime": c.runtime, "meta": c.meta.is_some(), "name": m.name, "image": m.image, "privileged": m.privileged})
}

fn container_from_json(v: &serde_json::Value) -> Option<ContainerInfo> {
    let runtime = match v.get("runtime").and_then(|r| r.as_str()) {
        Some("docker") => Some("docker"),
        Some("podman") => Some("podman"),
        Some("cri-o") => Some("cri-o"),
        Some("containerd") => Some("containerd"),
        _ => None,
    };
    let meta = (v.get("meta").and_then(|m| m.as_bool()) == Some(true)).then(|| crate::enrich::container::ContainerMeta {
        name: v.get("name").and_then(|x| x.as_str()).map(str::to_string),
        image: v.get("image").and_then(|x| x.as_str()).map(str::to_string),
        privileged: v.get("privileged").and_then(|x| x.as_bool()),
    });
    Some(ContainerInfo { id: v.get("id")?.as_str()?.to_string(), runtime, meta })
}

/// The container `ev` came from: by the cgroup name the kernel sent, else (a process in a
/// sub-cgroup of its container) by its full cgroup paths while it still runs.
fn container_of(containers: &mut Containers, ev: &Event) -> Option<ContainerInfo> {
    let c = containers.of_task(ev.cgroup_id, &ev.cgroup_name, ev.pid)?;
    let (meta, runtime) = containers.lookup(&c);
    Some(ContainerInfo {
        id: c.id,
        runtime,
        meta,
    })
}

/// How often watched paths are re-resolved (a socket or file recreated gets a new inode).
const REFRESH_EVERY: Duration = Duration::from_secs(2);
/// How often the kernel's loss counters are read: a loss is reported within this time.
const LOSS_EVERY: Duration = Duration::from_secs(1);
/// How often the ring buffer is read without a wakeup: process-lifecycle records are
/// submitted without waking us (they are frequent and only feed the process table).
const DRAIN_EVERY: Duration = Duration::from_millis(50);

/// Where live events come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// The eBPF sensors (default).
    Ebpf,
    /// The kernel audit subsystem's multicast (beside auditd; its rules decide what comes).
    Audit,
}

/// Settings of `monitor run` beyond the rules.
pub struct RunOptions {
    /// Interval of heartbeat records; `None`: no heartbeats.
    pub heartbeat: Option<Duration>,
    /// Load the rules again (SIGHUP): the complete new set, or every error found.
    pub reload: Box<dyn Fn() -> std::result::Result<RuleSet, Vec<String>>>,
    /// Record everything for `monitor replay` into this file (eBPF source).
    pub capture: Option<std::path::PathBuf>,
    pub source: SourceKind,
    /// Print the audit trail (`kind=event` rules' matches) besides the alerts.
    pub audit_trail: bool,
    /// Size of the kernel's event ring buffer (eBPF source).
    pub ring_buffer_size: crate::source::ebpf::ring::RingSize,
}

/// An audit event still open after this long without a record is complete (live).
const AUDIT_QUIET_MS: u64 = 200;

/// A running source: its readiness, its reads, its loss counter.
enum Live {
    Ebpf { sensor: EbpfSource, ring: AsyncFd<aya::maps::RingBuf<aya::maps::MapData>> },
    Audit { socket: AsyncFd<crate::source::audit::netlink::Multicast>, feed: audit::AuditFeed, lost_at_start: u32, started: std::time::Instant },
}

impl Live {
    fn start(source: SourceKind, plan: &FilterPlan, ring_buffer_size: crate::source::ebpf::ring::RingSize) -> Result<Live> {
        match source {
            SourceKind::Ebpf => {
                let mut sensor = EbpfSource::load(plan, ring_buffer_size)?;
                let ring = sensor.take_ring()?;
                // SAFETY: the AsyncFd owns the RingBuf, which owns the map's fd: the fd
                // outlives the registration.
                let ring = unsafe { AsyncFd::register(ring) }.context("polling the ring buffer")?;
                Ok(Live::Ebpf { sensor, ring })
            }
            SourceKind::Audit => {
                use crate::source::audit::netlink;
                let socket = netlink::Multicast::subscribe()?;
                let status = netlink::status().context("reading the kernel's audit status")?;
                if status.enabled == 0 {
                    warn!("kernel auditing is disabled (auditctl -e 1 enables it): no records will arrive");
                }
                // The kernel gives a process an audit context when it forks, and only once
                // auditing has been enabled since boot: what ran before is never audited.
                let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
                if !cmdline.split_whitespace().any(|w| w == "audit=1") {
                    warn!("the kernel was booted without audit=1: processes started before auditing was first enabled are never audited (add audit=1 to the kernel command line)");
                }
                match netlink::rule_count() {
                    Ok(0) => warn!("the kernel has no audit rules loaded: only user-space messages will arrive (load rules with auditctl -R FILE)"),
                    Ok(n) => info!(kernel_rules = n, auditd_pid = status.pid, "reading the audit multicast"),
                    Err(e) => warn!(error = %e, "cannot list the kernel's audit rules"),
                }
                // SAFETY: the AsyncFd owns the Multicast, which owns the socket's fd.
                let socket = unsafe { AsyncFd::register(socket) }.context("polling the audit socket")?;
                Ok(Live::Audit { socket, feed: audit::AuditFeed::live(), lost_at_start: status.lost, started: std::time::Instant::now() })
            }
        }
    }

    /// The hook points attached (`syscalls:sys_exit_openat`, `tp_btf:sched_process_exec`).
    fn hook_points(&self) -> &[String] {
        match self {
            Live::Ebpf { sensor, .. } => &sensor.attached,
            Live::Audit { .. } => &[],
        }
    }

    fn hooks(&self) -> usize {
        self.hook_points().len()
    }

    /// Wait until events are waiting, then handle them.
    async fn ready<W: Write>(&mut self, p: &mut Pipeline<W>) -> Result<std::io::Result<()>> {
        match self {
            Live::Ebpf { ring, .. } => {
                let mut guard = ring.readable_mut().await?;
                let r = p.drain(guard.get_inner_mut());
                guard.clear_ready();
                Ok(r)
            }
            Live::Audit { socket, feed, started, .. } => {
                let mut guard = socket.readable_mut().await?;
                let now = started.elapsed().as_millis() as u64;
                let r = guard.get_inner_mut().drain(|t, body| feed.push_netlink(t, body, now, p));
                guard.clear_ready();
                Ok(r)
            }
        }
    }

    /// Handle what is waiting without a wakeup (lifecycle records; quiet audit events).
    fn poll<W: Write>(&mut self, p: &mut Pipeline<W>) -> std::io::Result<()> {
        match self {
            Live::Ebpf { ring, .. } => p.drain(ring.get_mut()),
            Live::Audit { socket, feed, started, .. } => {
                let now = started.elapsed().as_millis() as u64;
                socket.get_mut().drain(|t, body| feed.push_netlink(t, body, now, p))?;
                feed.expire(now.saturating_sub(AUDIT_QUIET_MS), p)
            }
        }
    }

    /// Events lost so far: the kernel's drop counters; for audit, the records the kernel
    /// lost since the start plus socket overruns (each overrun is at least one record).
    fn lost(&self) -> Option<u64> {
        match self {
            Live::Ebpf { sensor, .. } => sensor.drops().ok(),
            Live::Audit { socket, lost_at_start, .. } => {
                let kernel = crate::source::audit::netlink::status().ok()?.lost.wrapping_sub(*lost_at_start) as u64;
                Some(kernel + socket.get_ref().overruns)
            }
        }
    }

    /// Whether the kernel staled watch entries since they were last armed (eBPF).
    fn epochs_moved(&self) -> bool {
        match self {
            Live::Ebpf { sensor, .. } => sensor.epochs_moved(),
            Live::Audit { .. } => false,
        }
    }

    /// Watched paths changed: tell the kernel filter (audit: the kernel's audit rules are
    /// auditd's, nothing to do).
    fn sync_watches(&mut self, plan: &FilterPlan) -> Result<()> {
        match self {
            Live::Ebpf { sensor, .. } => sensor.sync_watches(plan),
            Live::Audit { .. } => Ok(()),
        }
    }
}

/// Run the live pipeline until SIGINT/SIGTERM or until stdout goes away.
pub async fn run_live(rules: RuleSet, opts: RunOptions) -> Result<()> {
    // First, so that a stop request during the load is honoured, not fatal.
    let mut signals = signals::Signals::listen(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP]).context("listening for signals")?;
    let for_source = |rules: RuleSet| match opts.source {
        SourceKind::Audit => rules.for_audit().0,
        SourceKind::Ebpf => rules,
    };
    let rules = for_source(rules);
    let plan = crate::rules::targets::plan(&rules.rules);
    let mut live = Live::start(opts.source, &plan, opts.ring_buffer_size)?;
    let stdout = std::io::stdout();
    let mut pipeline = Pipeline::new(rules, plan, stdout.lock());
    pipeline.audit_trail = opts.audit_trail;
    if let Some(path) = &opts.capture {
        anyhow::ensure!(opts.source == SourceKind::Ebpf, "--capture records the eBPF source; with --source audit, keep auditd's log and replay it with --format auditd");
        let writer = capture::Writer::create(path)?;
        pipeline.start_capture(writer).context("writing the capture header")?;
        info!(file = %path.display(), "capturing");
    }
    let mut refresh = tokio::time::interval(REFRESH_EVERY);
    let mut loss = tokio::time::interval(LOSS_EVERY);
    let mut drain = tokio::time::interval(DRAIN_EVERY);
    let heartbeat_every = opts.heartbeat.unwrap_or(Duration::from_secs(365 * 86_400));
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat_every, heartbeat_every);
    let mut window_start = pipeline.clock.now_wall_ns();
    let source_name = match opts.source {
        SourceKind::Ebpf => "ebpf",
        SourceKind::Audit => "audit",
    };
    info!(
        source = source_name,
        hooks = live.hooks(),
        rules = pipeline.rules.rules.len(),
        watched_paths = pipeline.plan.targets.len(),
        "monitor running"
    );
    let start = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "source": source_name,
        "rules": {"count": pipeline.rules.rules.len(), "hash": pipeline.rules.hash(), "files": pipeline.rules.files},
        "hooks": live.hooks(),
        "hook_points": live.hook_points(),
        "kernel": enrich::kernel_release(),
        "heartbeat_s": opts.heartbeat.map(|d| d.as_secs()),
    });
    if let Err(e) = pipeline.record("monitor-start", serde_json::json!({ "start": start })) {
        return finish(e);
    }
    let stop = loop {
        tokio::select! {
            r = live.ready(&mut pipeline) => {
                if let Err(e) = r? {
                    return finish(e);
                }
                rearm(&mut pipeline, &mut live)?;
            }
            _ = drain.tick() => {
                if let Err(e) = live.poll(&mut pipeline) {
                    return finish(e);
                }
                rearm(&mut pipeline, &mut live)?;
            }
            request = signals.recv() => {
                let Some(request) = request else { break None };
                if request.signal != libc::SIGHUP {
                    break Some(request);
                }
                // Validated completely first; on any error the old rules stay.
                let record = match (opts.reload)() {
                    Ok(rules) => {
                        let rules = for_source(rules);
                        let plan = crate::rules::targets::plan(&rules.rules);
                        live.sync_watches(&plan)?;
                        pipeline.set_rules(rules, plan);
                        info!(rules = pipeline.rules.rules.len(), "rules reloaded");
                        ("rules-reloaded", serde_json::json!({"rules": {"count": pipeline.rules.rules.len(), "hash": pipeline.rules.hash(), "files": pipeline.rules.files}}))
                    }
                    Err(errors) => {
                        warn!(errors = errors.len(), "rules reload failed; the previous rules stay active");
                        for e in &errors {
                            warn!("{e}");
                        }
                        ("rules-reload-failed", serde_json::json!({"errors": errors, "rules": {"hash": pipeline.rules.hash()}}))
                    }
                };
                if let Err(e) = pipeline.record(record.0, record.1) {
                    return finish(e);
                }
            }
            _ = loss.tick() => {
                let drops = live.lost().unwrap_or(pipeline.lost);
                match pipeline.report_loss(drops, window_start) {
                    Ok(now) => window_start = now,
                    Err(e) => return finish(e),
                }
            }
            _ = heartbeat.tick() => {
                let totals = pipeline.totals();
                if let Err(e) = pipeline.record("heartbeat", totals) {
                    return finish(e);
                }
            }
            _ = refresh.tick() => {
                if pipeline.users.refresh() {
                    pipeline.users_changed();
                }
                pipeline.containers.prune();
                // Identities changed (a file recreated), or the kernel staled entries whose
                // event this loop has not seen yet: arm the watches again.
                let changed = pipeline.plan.refresh();
                if changed || live.epochs_moved() {
                    live.sync_watches(&pipeline.plan)?;
                }
                if changed {
                    pipeline.plan_changed();
                }
                debug!(processes = pipeline.table.len(), events = pipeline.events, "tick");
            }
        }
    };
    // Handle what the kernel already produced before stopping.
    if let Err(e) = live.poll(&mut pipeline) {
        return finish(e);
    }
    if let Live::Audit { feed, .. } = &mut live {
        if let Err(e) = feed.finish(&mut pipeline) {
            return finish(e);
        }
    }
    // Losses since the last report get their record before the totals.
    let drops = live.lost().unwrap_or(pipeline.lost);
    if let Err(e) = pipeline.report_loss(drops, window_start) {
        return finish(e);
    }
    let mut totals = pipeline.totals();
    let reason = stop.as_ref().map_or("signals closed", |r| r.name());
    totals["reason"] = serde_json::json!(reason);
    if let Some(request) = &stop {
        totals["requested_by"] = request.requested_by(pipeline.monitor_ppid);
    }
    if let Err(e) = pipeline.record("monitor-stop", totals) {
        return finish(e);
    }
    if let Some(mut w) = pipeline.capture.take() {
        w.flush().context("finishing the capture")?;
        let per_event = if w.events > 0 { w.bytes / w.events } else { 0 };
        info!(events = w.events, bytes = w.bytes, bytes_per_event = per_event, "capture written");
    }
    info!(reason, events = pipeline.events, alerts = pipeline.alerts, lost = pipeline.lost, "monitor stopped");
    Ok(())
}

/// Re-arm the kernel's watch entries when an event said the kernel staled them.
fn rearm<W: Write>(pipeline: &mut Pipeline<W>, live: &mut Live) -> Result<()> {
    if std::mem::take(&mut pipeline.rearm) {
        live.sync_watches(&pipeline.plan)?;
    }
    Ok(())
}

/// stdout closed (the reader went away): a clean stop, not a crash.
fn finish(e: std::io::Error) -> Result<()> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        info!("stdout closed; stopping");
        return Ok(());
    }
    Err(e).context("writing alerts to stdout")
}

/// What a replay did, for the summary on stderr.
pub struct ReplayStats {
    pub events: u64,
    pub alerts: u64,
    pub bytes: usize,
    /// Where the capture was cut off mid-record, if it was.
    pub truncated_at: Option<usize>,
    pub same_rules: bool,
}

/// Run a capture through `rules` and write the alerts (and the recorded in-band records) to
/// `out`. `ids` resolves user and group names in the recorded self-defence rules.
/// `progress(read, total)` is called now and then with the bytes read.
pub fn replay<W: Write + Send + 'static>(
    file: &std::path::Path,
    rules: RuleSet,
    ids: &dyn crate::rules::parse::IdResolver,
    out: W,
    audit_trail: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReplayStats> {
    let mut reader = capture::Reader::open(file)?;
    let (kind, header) = reader.next_record()?.context("the capture is empty")?;
    anyhow::ensure!(kind == capture::rec::HEADER, "the capture does not start with a header");
    let header: serde_json::Value = serde_json::from_slice(header).context("capture header")?;
    anyhow::ensure!(header["version"] == 1, "capture format version {} is not supported (this monitor reads 1)", header["version"]);
    let offset: i128 = header["clock_offset_ns"].as_str().and_then(|s| s.parse().ok()).context("capture header: clock_offset_ns")?;
    // The live run put its self-defence watches in front: so does the replay.
    let rules = match header["prelude"].as_str() {
        Some(text) => rules.with_prelude(text.to_string(), ids).map_err(|e| anyhow::anyhow!("recorded prelude rules: {:?}", e.0))?,
        None => rules,
    };
    let same_rules = header["rules_hash"].as_str() == Some(rules.hash().as_str());
    let plan = crate::rules::targets::plan(&rules.rules);
    let mut pipeline = Pipeline::offline(
        rules,
        plan,
        out,
        Clock { offset_ns: offset },
        header["host"].as_str().unwrap_or_default().into(),
        header["monitor_pid"].as_u64().unwrap_or(0) as u32,
    )
    .render_on_thread()
    .context("starting the render thread")?;
    pipeline.monitor_ppid = header["monitor_ppid"].as_u64().unwrap_or(0) as u32;
    pipeline.audit_trail = audit_trail;
    // One recorded event with the records that belong to it (written after it, applied
    // first). The buffer is reused from event to event.
    let mut pending: Option<Vec<u8>> = None;
    let mut spare_buf: Vec<u8> = Vec::new();
    // The capturing run's plan, for translating its watch ids when the rules differ.
    let mut recorded_plan = FilterPlan::default();
    let mut procs: Vec<(u32, crate::enrich::process::ProcInfo)> = Vec::new();
    let mut enrich: Option<serde_json::Value> = None;
    let flush = |p: &mut Pipeline<W>, pending: &mut Option<Vec<u8>>, spare: &mut Vec<u8>, procs: &mut Vec<_>, enrich: &mut Option<serde_json::Value>, recorded: &FilterPlan| -> std::io::Result<()> {
        for (pid, info) in procs.drain(..) {
            p.table.insert(pid, info);
        }
        if let Some(ev) = pending.take() {
            p.replay_event(&ev, enrich.as_ref(), (!same_rules).then_some(recorded))?;
            *spare = ev;
        }
        *enrich = None;
        Ok(())
    };
    let mut records = 0u64;
    loop {
        records += 1;
        if records % 8192 == 0 {
            progress(reader.offset() as u64, reader.len() as u64);
        }
        let Some((kind, body)) = reader.next_record()? else { break };
        match kind {
            capture::rec::EVENT => {
                flush(&mut pipeline, &mut pending, &mut spare_buf, &mut procs, &mut enrich, &recorded_plan)?;
                let mut buf = std::mem::take(&mut spare_buf);
                buf.clear();
                buf.extend_from_slice(body);
                pending = Some(buf);
            }
            capture::rec::PROCESS => {
                let (pid, info) = capture::decode_process(body).with_context(|| format!("process record before byte {}", reader.offset()))?;
                if pending.is_some() {
                    procs.push((pid, info));
                } else {
                    pipeline.table.insert(pid, info);
                }
            }
            capture::rec::ENRICH => enrich = serde_json::from_slice(body).ok(),
            capture::rec::USERS => {
                flush(&mut pipeline, &mut pending, &mut spare_buf, &mut procs, &mut enrich, &recorded_plan)?;
                let names: std::collections::HashMap<u32, String> = serde_json::from_slice(body).unwrap_or_default();
                pipeline.users = Users::from_map(names);
            }
            capture::rec::PLAN => {
                flush(&mut pipeline, &mut pending, &mut spare_buf, &mut procs, &mut enrich, &recorded_plan)?;
                if let Ok(plan) = serde_json::from_slice::<FilterPlan>(body) {
                    if same_rules {
                        pipeline.plan = plan.clone();
                        pipeline.plan.link(&pipeline.rules.rules);
                    }
                    recorded_plan = plan;
                }
            }
            capture::rec::OUTPUT => {
                flush(&mut pipeline, &mut pending, &mut spare_buf, &mut procs, &mut enrich, &recorded_plan)?;
                pipeline.replay_output(body)?;
            }
            other => warn!(kind = other, offset = reader.offset(), "unknown capture record type; skipped"),
        }
    }
    flush(&mut pipeline, &mut pending, &mut spare_buf, &mut procs, &mut enrich, &recorded_plan)?;
    pipeline.out.finish()?;
    progress(reader.len() as u64, reader.len() as u64);
    Ok(ReplayStats {
        events: pipeline.events,
        alerts: pipeline.alerts,
        bytes: reader.len(),
        truncated_at: reader.truncated_at,
        same_rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::event_at;
    use serde_json::json;

    /// Alerts from one process reuse its rendered process members; whatever changes the
    /// table in between (its parent's exec or exit, a reparenting) shows in the next alert.
    #[test]
    fn process_members_follow_the_table_between_alerts() {
        let rules = RuleSet::from_texts([("t.rules".to_string(), "-w /etc/watched -p wa -k w\n")], &crate::rules::parse::SystemIds::load()).unwrap();
        let plan = crate::rules::targets::plan(&rules.rules);
        let mut p = Pipeline::offline(rules, plan, Vec::new(), Clock { offset_ns: 0 }, "h".into(), 1);
        let exec = |pid: u32, ppid: u32, exe: &str| Event { pid, tid: pid, ppid, argv: vec![exe.as_bytes().to_vec(), b"-x".to_vec()], ..event_at(Action::Exec, 59, exe) };
        let alert = |pid: u32, ppid: u32| Event { pid, tid: pid, ppid, ..event_at(Action::Unlink, 87, "/etc/watched") };
        let fork = |pid: u32, child: u32| Event { pid, child_or_code: child as u64, ..event_at(Action::Fork, -1, "") };
        let exit = |pid: u32| Event { pid, ..event_at(Action::Exit, -1, "") };
        let steps = [
            exec(10, 1, "/bin/sh"),
            fork(10, 20),
            exec(20, 10, "/bin/tool"),
            alert(20, 10),
            alert(20, 10),
            exec(10, 1, "/bin/bash"),
            alert(20, 10),
            exit(10),
            alert(20, 10),
            alert(20, 1),
            exec(20, 1, "/bin/other"),
            alert(20, 1),
        ];
        for ev in &steps {
            p.handle_event(ev.clone()).unwrap();
        }
        let process: Vec<serde_json::Value> = String::from_utf8(p.out.inline_writer().clone())
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let pr = &v["process"];
                json!([pr["executable"], pr["args"], pr["parent"], pr["ancestors"]])
            })
            .collect();
        let tool = json!(["/bin/tool", "-x"]);
        assert_eq!(
            process,
            [
                json!(["/bin/tool", tool, {"pid": 10, "executable": "/bin/sh"}, [{"pid": 10, "executable": "/bin/sh"}, {"pid": 1, "executable": null}]]),
                json!(["/bin/tool", tool, {"pid": 10, "executable": "/bin/sh"}, [{"pid": 10, "executable": "/bin/sh"}, {"pid": 1, "executable": null}]]),
                json!(["/bin/tool", tool, {"pid": 10, "executable": "/bin/bash"}, [{"pid": 10, "executable": "/bin/bash"}, {"pid": 1, "executable": null}]]),
                json!(["/bin/tool", tool, {"pid": 10, "executable": null}, [{"pid": 10, "executable": null}]]),
                json!(["/bin/tool", tool, {"pid": 1, "executable": null}, [{"pid": 1, "executable": null}]]),
                json!(["/bin/other", ["/bin/other", "-x"], {"pid": 1, "executable": null}, [{"pid": 1, "executable": null}]]),
            ]
        );
    }

    /// Alerts reuse their rule's and their user's members; new ids, new user names and
    /// reloaded rules show in the next alert.
    #[test]
    fn user_and_rule_members_follow_ids_names_and_reloaded_rules() {
        let load = |text: &str| RuleSet::from_texts([("t.rules".to_string(), text)], &crate::rules::parse::SystemIds::load()).unwrap();
        let rules = load("-w /etc/watched -p wa -k first\n");
        let plan = crate::rules::targets::plan(&rules.rules);
        let mut p = Pipeline::offline(rules, plan, Vec::new(), Clock { offset_ns: 0 }, "h".into(), 1);
        p.users = Users::from_map([(1000, "alice".to_string())].into());
        let alert = |euid: u32| {
            let mut ev = event_at(Action::Unlink, 87, "/etc/watched");
            ev.ids.euid = euid;
            ev
        };
        p.handle_event(alert(1000)).unwrap();
        p.handle_event(alert(1000)).unwrap();
        p.handle_event(alert(0)).unwrap();
        p.users = Users::from_map([(1000, "bob".to_string())].into());
        p.handle_event(alert(0)).unwrap();
        let rules = load("-w /etc/watched -p wa -k second -k third\n");
        let plan = crate::rules::targets::plan(&rules.rules);
        p.set_rules(rules, plan);
        p.handle_event(alert(0)).unwrap();
        let seen: Vec<serde_json::Value> = String::from_utf8(p.out.inline_writer().clone())
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                json!([v["user"]["name"], v["user"]["effective"], v["rule"]["key"], v["rule"]["keys"]])
            })
            .collect();
        assert_eq!(
            seen,
            [
                json!(["alice", {"id": "1000", "name": "alice"}, "first", null]),
                json!(["alice", {"id": "1000", "name": "alice"}, "first", null]),
                json!(["alice", {"id": "0", "name": null}, "first", null]),
                json!(["bob", {"id": "0", "name": null}, "first", null]),
                json!(["bob", {"id": "0", "name": null}, "second", ["second", "third"]]),
            ]
        );
    }
}
