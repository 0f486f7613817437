//! Alert JSON: one ECS object per line, nested objects (`{"process":{"parent":{"pid":1}}}`),
//! ECS's names and types for what ECS defines and everything else under `monitor` (the
//! field table and docs/alert-schema.md: `sink::schema`).
//!
//! Strings from the kernel are bytes chosen by whoever ran the syscall: the writer
//! (`sink::writer`) escapes quotes, newlines and control characters, so each alert stays
//! exactly one line, and percent-encodes invalid UTF-8 (listed in
//! `monitor.encoding.percent`). The members many alerts share come rendered
//! (`sink::parts`).

use super::parts::{HostParts, ProcessParts, RuleJson, UserParts};
use super::writer::{key, JsonWriter};
use super::{ecs, message, schema};
use crate::detect::docker_api::DockerRequest;
use crate::enrich::container::ContainerInfo;
use crate::event::{Action, Event, Ids};
use monitor_common::flag;
use std::sync::Arc;

pub use super::parts::{RuleRef, RuleSource};

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
/// the last process and ids alerted on, each loaded rule's JSON, the host's.
#[derive(Default)]
pub struct Context {
    pub process: ProcessParts,
    pub user: UserParts,
    pub rules: Vec<Option<RuleJson>>,
    pub host: HostParts,
}

/// `file.type` of an inode's `st_mode`.
fn file_type(mode: u32) -> Option<&'static str> {
    Some(match mode & 0o170000 {
        0o100000 => "file",
        0o040000 => "dir",
        0o120000 => "symlink",
        0o140000 => "socket",
        0o010000 => "fifo",
        0o020000 => "char_device",
        0o060000 => "block_device",
        _ => return None,
    })
}

/// `path`, `name` and `directory` of `file` from a path's bytes.
fn write_path(w: &mut JsonWriter, path: &[u8]) {
    w.key(key!("path")).text(path, || "file.path".into());
    if let Some(slash) = path.iter().rposition(|&b| b == b'/') {
        let (dir, name) = (&path[..slash.max(1)], &path[slash + 1..]);
        if !name.is_empty() {
            w.key(key!("name")).text(name, || "file.name".into());
        }
        w.key(key!("directory")).text(dir, || "file.directory".into());
    }
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

/// A string array of JSON strings (the event's category and type).
fn write_list(w: &mut JsonWriter, k: &'static str, items: &[&'static str]) {
    w.key(k).open_array();
    for i in items {
        w.lit(i);
    }
    w.close_array();
}

