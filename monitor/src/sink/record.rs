//! In-band records about the monitor itself (`event.dataset: monitor.status`): start,
//! heartbeat, events lost, alerts suppressed, rule reloads, stop. Each is an ECS line like
//! the alerts; what ECS has a field for goes there (an interval in `event.start`/`end`, a
//! stop's reason in `event.reason`, the suppressed alerts' key in `rule.id`), the record's
//! own content under `monitor`.
//!
//! A capture keeps the record lines the live run wrote; a replay writes them again,
//! renumbered, and turns lines of captures made before this schema into it.

use super::{ecs, message::push_escaped, schema};
use crate::enrich::HostInfo;
use serde_json::{json, Map, Value};

/// What every record line says of where it comes from.
pub struct Frame<'a> {
    /// The host the events are about.
    pub host: &'a HostInfo,
    /// The machine this monitor runs on.
    pub observer: &'a str,
    /// The monitor's pid (start and stop records).
    pub monitor_pid: u32,
}

/// A record line: `action` (`monitor-start`, ...), numbered `sequence`, written at
/// `timestamp`, with the record's content `body` (the members of `monitor`).
pub fn render(action: &str, sequence: u64, timestamp: &str, frame: &Frame, body: Value) -> String {
    let mut body = match strip_nulls(body) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    // Captures made before the totals had their own name.
    if let Some(n) = body.get("suppressed").filter(|v| v.is_number()).cloned() {
        body.remove("suppressed");
        body.insert("alerts_suppressed".into(), n);
    }
    let (kind, category, types) = ecs::of_record(action);
    let mut event = json!({
        "kind": kind,
        "category": category,
        "type": types,
        "action": action,
        "module": "monitor",
        "dataset": "monitor.status",
        "sequence": sequence,
    });
    let window = body.remove("window").or_else(|| {
        body.get_mut("suppressed").and_then(Value::as_object_mut).and_then(|s| s.remove("window"))
    });
    if let Some(w) = window {
        event["start"] = w["start"].clone();
        event["end"] = w["end"].clone();
    }
    if let Some(reason) = body.remove("reason") {
        event["reason"] = reason;
    }
    match action {
        "rules-reloaded" => event["outcome"] = json!("success"),
        "rules-reload-failed" => event["outcome"] = json!("failure"),
        _ => {}
    }
    let body = Value::Object(body);
    let mut line = json!({
        "@timestamp": timestamp,
        "ecs": {"version": schema::ECS_VERSION},
        "message": message(action, &event, &body),
        "event": event,
        "host": frame.host.ecs(),
        "observer": ecs::observer(frame.observer, "sensor"),
    });
    if matches!(action, "monitor-start" | "monitor-stop") {
        line["process"] = json!({"pid": frame.monitor_pid, "name": "monitor"});
    }
    if let Some(key) = body.pointer("/suppressed/about/rule/key").and_then(Value::as_str) {
        if !key.is_empty() {
            line["rule"] = json!({"id": key});
        }
    }
    line["monitor"] = body;
    line.to_string()
}

/// `v` without its null members (an absent field says "not known"; captures made before
/// this schema wrote nulls).
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter().filter(|(_, x)| !x.is_null()).map(|(k, x)| (k, strip_nulls(x))).collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

/// A record line a capture holds, as this output writes it: numbered `sequence`, observed
/// by this monitor; a line of an older schema is made anew from its content. `None` when
/// it is not a JSON object.
pub fn replayed(line: &[u8], sequence: u64, frame: &Frame) -> Option<String> {
    let mut v: Value = serde_json::from_slice(line).ok()?;
    if !v.is_object() {
        return None;
    }
    if v.pointer("/ecs/version").and_then(Value::as_str) == Some(schema::ECS_VERSION) {
        v["event"]["sequence"] = json!(sequence);
        v["observer"] = ecs::observer(frame.observer, "sensor");
        return Some(v.to_string());
    }
    let action = v.pointer("/event/action").and_then(Value::as_str).unwrap_or("record");
    let timestamp = v["@timestamp"].as_str().unwrap_or("");
    Some(render(action, sequence, timestamp, frame, v["monitor"].clone()))
}

