//! The live driver (`monitor run`): a live source pulled whenever it is readable, again
//! shortly after every pull that found something (the kernel does not wake us for every
//! record, `Source::follow_up`), and on a timer (for what it submits without waking us at
//! all), through the pipeline to
//! the output, with the timers (heartbeats, loss reports, aggregation ticks, identity
//! refreshes) and the signals (stop, reload, reopen) around it. The `monitor-start` record
//! is written once the source is armed; `monitor-stop` after the source is drained. Lines
//! go to the outputs' [`Fanout`]; what they lose is reported in-band like the kernel's
//! losses (`output-lost`), and SIGUSR1 reopens them (`outputs-reopened`).

use super::outputs::Outputs;
use super::signals::{Request, Signals};
use super::{Pipeline, Presentation};
use crate::detect::Detector;
use crate::enrich::{Clock, Enricher, HostInfo};
use crate::error::{Error, Result};
use crate::rules::RuleSet;
use crate::sink::line::Fanout;
use crate::sink::Sink;
use crate::source::audit::live::AuditLive;
use crate::source::ebpf::ring::RingSize;
use crate::source::ebpf::EbpfSource;
use crate::source::Source;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tracing::{debug, info, warn};

/// How often watched paths are re-resolved (a socket or file recreated gets a new inode).
const REFRESH_EVERY: Duration = Duration::from_secs(2);
/// How often the kernel's loss counters are read (a loss is reported within this time) and
/// the aggregation windows that ended are closed.
const TICK_EVERY: Duration = Duration::from_secs(1);
/// How often the source is read without a wakeup: process-lifecycle records are submitted
/// without waking us (they are frequent and only feed the process table), and audit events
/// complete when quiet.
const DRAIN_EVERY: Duration = Duration::from_millis(50);

/// Where live events come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// The eBPF sensors (default), writing into a ring buffer of `ring` bytes.
    Ebpf { ring: RingSize },
    /// The kernel audit subsystem's multicast (beside auditd; its rules decide what comes).
    Audit,
}

impl SourceKind {
    fn name(self) -> &'static str {
        match self {
            SourceKind::Ebpf { .. } => "ebpf",
            SourceKind::Audit => "audit",
        }
    }
}

/// The complete new rule set, or every error found (a reload on SIGHUP).
pub type Reload = Box<dyn Fn() -> std::result::Result<RuleSet, Vec<String>>>;

/// Settings of `monitor run` beyond the rules.
pub struct RunOptions {
    /// Interval of heartbeat records; `None`: no heartbeats.
    pub heartbeat: Option<Duration>,
    pub reload: Reload,
    /// Record everything for `monitor replay` into this file (eBPF source).
    pub capture: Option<PathBuf>,
    pub source: SourceKind,
    pub presentation: Presentation,
}

/// A live source's descriptor, for readiness (the source owns it and outlives this).
struct Readiness(RawFd);