/// One alert as one JSON line (without the newline), appended to `buf`; `timestamp` is
/// its `@timestamp` (from `a.wall_ns`), `created` when it is made (`event.created`).
pub fn render_into(a: &Alert, ctx: &Context, timestamp: &str, created: &str, buf: &mut Vec<u8>) {
    static NO_RULE: RuleJson = RuleJson::empty();
    let ev = &*a.ev;
    let rule = match &a.rule {
        RaisedBy::Loaded(i) => ctx.rules.get(*i).and_then(Option::as_ref).unwrap_or(&NO_RULE),
        RaisedBy::Builtin(r) => r,
    };
    let docker = a.docker.as_deref();
    let action = if docker.is_some() { "docker-request" } else { ecs::action_name(ev) };
    let (category, types) = match (docker, ev.action) {
        (Some((req, _)), _) => ecs::docker_request(
            req.request["method"].as_str().unwrap_or(""),
            req.request["path"].as_str().unwrap_or(""),
        ),
        (None, Action::UserMessage) => {
            ecs::user_message(crate::vocab::records::name(ev.args[0] as u16).unwrap_or(""))
        }
        (None, other) => ecs::of_action(other, action),
    };
    let mut w = JsonWriter::new(buf);
    w.open();
    w.key(key!("@timestamp")).str(timestamp);
    w.object(key!("ecs")).key(key!("version")).lit(schema::ECS_VERSION).close();
    let about = message::About {
        label: &rule.label,
        user: &ctx.user.label,
        docker: docker.map(|d| &d.0),
        tamper: a.tamper.as_deref(),
        container: a.container.as_ref(),
    };
    w.key(key!("message")).str(&message::alert(ev, &about));
    w.object(key!("event")).key(key!("kind")).lit(match a.kind {
        crate::rules::model::Kind::Alert => "alert",
        crate::rules::model::Kind::Event => "event",
    });
    write_list(&mut w, key!("category"), category);
    write_list(&mut w, key!("type"), types);
    w.key(key!("action")).lit(action);
    w.key(key!("module")).lit("monitor").key(key!("dataset")).lit("monitor.runtime");
    w.key(key!("outcome")).lit(if ev.success() { "success" } else { "failure" });
    w.key(key!("sequence")).u64(a.sequence);
    w.key(key!("severity")).u64(rule.severity as u64);
    w.key(key!("risk_score")).u64(rule.severity as u64);
    w.key(key!("created")).str(created).close();
    w.raw(&rule.ecs);

    w.object(key!("process")).key(key!("pid")).u64(ev.pid as u64);
    w.object(key!("thread")).key(key!("id")).u64(ev.tid as u64).close();
    w.key(key!("name")).text(&ev.comm, || "process.name".into());
    w.raw(&ctx.process.ecs);
    w.encoded.extend(ctx.process.encoded.iter().cloned());
    w.raw(&ctx.user.process);
    w.close();
    w.raw(&ctx.user.ecs);

    match (docker, ev.action) {
        (Some((req, socket)), _) => {
            w.object(key!("file"));
            write_path(&mut w, socket);
            w.key(key!("type")).lit("socket").close();
            let r = &req.request;
            w.object(key!("http")).object(key!("request")).key(key!("method"));
            w.str(r["method"].as_str().unwrap_or("")).close().close();
            w.object(key!("url")).key(key!("path")).str(r["path"].as_str().unwrap_or(""));
            if let Some(q) = r["query"].as_str() {
                w.key(key!("query")).str(q);
            }
            w.close();
        }
        (None, Action::Connect) => {
            w.object(key!("file"));
            if let Some(p) = ev.path2.as_deref() {
                write_path(&mut w, p);
            }
            w.key(key!("type")).lit("socket");
            if ev.ino != 0 {
                w.key(key!("inode")).num_str("", ev.ino, 10);
            }
            w.close();
            if let Some(p) = ev.path.as_deref() {
                w.object(key!("destination"));
                w.key(key!("address")).text(p, || "destination.address".into()).close();
            }
        }
        (None, Action::SetId | Action::UserMessage) => {}
        (None, _) if ev.path.is_some() || ev.ino != 0 => {
            w.object(key!("file"));
            if let Some(p) = ev.path.as_deref() {
                write_path(&mut w, p);
            }
            if ev.ino != 0 {
                w.key(key!("inode")).num_str("", ev.ino, 10);
                if let Some(t) = file_type(ev.mode) {
                    w.key(key!("type")).lit(t);
                }
                if ev.mode != 0 {
                    w.key(key!("mode")).fmt(format_args!("{:04o}", ev.mode & 0o7777));
                }
            }
            if let (Action::Symlink, Some(p2)) = (ev.action, &ev.path2) {
                w.key(key!("target_path")).text(p2, || "file.target_path".into());
            }
            w.close();
        }
        (None, _) => {}
    }
    if let Some(c) = &a.container {
        write_container(&mut w, c);
    }
    w.raw(&ctx.host.json);
    w.object(key!("monitor"));
    write_vendor(&mut w, a, ctx, rule);
    w.encoding();
    w.close();
    w.close();
}

