//! Elasticsearch templates made from the field table: a component template with the
//! mappings of every field (ECS's types for ECS fields; keywords for unlisted strings under
//! `monitor`), and a composable index template for `monitor-*` data streams using it.

use crate::sink::schema::{Type, ECS_VERSION, FIELDS};
use serde_json::{json, Map, Value};

/// The component template's name, as the index template refers to it.
pub const COMPONENT: &str = "monitor-ecs-mappings";

/// ECS's keyword limit: longer values are kept in `_source`, not indexed.
const IGNORE_ABOVE: u64 = 1024;

fn meta() -> Value {
    json!({
        "ecs_version": ECS_VERSION,
        "monitor_version": env!("CARGO_PKG_VERSION"),
        "description": "Made by `monitor generate schema` from the monitor's field table; do not edit.",
    })
}

/// The mapping tree of every field: nested `properties` per dotted component.
fn properties() -> Map<String, Value> {
    let mut root = Map::new();
    for f in FIELDS {
        let mut at = &mut root;
        let parts: Vec<&str> = f.name.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            let node = at.entry(*p).or_insert_with(|| json!({"properties": {}}));
            at = node["properties"].as_object_mut().expect("objects have properties");
        }
        let leaf = parts[parts.len() - 1];
        let mapping = match f.ty {
            Type::Object => json!({"properties": {}}),
            Type::Keyword => json!({"type": "keyword", "ignore_above": IGNORE_ABOVE}),
            Type::Flattened => json!({"type": "flattened", "ignore_above": IGNORE_ABOVE}),
            other => json!({"type": other.mapping()}),
        };
        let entry = at.entry(leaf).or_insert_with(|| json!({}));
        for (k, v) in mapping.as_object().unwrap() {
            if entry.get(k).is_none() {
                entry[k] = v.clone();
            }
        }
    }
    root
}

/// The component template (`PUT _component_template/monitor-ecs-mappings`).
pub fn component() -> String {
    let t = json!({
        "template": {
            "mappings": {
                "date_detection": false,
                "dynamic_templates": [{
                    "monitor_strings": {
                        "path_match": "monitor.*",
                        "match_mapping_type": "string",
                        "mapping": {"type": "keyword", "ignore_above": IGNORE_ABOVE},
                    }
                }],
                "properties": properties(),
            }
        },
        "_meta": meta(),
    });
    serde_json::to_string_pretty(&t).unwrap() + "\n"
}

/// The composable index template (`PUT _index_template/monitor`).
pub fn index() -> String {
    let t = json!({
        "index_patterns": ["monitor-*"],
        "data_stream": {},
        "composed_of": [COMPONENT],
        "priority": 200,
        "_meta": meta(),
    });
    serde_json::to_string_pretty(&t).unwrap() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a.b.c` in the mappings.
    fn mapping<'v>(props: &'v Value, dotted: &str) -> &'v Value {
        dotted.split('.').fold(props, |at, k| &at["properties"][k])
    }

    #[test]
    fn every_field_is_mapped_with_its_type() {
        let c: Value = serde_json::from_str(&component()).unwrap();
        let root = &c["template"]["mappings"];
        for f in FIELDS {
            let m = mapping(root, f.name);
            match f.ty {
                Type::Object => assert!(m["properties"].is_object(), "{}: {m}", f.name),
                t => assert_eq!(m["type"], t.mapping(), "{}", f.name),
            }
        }
        assert_eq!(mapping(root, "process.parent.pid")["type"], "long");
        assert_eq!(mapping(root, "file.inode")["type"], "keyword");
        assert_eq!(mapping(root, "message")["type"], "match_only_text");
        assert_eq!(c["_meta"]["ecs_version"], ECS_VERSION);
        let i: Value = serde_json::from_str(&index()).unwrap();
        assert_eq!(i["composed_of"], json!([COMPONENT]));
    }
}
