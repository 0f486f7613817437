//! The replay driver (`monitor replay`): the inputs looked at and recognised (a capture,
//! or audit logs; see `source::input`), then pulled to their end through the same
//! pipeline, rendered on a second thread.
//!
//! Everything comes from the recording, nothing from the host the replay runs on: a
//! capture replays with the context its host recorded (process table, user and group
//! names, containers, the watch plan, clock ticks, its host name), so that the same rules
//! give the very lines the live run printed; audit logs replay with what their records say
//! (`node=`, the enriched format's names, the audit keys). This host appears only as the
//! observer.

use super::{Counts, Pipeline, Presentation};
use crate::detect::select::Selection;
use crate::detect::Detector;
use crate::enrich::{Clock, Enricher, HostInfo, HostOf};
use crate::error::{Error, Result};
use crate::rules::parse::IdResolver;
use crate::rules::RuleSet;
use crate::sink::output::LineFormat;
use crate::sink::Sink;
use crate::source::audit::log::AuditLog;
use crate::source::audit::Stats;
use crate::source::capture::replay::CaptureSource;
use crate::source::input::{self, Content, Probe};
use crate::source::Source;
use std::io::Write;
use std::path::PathBuf;

/// What the inputs are, when the user says (`--format`); otherwise recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Capture,
    Auditd,
}

/// What a replay reads, and how it presents what it finds.
pub struct ReplayOptions {
    /// Files, directories, `-`.
    pub inputs: Vec<PathBuf>,
    /// `None`: recognised from the content.
    pub format: Option<Format>,
    /// The host of audit records without `node=` (default: unknown).
    pub host: Option<String>,
    pub select: Selection,
    pub presentation: Presentation,
    pub output: LineFormat,
}

/// What a replay did, for the summary on stderr.
pub struct ReplayStats {
    /// The inputs read, in the order they were read.
    pub inputs: Vec<String>,
    pub events: u64,
    pub alerts: u64,
    pub suppressed: u64,
    /// Verdicts the selection left out.
    pub filtered: u64,
    pub bytes: u64,
    /// A capture: where it was cut off mid-record, if it was.
    pub truncated_at: Option<usize>,
    /// A capture: records that could not be decoded.
    pub undecodable: u64,
    /// A capture: whether it was made with the rules replayed.
    pub same_rules: bool,
    /// Audit logs: what reading them found.
    pub audit: Option<Stats>,
}

impl ReplayStats {
    /// What the pipeline counted, for the inputs read: nothing cut off or undecodable, the
    /// rules the same, no audit statistics (a capture's or the logs' own are laid over it).
    fn counted(inputs: Vec<String>, c: Counts, bytes: u64) -> ReplayStats {
        ReplayStats {
            inputs,
            events: c.events,
            alerts: c.alerts,
            suppressed: c.suppressed,
            filtered: c.filtered,
            bytes,
            truncated_at: None,
            undecodable: 0,
            same_rules: true,
            audit: None,
        }
    }

    /// Whether part of the input could not be read (the exit code says so).
    pub fn partial(&self) -> bool {
        self.truncated_at.is_some()
            || self.undecodable > 0
            || self.audit.as_ref().is_some_and(Stats::partial)
    }
}

