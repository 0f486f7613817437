//! `monitor check` output: a grouped table for people, or one JSON object per finding
//! (`event.kind: "state"`, same conventions as alerts) for a SIEM.

use crate::check::{Finding, Status};
use serde_json::json;
use std::io::Write;

/// One JSON line per finding.
pub fn json_lines(out: &mut impl Write, findings: &[Finding], timestamp: &str, hostname: &str) -> std::io::Result<()> {
    for f in findings {
        let c = f.check;
        let mut check = json!({
            "status": f.outcome.status.as_str(),
            "severity": c.severity.as_str(),
            "evidence": f.outcome.evidence,
            "remediation": c.remediation,
        });
        if let Status::Unknown(reason) = &f.outcome.status {
            check["reason"] = json!(reason);
        }
        let outcome = match f.outcome.status {
            Status::Pass => "success",
            Status::Fail => "failure",
            Status::NotApplicable | Status::Unknown(_) => "unknown",
        };
        let line = json!({
            "@timestamp": timestamp,
            "event": {"kind": "state", "category": ["configuration"], "action": "check", "outcome": outcome, "severity": c.severity as u8},
            "rule": {"id": c.id, "name": c.title, "category": c.group},
            "check": check,
            "host": {"hostname": hostname},
        });
        writeln!(out, "{line}")?;
    }
    out.flush()
}

/// A table grouped by area; colours only when `colour`.
pub fn table(out: &mut impl Write, findings: &[Finding], colour: bool) -> std::io::Result<()> {
    let paint = |code: &str, s: &str| if colour { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() };
    let mut group = "";
    for f in findings {
        let c = f.check;
        if c.group != group {
            group = c.group;
            writeln!(out, "\n{}", paint("1", &group.to_uppercase()))?;
        }
        let status = match &f.outcome.status {
            Status::Pass => paint("32", "PASS   "),
            Status::Fail => paint("31;1", "FAIL   "),
            Status::NotApplicable => paint("2", "N/A    "),
            Status::Unknown(_) => paint("33", "UNKNOWN"),
        };
        writeln!(out, "  {status} {:<8} {:<26} {}", c.severity.as_str(), c.id, c.title)?;
        if let Status::Unknown(reason) = &f.outcome.status {
            writeln!(out, "{:>46}{}", "", paint("33", &format!("why: {reason}")))?;
        }
        for e in &f.outcome.evidence {
            writeln!(out, "{:>46}{e}", "")?;
        }
        if f.outcome.status == Status::Fail {
            writeln!(out, "{:>46}{}", "", paint("36", &format!("fix: {}", c.remediation)))?;
        }
    }
    let count = |s: &dyn Fn(&Status) -> bool| findings.iter().filter(|f| s(&f.outcome.status)).count();
    writeln!(
        out,
        "\n{} checks: {} pass, {} fail, {} unknown, {} not applicable",
        findings.len(),
        count(&|s| *s == Status::Pass),
        count(&|s| *s == Status::Fail),
        count(&|s| matches!(s, Status::Unknown(_))),
        count(&|s| *s == Status::NotApplicable),
    )?;
    out.flush()
}
