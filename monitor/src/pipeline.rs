//! The live pipeline: ring buffer → decode → enrich → match → JSON line on stdout.

use crate::enrich::{self, container::Containers, process::ProcessTable, users::Users, Clock};
use crate::event::{Action, Event};
use crate::rules::{matcher::Matcher, targets::FilterPlan, RuleSet};
use crate::enrich::http::Stream;
use crate::rules::docker_api::{self, DockerRequest};
use crate::rules::self_defence;
use crate::sink::json::{render, AlertInput, ContainerInfo, RuleRef};
use std::collections::HashMap;
use crate::source::ebpf::{decode::decode, EbpfSource};
use anyhow::{Context, Result};
use std::io::Write;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{debug, info, warn};

/// Everything between a decoded event and an alert line.
pub struct Pipeline<W: Write> {
    pub rules: RuleSet,
    pub plan: FilterPlan,
    pub table: ProcessTable,
    pub users: Users,
    pub containers: Containers,
    /// Captured connections by (pid, fd).
    pub streams: HashMap<(u32, u32), Tracked>,
    pub clock: Clock,
    pub hostname: String,
    pub sequence: u64,
    pub out: W,
    pub events: u64,
    pub decode_errors: u64,
    /// Alert lines written.
    pub alerts: u64,
    /// Events the kernel could not hand over (reported in `events-lost` records).
    pub lost: u64,
}

impl<W: Write> Pipeline<W> {
    pub fn new(rules: RuleSet, plan: FilterPlan, out: W) -> Pipeline<W> {
        let mut table = ProcessTable::new();
        table.seed_from_proc();
        Pipeline {
            rules,
            plan,
            table,
            users: Users::new(),
            containers: Containers::new(),
            streams: HashMap::new(),
            clock: Clock::measure(),
            hostname: enrich::hostname(),
            sequence: 0,
            out,
            events: 0,
            decode_errors: 0,
            alerts: 0,
            lost: 0,
        }
    }

    /// Handle one raw record. Errors are output failures (the sink is gone).
    pub fn handle_record(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.events += 1;
        match decode(bytes) {
            Ok(mut ev) => {
                enrich::paths::canonicalise_event(&mut ev);
                let plan = &self.plan;
                enrich::paths::name_detached(&mut ev, |dev, ino| plan.by_identity(dev, ino).map(|t| t.canonical.clone()));
                self.handle_event(&ev)
            }
            Err(e) => {
                self.decode_errors += 1;
                warn!(error = %e, "undecodable kernel record");
                Ok(())
            }
        }
    }

    pub fn handle_event(&mut self, ev: &Event) -> std::io::Result<()> {
        self.table.observe(ev);
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
        let exe: Option<Vec<u8>> = if ev.action == Action::Exec && ev.success() {
            ev.path.clone()
        } else {
            self.table.get(ev.pid).and_then(|p| p.exe.clone())
        };
        let matcher = Matcher { rules: &self.rules.rules, plan: &self.plan };
        let Some(rule) = matcher.evaluate(ev, exe.as_deref()) else {
            tracing::trace!(action = ev.action.as_str(), pid = ev.pid, path = ?ev.path.as_deref().map(String::from_utf8_lossy), flags = ev.flags, "no rule matched");
            return self.handle_tamper(ev);
        };
        let rule = RuleRef { keys: rule.keys.clone(), source: rule.source.to_string() };
        if ev.action == Action::Connect && ev.success() {
            // What the process now sends on this connection is decoded (Docker API requests).
            self.open_stream(ev);
        }
        self.emit(ev, rule, None, None)?;
        self.handle_tamper(ev)
    }