/// The record's `message`.
fn message(action: &str, event: &Value, b: &Value) -> String {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let totals = || {
        format!("{} events, {} alerts, {} lost", n(&b["events"]), n(&b["alerts"]), n(&b["lost"]))
    };
    match action {
        "monitor-start" => {
            let s = &b["start"];
            format!(
                "monitor {} started ({} source): {} rules, {} hook points",
                s["version"].as_str().unwrap_or("?"),
                s["source"].as_str().unwrap_or("ebpf"),
                n(&s["rules"]["count"]),
                n(&s["hooks"])
            )
        }
        "heartbeat" => format!("heartbeat: {}", totals()),
        "monitor-stop" => {
            format!("monitor stopped ({}): {}", event["reason"].as_str().unwrap_or("?"), totals())
        }
        "events-lost" => format!(
            "{} events lost in the kernel ({} in total)",
            n(&b["lost"]),
            n(&b["lost_total"])
        ),
        "alerts-suppressed" => {
            let s = &b["suppressed"];
            let a = &s["about"];
            let mut m = format!(
                "{} identical alerts suppressed after event {}: {} ",
                n(&s["count"]),
                n(&s["of_sequence"]),
                a["rule"]["key"].as_str().unwrap_or("?")
            );
            m.push_str(a["action"].as_str().unwrap_or("?"));
            if let Some(p) = a["path"].as_str() {
                m.push(' ');
                push_escaped(&mut m, p.as_bytes(), 160);
            }
            m.push_str(&format!(" by pid {}", n(&a["process"]["pid"])));
            m
        }
        "rules-reloaded" => format!(
            "rules reloaded: {} rules (hash {})",
            n(&b["rules"]["count"]),
            b["rules"]["hash"].as_str().unwrap_or("?")
        ),
        "rules-reload-failed" => format!(
            "rules reload refused ({} errors); the rules in force (hash {}) stay",
            b["errors"].as_array().map_or(0, Vec::len),
            b["rules"]["hash"].as_str().unwrap_or("?")
        ),
        "output-lost" => {
            let o = &b["output"];
            format!(
                "{} lines lost by output {} ({} in total)",
                n(&o["lost"]),
                o["name"].as_str().unwrap_or("?"),
                n(&o["lost_total"])
            )
        }
        "outputs-reopened" => "outputs reopened (SIGUSR1)".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(host: &HostInfo) -> Frame<'_> {
        Frame { host, observer: "obs", monitor_pid: 42 }
    }

    #[test]
    fn windows_reasons_and_keys_go_to_their_ecs_fields() {
        let host = HostInfo::named("h");
        let w = json!({"start": "2026-01-01T00:00:00.000000000Z", "end": "2026-01-01T00:00:01.000000000Z"});
        let lost: Value = serde_json::from_str(&render(
            "events-lost",
            3,
            "t",
            &frame(&host),
            json!({"lost": 5, "lost_total": 9, "window": w}),
        ))
        .unwrap();
        assert_eq!(lost["event"]["start"], w["start"]);
        assert_eq!(lost["event"]["end"], w["end"]);
        assert_eq!(lost["event"]["kind"], "metric");
        assert_eq!(lost["monitor"], json!({"lost": 5, "lost_total": 9}));
        assert_eq!(lost["message"], "5 events lost in the kernel (9 in total)");
        let stop: Value = serde_json::from_str(&render(
            "monitor-stop",
            4,
            "t",
            &frame(&host),
            json!({"reason": "SIGTERM", "events": 1, "suppressed": 2}),
        ))
        .unwrap();
        assert_eq!(stop["event"]["reason"], "SIGTERM");
        assert_eq!(stop["monitor"], json!({"events": 1, "alerts_suppressed": 2}));
        assert_eq!(stop["process"], json!({"pid": 42, "name": "monitor"}));
        assert_eq!(stop["observer"]["hostname"], "obs");
        assert_eq!(stop["ecs"]["version"], schema::ECS_VERSION);
        let sup: Value = serde_json::from_str(&render(
            "alerts-suppressed",
            5,
            "t",
            &frame(&host),
            json!({"suppressed": {"count": 9, "of_sequence": 2, "window": w, "about": {"rule": {"key": "k", "source": "f:1"}, "action": "write", "path": "/a\nb", "process": {"pid": 7}}}}),
        ))
        .unwrap();
        assert_eq!(sup["rule"]["id"], "k");
        assert_eq!(sup["event"]["start"], w["start"]);
        assert!(sup["monitor"]["suppressed"].get("window").is_none());
        assert_eq!(
            sup["message"],
            "9 identical alerts suppressed after event 2: k write /a\\x0ab by pid 7"
        );
    }

    #[test]
    fn a_record_of_an_old_capture_is_made_anew_and_a_current_one_renumbered() {
        let host = HostInfo::named("h");
        let old = br#"{"@timestamp":"2026-01-01T00:00:00.000000000Z","event":{"kind":"metric","action":"heartbeat","sequence":9,"dataset":"monitor"},"monitor":{"events":3,"alerts":1,"suppressed":0,"lost":0,"x":{"y":null}},"host":{"hostname":"h"}}"#;
        let v: Value = serde_json::from_str(&replayed(old, 2, &frame(&host)).unwrap()).unwrap();
        assert_eq!(v["event"]["sequence"], 2);
        assert_eq!(v["event"]["dataset"], "monitor.status");
        assert_eq!(v["@timestamp"], "2026-01-01T00:00:00.000000000Z");
        assert_eq!(v["monitor"]["alerts_suppressed"], 0);
        assert_eq!(v["monitor"]["x"], json!({}), "nulls are dropped");
        assert_eq!(v["host"]["name"], "h");
        let again: Value =
            serde_json::from_str(&replayed(v.to_string().as_bytes(), 7, &frame(&host)).unwrap())
                .unwrap();
        assert_eq!(again["event"]["sequence"], 7);
        assert_eq!(again["monitor"], v["monitor"]);
        assert!(replayed(b"[1]", 1, &frame(&host)).is_none());
    }
}
