//! The replay driver (`monitor replay`): a recording pulled to its end through the same
//! pipeline, rendered on a second thread. A capture replays with the context its host
//! recorded (process table, user names, containers, the watch plan and clock ticks), so that
//! the same rules give the very lines the live run printed; audit logs replay with what
//! their records say.

use super::{Pipeline, Presentation};
use crate::detect::Detector;
use crate::enrich::{Clock, Enricher};
use crate::error::Result;
use crate::rules::parse::IdResolver;
use crate::rules::RuleSet;
use crate::sink::Sink;
use crate::source::audit::log::AuditLog;
use crate::source::audit::Stats;
use crate::source::capture::replay::CaptureSource;
use crate::source::Source;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a replay reads, and how it presents what it finds.
pub struct ReplayOptions {
    pub input: ReplayInput,
    pub presentation: Presentation,
}

pub enum ReplayInput {
    /// A capture written by `monitor run --capture`.
    Capture(PathBuf),
    /// Linux audit logs (files or directories of them).
    AuditLogs(Vec<PathBuf>),
}

/// What a replay did, for the summary on stderr.
pub struct ReplayStats {
    pub events: u64,
    pub alerts: u64,
    pub suppressed: u64,
    pub bytes: u64,
    /// Where a capture was cut off mid-record, if it was.
    pub truncated_at: Option<usize>,
    /// A capture: whether it was made with the rules replayed.
    pub same_rules: bool,
    /// Audit logs: what reading them found, and the files read in time order.
    pub audit: Option<(Stats, Vec<PathBuf>)>,
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
    let (_, total) = source.progress();
    progress(total, total);
    Ok(())
}

/// Run a capture through `rules` and write the alerts (and the recorded in-band records)
/// to `out`. `ids` resolves user and group names in the recorded self-defence rules.
pub fn replay_capture<W: Write + Send + 'static>(
    file: &Path,
    rules: RuleSet,
    ids: &dyn IdResolver,
    out: W,
    presentation: Presentation,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReplayStats> {
    let mut source = CaptureSource::open(file)?;
    let header = source.header().clone();
    // The live run put its self-defence watches in front: so does the replay.
    let rules = match &header.prelude {
        Some(text) => rules.with_prelude(text.clone(), ids)?,
        None => rules,
    };
    let same_rules = header.rules_hash.as_deref() == Some(rules.hash().as_str());
    let clock = Clock { offset_ns: header.clock_offset_ns };
    let sink = Sink::new(out, clock, header.host_info.clone(), header.monitor_pid, false);
    let detect = Detector::new(rules, header.monitor_ppid);
    let mut pipeline =
        Pipeline::new(Enricher::offline(), detect, sink, presentation).render_on_thread()?;
    pipeline.replaying_same_rules(same_rules);
    pull(&mut source, &mut pipeline, progress)?;
    let c = pipeline.counts();
    Ok(ReplayStats {
        events: c.events,
        alerts: c.alerts,
        suppressed: c.suppressed,
        bytes: source.progress().1,
        truncated_at: source.truncated_at(),
        same_rules,
        audit: None,
    })
}

/// Run audit logs through `rules` and write the alerts to `out`.
pub fn replay_audit<W: Write + Send + 'static>(
    paths: &[PathBuf],
    rules: RuleSet,
    out: W,
    presentation: Presentation,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReplayStats> {
    let mut source = AuditLog::open(paths)?;
    let (rules, activated) = rules.for_audit();
    if activated > 0 {
        tracing::info!(
            rules = activated,
            "rules the eBPF source cannot evaluate are active for audit records"
        );
    }
    // Audit times are wall-clock already: no offset.
    let sink = Sink::new(out, Clock { offset_ns: 0 }, crate::enrich::HostInfo::read(), 0, false);
    let detect = Detector::new(rules, 0);
    source.arm(detect.plan())?;
    let mut pipeline =
        Pipeline::new(Enricher::for_audit_logs(), detect, sink, presentation).render_on_thread()?;
    pull(&mut source, &mut pipeline, progress)?;
    let c = pipeline.counts();
    Ok(ReplayStats {
        events: c.events,
        alerts: c.alerts,
        suppressed: c.suppressed,
        bytes: source.progress().1,
        truncated_at: None,
        same_rules: true,
        audit: Some((source.stats().clone(), source.files().to_vec())),
    })
}