/// Pull `source` to its end through `pipeline`; `progress(read, total)` now and then.
fn pull<W: Write>(
    source: &mut dyn Source,
    pipeline: &mut Pipeline<W>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<()> {
    let mut n = 0u64;
    while let Some(input) = source.next()? {
        pipeline.handle(input)?;
        n += 1;
        if n.is_multiple_of(8192) {
            let (read, total) = source.progress();
            progress(read, total);
        }
    }
    source.finish();
    while let Some(input) = source.next()? {
        pipeline.handle(input)?;
    }
    pipeline.finish()?;
    let (read, total) = source.progress();
    progress(read, total.max(read));
    Ok(())
}

/// Replay `opts.inputs` through `rules`, writing to `out`. `ids` resolves user and group
/// names in a capture's recorded self-defence rules.
pub fn replay<W: Write + Send + 'static>(
    opts: ReplayOptions,
    rules: RuleSet,
    ids: &dyn IdResolver,
    out: W,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReplayStats> {
    let mut stats = Stats::default();
    let probes = recognise(&opts, &mut stats)?;
    let capture = probes.iter().any(|p| p.content == Content::Capture);
    // Once, now that it is known which source's view the rules are evaluated in.
    for w in rules.warning_summary(!capture) {
        tracing::warn!("{w}");
    }
    if capture {
        let [probe] = <[Probe; 1]>::try_from(probes).map_err(|_| {
            Error::Usage("a capture replays by itself: name one capture and nothing else".into())
        })?;
        if opts.host.is_some() {
            return Err(Error::Usage(
                "--host names the host of audit logs without node=; a capture names its own".into(),
            ));
        }
        replay_capture(probe, rules, ids, Job { opts, out, progress })
    } else {
        if opts.select.needs_container() {
            return Err(Error::Usage(
                "--container: audit records do not say which container a process ran in".into(),
            ));
        }
        replay_audit(probes, stats, rules, Job { opts, out, progress })
    }
}

/// Look at every input and keep what is to be read: one capture, or audit logs. An input
/// that is neither is an error naming it; inside a directory it is skipped and counted.
fn recognise(opts: &ReplayOptions, stats: &mut Stats) -> Result<Vec<Probe>> {
    let mut kept = Vec::new();
    let mut empty = Vec::new();
    for named in input::expand(&opts.inputs)? {
        let probe = input::probe(named)?;
        let name = probe.named.name();
        let content = match (opts.format, probe.content) {
            (_, Content::Empty) => Content::Empty,
            (Some(Format::Capture), Content::Capture) => Content::Capture,
            (Some(Format::Capture), Content::AuditLog) => {
                return Err(Error::Input(format!(
                    "{name}: not a monitor capture ({}): for auditd's logs use --format \
                     auditd, or leave --format out",
                    probe.looks_like
                )))
            }
            (Some(Format::Capture), _) => {
                return Err(Error::Input(format!(
                    "{name}: not a monitor capture ({}): expected a capture written by \
                     `monitor run --capture`; for auditd's logs use --format auditd, or \
                     leave --format out",
                    probe.looks_like
                )))
            }
            (Some(Format::Auditd), Content::Capture) => {
                return Err(Error::Input(format!(
                    "{name}: a monitor capture, not an audit log: use --format capture, or \
                     leave --format out"
                )))
            }
            // Forced: read line by line, whatever it looks like (what is not a record is
            // counted and reported).
            (Some(Format::Auditd), _) => Content::AuditLog,
            (None, Content::Unknown) if probe.named.from_dir => {
                stats.unreadable_inputs += 1;
                tracing::warn!("{name}: not an audit log ({}); skipped", probe.looks_like);
                continue;
            }
            (None, Content::Unknown) => {
                return Err(Error::Input(format!(
                    "{name}: not recognised ({}); {}",
                    probe.looks_like,
                    input::EXPECTED
                )))
            }
            (None, c) => c,
        };
        if content == Content::Empty {
            stats.empty_inputs += 1;
            empty.push(name);
            continue;
        }
        kept.push(probe);
    }
    let kinds = |c: Content| kept.iter().filter(|p| p.content == c).count();
    if kinds(Content::Capture) > 0 && kept.len() > 1 {
        let names: Vec<String> = kept.iter().map(|p| p.named.name()).collect();
        return Err(Error::Usage(format!(
            "a capture replays by itself (given: {}): replay each separately",
            names.join(", ")
        )));
    }
    if kept.is_empty() {
        return Err(Error::Input(format!(
            "{}: empty: nothing to replay ({})",
            empty.join(", "),
            input::EXPECTED
        )));
    }
    if !empty.is_empty() {
        tracing::info!("empty, nothing to replay in: {}", empty.join(", "));
    }
    Ok(kept)
}

/// What a replay's pipeline is set up with besides the rules, and where it writes.
struct Job<'p, W> {
    opts: ReplayOptions,
    out: W,
    progress: &'p mut dyn FnMut(u64, u64),
}