/// The members of `monitor`, but for the encoding list (written last).
fn write_vendor(w: &mut JsonWriter, a: &Alert, ctx: &Context, rule: &RuleJson) {
    let ev = &*a.ev;
    w.key(key!("severity")).lit(ecs::severity_word(rule.severity));
    w.raw(&rule.vendor);
    w.object(key!("process")).raw(&ctx.process.vendor);
    if ev.action == Action::Exec && ev.flag(flag::PATH2_TRUNCATED) {
        w.key(key!("args_truncated")).bool(true);
    }
    w.close();
    w.raw(&ctx.user.vendor);
    w.object(key!("syscall"));
    if let Some(name) = crate::vocab::name(ev.syscall as u32) {
        w.key(key!("name")).lit(name);
    }
    w.key(key!("number")).i64(ev.syscall as i64).key(key!("return")).i64(ev.ret);
    w.key(key!("args")).open_array();
    for x in &ev.args {
        w.num_str("0x", *x, 16);
    }
    w.close_array().close();

    let file_action = a.docker.is_none()
        && !matches!(ev.action, Action::Connect | Action::SetId | Action::UserMessage);
    let new_path = matches!(ev.action, Action::Rename | Action::Link);
    let flagged = ev.flag(flag::PATH1_TRUNCATED) || ev.flag(flag::PATH2_TRUNCATED);
    let from_string = ev.flag(flag::PATH_FROM_STRING);
    if file_action
        && ((new_path && ev.path2.is_some()) || ev.action == Action::Open || flagged || from_string)
    {
        w.object(key!("file"));
        if let (true, Some(p2)) = (new_path, &ev.path2) {
            w.key(key!("new_path")).text(p2, || "monitor.file.new_path".into());
        }
        if ev.action == Action::Open {
            w.key(key!("open_flags")).num_str("0o", ev.open_flags as u64, 8);
        }
        if flagged {
            w.key(key!("truncated")).bool(true);
        }
        if from_string {
            w.key(key!("resolved_from")).lit("string");
        }
        w.close();
    }
    if let Some((req, _)) = a.docker.as_deref() {
        w.object(key!("docker"));
        if let Some(v) = req.request["api_version"].as_str() {
            w.key(key!("api_version")).str(v);
        }
        w.key(key!("findings")).open_array();
        for f in &req.findings {
            w.open().key(key!("key")).str(f.key).key(key!("detail")).str(&f.detail).close();
        }
        w.close_array();
        if let serde_json::Value::Object(decoded) = &req.decoded {
            for (k, v) in decoded {
                if matches!(k.as_str(), "create" | "exec") {
                    w.key_text(k).value(v);
                }
            }
        }
        if req.body_truncated {
            w.key(key!("body_truncated")).bool(true);
        }
        w.close();
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
    if ev.action == Action::SetId {
        w.object(key!("setid"));
        write_ids(w, key!("before"), &ev.old_ids);
        write_ids(w, key!("after"), &ev.ids);
        w.key(key!("requested")).open_array();
        for x in &ev.args[..3] {
            w.i64(*x as u32 as i32 as i64);
        }
        w.close_array();
        w.key(key!("became_root")).bool(ev.ids.became_root(&ev.old_ids)).close();
    }
    let message = ev.action == Action::UserMessage;
    if message || ev.audit_key.is_some() {
        w.object(key!("audit"));
        if let Some(keys) = &ev.audit_key {
            w.key(key!("key")).open_array();
            for (i, k) in keys.iter().enumerate() {
                w.text(k.as_bytes(), || format!("monitor.audit.key.{i}"));
            }
            w.close_array();
        }
        if message {
            let rtype = ev.args[0] as u16;
            w.object(key!("message")).key(key!("type"));
            match crate::vocab::records::name(rtype) {
                Some(name) => w.str(name),
                None => w.fmt(format_args!("UNKNOWN[{rtype}]")),
            };
            w.key(key!("text")).text(&ev.payload, || "monitor.audit.message.text".into());
            w.close();
        }
        w.close();
    }
}
