//! `monitor replay`: a capture or audit logs through the rules again.

use monitor::error::exit;
use monitor::pipeline::replay::{replay_audit, replay_capture, ReplayStats};
use monitor::pipeline::Presentation;
use monitor::rules::parse::SystemIds;
use monitor::Error;
use std::path::PathBuf;

pub fn replay(
    files: Vec<PathBuf>,
    paths: Vec<PathBuf>,
    audit_logs: bool,
    presentation: Presentation,
    output: &crate::cli::OutputArgs,
) -> monitor::Result<u8> {
    let rules = super::load_rules(&paths, true)?;
    let started = std::time::Instant::now();
    // Written from the render thread; stdout collects 64 KiB per write.
    let out = super::open_outputs(output)?;
    let outputs = out.handle();
    let mut progress = monitor::sink::progress::Progress::stderr("replay");
    let result = if audit_logs {
        replay_audit(&files, rules, out, presentation, &mut |done, total| {
            progress.bytes(done, total)
        })
    } else {
        let [file] = <[PathBuf; 1]>::try_from(files).map_err(|_| {
            Error::Input("a capture replay takes one file (several files: --format auditd)".into())
        })?;
        replay_capture(&file, rules, &SystemIds::load(), out, presentation, &mut |done, total| {
            progress.bytes(done, total)
        })
    };
    progress.finish();
    for (name, s) in outputs.stats() {
        if s.lost > 0 {
            tracing::warn!(output = %name, lost = s.lost, lines = s.lines, "lines lost by an output");
        }
    }
    summary(&result?, started.elapsed().as_secs_f64().max(1e-9));
    Ok(exit::OK)
}

/// The summary on stderr.
fn summary(stats: &ReplayStats, secs: f64) {
    if let Some(at) = stats.truncated_at {
        tracing::warn!(offset = at, "the capture is cut off inside a record (crash, disk full?): replayed everything before byte {at}");
    }
    match &stats.audit {
        None => {
            if !stats.same_rules {
                tracing::info!("rules differ from the capturing run's: watch identities are re-resolved on this host");
            }
            tracing::info!(
                events = stats.events,
                alerts = stats.alerts,
                suppressed = stats.suppressed,
                bytes_per_event = stats.bytes.checked_div(stats.events).unwrap_or(0),
                events_per_s = (stats.events as f64 / secs) as u64,
                "replay done"
            );
        }
        Some((a, files)) => {
            for (t, n) in &a.unknown {
                tracing::info!(record_type = %t, records = n, "unknown audit record type; skipped");
            }
            tracing::info!(
                files = files.len(),
                lines = a.lines,
                records = a.records,
                malformed_lines = a.malformed,
                unknown_records = a.unknown.values().sum::<u64>(),
                excluded_records = a.excluded,
                events = a.events,
                other_arch_events = a.other_arch,
                not_evaluated_events = a.not_evaluated,
                alerts = stats.alerts,
                suppressed = stats.suppressed,
                events_per_s = (a.events as f64 / secs) as u64,
                "audit log replay done"
            );
        }
    }
}
