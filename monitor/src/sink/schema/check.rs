//! A line checked against the field table: every field it has is in the table with the
//! table's type, and every field the table requires of its kind of line is there. The unit
//! tests of the renderers and the end-to-end tests (on every line of real runs) use it.

use super::{field, Type, When, FIELDS, VENDOR};
use serde_json::Value;

/// The kinds of line a line is (its `When`s), from what it says of itself.
fn kinds(line: &Value) -> Vec<When> {
    let s = |p: &str| line.pointer(p).and_then(Value::as_str).unwrap_or("");
    let mut k = vec![When::Every];
    match s("/event/dataset") {
        "monitor.check" => k.push(When::Check),
        "monitor.status" => k.extend([When::Runtime, When::Record]),
        _ => {
            k.extend([When::Runtime, When::Alert]);
            match s("/event/action") {
                "docker-request" => k.push(When::Docker),
                "setuid" | "setgid" => k.push(When::SetId),
                "signal" | "ptrace" | "process-vm" => k.push(When::Tamper),
                _ => {}
            }
            if line.get("container").is_some() {
                k.push(When::Container);
            }
        }
    }
    k
}

/// Every leaf of `v` under `prefix`: (dotted name, value, whether it was an array element).
/// Members of arrays of objects are named through the array; a free-form (flattened)
/// field is a leaf.
fn leaves<'v>(prefix: &str, v: &'v Value, out: &mut Vec<(String, &'v Value, bool)>) {
    let flattened = field(prefix).is_some_and(|f| f.ty == Type::Flattened);
    match v {
        Value::Object(m) if !flattened => {
            for (k, x) in m {
                let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                leaves(&name, x, out);
            }
        }
        Value::Array(items) if !flattened => {
            if items.is_empty() {
                out.push((prefix.to_string(), v, false));
            }
            for x in items {
                match x {
                    Value::Object(_) => leaves(prefix, x, out),
                    _ => out.push((prefix.to_string(), x, true)),
                }
            }
        }
        _ => out.push((prefix.to_string(), v, false)),
    }
}

/// What is wrong with `line` against the table (empty: nothing).
pub fn problems(line: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(top) = line.as_object() else { return vec!["not a JSON object".into()] };
    let mut found = Vec::new();
    leaves("", line, &mut found);
    for (name, v, in_array) in &found {
        let Some(f) = field(name) else {
            out.push(format!("{name}: not in the field table"));
            continue;
        };
        // A member of an array of objects is one value per element.
        let through_array = name
            .rsplit_once('.')
            .is_some_and(|(p, _)| field(p).is_some_and(|o| o.array && o.ty == Type::Object));
        if v.is_array() {
            if !f.array {
                out.push(format!("{name}: an empty array where the table has a {:?}", f.ty));
            }
        } else if *in_array != f.array && !through_array {
            out.push(format!("{name}: the table says array={} ({v})", f.array));
        } else if !f.ty.fits(v) {
            out.push(format!("{name}: {v} is not a {:?}", f.ty));
        }
    }
    let kinds = kinds(line);
    for f in FIELDS.iter().filter(|f| kinds.contains(&f.when) && f.when != When::Optional) {
        let present = match f.ty {
            Type::Object => line.pointer(&format!("/{}", f.name.replace('.', "/"))).is_some(),
            _ => found.iter().any(|(n, _, _)| n == f.name),
        };
        if !present {
            out.push(format!("{}: required on {} lines, missing", f.name, f.when.as_str()));
        }
    }
    let vendor: Vec<&String> = top.keys().filter(|k| field_root_is_vendor(k)).collect();
    if vendor.iter().any(|k| *k != VENDOR) {
        out.push(format!("top-level objects outside ECS: {vendor:?}"));
    }
    out
}

/// Whether a top-level key is none of the table's ECS roots.
fn field_root_is_vendor(k: &str) -> bool {
    static ROOTS: std::sync::OnceLock<std::collections::HashSet<&str>> = std::sync::OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        FIELDS.iter().filter(|f| f.is_ecs()).map(|f| f.name.split('.').next().unwrap()).collect()
    });
    !roots.contains(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_wrong_types_and_missing_fields_are_found() {
        let line = serde_json::json!({
            "@timestamp": "t", "ecs": {"version": "9.4.0"}, "message": "m",
            "event": {"kind": "metric", "category": ["host"], "type": "info", "action": "heartbeat",
                      "module": "monitor", "dataset": "monitor.status", "sequence": "1"},
            "host": {"name": "h", "hostname": "h"},
            "observer": {"product": "monitor", "vendor": "monitor", "version": "1", "hostname": "h", "type": "sensor"},
            "monitor": {"events": 1, "invented": 2},
            "syscall": {"name": "x"},
        });
        let p = problems(&line);
        assert!(p.iter().any(|x| x.starts_with("event.type: the table says array")), "{p:?}");
        assert!(p.iter().any(|x| x.starts_with("event.sequence: \"1\" is not")), "{p:?}");
        assert!(p.iter().any(|x| x.starts_with("monitor.invented: not in")), "{p:?}");
        assert!(p.iter().any(|x| x.starts_with("syscall.name: not in")), "{p:?}");
        assert!(p.iter().any(|x| x.starts_with("top-level objects outside ECS")), "{p:?}");
        assert_eq!(p.len(), 5, "{p:?}");
    }
}
