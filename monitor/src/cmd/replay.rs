//! `monitor replay`: a capture or audit logs through the rules again; the summary on
//! stderr and the exit code (8 when part of the input could not be read).

use monitor::error::exit;
use monitor::pipeline::replay::{replay as run_replay, ReplayOptions, ReplayStats};
use monitor::rules::parse::SystemIds;
use monitor::sink::output::LineFormat;
use monitor::source::audit::Stats;

pub fn replay(
    opts: ReplayOptions,
    paths: Vec<std::path::PathBuf>,
    output: &crate::cli::OutputArgs,
) -> monitor::Result<u8> {
    // Its warnings are logged once the inputs say which source evaluates them.
    let rules = super::load_rules(&paths)?;
    let started = std::time::Instant::now();
    // Written from the render thread; stdout collects 64 KiB per write.
    let out = super::open_outputs(output)?;
    let outputs = out.handle();
    let mut progress = monitor::sink::progress::Progress::stderr("replay");
    let result = run_replay(opts, rules, &SystemIds::load(), out, &mut |done, total| {
        progress.bytes(done, total)
    });
    progress.finish();
    for (name, s) in outputs.stats() {
        if s.lost > 0 {
            tracing::warn!(output = %name, lost = s.lost, lines = s.lines, "lines lost by an output");
        }
    }
    let stats = result?;
    summary(&stats, started.elapsed().as_secs_f64().max(1e-9));
    Ok(if stats.partial() { exit::INPUT_PARTIAL } else { exit::OK })
}

/// Text output is coloured when stdout takes it (a terminal; NO_COLOR and CLICOLOR
/// respected, through anstream's rules).
pub fn line_format(text: bool) -> LineFormat {
    if !text {
        return LineFormat::Json;
    }
    let choice = anstream::AutoStream::choice(&std::io::stdout());
    LineFormat::Text { colour: choice != anstream::ColorChoice::Never }
}

/// The summary line on stderr: what was read, what came of it, what was skipped and why.
fn summary(s: &ReplayStats, secs: f64) {
    if let Some(at) = s.truncated_at {
        tracing::warn!(
            "{}: cut off inside a record (crash, disk full?): replayed everything before byte {at}",
            s.inputs.join(", ")
        );
    }
    if !s.same_rules {
        tracing::info!(
            "rules differ from the capturing run's: watch identities are re-resolved on this host"
        );
    }
    let mut line = format!("monitor: replay summary: inputs={}", s.inputs.len());
    let mut skipped = Vec::new();
    match &s.audit {
        Some(a) => {
            let Stats { lines, records, events, .. } = a;
            line.push_str(&format!(" lines={lines} records={records} events={events}"));
            let unknown: u64 = a.unknown.values().sum();
            for (what, n) in [
                ("malformed_lines", a.malformed),
                ("unreadable_inputs", a.unreadable_inputs),
                ("empty_inputs", a.empty_inputs),
                ("unknown_type_records", unknown),
                ("excluded_records", a.excluded),
                ("other_arch_events", a.other_arch),
                ("not_evaluated_events", a.not_evaluated),
            ] {
                skipped.push(format!("{what}={n}"));
            }
            if unknown > 0 {
                let types: Vec<String> =
                    a.unknown.iter().map(|(t, n)| format!("{t}={n}")).collect();
                tracing::info!("records of types this monitor does not know: {}", types.join(" "));
            }
        }
        None => {
            line.push_str(&format!(" bytes={} events={}", s.bytes, s.events));
            skipped.push(format!("undecodable_records={}", s.undecodable));
            skipped.push(format!("cut_off={}", s.truncated_at.is_some()));
        }
    }
    line.push_str(&format!(" alerts={} suppressed={}", s.alerts, s.suppressed));
    skipped.push(format!("filtered={}", s.filtered));
    line.push_str(" skipped: ");
    line.push_str(&skipped.join(" "));
    line.push_str(&format!(" events_per_s={}", (s.events as f64 / secs) as u64));
    eprintln!("{line}");
}