/// What a recording says about where it was made, for the sink and the enricher.
struct Recorded {
    clock: Clock,
    /// The recording monitor's pid and its parent's (0: not a monitor's recording).
    monitor_pid: u32,
    monitor_ppid: u32,
    host: HostOf,
    /// The recording host for every alert (None: each event's own, or unknown).
    host_info: Option<HostInfo>,
    /// Whether the recording was made with the rules replayed.
    same_rules: bool,
}

impl<W: Write + Send + 'static> Job<'_, W> {
    /// Pull `source` to its end through a pipeline of `rules` set up as `recorded` says.
    fn run(self, source: &mut dyn Source, rules: RuleSet, recorded: Recorded) -> Result<Counts> {
        let mut sink =
            Sink::new(self.out, recorded.clock, recorded.host_info, recorded.monitor_pid, false);
        sink.set_format(self.opts.output);
        let detect = Detector::new(rules, recorded.monitor_ppid);
        source.arm(detect.plan())?;
        let enrich = Enricher::offline(recorded.host);
        let mut pipeline =
            Pipeline::new(enrich, detect, sink, self.opts.presentation).render_on_thread()?;
        pipeline.replaying_same_rules(recorded.same_rules);
        pipeline.select(self.opts.select);
        pull(source, &mut pipeline, self.progress)?;
        Ok(pipeline.counts())
    }
}

/// A capture through `rules`, with the recorded in-band records written again.
fn replay_capture<W: Write + Send + 'static>(
    mut probe: Probe,
    rules: RuleSet,
    ids: &dyn IdResolver,
    job: Job<'_, W>,
) -> Result<ReplayStats> {
    let mut source = CaptureSource::open(&mut probe)?;
    let header = source.header().clone();
    // The live run put its self-defence watches in front: so does the replay.
    let rules = match &header.prelude {
        Some(text) => rules.with_prelude(text.clone(), ids)?,
        None => rules,
    };
    let same_rules = header.rules_hash.as_deref() == Some(rules.hash().as_str());
    let recorded = Recorded {
        clock: Clock { offset_ns: header.clock_offset_ns },
        monitor_pid: header.monitor_pid,
        monitor_ppid: header.monitor_ppid,
        // The capturing host; a capture that does not name it leaves it unknown.
        host: match header.host.as_str() {
            "" => HostOf::FromLog(None),
            name => HostOf::Named(name.to_string()),
        },
        same_rules,
        // Every alert names the capturing host, when the capture does.
        host_info: (!header.host.is_empty()).then(|| header.host_info.clone()),
    };
    let c = job.run(&mut source, rules, recorded)?;
    Ok(ReplayStats {
        truncated_at: source.truncated_at(),
        undecodable: source.undecodable(),
        same_rules,
        ..ReplayStats::counted(vec![probe.named.name()], c, source.progress().0)
    })
}

/// Audit logs through `rules`.
fn replay_audit<W: Write + Send + 'static>(
    probes: Vec<Probe>,
    stats: Stats,
    rules: RuleSet,
    job: Job<'_, W>,
) -> Result<ReplayStats> {
    let mut source = AuditLog::new(probes, stats);
    let (rules, _) = rules.for_audit();
    let recorded = Recorded {
        // Audit times are wall-clock already: no offset.
        clock: Clock { offset_ns: 0 },
        monitor_pid: 0,
        monitor_ppid: 0,
        host: HostOf::FromLog(job.opts.host.clone()),
        same_rules: true,
        // The host of each event is what its record says (`node=`), as the enricher decides.
        host_info: None,
    };
    let c = job.run(&mut source, rules, recorded)?;
    if source.stats().records == 0 {
        return Err(source.nothing_read());
    }
    Ok(ReplayStats {
        audit: Some(source.stats().clone()),
        ..ReplayStats::counted(source.names(), c, source.progress().0)
    })
}
