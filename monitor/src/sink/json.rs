//! Alert JSON: one object per line, ECS-aligned nested field names (see docs/alert-schema.md).
//!
//! Strings from the kernel are bytes chosen by whoever ran the syscall: serde_json escapes
//! quotes, newlines and control characters, so each alert stays exactly one line.

use crate::enrich::container::ContainerMeta;
use crate::enrich::process::ProcInfo;
use crate::event::{Action, Event, Ids};
use crate::rules::docker_api::DockerRequest;
use monitor_common::flag;
use serde_json::{json, Map, Value};

/// Everything an alert line is made from.
pub struct AlertInput<'a> {
    pub ev: &'a Event,
    pub rule: &'a RuleRef,
    pub sequence: u64,
    pub timestamp: String,
    pub hostname: &'a str,
    pub process: Option<&'a ProcInfo>,
    pub parent: Option<&'a ProcInfo>,
    pub ancestors: &'a [(u32, Option<Vec<u8>>)],
    pub user_name: Option<&'a str>,
    pub euser_name: Option<&'a str>,
    pub container: Option<&'a ContainerInfo>,
    /// A decoded Docker API request (the event is the send that completed it) and the
    /// socket's path.
    pub docker: Option<(&'a DockerRequest, &'a [u8])>,
    /// Self-defence: what reached for the monitor.
    pub tamper: Option<&'a str>,
    /// The (live) monitor's pid.
    pub monitor_pid: u32,
}

/// What raised an alert: the keys (first is `rule.key`) and where it is defined.
#[derive(Clone, Debug)]
pub struct RuleRef {
    pub keys: Vec<String>,
    pub source: String,
}

/// The container an alert came from.
#[derive(Clone, Debug)]
pub struct ContainerInfo {
    pub id: String,
    pub runtime: Option<&'static str>,
    pub meta: Option<ContainerMeta>,
}

fn container(c: &ContainerInfo) -> Value {
    let mut v = json!({ "id": c.id });
    if let Some(r) = c.runtime {
        v["runtime"] = json!(r);
    }
    if let Some(m) = &c.meta {
        if let Some(n) = &m.name {
            v["name"] = json!(n);
        }
        if let Some(i) = &m.image {
            v["image"] = json!({ "name": i });
        }
        if let Some(p) = m.privileged {
            v["security_context"] = json!({ "privileged": p });
        }
    }
    v
}

/// Strings from the kernel as JSON strings, losslessly.
///
/// Valid UTF-8 is written as is (JSON escaping handles quotes, newlines and control
/// characters). A string that is not valid UTF-8 is percent-encoded — every byte that is
/// not part of a valid UTF-8 sequence becomes `%XX`, and `%` itself becomes `%25` — and its
/// field is listed in the alert's `encoding.percent` (dotted paths such as
/// `process.args.2`), so that a consumer can restore the exact bytes.
#[derive(Default)]
pub struct Texts {
    encoded: Vec<String>,
}

impl Texts {
    pub fn text(&mut self, b: &[u8], path: impl FnOnce() -> String) -> Value {
        match std::str::from_utf8(b) {
            Ok(s) => Value::String(s.to_string()),
            Err(_) => {
                self.encoded.push(path());
                Value::String(percent_encode_invalid(b))
            }
        }
    }

    /// Add `encoding.percent` to `root` when some field was encoded.
    pub fn finish(self, root: &mut Map<String, Value>) {
        if !self.encoded.is_empty() {
            root.insert("encoding".into(), json!({ "percent": self.encoded }));
        }
    }
}

/// Invalid UTF-8 bytes and `%` as `%XX`; valid sequences unchanged.
pub fn percent_encode_invalid(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 8);
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '%' {
                out.push_str("%25");
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn ids(i: &Ids) -> Value {
    json!({
        "uid": i.uid, "euid": i.euid, "suid": i.suid, "fsuid": i.fsuid,
        "gid": i.gid, "egid": i.egid, "sgid": i.sgid, "fsgid": i.fsgid,
    })
}

/// `event.action`: the action, refined where the syscall alone says more — an open that can
/// modify the file is a `write`, and the setid family splits into `setuid` and `setgid`.
fn action_name(ev: &Event) -> &'static str {
    const O_ACCMODE: u32 = 0o3;
    const O_CREAT: u32 = 0o100;
    const O_TRUNC: u32 = 0o1000;
    match ev.action {
        Action::Open
            if ev.open_flags & O_ACCMODE != 0 || ev.open_flags & (O_CREAT | O_TRUNC) != 0 =>
        {
            "write"
        }
        // setgid 106, setregid 114, setresgid 119, setfsgid 123.
        Action::SetId if matches!(ev.syscall, 106 | 114 | 119 | 123) => "setgid",
        Action::SetId => "setuid",
        other => other.as_str(),
    }
}