    /// Self-defence: alert when the event reaches for the monitor itself.
    fn handle_tamper(&mut self, ev: &Event) -> std::io::Result<()> {
        let Some(detail) = self_defence::judge(ev) else { return Ok(()) };
        let rule = RuleRef { keys: vec![self_defence::KEY.to_string()], source: self_defence::SOURCE.to_string() };
        self.emit(ev, rule, None, Some(&detail))
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
    fn handle_payload(&mut self, ev: &Event) -> std::io::Result<()> {
        let key = (ev.pid, ev.args[0] as u32);
        let Some(tracked) = self.streams.get_mut(&key) else { return Ok(()) };
        let requests = tracked.stream.feed(ev.args[1], ev.args[2], &ev.payload);
        let socket = tracked.socket.clone();
        for req in requests {
            let decoded = docker_api::decode(&req);
            let rule = RuleRef {
                keys: decoded.keys().into_iter().map(str::to_string).collect(),
                source: docker_api::SOURCE.to_string(),
            };
            self.emit(ev, rule, Some((&decoded, socket.as_slice())), None)?;
        }
        Ok(())
    }

    fn emit(
        &mut self,
        ev: &Event,
        rule: RuleRef,
        docker: Option<(&DockerRequest, &[u8])>,
        tamper: Option<&str>,
    ) -> std::io::Result<()> {
        self.sequence += 1;
        self.alerts += 1;
        let process = self.table.get(ev.pid).cloned();
        let parent = self.table.get(ev.ppid).cloned();
        let ancestors = self.table.ancestors(ev.pid);
        let container = container_of(&mut self.containers, ev);
        let line = render(&AlertInput {
            ev,
            rule: &rule,
            sequence: self.sequence,
            timestamp: enrich::rfc3339(self.clock.wall_ns(ev.ts_boot_ns)),
            hostname: &self.hostname,
            process: process.as_ref(),
            parent: parent.as_ref(),
            ancestors: &ancestors,
            user_name: self.users.name(ev.ids.uid),
            euser_name: self.users.name(ev.ids.euid),
            container: container.as_ref(),
            docker,
            tamper,
        });
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

impl<W: Write> Pipeline<W> {
    /// Write an in-band record about the monitor itself (`event.kind: "metric"`): start,
    /// heartbeat, events lost, stop. It takes a sequence number like an alert, so a gap in
    /// `event.sequence` can only mean lines lost after the monitor wrote them.
    pub fn record(&mut self, action: &str, monitor: serde_json::Value) -> std::io::Result<()> {
        self.sequence += 1;
        let now = self.clock.now_wall_ns();
        let line = crate::sink::json::render_record(action, self.sequence, &enrich::rfc3339(now), &self.hostname, monitor);
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    /// Counters for heartbeat and stop records.
    pub fn totals(&self) -> serde_json::Value {
        serde_json::json!({
            "events": self.events,
            "alerts": self.alerts,
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

/// The container `ev` came from: by the cgroup name the kernel sent, else (a process in a
/// sub-cgroup of its container) by its full cgroup paths while it still runs.
fn container_of(containers: &mut Containers, ev: &Event) -> Option<ContainerInfo> {
    let name = String::from_utf8_lossy(&ev.cgroup_name);
    let c = enrich::container::from_cgroup_name(&name).or_else(|| {
        // Only worth a look when the kernel's name is not the host's root cgroup.
        (!ev.cgroup_name.is_empty() && ev.cgroup_name != b"/")
            .then(|| enrich::container::from_proc(ev.pid))
            .flatten()
    })?;
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

/// Settings of `monitor run` beyond the rules.
pub struct RunOptions {
    /// Interval of heartbeat records; `None`: no heartbeats.
    pub heartbeat: Option<Duration>,
    /// Load the rules again (SIGHUP): the complete new set, or every error found.
    pub reload: Box<dyn Fn() -> std::result::Result<RuleSet, Vec<String>>>,
}

/// Run the live eBPF pipeline until SIGINT/SIGTERM or until stdout goes away.
pub async fn run_live(rules: RuleSet, opts: RunOptions) -> Result<()> {
    // First, so that a stop request during the load is honoured, not fatal.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let plan = crate::rules::targets::plan(&rules.rules);
    let mut source = EbpfSource::load(&plan)?;
    let ring = source.take_ring()?;
    // SAFETY: the AsyncFd owns the RingBuf, which owns the map's fd: the fd outlives the
    // registration.
    let mut ring = unsafe { AsyncFd::register(ring) }.context("polling the ring buffer")?;
    let stdout = std::io::stdout();
    let mut pipeline = Pipeline::new(rules, plan, stdout.lock());
    let mut refresh = tokio::time::interval(REFRESH_EVERY);
    let mut loss = tokio::time::interval(LOSS_EVERY);
    let mut drain = tokio::time::interval(DRAIN_EVERY);
    let heartbeat_every = opts.heartbeat.unwrap_or(Duration::from_secs(365 * 86_400));
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat_every, heartbeat_every);
    let mut last_drops = 0u64;
    let mut window_start = pipeline.clock.now_wall_ns();
    info!(
        hooks = source.attached.len(),
        rules = pipeline.rules.rules.len(),
        watched_paths = pipeline.plan.targets.len(),
        "monitor running"
    );
    let start = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "rules": {"count": pipeline.rules.rules.len(), "hash": pipeline.rules.hash(), "files": pipeline.rules.files},
        "hooks": source.attached.len(),
        "kernel": enrich::kernel_release(),
        "heartbeat_s": opts.heartbeat.map(|d| d.as_secs()),
    });
    if let Err(e) = pipeline.record("monitor-start", serde_json::json!({ "start": start })) {
        return finish(e);
    }
    let reason = loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard?;
                let ring = guard.get_inner_mut();
                while let Some(item) = ring.next() {
                    if let Err(e) = pipeline.handle_record(&item) {
                        return finish(e);
                    }
                }
                guard.clear_ready();
            }
            _ = drain.tick() => {
                let ring = ring.get_mut();
                while let Some(item) = ring.next() {
                    if let Err(e) = pipeline.handle_record(&item) {
                        return finish(e);
                    }
                }
            }
            _ = sighup.recv() => {
                // Validated completely first; on any error the old rules stay.
                let record = match (opts.reload)() {
                    Ok(rules) => {
                        let plan = crate::rules::targets::plan(&rules.rules);
                        source.sync_watches(&plan)?;
                        pipeline.rules = rules;
                        pipeline.plan = plan;
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
            _ = sigint.recv() => break "SIGINT",
            _ = sigterm.recv() => break "SIGTERM",
            _ = loss.tick() => {
                let now = pipeline.clock.now_wall_ns();
                let drops = source.drops().unwrap_or(last_drops);
                if drops > last_drops {
                    let lost = drops - last_drops;
                    warn!(lost, total = drops, "events lost in the kernel (ring buffer full or stage unreachable)");
                    pipeline.lost = drops;
                    let window = serde_json::json!({"start": enrich::rfc3339(window_start), "end": enrich::rfc3339(now)});
                    if let Err(e) = pipeline.record("events-lost", serde_json::json!({"lost": lost, "lost_total": drops, "window": window})) {
                        return finish(e);
                    }
                    last_drops = drops;
                }
                window_start = now;
            }
            _ = heartbeat.tick() => {
                let totals = pipeline.totals();
                if let Err(e) = pipeline.record("heartbeat", totals) {
                    return finish(e);
                }
            }
            _ = refresh.tick() => {
                pipeline.users.refresh();
                pipeline.containers.prune();
                if pipeline.plan.refresh() {
                    source.sync_watches(&pipeline.plan)?;
                }
                debug!(processes = pipeline.table.len(), events = pipeline.events, "tick");
            }
        }
    };
    // Drain what the kernel already produced before stopping.
    let ring = ring.get_mut();
    while let Some(item) = ring.next() {
        if let Err(e) = pipeline.handle_record(&item) {
            return finish(e);
        }
    }
    // Losses since the last report get their record before the totals.
    let drops = source.drops().unwrap_or(last_drops);
    if drops > last_drops {
        let now = pipeline.clock.now_wall_ns();
        let window = serde_json::json!({"start": enrich::rfc3339(window_start), "end": enrich::rfc3339(now)});
        warn!(lost = drops - last_drops, total = drops, "events lost in the kernel (ring buffer full or stage unreachable)");
        if let Err(e) = pipeline.record("events-lost", serde_json::json!({"lost": drops - last_drops, "lost_total": drops, "window": window})) {
            return finish(e);
        }
    }
    pipeline.lost = drops;
    let mut totals = pipeline.totals();
    totals["reason"] = serde_json::json!(reason);
    if let Err(e) = pipeline.record("monitor-stop", totals) {
        return finish(e);
    }
    info!(reason, events = pipeline.events, alerts = pipeline.alerts, lost = pipeline.lost, "monitor stopped");
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
