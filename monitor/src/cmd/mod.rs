//! The subcommands: each parses nothing (clap did, see `cli`), runs the library and returns
//! its exit code, or the error `main` reports.

pub mod check;
pub mod config;
pub mod replay;
pub mod rules;
pub mod run;

use monitor::rules::parse::SystemIds;
use monitor::rules::RuleSet;
use monitor::sink::line::Fanout;
use monitor::sink::target::OutputTarget;
use std::path::PathBuf;

/// The rules from `paths`, or the built-in pack.
pub fn load_rules(paths: &[PathBuf]) -> monitor::Result<RuleSet> {
    let ids = SystemIds::load();
    Ok(if paths.is_empty() { RuleSet::builtin(&ids)? } else { RuleSet::load(paths, &ids)? })
}

/// The warnings of `set`, logged once each kind (`audit`: audit records are evaluated).
pub fn log_warnings(set: &RuleSet, audit: bool) {
    for w in set.warning_summary(audit) {
        tracing::warn!("{w}");
    }
}

/// The outputs `--output` names (each once, in order), opened: a file created, a socket
/// connected. A failure here stops the command before anything runs.
pub fn open_outputs(args: &crate::cli::OutputArgs) -> monitor::Result<Fanout> {
    let opts = args.options();
    let mut targets: Vec<&OutputTarget> = Vec::new();
    for t in &args.targets {
        if !targets.contains(&t) {
            targets.push(t);
        }
    }
    let sinks = targets.into_iter().map(|t| t.open(&opts)).collect::<Result<Vec<_>, _>>()?;
    Ok(Fanout::new(sinks))
}

/// Lines to stdout; a write error (the reader went away) is the command's error.
pub fn out(text: impl std::fmt::Display) -> monitor::Result<()> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{text}").map_err(monitor::Error::Output)
}
