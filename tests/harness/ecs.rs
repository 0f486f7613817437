//! The Elastic Common Schema field table, for asserting that JSON lines are ECS-valid:
//! Elastic's own package (`@elastic/ecs` at the version the monitor pins,
//! `generated/ecs_flat.js`), fetched with `npm pack` once per machine into a cache directory
//! and turned into JSON with node (both installed by `cargo xtask setup --test-deps`:
//! nodejs, npm). [`check`] holds a line to both ECS and the monitor's own field table.

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The ECS version every line declares (`ecs.version`): the monitor's, pinned in one place.
pub const VERSION: &str = monitor::sink::schema::ECS_VERSION;
/// The one top-level object ECS does not define.
pub const VENDOR: &str = monitor::sink::schema::VENDOR;

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
    fn walk<'v>(
        prefix: &str,
        v: &'v Value,
        leaves: &mut Vec<(String, &'v Value)>,
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
            _ => leaves.push((prefix.to_string(), v)),
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
        let values: Vec<&Value> = match v {
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

/// What the monitor's field table says of ECS fields that ECS says otherwise: a name ECS
/// does not have, another type, an array where ECS has none or the reverse.
pub fn table_problems() -> Vec<String> {
    use monitor::sink::schema::{Type, FIELDS};
    let ecs = fields();
    let mut out = Vec::new();
    for f in FIELDS.iter().filter(|f| f.is_ecs()) {
        let Some(e) = ecs.get(f.name) else {
            out.push(format!("{}: in the table, not in ECS {VERSION}", f.name));
            continue;
        };
        if f.ty == Type::Object {
            continue;
        }
        if e.kind != f.ty.mapping() {
            out.push(format!("{}: the table says {}, ECS {}", f.name, f.ty.mapping(), e.kind));
        }
        if e.array != f.array {
            out.push(format!("{}: the table says array={}, ECS {}", f.name, f.array, e.array));
        }
    }
    out
}

/// What was checked so far in this test process.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub lines: u64,
    /// Values checked (every leaf of every line).
    pub values: u64,
    pub fields: BTreeSet<String>,
    /// `event.kind/event.dataset/event.action` seen.
    pub kinds: BTreeSet<String>,
}

static TALLY: Mutex<Option<Tally>> = Mutex::new(None);

/// The counts of everything [`check`] has checked in this process.
pub fn tally() -> Tally {
    TALLY.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default()
}

/// Every leaf name of a line (members of arrays of objects through the array).
fn leaf_names(prefix: &str, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m)
            if prefix != "monitor.docker.create" && prefix != "monitor.docker.exec" =>
        {
            for (k, x) in m {
                let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                leaf_names(&name, x, out);
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            for x in items {
                leaf_names(prefix, x, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

/// What is wrong with one line the monitor printed: as ECS (fields known to ECS or under
/// `monitor`, ECS types, allowed values, `ecs.version`, exactly one top-level object ECS
/// does not define) and against the monitor's field table (every field documented with its
/// type, the fields its kind of line must have present). Counted in [`tally`].
pub fn check(line: &Value) -> Vec<String> {
    let mut out = problems(line, VENDOR);
    out.extend(monitor::sink::schema::problems(line));
    if line.pointer("/ecs/version").and_then(Value::as_str) != Some(VERSION) {
        out.push(format!("ecs.version is not {VERSION}"));
    }
    static ROOTS: OnceLock<std::collections::HashSet<String>> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        fields().keys().map(|f| f.split('.').next().unwrap().to_string()).collect()
    });
    let outside: Vec<&String> = line
        .as_object()
        .map(|m| m.keys().filter(|k| !roots.contains(k.as_str())).collect())
        .unwrap_or_default();
    if outside.iter().map(|k| k.as_str()).collect::<Vec<_>>() != [VENDOR] {
        out.push(format!(
            "top-level keys outside ECS: {outside:?} (exactly one, {VENDOR}, wanted)"
        ));
    }
    let mut names = Vec::new();
    leaf_names("", line, &mut names);
    let mut t = TALLY.lock().unwrap_or_else(|e| e.into_inner());
    let t = t.get_or_insert_with(Tally::default);
    t.lines += 1;
    t.values += names.len() as u64;
    t.kinds.insert(format!(
        "{}/{}/{}",
        line["event"]["kind"].as_str().unwrap_or("?"),
        line["event"]["dataset"].as_str().unwrap_or("?"),
        line["event"]["action"].as_str().unwrap_or("?")
    ));
    t.fields.extend(names);
    out
}
