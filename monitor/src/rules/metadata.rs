//! What each rule key of the default pack and of the built-in detections means: title,
//! severity, MITRE ATT&CK technique, description and remediation (rules/metadata.json,
//! built into the binary), and the ATT&CK tactics of those techniques. Alerts carry the
//! metadata of their key.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

static TEXT: &str = include_str!("../../../rules/metadata.json");

/// Metadata of one key.
#[derive(Clone, Debug)]
pub struct KeyMeta {
    pub title: String,
    pub severity: String,
    pub technique_id: String,
    pub technique_name: String,
    pub description: String,
    pub remediation: String,
}

impl KeyMeta {
    /// ECS `event.severity`: low 21, medium 47, high 73, critical 99 (0: none given).
    pub fn severity_number(&self) -> u8 {
        match self.severity.as_str() {
            "low" => 21,
            "medium" => 47,
            "high" => 73,
            "critical" => 99,
            _ => 0,
        }
    }
}

/// The ATT&CK (Enterprise) tactics of the techniques the metadata names, by technique id
/// (a sub-technique has its parent's): (tactic id, tactic name).
const TACTICS: &[(&str, &[(&str, &str)])] = &[
    ("T1021", &[("TA0008", "Lateral Movement")]),
    ("T1098", &[("TA0003", "Persistence"), ("TA0004", "Privilege Escalation")]),
    ("T1525", &[("TA0003", "Persistence")]),
    ("T1543", &[("TA0003", "Persistence"), ("TA0004", "Privilege Escalation")]),
    ("T1547", &[("TA0003", "Persistence"), ("TA0004", "Privilege Escalation")]),
    ("T1548", &[("TA0004", "Privilege Escalation"), ("TA0005", "Defense Evasion")]),
    ("T1552", &[("TA0006", "Credential Access")]),
    ("T1554", &[("TA0003", "Persistence")]),
    ("T1562", &[("TA0005", "Defense Evasion")]),
    ("T1609", &[("TA0002", "Execution")]),
    ("T1610", &[("TA0005", "Defense Evasion"), ("TA0002", "Execution")]),
    ("T1611", &[("TA0004", "Privilege Escalation")]),
];

/// The tactics of technique `id` (`T1562` or `T1562.001`).
pub fn tactics(id: &str) -> &'static [(&'static str, &'static str)] {
    let parent = id.split('.').next().unwrap_or(id);
    TACTICS.iter().find(|(t, _)| *t == parent).map_or(&[], |(_, tactics)| tactics)
}

fn table() -> &'static HashMap<String, KeyMeta> {
    static TABLE: OnceLock<HashMap<String, KeyMeta>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let v: Value =
            serde_json::from_str(TEXT).expect("rules/metadata.json is valid JSON (unit-tested)");
        let s =
            |m: &Value, k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        v.as_object()
            .into_iter()
            .flatten()
            .map(|(key, m)| {
                let t = |i: usize| {
                    m["technique"].get(i).and_then(Value::as_str).unwrap_or_default().to_string()
                };
                (
                    key.clone(),
                    KeyMeta {
                        title: s(m, "title"),
                        severity: s(m, "severity"),
                        technique_id: t(0),
                        technique_name: t(1),
                        description: s(m, "description"),
                        remediation: s(m, "remediation"),
                    },
                )
            })
            .collect()
    })
}

/// The metadata of `key`, if the pack defines it.
pub fn get(key: &str) -> Option<&'static KeyMeta> {
    table().get(key)
}

/// Every key with its metadata (alert output makes its JSON once per key from these).
pub fn all() -> impl Iterator<Item = (&'static str, &'static KeyMeta)> {
    table().iter().map(|(k, m)| (k.as_str(), m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{parse::SystemIds, RuleSet};

    #[test]
    fn every_key_of_the_pack_and_of_the_builtins_has_complete_metadata() {
        let set = RuleSet::builtin(&SystemIds::load()).unwrap();
        let mut keys: Vec<String> = set.rules.iter().flat_map(|r| r.keys.clone()).collect();
        keys.extend(
            [
                "docker-api",
                "docker-privileged",
                "docker-host-mount",
                "docker-host-namespace",
                "docker-security-opt",
                "docker-cap-add",
                "docker-devices",
                "docker-exec",
                "monitor-tamper",
            ]
            .map(String::from),
        );
        keys.sort();
        keys.dedup();
        for k in &keys {
            let m = table().get(k).unwrap_or_else(|| panic!("no metadata for key {k}"));
            assert!(
                !m.title.is_empty() && !m.description.is_empty() && !m.remediation.is_empty(),
                "{k}"
            );
            assert!(m.severity_number() > 0, "{k}: severity {}", m.severity);
            assert!(m.technique_id.starts_with('T') && !m.technique_name.is_empty(), "{k}");
            assert!(!tactics(&m.technique_id).is_empty(), "{k}: no tactic for {}", m.technique_id);
            // A sub-technique is named "Parent: Sub" (the alert splits it).
            assert_eq!(m.technique_id.contains('.'), m.technique_name.contains(": "), "{k}");
        }
        assert!(table().len() >= keys.len());
    }
}
