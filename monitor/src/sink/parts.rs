//! The members many alerts share, rendered once and spliced into each alert's line: a
//! process's (`process.*` from the process table, `monitor.process.ancestors`), a set of
//! ids' (`user.*`, `process.user` and friends, `related.user`, the login uid), a rule's
//! (`rule.*`, `threat.*`, the severity) and the host's (`host.*`, `observer.*`). The
//! pipeline renders them again only when what they are made of changes.

use super::writer::{key, JsonWriter};
use crate::enrich::process::{tick_ns, EntityIds};
use crate::enrich::{rfc3339, Clock, HostInfo, ProcessView};
use crate::event::Event;

/// The members of `process` that come from the process table, and `monitor.process`'s
/// ancestors. The same for every alert of a process while the table is unchanged.
#[derive(Default)]
pub struct ProcessParts {
    /// `"executable":…,"args":[…],"args_count":…,"entity_id":…,"start":…,"parent":{…}`
    pub(super) ecs: Vec<u8>,
    /// `"ancestors":[…]`
    pub(super) vendor: Vec<u8>,
    /// Fields percent-encoded in them (see `JsonWriter::text`).
    pub(super) encoded: Vec<String>,
}

/// Bytes reserved for a process's members before rendering them.
const PROCESS_PARTS_ROOM: usize = 2048;

impl ProcessParts {
    /// Render the parts of `view`'s process; entity ids are made with `host_key` (see
    /// [`HostInfo::key`]), start times with `clock`.
    pub fn render(&mut self, view: &ProcessView, host_key: &str, clock: Clock) {
        let start = |ticks: u64| rfc3339(clock.wall_ns(ticks.saturating_mul(tick_ns())));
        let ids = EntityIds::new(host_key);
        self.ecs.clear();
        // Room for a process with a few ancestors at once: growing from empty took about 15
        // allocations per exec'd process (heaptrack, 1,000 execs/s).
        self.ecs.reserve(PROCESS_PARTS_ROOM);
        let mut w = JsonWriter::new(&mut self.ecs);
        if let Some(exe) = view.exe {
            w.key(key!("executable")).text(exe, || "process.executable".into());
        }
        w.key(key!("args")).open_array();
        for (i, x) in view.args.iter().enumerate() {
            w.text(x, || format!("process.args.{i}"));
        }
        w.close_array().key(key!("args_count")).u64(view.args.len() as u64);
        if let Some(s) = view.start {
            w.key(key!("entity_id")).str(ids.id(view.pid, s).as_str());
            w.key(key!("start")).str(&start(s));
        }
        w.object(key!("parent")).key(key!("pid")).u64(view.ppid as u64);
        if let Some(p) = view.parent {
            if let Some(s) = p.start {
                w.key(key!("entity_id")).str(ids.id(view.ppid, s).as_str());
                w.key(key!("start")).str(&start(s));
            }
            if let Some(exe) = &p.exe {
                w.key(key!("executable")).text(exe, || "process.parent.executable".into());
            }
            if !p.comm.is_empty() {
                w.key(key!("name")).text(&p.comm, || "process.parent.name".into());
            }
            if !p.args.is_empty() {
                w.key(key!("args")).open_array();
                for (i, x) in p.args.iter().enumerate() {
                    w.text(x, || format!("process.parent.args.{i}"));
                }
                w.close_array().key(key!("args_count")).u64(p.args.len() as u64);
            }
        }
        w.close();
        let mut encoded = std::mem::take(&mut w.encoded);

        self.vendor.clear();
        let mut w = JsonWriter::new(&mut self.vendor);
        w.key(key!("ancestors")).open_array();
        for (i, (pid, exe, s)) in view.ancestors.iter().enumerate() {
            w.open().key(key!("pid")).u64(*pid as u64);
            if let Some(s) = s {
                w.key(key!("entity_id")).str(ids.id(*pid, *s).as_str());
            }
            if let Some(exe) = exe {
                w.key(key!("executable"))
                    .text(exe, || format!("monitor.process.ancestors.{i}.executable"));
            }
            w.close();
        }
        w.close_array();
        encoded.append(&mut w.encoded);
        self.encoded = encoded;
    }
}

/// The members made of an event's ids: the same for every alert with the same ids while
/// the user names are unchanged.
#[derive(Default)]
pub struct UserParts {
    /// Members of `process`: `"user":{…},"real_user":{…},"saved_user":{…},"real_group":…`
    pub(super) process: Vec<u8>,
    /// Top-level `"user":{…}` and `"related":{"user":[…]}`.
    pub(super) ecs: Vec<u8>,
    /// Members of `monitor`: `"user":{"audit":{"id":…}}`.
    pub(super) vendor: Vec<u8>,
    /// The effective user, for messages: its name, or `uid N`.
    pub(super) label: String,
}

