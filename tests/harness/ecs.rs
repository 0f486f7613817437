//! The Elastic Common Schema field table, for asserting that JSON lines are ECS-valid:
//! Elastic's own package (`@elastic/ecs` at the pinned version, `generated/ecs_flat.js`),
//! fetched with `npm pack` once per machine into a cache directory and turned into JSON with
//! node (both installed by `cargo xtask setup --test-deps`: nodejs, npm).

use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The ECS version every line declares (`ecs.version`).
pub const VERSION: &str = "9.4.0";

/// One ECS field: its type, its allowed values (empty: any), whether it is an array.
pub struct Field {
    pub kind: String,
    pub allowed: Vec<String>,
    pub array: bool,
}

fn cache() -> PathBuf {
    std::env::temp_dir().join(format!("monitor-tests-ecs-{VERSION}"))
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{cmd:?}: {e} (nodejs and npm: `cargo xtask setup --test-deps`)")
    });
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Every ECS field by its dotted name.
pub fn fields() -> &'static HashMap<String, Field> {
    static FIELDS: OnceLock<HashMap<String, Field>> = OnceLock::new();
    FIELDS.get_or_init(|| {
        let dir = cache();
        let table = dir.join("ecs_flat.json");
        if !table.exists() {
            // A fresh directory per process, renamed into place: test binaries may race.
            let work = dir.with_extension(format!("tmp-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&work);
            std::fs::create_dir_all(&work).unwrap();
            run(Command::new("npm").args(["pack", "--silent", &format!("@elastic/ecs@{VERSION}")]).current_dir(&work));
            run(Command::new("tar").args(["xzf", &format!("elastic-ecs-{VERSION}.tgz")]).current_dir(&work));
            let json = run(Command::new("node")
                .args(["-e", "process.stdout.write(JSON.stringify(require('./package/generated/ecs_flat.js').EcsFlat))"])
                .current_dir(&work));
            std::fs::write(work.join("ecs_flat.json"), json).unwrap();
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::rename(work.join("ecs_flat.json"), &table).unwrap();
            let _ = std::fs::remove_dir_all(&work);
        }
        let flat: HashMap<String, Value> = serde_json::from_slice(&std::fs::read(&table).unwrap()).unwrap();
        flat.into_iter()
            .map(|(name, f)| {
                let allowed = f["allowed_values"].as_array().map(|a| a.iter().filter_map(|v| v["name"].as_str().map(str::to_string)).collect()).unwrap_or_default();
                let array = f["normalize"].as_array().is_some_and(|n| n.iter().any(|x| x == "array"));
                (name, Field { kind: f["type"].as_str().unwrap_or("").to_string(), allowed, array })
            })
            .collect()
    })
}

/// Whether a JSON value fits an ECS type.
fn fits(kind: &str, v: &Value) -> bool {
    match kind {
        "keyword" | "constant_keyword" | "wildcard" | "text" | "match_only_text" | "ip"
        | "version" => v.is_string(),
        "date" => v
            .as_str()
            .is_some_and(|s| s.len() >= 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T'),
        "long" | "integer" | "short" | "byte" | "unsigned_long" => v.is_i64() || v.is_u64(),
        "float" | "double" | "half_float" | "scaled_float" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" | "flattened" | "nested" => v.is_object() || v.is_array(),
        _ => true,
    }
}

/// What is wrong with a line as ECS: unknown fields outside the `vendor` object, wrong
/// types, values outside the allowed ones, scalars where ECS wants arrays.
pub fn problems(line: &Value, vendor: &str) -> Vec<String> {
    let mut out = Vec::new();
    let fields = fields();
    fn walk(
        prefix: &str,
        v: &Value,
        leaves: &mut Vec<(String, Value)>,
        fields: &HashMap<String, Field>,
    ) {
        match v {
            // An object-typed ECS field (labels, ...) is a leaf.
            Value::Object(m)
                if !fields
                    .get(prefix)
                    .is_some_and(|f| f.kind == "object" || f.kind == "flattened") =>
            {
                for (k, x) in m {
                    let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&name, x, leaves, fields);
                }
            }
            _ => leaves.push((prefix.to_string(), v.clone())),
        }
    }
    let mut leaves = Vec::new();
    walk("", line, &mut leaves, fields);
    for (name, v) in leaves {
        if name == vendor || name.starts_with(&format!("{vendor}.")) {
            continue;
        }
        let Some(f) = fields.get(&name) else {
            out.push(format!("{name}: not an ECS {VERSION} field"));
            continue;
        };
        let values: Vec<&Value> = match &v {
            Value::Array(a) => a.iter().collect(),
            x => {
                if f.array {
                    out.push(format!("{name}: ECS wants an array"));
                }
                vec![x]
            }
        };
        for x in values {
            if !fits(&f.kind, x) {
                out.push(format!("{name}: {x} is not of ECS type {}", f.kind));
            }
            if !f.allowed.is_empty()
                && !x.as_str().is_some_and(|s| f.allowed.iter().any(|a| a == s))
            {
                out.push(format!("{name}: {x} is not an allowed value ({})", f.allowed.join(", ")));
            }
        }
    }
    out
}
