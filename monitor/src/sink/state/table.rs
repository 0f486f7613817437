//! Posture findings as a table for people: grouped by guide area or CIS section, one line
//! per check, and under a per-container or per-image check one line per container or image;
//! the reason, evidence and fix under each line that needs them. Colours only on a terminal.
//! What the host supplied (paths, users, image names) is printed with its control
//! characters escaped, so no file or container setting can drive the reader's terminal.

use super::{subject_label, Report};
use crate::check::{Finding, Status};
use std::io::Write;

const INDENT: usize = 8;

/// `s` with control characters shown as escapes (`\u{1b}`).
pub(super) fn clean(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

fn word(s: Status) -> &'static str {
    match s {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::Warn => "WARN",
        Status::NotApplicable => "N/A",
        Status::Unknown => "UNKNOWN",
    }
}

fn code(s: Status) -> &'static str {
    match s {
        Status::Pass => "32",
        Status::Fail => "31;1",
        Status::Warn => "35",
        Status::NotApplicable => "2",
        Status::Unknown => "33",
    }
}

/// The result a check shows on its own line: the worst of its findings.
fn worst(fs: &[&Finding]) -> Status {
    let rank = |s: Status| match s {
        Status::Fail => 4,
        Status::Unknown => 3,
        Status::Warn => 2,
        Status::Pass => 1,
        Status::NotApplicable => 0,
    };
    fs.iter().map(|f| f.outcome.status).max_by_key(|s| rank(*s)).unwrap_or(Status::NotApplicable)
}

pub fn write(out: &mut impl Write, r: &Report, colour: bool) -> std::io::Result<()> {
    let paint = |code: &str, s: &str| {
        if colour {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let status = |s: Status| paint(code(s), &format!("{:<7}", word(s)));
    let pad = " ".repeat(INDENT);
    // The findings of one check are consecutive.
    let mut groups: Vec<Vec<&Finding>> = Vec::new();
    for f in r.findings {
        match groups.last_mut() {
            Some(g) if std::ptr::eq(g[0].check, f.check) => g.push(f),
            _ => groups.push(vec![f]),
        }
    }
    let mut heading = String::new();
    for g in &groups {
        let c = g[0].check;
        let h = r.heading(g[0]);
        if h != heading {
            writeln!(out, "\n{}", paint("1", &h.to_uppercase()))?;
            heading = h;
        }
        let id = super::label(c);
        let level = c.cis.map(|c| format!("L{}", c.level)).unwrap_or_default();
        writeln!(
            out,
            "  {} {:<8} {:<2} {:<26} {}",
            status(worst(g)),
            c.severity.as_str(),
            level,
            id,
            c.title
        )?;
        let per_subject = g.len() > 1 || g[0].subject != crate::check::Subject::Host;
        for f in g {
            let o = &f.outcome;
            let mut lines: Vec<String> = Vec::new();
            if let Some(reason) = &o.reason {
                let label = match o.status {
                    Status::Warn => "review",
                    Status::Unknown => "why",
                    _ => "because",
                };
                lines.push(paint(code(o.status), &format!("{label}: {}", clean(reason))));
            }
            lines.extend(o.evidence.iter().map(|e| clean(e)));
            if per_subject {
                writeln!(out, "{pad}{} {}", status(o.status), clean(&subject_label(&f.subject)))?;
                for l in lines {
                    writeln!(out, "{pad}        {l}")?;
                }
            } else {
                for l in lines {
                    writeln!(out, "{pad}{l}")?;
                }
            }
        }
        if g.iter().any(|f| f.outcome.status == Status::Fail) {
            writeln!(out, "{pad}{}", paint("36", &format!("fix: {}", c.remediation)))?;
        }
    }
    let containers: std::collections::HashSet<&str> = r
        .findings
        .iter()
        .filter_map(|f| match &f.subject {
            crate::check::Subject::Container { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    writeln!(
        out,
        "\n{} checks: {} pass, {} fail, {} warn, {} unknown, {} not applicable ({} rules, {} containers, {:.2} s)",
        r.findings.len(),
        r.count(Status::Pass),
        r.count(Status::Fail),
        r.count(Status::Warn),
        r.count(Status::Unknown),
        r.count(Status::NotApplicable),
        groups.len(),
        containers.len(),
        r.seconds,
    )?;
    out.flush()
}
