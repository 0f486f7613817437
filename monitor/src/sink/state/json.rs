//! Posture findings as ECS 9.4.0 JSON, one object per line: `event.kind: state`, the check
//! as `rule.*`, the container or image as `container.*`, the host and the observer, and
//! everything ECS does not define under `monitor.*` (`monitor.check.result`, `.reason`,
//! `.evidence`, `.remediation`, `.cis_id`, `.level`, `.profiles`, `.container_state`).

use super::{summary, Report};
use crate::check::{Finding, Status, Subject};
use serde_json::{json, Value};
use std::io::Write;

pub use crate::sink::schema::ECS_VERSION;

/// The `host` member.
pub fn host_member(r: &Report) -> Value {
    r.host.ecs()
}

/// One finding as its ECS object.
pub fn finding(r: &Report, f: &Finding, host: &Value) -> Value {
    let c = f.check;
    let o = &f.outcome;
    let outcome = match o.status {
        Status::Pass => "success",
        Status::Fail => "failure",
        Status::Warn | Status::NotApplicable | Status::Unknown => "unknown",
    };
    let mut check = json!({
        "result": o.status.as_str(),
        "evidence": o.evidence,
        "remediation": c.remediation,
        "profiles": c.profiles(),
    });
    if let Some(reason) = &o.reason {
        check["reason"] = json!(reason);
    }
    if let Some(cis) = c.cis {
        check["cis_id"] = json!(cis.id);
        check["level"] = json!(cis.level);
    }
    let mut rule = json!({
        "id": c.id,
        "name": c.title,
        "ruleset": c.ruleset(),
        "category": c.group,
        "description": match c.cis {
            Some(cis) => format!("{} {} (Level {}): {}", crate::check::CIS_BENCHMARK, cis.id, cis.level, cis.title),
            None => format!("hardening-guides item, {} group", c.group),
        },
    });
    if !c.reference.is_empty() {
        rule["reference"] = json!(c.reference);
    }
    let mut line = json!({
        "@timestamp": r.timestamp,
        "ecs": {"version": ECS_VERSION},
        "message": summary(f),
        "event": {
            "kind": "state",
            "category": ["configuration"],
            "type": ["info"],
            "action": "posture-check",
            "outcome": outcome,
            "severity": c.severity.ecs(),
            "risk_score": c.severity.ecs() as f64,
            "dataset": "monitor.check",
            "module": "monitor",
        },
        "rule": rule,
        "host": host,
        "observer": crate::sink::ecs::observer(&r.host.name, "scanner"),
        "monitor": {"severity": c.severity.as_str(), "check": check},
    });
    match &f.subject {
        Subject::Host => {}
        Subject::Container { id, name, image, state, .. } => {
            line["container"] = json!({"id": id, "name": name, "image": {"name": image}});
            line["monitor"]["check"]["container_state"] = json!(state);
        }
        Subject::Image { id, names, .. } => {
            let mut image = json!({"hash": {"all": [id]}});
            if let Some(n) = names.first() {
                image["name"] = json!(n);
            }
            if names.len() > 1 {
                image["tag"] = json!(names
                    .iter()
                    .filter_map(|n| n.rsplit_once(':').map(|t| t.1))
                    .collect::<Vec<_>>());
            }
            line["container"] = json!({"image": image});
        }
    }
    line
}

/// One JSON line per finding.
pub fn write(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    let host = host_member(r);
    for f in r.findings {
        writeln!(out, "{}", finding(r, f, &host))?;
    }
    out.flush()
}
