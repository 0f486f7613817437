//! `monitor rules check|list|export`: the rules validated, listed, or written for auditd.

use super::{load_rules, out};
use monitor::error::exit;
use monitor::rules;
use monitor::Error;
use std::path::PathBuf;

/// Validate: warnings and a summary per key on stdout (once).
pub fn check(paths: Vec<PathBuf>) -> monitor::Result<u8> {
    let rules = load_rules(&paths)?;
    for w in &rules.warnings {
        out(w)?;
    }
    let mut per_key: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for r in &rules.rules {
        let e = per_key.entry(r.key()).or_default();
        if r.inactive.is_none() {
            e.0 += 1
        } else {
            e.1 += 1
        }
    }
    for (key, (active, inactive)) in per_key {
        let key = if key.is_empty() { "(no key)" } else { key };
        out(format_args!("{key}: {active} active, {inactive} inactive"))?;
    }
    out(format_args!(
        "{} rules in {} file(s), {} warning(s)",
        rules.rules.len(),
        rules.files.len(),
        rules.warnings.len()
    ))?;
    Ok(exit::OK)
}

/// The rules that would be loaded, as written (fields included), with where each comes
/// from and its state: `source<TAB>rule<TAB>state` (`cut -f2` gives the rules themselves).
pub fn list(paths: Vec<PathBuf>) -> monitor::Result<u8> {
    let rules = load_rules(&paths)?;
    for r in &rules.rules {
        let state = match &r.inactive {
            Some(reason) if r.audit_only => format!("audit sources only: {reason}"),
            Some(reason) => format!("inactive: {reason}"),
            None => "active".into(),
        };
        out(format_args!("{}\t{}\t{state}", r.source, r.text))?;
    }
    Ok(exit::OK)
}

/// The rules as stock auditctl loads them.
pub fn export(paths: Vec<PathBuf>, for_host: bool) -> monitor::Result<u8> {
    let set = load_rules(&paths)?;
    let texts: Vec<(String, String)> = if paths.is_empty() {
        rules::BUILTIN.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect()
    } else {
        let mut texts = Vec::new();
        for f in rules::expand(&paths)? {
            let text = std::fs::read_to_string(&f).map_err(|e| {
                Error::RulesPath(format!("cannot read rules file {}: {e}", f.display()))
            })?;
            texts.push((f.display().to_string(), text));
        }
        texts
    };
    let (text, omitted) = rules::export::export(&texts, &set, for_host);
    {
        use std::io::Write;
        std::io::stdout().lock().write_all(text.as_bytes()).map_err(Error::Output)?;
    }
    eprintln!(
        "monitor: exported {} file(s); left out {} rule(s) with parent_exe= and {} naming a directory absent here",
        texts.len(),
        omitted.extensions,
        omitted.absent
    );
    Ok(exit::OK)
}
