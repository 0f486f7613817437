//! `monitor config check|show`: the settings file validated without starting anything, and
//! the settings `monitor run` would use printed as a file.

use super::out;
use crate::cli::RunArgs;
use crate::config::{self, keys};
use monitor::error::exit;
use std::path::PathBuf;

/// Validate the file (the default when none is named): its keys and values, then the rules
/// it names. Problems are errors as `monitor run` reports them (exit 6, or 3 for rules).
pub fn check(file: Option<PathBuf>) -> monitor::Result<u8> {
    let loaded = config::load(file.as_deref())?;
    let Some(path) = &loaded.path else {
        out(format_args!("{}: not present; monitor run uses the defaults", config::DEFAULT_PATH))?;
        return Ok(exit::OK);
    };
    let set = toml::Value::try_from(&loaded.settings)
        .ok()
        .and_then(|v| v.as_table().map(count_keys))
        .unwrap_or(0);
    if let Some(rules) = &loaded.settings.rules {
        let loaded_rules = super::load_rules(rules)?;
        out(format_args!(
            "{}: {} rules in {} file(s), {} warning(s)",
            path.display(),
            loaded_rules.rules.len(),
            loaded_rules.files.len(),
            loaded_rules.warnings.len()
        ))?;
    }
    out(format_args!("{}: valid, {set} key(s) set", path.display()))?;
    Ok(exit::OK)
}

/// Keys with a value (tables counted by their keys).
fn count_keys(t: &toml::Table) -> usize {
    t.values()
        .map(|v| match v {
            toml::Value::Table(t) => count_keys(t),
            _ => 1,
        })
        .sum()
}

/// The settings `monitor run` would use with these flags: the file under them, every key
/// written out. The result is itself a valid settings file.
pub fn show(args: RunArgs, given: &keys::Given) -> monitor::Result<u8> {
    let (args, loaded) = config::effective(args, given)?;
    let from = match &loaded.path {
        Some(p) => format!("{} and the command line", p.display()),
        None => format!("defaults ({} is not present) and the command line", config::DEFAULT_PATH),
    };
    let settings = keys::from_args(&args);
    let mut text = format!("# The settings of `monitor run`, from {from}.\n");
    if settings.rules.as_ref().is_some_and(|r| r.is_empty()) {
        text.push_str("# rules = []: the built-in default pack.\n");
    }
    if settings.capture.is_none() {
        text.push_str("# capture: not set (nothing recorded).\n");
    }
    text.push_str(&settings.to_toml());
    use std::io::Write;
    std::io::stdout().lock().write_all(text.as_bytes()).map_err(monitor::Error::Output)?;
    Ok(exit::OK)
}