impl UserParts {
    /// `names` gives a uid's user name, `groups` a gid's group name.
    pub fn render<'n>(
        &mut self,
        ev: &Event,
        names: impl Fn(u32) -> Option<&'n str>,
        groups: impl Fn(u32) -> Option<&'n str>,
    ) {
        let i = &ev.ids;
        let id_and_name = |w: &mut JsonWriter, k: &'static str, uid: u32| {
            w.object(k).key(key!("id")).num_str("", uid as u64, 10);
            if let Some(n) = names(uid) {
                w.key(key!("name")).str(n);
            }
            w.close();
        };
        let group = |w: &mut JsonWriter, k: &'static str, gid: u32| {
            w.object(k).key(key!("id")).num_str("", gid as u64, 10);
            if let Some(n) = groups(gid) {
                w.key(key!("name")).str(n);
            }
            w.close();
        };
        self.process.clear();
        let mut w = JsonWriter::new(&mut self.process);
        id_and_name(&mut w, key!("user"), i.euid);
        id_and_name(&mut w, key!("real_user"), i.uid);
        id_and_name(&mut w, key!("saved_user"), i.suid);
        group(&mut w, key!("real_group"), i.gid);
        group(&mut w, key!("saved_group"), i.sgid);

        self.ecs.clear();
        let mut w = JsonWriter::new(&mut self.ecs);
        w.object(key!("user")).key(key!("id")).num_str("", i.uid as u64, 10);
        if let Some(n) = names(i.uid) {
            w.key(key!("name")).str(n);
        }
        w.object(key!("effective")).key(key!("id")).num_str("", i.euid as u64, 10);
        if let Some(n) = names(i.euid) {
            w.key(key!("name")).str(n);
        }
        group(&mut w, key!("group"), i.egid);
        w.close();
        group(&mut w, key!("group"), i.gid);
        w.close();
        let mut related: Vec<&str> = [names(i.uid), names(i.euid)].into_iter().flatten().collect();
        related.dedup();
        if !related.is_empty() {
            w.object(key!("related")).key(key!("user")).open_array();
            for n in related {
                w.str(n);
            }
            w.close_array().close();
        }

        self.vendor.clear();
        let mut w = JsonWriter::new(&mut self.vendor);
        w.object(key!("user")).object(key!("audit")).key(key!("id"));
        if ev.auid == u32::MAX {
            w.str("unset");
        } else {
            w.num_str("", ev.auid as u64, 10);
        }
        w.close().close();
        self.label = names(i.euid).map_or_else(|| format!("uid {}", i.euid), str::to_string);
    }
}

/// What raised an alert: the keys (first is `rule.id`) and where it is defined.
#[derive(Clone, Copy, Debug)]
pub struct RuleRef<'a> {
    pub keys: &'a [String],
    pub source: RuleSource<'a>,
}

/// `monitor.rule.source`: a rule's file and line, or the name of a built-in detection.
#[derive(Clone, Copy, Debug)]
pub enum RuleSource<'a> {
    Line(&'a crate::rules::model::Source),
    Builtin(&'static str),
}

/// An alert's `rule` and `threat` members, its `event.severity` and the vendor members
/// of `monitor.rule`, from what raised it: the same for every alert of a rule, so the
/// pipeline renders them once per loaded rule.
pub struct RuleJson {
    pub(super) severity: u8,
    /// `"rule":{…}` and, with metadata, `"threat":{…}`.
    pub(super) ecs: Vec<u8>,
    /// `"rule":{"source":…,"keys":[…],"remediation":…}`
    pub(super) vendor: Vec<u8>,
    /// The rule's title, key or source, for messages.
    pub(super) label: String,
}

impl RuleJson {
    /// No rule: severity 0, no members.
    pub const fn empty() -> RuleJson {
        RuleJson { severity: 0, ecs: Vec::new(), vendor: Vec::new(), label: String::new() }
    }

    pub fn render(rule: &RuleRef) -> RuleJson {
        let first = rule.keys.first().map(String::as_str);
        let meta = first.and_then(meta_json);
        let mut ecs = Vec::new();
        let mut w = JsonWriter::new(&mut ecs);
        w.open();
        if let Some(k) = first {
            w.key(key!("id")).str(k);
        }
        if let Some(m) = meta {
            w.raw(&m.rule_members);
        }
        w.key(key!("ruleset"));
        match rule.source {
            RuleSource::Line(s) => w.str(&s.file),
            RuleSource::Builtin(name) => w.str(name),
        };
        w.close();
        // Spliced as members: `"rule":{…}` is written by the key below.
        let rule_object = std::mem::take(&mut ecs);
        let mut w = JsonWriter::new(&mut ecs);
        w.key(key!("rule")).raw(&rule_object);
        if let Some(m) = meta {
            w.key(key!("threat")).raw(&m.threat);
        }

        let mut vendor = Vec::new();
        let mut w = JsonWriter::new(&mut vendor);
        w.object(key!("rule")).key(key!("source"));
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
            w.raw(&m.vendor_members);
        }
        w.close();
        let label = match (meta, first, rule.source) {
            (Some(m), _, _) => m.title.clone(),
            (None, Some(k), _) => k.to_string(),
            (None, None, RuleSource::Line(s)) => format!("rule {s}"),
            (None, None, RuleSource::Builtin(name)) => name.to_string(),
        };
        RuleJson { severity: meta.map_or(0, |m| m.severity), ecs, vendor, label }
    }
}