impl AsRawFd for Readiness {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Run until SIGINT/SIGTERM or until every output has gone away (a clean stop either
/// way), writing to `output`.
pub async fn run_live(rules: RuleSet, opts: RunOptions, output: Fanout) -> Result<()> {
    // First, so that a stop request during the load is honoured, not fatal.
    let mut signals = Signals::listen(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGUSR1])
        .map_err(|source| Error::Io { context: "listening for signals".into(), source })?;
    let for_source = |rules: RuleSet| match opts.source {
        SourceKind::Audit => rules.for_audit().0,
        SourceKind::Ebpf { .. } => rules,
    };
    if opts.capture.is_some() && opts.source == SourceKind::Audit {
        return Err(Error::Config("--capture records the eBPF source; with --source audit, keep auditd's log and replay it with --format auditd".into()));
    }
    let clock = Clock::measure();
    let detect = Detector::new(for_source(rules), std::os::unix::process::parent_id());
    let mut source: Box<dyn Source> = match opts.source {
        SourceKind::Ebpf { ring } => {
            Box::new(EbpfSource::load(detect.plan(), opts.capture.is_some(), ring)?)
        }
        SourceKind::Audit => Box::new(AuditLive::start(clock.offset_ns)?),
    };
    source.arm(detect.plan())?;
    let mut outputs = Outputs::new(output.handle(), clock);
    let sink = Sink::new(output, clock, Some(HostInfo::read()), std::process::id(), true);
    let mut pipeline = Pipeline::new(Enricher::live(), detect, sink, opts.presentation);
    if let Some(path) = &opts.capture {
        pipeline.start_capture(path, capture_header(&pipeline, clock))?;
        info!(file = %path.display(), "capturing");
    }
    let fd = source
        .readiness()
        .ok_or_else(|| Error::Kernel("the live source has no descriptor to wait on".into()))?;
    // SAFETY: the source owns the descriptor and outlives `ready` (declared after it, so
    // dropped before it).
    let ready =
        unsafe { AsyncFd::register_with_interest(Readiness(fd), tokio::io::Interest::READABLE) }
            .map_err(|e| Error::Io { context: "polling the source".into(), source: e.into() })?;
    let mut refresh = tokio::time::interval(REFRESH_EVERY);
    let mut tick = tokio::time::interval(TICK_EVERY);
    let mut drain = tokio::time::interval(DRAIN_EVERY);
    // The follow-up read after a read that found something (`Source::follow_up`).
    let follow_up = source.follow_up();
    let again = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(again);
    let mut again_armed = false;
    let heartbeat_every = opts.heartbeat.unwrap_or(Duration::from_secs(365 * 86_400));
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + heartbeat_every, heartbeat_every);
    let mut window_start = clock.now_wall_ns();
    let rules = pipeline.rules();
    info!(
        source = opts.source.name(),
        hooks = source.hook_points().len(),
        rules = rules.rules.len(),
        watched_paths = pipeline.plan().targets.len(),
        "monitor running"
    );
    let mut start = serde_json::json!({"start": {
        "version": env!("CARGO_PKG_VERSION"),
        "source": opts.source.name(),
        "rules": {"count": rules.rules.len(), "hash": rules.hash(), "files": rules.files},
        "hooks": source.hook_points().len(),
        "hook_points": source.hook_points(),
        "source_proof": source.proof(),
        "kernel": crate::enrich::kernel_release(),
    }});
    if let Some(every) = opts.heartbeat {
        start["start"]["heartbeat_s"] = serde_json::json!(every.as_secs());
    }
    let ended = async {
        pipeline.record("monitor-start", start)?;
        loop {
            tokio::select! {
                guard = ready.readable() => {
                    let mut guard = guard.map_err(|source| Error::Io { context: "waiting on the source".into(), source })?;
                    drain_and_follow_up(&mut *source, &mut pipeline, again.as_mut(), follow_up, &mut again_armed)?;
                    guard.clear_ready();
                }
                _ = &mut again, if again_armed => {
                    again_armed = false;
                    drain_and_follow_up(&mut *source, &mut pipeline, again.as_mut(), follow_up, &mut again_armed)?;
                }
                _ = drain.tick() => {
                    drain_and_follow_up(&mut *source, &mut pipeline, again.as_mut(), follow_up, &mut again_armed)?;
                }
                request = signals.recv() => {
                    let Some(request) = request else { return Ok(None) };
                    match request.signal {
                        libc::SIGHUP => reload(&opts, &for_source, &mut pipeline, &mut *source)?,
                        libc::SIGUSR1 => outputs.reopen(&mut pipeline, &request)?,
                        _ => return Ok(Some(request)),
                    }
                }
                _ = tick.tick() => {
                    let lost = source.lost().unwrap_or(pipeline.counts().lost);
                    let window = window_start;
                    window_start = pipeline.report_loss(lost, window_start)?;
                    outputs.report_loss(&mut pipeline, window)?;
                    pipeline.tick(clock.boot_now())?;
                }
                _ = heartbeat.tick() => {
                    let mut totals = pipeline.totals();
                    totals["outputs"] = outputs.stats();
                    pipeline.record("heartbeat", totals)?;
                }
                _ = refresh.tick() => {
                    // Identities changed (a file recreated), or the kernel staled entries
                    // whose event has not come yet: arm the watches again.
                    if pipeline.refresh() || source.stale() {
                        source.arm(pipeline.plan())?;
                    }
                    debug!(processes = pipeline.processes(), events = pipeline.counts().events, "tick");
                }
            }
        }
    };
    let stop: Result<Option<Request>> = ended.await;
    let stop = match stop {
        Ok(stop) => stop,
        Err(e) if e.is_closed_output() => return closed(),
        Err(e) => return Err(e),
    };
    match stopped(&mut *source, &mut pipeline, window_start, stop, &mut outputs) {
        Err(e) if e.is_closed_output() => closed(),
        other => other,
    }
}

/// Every output's reader went away: a clean stop, not a crash.
fn closed() -> Result<()> {
    info!("every output is closed; stopping");
    Ok(())
}

