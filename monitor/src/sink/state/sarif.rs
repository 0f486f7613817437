//! Posture findings as one SARIF 2.1.0 log, for code-scanning dashboards: a rule per
//! check (its CIS id, level and profiles in the rule's properties, GitHub's
//! `security-severity` from its severity) and a result per finding. `kind` carries the
//! result (fail, pass, review for warn, notApplicable, open for unknown) and `level` the
//! severity of a failure; every result is located at the file it was read from (the
//! container's hostconfig.json for a container) and a container or image also as a logical
//! location.

use super::{summary, Report};
use crate::check::{Check, Severity, Status, Subject};
use serde_json::{json, Value};
use std::io::Write;

pub const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// `file:///…` with the characters a URI cannot carry percent-encoded.
pub(super) fn file_uri(path: &str) -> String {
    let mut out = String::from("file://");
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// GitHub code scanning's `security-severity` (critical above 9.0, high 7.0-8.9, ...).
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

fn failure_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

fn rule(c: &Check) -> Value {
    let mut tags = vec![c.ruleset().to_string(), c.group.to_string(), "security".to_string()];
    let mut props = json!({"precision": "very-high", "security-severity": security_severity(c.severity), "severity": c.severity.as_str(), "profiles": c.profiles()});
    if let Some(cis) = c.cis {
        tags.push(format!("CIS-{}", cis.id));
        props["cis_id"] = json!(cis.id);
        props["level"] = json!(cis.level);
    }
    props["tags"] = json!(tags);
    let full = match c.cis {
        Some(cis) => format!(
            "{} (CIS Docker Benchmark v1.6.0, {} {}, Level {})",
            c.title, cis.id, cis.title, cis.level
        ),
        None => format!("{} (hardening-guides, {})", c.title, c.group),
    };
    let mut r = json!({
        "id": c.id,
        "name": c.id,
        "shortDescription": {"text": c.title},
        "fullDescription": {"text": full},
        "help": {"text": c.remediation},
        "defaultConfiguration": {"level": failure_level(c.severity)},
        "properties": props,
    });
    if c.reference.starts_with("https://") {
        r["helpUri"] = json!(c.reference);
    }
    r
}

/// The SARIF log of a report.
pub fn log(r: &Report, exit_code: u8) -> Value {
    let mut rules: Vec<&'static Check> = Vec::new();
    let mut results = Vec::new();
    for f in r.findings {
        let index = match rules.iter().position(|c| std::ptr::eq(*c, f.check)) {
            Some(i) => i,
            None => {
                rules.push(f.check);
                rules.len() - 1
            }
        };
        let o = &f.outcome;
        let (kind, level) = match o.status {
            Status::Fail => ("fail", failure_level(f.check.severity)),
            Status::Pass => ("pass", "none"),
            Status::Warn => ("review", "none"),
            Status::NotApplicable => ("notApplicable", "none"),
            Status::Unknown => ("open", "none"),
        };
        let mut location =
            json!({"physicalLocation": {"artifactLocation": {"uri": file_uri(&f.location())}}});
        let mut props = json!({"result": o.status.as_str(), "evidence": o.evidence});
        if let Some(reason) = &o.reason {
            props["reason"] = json!(reason);
        }
        let subject = match &f.subject {
            Subject::Host => format!("host {}", r.host.name),
            Subject::Container { id, name, image, state, .. } => {
                location["logicalLocations"] = json!([{"name": name, "fullyQualifiedName": format!("container/{id}"), "kind": "resource"}]);
                props["container"] =
                    json!({"id": id, "name": name, "image": image, "state": state});
                format!("container/{id}")
            }
            Subject::Image { id, names, .. } => {
                location["logicalLocations"] = json!([{"name": names.first().cloned().unwrap_or_else(|| id.clone()), "fullyQualifiedName": format!("image/{id}"), "kind": "resource"}]);
                props["image"] = json!({"id": id, "names": names});
                format!("image/{id}")
            }
        };
        let mut text = summary(f);
        if o.status == Status::Fail {
            text.push_str(&format!(". Fix: {}", f.check.remediation));
        }
        results.push(json!({
            "ruleId": f.check.id,
            "ruleIndex": index,
            "kind": kind,
            "level": level,
            "message": {"text": text},
            "locations": [location],
            "partialFingerprints": {"monitorFinding/v1": format!("{}:{}:{subject}", f.check.id, r.host.name)},
            "properties": props,
        }));
    }
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "monitor",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules.iter().map(|c| rule(c)).collect::<Vec<_>>(),
            }},
            "automationDetails": {"id": format!("monitor-check/{}/", r.host.name)},
            "invocations": [{"executionSuccessful": true, "exitCode": exit_code, "endTimeUtc": r.timestamp, "machine": r.host.name}],
            "results": results,
        }],
    })
}

pub fn write(out: &mut impl Write, r: &Report, exit_code: u8) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &log(r, exit_code))?;
    writeln!(out)?;
    out.flush()
}
