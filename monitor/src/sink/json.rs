//! Alert JSON: one object per line, ECS-aligned nested field names (see docs/alert-schema.md).
//!
//! Strings from the kernel are bytes chosen by whoever ran the syscall: the writer
//! (`sink::writer`) escapes quotes, newlines and control characters, so each alert stays
//! exactly one line, and percent-encodes invalid UTF-8 (listed in `encoding.percent`).

use super::writer::{key, JsonWriter};
use crate::detect::docker_api::DockerRequest;
use crate::enrich::container::ContainerInfo;
use crate::event::{Action, Event, Ids};
use monitor_common::flag;
use serde_json::{json, Value};
use std::sync::Arc;

/// One alert, owned: a replay hands alerts to a render thread (see `sink::output`). What
/// many alerts share (process, user, rule and host members) is not in it but in the
/// renderer's [`Context`], which the pipeline updates when it changes.
pub struct Alert {
    pub ev: Arc<Event>,
    /// An alert, or a line of the audit trail (`event.kind: "event"`).
    pub kind: crate::rules::model::Kind,
    pub rule: RaisedBy,
    pub sequence: u64,
    /// When the event happened (ns since the epoch); `@timestamp` is formatted from it.
    pub wall_ns: i128,
    pub container: Option<ContainerInfo>,
    /// A decoded Docker API request (the event is the send that completed it) and the
    /// socket's path.
    pub docker: Option<Box<(DockerRequest, Vec<u8>)>>,
    /// Self-defence: what reached for the monitor.
    pub tamper: Option<String>,
    /// The (live) monitor's pid.
    pub monitor_pid: u32,
}

/// What raised an alert, as its JSON: a loaded rule's (kept in the [`Context`], by the
/// rule's position) or a built-in detection's.
pub enum RaisedBy {
    Loaded(usize),
    Builtin(RuleJson),
}

/// The members an alert takes from the renderer's state: the process and user members of
/// the last process and ids alerted on, each loaded rule's JSON, the host the event
/// happened on (unknown for a log that does not say) and the one the monitor runs on.
#[derive(Default)]
pub struct Context {
    pub process: ProcessParts,
    pub user: UserParts,
    pub rules: Vec<Option<RuleJson>>,
    pub hostname: Option<String>,
    pub observer: String,
}

/// The members of `process` that come from the process table, as alert JSON:
/// `"executable":…,"args":[…],"parent":{…},"ancestors":[…]`. They are the same for every
/// alert of a process while the table is unchanged, so the pipeline renders them once for a
/// burst of alerts (`Pipeline::emit` keys them by the table's version).
#[derive(Default)]
pub struct ProcessParts {
    json: Vec<u8>,
    /// Fields percent-encoded in `json` (see `JsonWriter::text`).
    encoded: Vec<String>,
}

impl ProcessParts {
    /// Render the parts: the executable and argv of the process, its parent's pid and
    /// executable, and its ancestors (pid and executable, parent first).
    pub fn render(
        &mut self,
        exe: Option<&[u8]>,
        args: &[Vec<u8>],
        ppid: u32,
        parent_exe: Option<&[u8]>,
        ancestors: &[(u32, Option<&[u8]>)],
    ) {
        self.json.clear();
        let mut w = JsonWriter::new(&mut self.json);
        w.key(key!("executable")).opt_text(exe, || "process.executable".into());
        w.key(key!("args")).open_array();
        for (i, x) in args.iter().enumerate() {
            w.text(x, || format!("process.args.{i}"));
        }
        w.close_array();
        w.object(key!("parent")).key(key!("pid")).u64(ppid as u64);
        w.key(key!("executable")).opt_text(parent_exe, || "process.parent.executable".into());
        w.close();
        w.key(key!("ancestors")).open_array();
        for (i, (pid, exe)) in ancestors.iter().enumerate() {
            w.open().key(key!("pid")).u64(*pid as u64);
            w.key(key!("executable"))
                .opt_text(*exe, || format!("process.ancestors.{i}.executable"));
            w.close();
        }
        w.close_array();
        self.encoded = std::mem::take(&mut w.encoded);
    }
}

/// An alert's `rule` and `threat` members and its `event.severity`, from what raised it:
/// the same for every alert of a rule, so the pipeline renders them once per loaded rule.
pub struct RuleJson {
    severity: u8,
    json: Vec<u8>,
}