/// A key's metadata as alert JSON, escaped once: the members it adds to `rule`, the
/// `threat` object, the members it adds to `monitor.rule`. Every alert of the key carries
/// the same text.
struct MetaJson {
    severity: u8,
    title: String,
    rule_members: Vec<u8>,
    threat: Vec<u8>,
    vendor_members: Vec<u8>,
}

/// An ATT&CK page: `https://attack.mitre.org/techniques/T1562/001/`.
fn attack_url(kind: &str, id: &str) -> String {
    format!("https://attack.mitre.org/{kind}/{}/", id.replace('.', "/"))
}

fn meta_json(key: &str) -> Option<&'static MetaJson> {
    static TABLE: std::sync::OnceLock<crate::hash::FastMap<&'static str, MetaJson>> =
        std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        crate::rules::metadata::all()
            .map(|(key, m)| {
                let mut rule_members = Vec::new();
                let mut w = JsonWriter::new(&mut rule_members);
                w.key(key!("name")).str(&m.title).key(key!("description")).str(&m.description);
                let mut vendor_members = Vec::new();
                JsonWriter::new(&mut vendor_members).key(key!("remediation")).str(&m.remediation);
                // `T1562.001` "Impair Defenses: Disable or Modify Tools" is sub-technique
                // 001 of T1562 "Impair Defenses".
                let (tech_id, sub_id) = match m.technique_id.split_once('.') {
                    Some((parent, _)) => (parent, Some(m.technique_id.as_str())),
                    None => (m.technique_id.as_str(), None),
                };
                let (tech_name, sub_name) = match m.technique_name.split_once(": ") {
                    Some((parent, sub)) if sub_id.is_some() => (parent, Some(sub)),
                    _ => (m.technique_name.as_str(), None),
                };
                let one = |w: &mut JsonWriter, k: &'static str, v: &str| {
                    w.key(k).open_array().str(v).close_array();
                };
                let mut threat = Vec::new();
                let mut w = JsonWriter::new(&mut threat);
                w.open().key(key!("framework")).str("MITRE ATT&CK").object(key!("technique"));
                one(&mut w, key!("id"), tech_id);
                one(&mut w, key!("name"), tech_name);
                one(&mut w, key!("reference"), &attack_url("techniques", tech_id));
                if let (Some(id), Some(name)) = (sub_id, sub_name) {
                    w.object(key!("subtechnique"));
                    one(&mut w, key!("id"), id);
                    one(&mut w, key!("name"), name);
                    one(&mut w, key!("reference"), &attack_url("techniques", id));
                    w.close();
                }
                w.close();
                let tactics = crate::rules::metadata::tactics(tech_id);
                if !tactics.is_empty() {
                    w.object(key!("tactic"));
                    for (k, pick) in [(key!("id"), 0), (key!("name"), 1), (key!("reference"), 2)] {
                        w.key(k).open_array();
                        for (id, name) in tactics {
                            match pick {
                                0 => w.str(id),
                                1 => w.str(name),
                                _ => w.str(&attack_url("tactics", id)),
                            };
                        }
                        w.close_array();
                    }
                    w.close();
                }
                w.close();
                let meta = MetaJson {
                    severity: m.severity_number(),
                    title: m.title.clone(),
                    rule_members,
                    threat,
                    vendor_members,
                };
                (key, meta)
            })
            .collect()
    });
    table.get(key)
}

/// The host members of every alert: `"host":{…},"observer":{…}`.
#[derive(Default)]
pub struct HostParts {
    pub(super) json: Vec<u8>,
}

impl HostParts {
    /// The events' `host`, and this monitor (on `observer_hostname`) as the observer.
    /// No `host` when it is not known (a replayed audit log that does not say).
    pub fn render(host: Option<&HostInfo>, observer_hostname: &str) -> HostParts {
        let mut json = Vec::new();
        if let Some(host) = host {
            json.extend_from_slice(b"\"host\":");
            serde_json::to_writer(&mut json, &host.ecs()).expect("a Value serialises");
            json.push(b',');
        }
        json.extend_from_slice(b"\"observer\":");
        serde_json::to_writer(&mut json, &super::ecs::observer(observer_hostname, "sensor"))
            .expect("a Value serialises");
        HostParts { json }
    }
}