/// Everything the source has now through the pipeline; the kernel's entries re-armed when
/// an event said they were staled. Whether there was anything.
fn drain_source<W: Write>(source: &mut dyn Source, pipeline: &mut Pipeline<W>) -> Result<bool> {
    let mut found = false;
    // The drain's lines go out together at its end, not with a write(2) per alert; every
    // `DRAIN_BATCH` records, so that a long burst is not held back.
    pipeline.hold_output();
    let mut held = 0;
    while let Some(input) = source.next()? {
        found = true;
        pipeline.handle(input)?;
        held += 1;
        if held == DRAIN_BATCH {
            pipeline.release_output()?;
            pipeline.hold_output();
            held = 0;
        }
    }
    pipeline.release_output()?;
    if pipeline.take_rearm() {
        source.arm(pipeline.plan())?;
    }
    Ok(found)
}

/// Records read from the source before the lines they made are written out, at most.
const DRAIN_BATCH: usize = 256;

/// [`drain_source`], and when it found something the follow-up read (`Source::follow_up`)
/// set for that long from now, later than any set before: every read that found something
/// needs one after it. `armed` says whether one is set.
fn drain_and_follow_up<W: Write>(
    source: &mut dyn Source,
    pipeline: &mut Pipeline<W>,
    again: std::pin::Pin<&mut tokio::time::Sleep>,
    follow_up: Option<Duration>,
    armed: &mut bool,
) -> Result<()> {
    let found = drain_source(source, pipeline)?;
    if let (Some(after), true) = (follow_up, found) {
        again.reset(tokio::time::Instant::now() + after);
        *armed = true;
    }
    Ok(())
}

/// SIGHUP: the rules loaded again, validated completely first; on any error the old rules
/// stay. Either way a record says what happened.
fn reload<W: Write>(
    opts: &RunOptions,
    for_source: &dyn Fn(RuleSet) -> RuleSet,
    pipeline: &mut Pipeline<W>,
    source: &mut dyn Source,
) -> Result<()> {
    let (action, body) = match (opts.reload)() {
        Ok(rules) => {
            pipeline.reload(for_source(rules))?;
            source.arm(pipeline.plan())?;
            let rules = pipeline.rules();
            info!(rules = rules.rules.len(), "rules reloaded");
            (
                "rules-reloaded",
                serde_json::json!({"rules": {"count": rules.rules.len(), "hash": rules.hash(), "files": rules.files}}),
            )
        }
        Err(errors) => {
            warn!(errors = errors.len(), "rules reload failed; the previous rules stay active");
            for e in &errors {
                warn!("{e}");
            }
            (
                "rules-reload-failed",
                serde_json::json!({"errors": errors, "rules": {"hash": pipeline.rules().hash()}}),
            )
        }
    };
    pipeline.record(action, body)
}

/// After a stop request: what the source still holds drained, losses reported, the stop
/// record with who asked, the capture flushed.
fn stopped(
    source: &mut dyn Source,
    pipeline: &mut Pipeline<Fanout>,
    window_start: i128,
    stop: Option<Request>,
    outputs: &mut Outputs,
) -> Result<()> {
    drain_source(source, pipeline)?;
    source.finish();
    drain_source(source, pipeline)?;
    // Losses since the last report get their record before the totals.
    let lost = source.lost().unwrap_or(pipeline.counts().lost);
    pipeline.report_loss(lost, window_start)?;
    outputs.report_loss(pipeline, window_start)?;
    let mut totals = pipeline.totals();
    let reason = stop.as_ref().map_or("signals closed", |r| r.name());
    totals["reason"] = serde_json::json!(reason);
    if let Some(request) = &stop {
        totals["requested_by"] = request.requested_by(pipeline.monitor_ppid());
    }
    pipeline.finish_windows()?;
    totals["outputs"] = outputs.stats();
    pipeline.record("monitor-stop", totals)?;
    if let Some((events, bytes)) = pipeline.finish()? {
        info!(
            events,
            bytes,
            bytes_per_event = bytes.checked_div(events).unwrap_or(0),
            "capture written"
        );
    }
    let c = pipeline.counts();
    info!(reason, events = c.events, alerts = c.alerts, lost = c.lost, "monitor stopped");
    Ok(())
}

/// The capture's header: what a replay needs of this run.
fn capture_header<W: Write>(pipeline: &Pipeline<W>, clock: Clock) -> serde_json::Value {
    let rules = pipeline.rules();
    serde_json::json!({
        "format": "monitor-capture",
        "version": 1,
        "host": crate::enrich::hostname(),
        "host_info": HostInfo::read(),
        "kernel": crate::enrich::kernel_release(),
        "monitor_version": env!("CARGO_PKG_VERSION"),
        "created": crate::enrich::rfc3339(clock.now_wall_ns()),
        "clock_offset_ns": clock.offset_ns.to_string(),
        "monitor_pid": std::process::id(),
        "monitor_ppid": pipeline.monitor_ppid(),
        "rules_hash": rules.hash(),
        "prelude": rules.prelude,
    })
}