/// `event.severity` of the alert's first key (0 when the key has no metadata).
fn meta_severity(a: &AlertInput) -> u8 {
    a.rule.keys.first().and_then(|k| crate::rules::metadata::lookup(k)).map(|m| m.severity_number()).unwrap_or(0)
}

pub fn render(a: &AlertInput) -> String {
    let ev = a.ev;
    let mut t = Texts::default();
    let mut root = Map::new();
    root.insert("@timestamp".into(), json!(a.timestamp));
    root.insert(
        "event".into(),
        json!({
            "kind": "alert",
            "action": if a.docker.is_some() { "docker-request" } else { action_name(ev) },
            "outcome": if ev.success() { "success" } else { "failure" },
            "sequence": a.sequence,
            "severity": meta_severity(a),
        }),
    );
    let mut rule = json!({
        "key": a.rule.keys.first().map(String::as_str).unwrap_or(""),
        "source": a.rule.source,
    });
    if a.rule.keys.len() > 1 {
        rule["keys"] = json!(a.rule.keys);
    }
    let meta = a.rule.keys.first().and_then(|k| crate::rules::metadata::lookup(k));
    if let Some(m) = meta {
        rule["name"] = json!(m.title);
        rule["description"] = json!(m.description);
        rule["remediation"] = json!(m.remediation);
        rule["severity"] = json!(m.severity);
        root.insert(
            "threat".into(),
            json!({"framework": "MITRE ATT&CK", "technique": {"id": [m.technique_id], "name": [m.technique_name]}}),
        );
    }
    root.insert("rule".into(), rule);

    // The process: for an exec, the new image; otherwise what the table knows.
    let (exe, argv): (Option<&[u8]>, Vec<&[u8]>) = if ev.action == Action::Exec && ev.success() {
        (ev.path.as_deref(), ev.argv.iter().map(Vec::as_slice).collect())
    } else {
        (
            a.process.and_then(|p| p.exe.as_deref()),
            a.process.map(|p| p.args.iter().map(Vec::as_slice).collect()).unwrap_or_default(),
        )
    };
    let args: Vec<Value> = argv.iter().enumerate().map(|(i, x)| t.text(x, || format!("process.args.{i}"))).collect();
    let ancestors: Vec<Value> = a
        .ancestors
        .iter()
        .enumerate()
        .map(|(i, (pid, exe))| {
            json!({"pid": pid, "executable": exe.as_deref().map(|e| t.text(e, || format!("process.ancestors.{i}.executable")))})
        })
        .collect();
    let mut process = json!({
        "pid": ev.pid,
        "thread": {"id": ev.tid},
        "name": t.text(&ev.comm, || "process.name".into()),
        "executable": exe.map(|e| t.text(e, || "process.executable".into())),
        "args": args,
        "parent": {
            "pid": ev.ppid,
            "executable": a.parent.and_then(|p| p.exe.as_deref()).map(|e| t.text(e, || "process.parent.executable".into())),
        },
        "ancestors": ancestors,
    });
    if ev.action == Action::Exec && ev.flag(flag::PATH2_TRUNCATED) {
        process["args_truncated"] = json!(true);
    }
    root.insert("process".into(), process);

    let mut user = json!({
        "id": ev.ids.uid.to_string(),
        "name": a.user_name,
        "effective": {"id": ev.ids.euid.to_string(), "name": a.euser_name},
        "audit": {"id": ev.auid.to_string()},
    });
    if ev.auid == u32::MAX {
        user["audit"]["id"] = json!("unset");
    }
    root.insert("user".into(), user);
    root.insert(
        "group".into(),
        json!({"id": ev.ids.gid.to_string(), "effective": {"id": ev.ids.egid.to_string()}}),
    );

    let syscall_name = crate::rules::syscalls::name(ev.syscall as u32);
    root.insert(
        "syscall".into(),
        json!({
            "name": syscall_name,
            "number": ev.syscall,
            "return": ev.ret,
            "args": ev.args.iter().map(|x| format!("{x:#x}")).collect::<Vec<_>>(),
        }),
    );

    match ev.action {
        _ if a.docker.is_some() => {
            let (req, socket) = a.docker.unwrap();
            root.insert("file".into(), json!({"path": t.text(socket, || "file.path".into()), "type": "socket"}));
            let mut docker = json!({
                "request": req.request,
                "findings": req.findings.iter().map(|f| json!({"key": f.key, "detail": f.detail})).collect::<Vec<_>>(),
            });
            if let Value::Object(decoded) = &req.decoded {
                for (k, v) in decoded {
                    docker[k] = v.clone();
                }
            }
            if req.body_truncated {
                docker["body_truncated"] = json!(true);
            }
            root.insert("docker".into(), docker);
        }
        Action::Connect => {
            root.insert(
                "file".into(),
                json!({
                    "path": ev.path2.as_deref().map(|p| t.text(p, || "file.path".into())),
                    "type": "socket",
                    "inode": (ev.ino != 0).then_some(ev.ino),
                }),
            );
            root.insert(
                "socket".into(),
                json!({"requested_path": ev.path.as_deref().map(|p| t.text(p, || "socket.requested_path".into()))}),
            );
        }
        Action::UserMessage => {
            let rtype = ev.args[0] as u16;
            let name = crate::source::audit::types::name(rtype).map_or_else(|| format!("UNKNOWN[{rtype}]"), str::to_string);
            root.insert(
                "audit".into(),
                json!({"message": {"type": name, "text": t.text(&ev.payload, || "audit.message.text".into())}}),
            );
        }
        Action::SetId => {
            root.insert(
                "setid".into(),
                json!({
                    "before": ids(&ev.old_ids),
                    "after": ids(&ev.ids),
                    "requested": ev.args[..3].iter().map(|x| *x as u32 as i32 as i64).collect::<Vec<_>>(),
                    "became_root": ev.ids.became_root(&ev.old_ids),
                }),
            );
        }
        _ => {
            let mut file = json!({ "path": ev.path.as_deref().map(|p| t.text(p, || "file.path".into())) });
            if let Some(p2) = &ev.path2 {
                let k = if ev.action == Action::Symlink {
                    "link_target"
                } else {
                    "target_path"
                };
                file[k] = t.text(p2, || format!("file.{k}"));
            }
            if ev.ino != 0 {
                file["inode"] = json!(ev.ino);
                file["mode"] = json!(format!("{:o}", ev.mode));
            }
            if ev.action == Action::Open {
                file["open_flags"] = json!(format!("{:#o}", ev.open_flags));
            }
            if ev.flag(flag::PATH1_TRUNCATED) || ev.flag(flag::PATH2_TRUNCATED) {
                file["truncated"] = json!(true);
            }
            if ev.flag(flag::PATH_FROM_STRING) {
                file["resolved_from"] = json!("string");
            }
            root.insert("file".into(), file);
        }
    }
    if let Some(c) = a.container {
        root.insert("container".into(), container(c));
    }
    if let Some(detail) = a.tamper {
        root.insert("tamper".into(), json!({"detail": detail, "monitor_pid": a.monitor_pid}));
        if ev.action == Action::Signal {
            root["tamper"]["signal"] = json!(ev.args[0] as i32);
        }
    }
    root.insert("host".into(), json!({"hostname": a.hostname}));
    t.finish(&mut root);
    Value::Object(root).to_string()
}