impl RuleJson {
    /// No rule: severity 0, no members.
    pub const fn empty() -> RuleJson {
        RuleJson { severity: 0, json: Vec::new() }
    }

    pub fn render(rule: &RuleRef) -> RuleJson {
        // The first key's metadata: `event.severity` (0 without), `rule.*`, `threat`.
        let meta = rule.keys.first().and_then(|k| meta_json(k));
        let mut json = Vec::new();
        let mut w = JsonWriter::new(&mut json);
        w.object(key!("rule"))
            .key(key!("key"))
            .str(rule.keys.first().map(String::as_str).unwrap_or(""))
            .key(key!("source"));
        match rule.source {
            RuleSource::Line(s) => w.str_and_number(&s.file, b':', s.line as u64),
            RuleSource::Builtin(name) => w.str(name),
        };
        if rule.keys.len() > 1 {
            w.key(key!("keys")).open_array();
            for k in rule.keys {
                w.str(k);
            }
            w.close_array();
        }
        if let Some(m) = meta {
            w.raw(&m.rule_members);
        }
        w.close();
        if let Some(m) = meta {
            w.key(key!("threat")).raw(&m.threat);
        }
        RuleJson { severity: meta.map_or(0, |m| m.severity), json }
    }
}

/// An alert's `user` and `group` members: the same for every alert with the same ids while
/// the user names are unchanged (the pipeline keys them by both).
#[derive(Default)]
pub struct UserParts {
    json: Vec<u8>,
}

impl UserParts {
    /// `names` gives a uid's user name, `groups` a gid's group name.
    pub fn render<'n>(
        &mut self,
        ev: &Event,
        names: impl Fn(u32) -> Option<&'n str>,
        groups: impl Fn(u32) -> Option<&'n str>,
    ) {
        self.json.clear();
        let mut w = JsonWriter::new(&mut self.json);
        w.object(key!("user"))
            .key(key!("id"))
            .num_str("", ev.ids.uid as u64, 10)
            .key(key!("name"))
            .opt_str(names(ev.ids.uid));
        w.object(key!("effective"))
            .key(key!("id"))
            .num_str("", ev.ids.euid as u64, 10)
            .key(key!("name"))
            .opt_str(names(ev.ids.euid))
            .close();
        w.object(key!("audit")).key(key!("id"));
        if ev.auid == u32::MAX {
            w.str("unset");
        } else {
            w.num_str("", ev.auid as u64, 10);
        }
        w.close().close();
        w.object(key!("group")).key(key!("id")).num_str("", ev.ids.gid as u64, 10);
        if let Some(name) = groups(ev.ids.gid) {
            w.key(key!("name")).str(name);
        }
        w.object(key!("effective")).key(key!("id")).num_str("", ev.ids.egid as u64, 10);
        if let Some(name) = groups(ev.ids.egid) {
            w.key(key!("name")).str(name);
        }
        w.close().close();
    }
}

/// What raised an alert: the keys (first is `rule.key`) and where it is defined.
#[derive(Clone, Copy, Debug)]
pub struct RuleRef<'a> {
    pub keys: &'a [String],
    pub source: RuleSource<'a>,
}

/// `rule.source`: a rule's file and line, or the name of a built-in detection.
#[derive(Clone, Copy, Debug)]
pub enum RuleSource<'a> {
    Line(&'a crate::rules::model::Source),
    Builtin(&'static str),
}

/// `event.action` (see [`Event::action_name`]).
pub fn action_name(ev: &Event) -> &'static str {
    ev.action_name()
}

/// A key's metadata as alert JSON, escaped once: the members it adds to `rule` and the
/// `threat` object. Every alert of the key carries the same text.
struct MetaJson {
    severity: u8,
    rule_members: Vec<u8>,
    threat: Vec<u8>,
}

fn meta_json(key: &str) -> Option<&'static MetaJson> {
    static TABLE: std::sync::OnceLock<crate::hash::FastMap<&'static str, MetaJson>> =
        std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        crate::rules::metadata::all()
            .map(|(key, m)| {
                let mut rule_members = Vec::new();
                let mut w = JsonWriter::new(&mut rule_members);
                w.key(key!("name"))
                    .str(&m.title)
                    .key(key!("description"))
                    .str(&m.description)
                    .key(key!("remediation"))
                    .str(&m.remediation);
                w.key(key!("severity")).str(&m.severity);
                let mut threat = Vec::new();
                let mut w = JsonWriter::new(&mut threat);
                w.open().key(key!("framework")).str("MITRE ATT&CK").object(key!("technique"));
                w.key(key!("id")).open_array().str(&m.technique_id).close_array();
                w.key(key!("name")).open_array().str(&m.technique_name).close_array();
                w.close().close();
                (key, MetaJson { severity: m.severity_number(), rule_members, threat })
            })
            .collect()
    });
    table.get(key)
}

fn write_ids(w: &mut JsonWriter, k: &'static str, i: &Ids) {
    w.object(k);
    for (name, v) in [
        (key!("uid"), i.uid),
        (key!("euid"), i.euid),
        (key!("suid"), i.suid),
        (key!("fsuid"), i.fsuid),
        (key!("gid"), i.gid),
        (key!("egid"), i.egid),
        (key!("sgid"), i.sgid),
        (key!("fsgid"), i.fsgid),
    ] {
        w.key(name).u64(v as u64);
    }
    w.close();
}

fn write_container(w: &mut JsonWriter, c: &ContainerInfo) {
    w.object(key!("container")).key(key!("id")).str(&c.id);
    if let Some(r) = c.runtime {
        w.key(key!("runtime")).str(r);
    }
    if let Some(m) = &c.meta {
        if let Some(n) = &m.name {
            w.key(key!("name")).str(n);
        }
        if let Some(i) = &m.image {
            w.object(key!("image")).key(key!("name")).str(i).close();
        }
        if let Some(p) = m.privileged {
            w.object(key!("security_context")).key(key!("privileged")).bool(p).close();
        }
    }
    w.close();
}

/// One alert as one JSON line (without the newline), appended to `buf`; `timestamp` is
/// its `@timestamp` (from `a.wall_ns`).
pub fn render_into(a: &Alert, ctx: &Context, timestamp: &str, buf: &mut Vec<u8>) {
    static NO_RULE: RuleJson = RuleJson::empty();
    let ev = &*a.ev;
    let rule = match &a.rule {
        RaisedBy::Loaded(i) => ctx.rules.get(*i).and_then(Option::as_ref).unwrap_or(&NO_RULE),
        RaisedBy::Builtin(r) => r,
    };
    let mut w = JsonWriter::new(buf);
    w.open();
    w.key(key!("@timestamp")).str(timestamp);
    w.object(key!("event"))
        .key(key!("kind"))
        .lit(match a.kind {
            crate::rules::model::Kind::Alert => "alert",
            crate::rules::model::Kind::Event => "event",
        })
        .key(key!("action"))
        .lit(if a.docker.is_some() { "docker-request" } else { action_name(ev) })
        .key(key!("outcome"))
        .lit(if ev.success() { "success" } else { "failure" })
        .key(key!("sequence"))
        .u64(a.sequence)
        .key(key!("severity"))
        .u64(rule.severity as u64)
        .close();
    w.raw(&rule.json);

    w.object(key!("process")).key(key!("pid")).u64(ev.pid as u64);
    w.object(key!("thread")).key(key!("id")).u64(ev.tid as u64).close();
    w.key(key!("name")).text(&ev.comm, || "process.name".into());
    w.raw(&ctx.process.json);
    w.encoded.extend(ctx.process.encoded.iter().cloned());
    if ev.action == Action::Exec && ev.flag(flag::PATH2_TRUNCATED) {
        w.key(key!("args_truncated")).bool(true);
    }
    w.close();

    w.raw(&ctx.user.json);

    w.object(key!("syscall")).key(key!("name"));
    match crate::vocab::name(ev.syscall as u32) {
        Some(name) => w.lit(name),
        None => w.null(),
    };
    w.key(key!("number")).i64(ev.syscall as i64).key(key!("return")).i64(ev.ret);
    w.key(key!("args")).open_array();
    for x in &ev.args {
        w.num_str("0x", *x, 16);
    }
    w.close_array().close();

    match ev.action {
        _ if a.docker.is_some() => {
            let (req, socket) = a.docker.as_deref().unwrap();
            w.object(key!("file"))
                .key(key!("path"))
                .text(socket, || "file.path".into())
                .key(key!("type"))
                .lit("socket")
                .close();
            w.object(key!("docker")).key(key!("request")).value(&req.request);
            w.key(key!("findings")).open_array();
            for f in &req.findings {
                w.open().key(key!("key")).str(f.key).key(key!("detail")).str(&f.detail).close();
            }
            w.close_array();
            if let serde_json::Value::Object(decoded) = &req.decoded {
                for (k, v) in decoded {
                    if !matches!(k.as_str(), "request" | "findings" | "body_truncated") {
                        w.key_text(k).value(v);
                    }
                }
            }
            if req.body_truncated {
                w.key(key!("body_truncated")).bool(true);
            }
            w.close();
        }
        Action::Connect => {
            w.object(key!("file"))
                .key(key!("path"))
                .opt_text(ev.path2.as_deref(), || "file.path".into())
                .key(key!("type"))
                .lit("socket");
            w.key(key!("inode"));
            if ev.ino != 0 {
                w.u64(ev.ino);
            } else {
                w.null();
            }
            w.close();
            w.object(key!("socket"))
                .key(key!("requested_path"))
                .opt_text(ev.path.as_deref(), || "socket.requested_path".into())
                .close();
        }
        Action::UserMessage => {
            let rtype = ev.args[0] as u16;
            w.object(key!("audit")).object(key!("message")).key(key!("type"));
            match crate::vocab::records::name(rtype) {
                Some(name) => w.str(name),
                None => w.fmt(format_args!("UNKNOWN[{rtype}]")),
            };
            w.key(key!("text")).text(&ev.payload, || "audit.message.text".into()).close().close();
        }
        Action::SetId => {
            w.object(key!("setid"));
            write_ids(&mut w, key!("before"), &ev.old_ids);
            write_ids(&mut w, key!("after"), &ev.ids);
            w.key(key!("requested")).open_array();
            for x in &ev.args[..3] {
                w.i64(*x as u32 as i32 as i64);
            }
            w.close_array();
            w.key(key!("became_root")).bool(ev.ids.became_root(&ev.old_ids)).close();
        }
        _ => {
            w.object(key!("file"))
                .key(key!("path"))
                .opt_text(ev.path.as_deref(), || "file.path".into());
            if let Some(p2) = &ev.path2 {
                let (k, field) = if ev.action == Action::Symlink {
                    (key!("link_target"), "file.link_target")
                } else {
                    (key!("target_path"), "file.target_path")
                };
                w.key(k).text(p2, || field.into());
            }
            if ev.ino != 0 {
                w.key(key!("inode")).u64(ev.ino).key(key!("mode")).num_str("", ev.mode as u64, 8);
            }
            if ev.action == Action::Open {
                w.key(key!("open_flags")).num_str("0o", ev.open_flags as u64, 8);
            }
            if ev.flag(flag::PATH1_TRUNCATED) || ev.flag(flag::PATH2_TRUNCATED) {
                w.key(key!("truncated")).bool(true);
            }
            if ev.flag(flag::PATH_FROM_STRING) {
                w.key(key!("resolved_from")).lit("string");
            }
            w.close();
        }
    }
    if let Some(c) = &a.container {
        write_container(&mut w, c);
    }
    if let Some(detail) = &a.tamper {
        w.object(key!("tamper"))
            .key(key!("detail"))
            .str(detail)
            .key(key!("monitor_pid"))
            .u64(a.monitor_pid as u64);
        if ev.action == Action::Signal {
            w.key(key!("signal")).i64(ev.args[0] as i32 as i64);
        }
        w.close();
    }
    if let Some(keys) = &ev.audit_key {
        w.object(key!("monitor")).object(key!("audit")).key(key!("key")).open_array();
        for k in keys.iter() {
            w.str(k);
        }
        w.close_array().close().close();
    }
    if let Some(host) = &ctx.hostname {
        w.object(key!("host")).key(key!("name")).str(host).key(key!("hostname")).str(host).close();
    }
    w.object(key!("observer")).key(key!("hostname")).str(&ctx.observer).close();
    w.encoding();
    w.close();
}

/// An in-band record about the monitor itself (start, heartbeat, events lost, stop), which
/// runs on `observer`.
pub fn render_record(
    action: &str,
    sequence: u64,
    timestamp: &str,
    observer: &str,
    monitor: Value,
) -> String {
    json!({
        "@timestamp": timestamp,
        "event": {"kind": "metric", "action": action, "sequence": sequence, "dataset": "monitor"},
        "monitor": monitor,
        "host": {"name": observer, "hostname": observer},
        "observer": {"hostname": observer},
    })
    .to_string()
}