/// An in-band record about the monitor itself (start, heartbeat, events lost, stop).
pub fn render_record(action: &str, sequence: u64, timestamp: &str, hostname: &str, monitor: Value) -> String {
    json!({
        "@timestamp": timestamp,
        "event": {"kind": "metric", "action": action, "sequence": sequence, "dataset": "monitor"},
        "monitor": monitor,
        "host": {"hostname": hostname},
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoding a consumer does, for the round trip.
    fn percent_decode(s: &str) -> Vec<u8> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }

    #[test]
    fn invalid_utf8_round_trips_and_valid_text_is_untouched() {
        for input in [&b"plain %41 text"[..], b"\xff\xfe", b"caf\xc3\xa9 \xc3 50% \x00\n\"q\"", b"%", b"\xed\xa0\x80"] {
            let mut t = Texts::default();
            let v = t.text(input, || "f".into());
            let s = v.as_str().unwrap();
            if std::str::from_utf8(input).is_ok() {
                assert_eq!(s.as_bytes(), input);
                assert!(t.encoded.is_empty());
            } else {
                assert_eq!(percent_decode(s), input, "{s}");
                assert_eq!(t.encoded, vec!["f"]);
            }
            // Always one line of valid JSON.
            let line = serde_json::to_string(&v).unwrap();
            assert!(!line.contains('\n'));
            assert_eq!(serde_json::from_str::<Value>(&line).unwrap(), v);
        }
    }
}
