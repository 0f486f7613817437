//! docs/alert-schema.md, made from the field table, the ECS categories of each action and
//! example lines rendered by the real renderers.

use crate::enrich::process::ProcInfo;
use crate::enrich::{Clock, HostInfo, ProcessView};
use crate::event::{Action, Event};
use crate::sink::json::{render_into, Alert, Context, RaisedBy};
use crate::sink::parts::{HostParts, RuleJson, RuleRef, RuleSource};
use crate::sink::schema::{Type, When, ECS_VERSION, FIELDS};
use std::fmt::Write as _;
use std::sync::Arc;

const INTRO: &str = r#"# Alert schema

*Made by `monitor generate schema docs` from the monitor's field table
(`monitor/src/sink/schema/fields.rs`); do not edit by hand.*

Every line the monitor prints is one JSON object that follows the
[Elastic Common Schema](https://www.elastic.co/guide/en/ecs/current/index.html) (ECS)
**{ECS}**: `monitor run` and `monitor replay` print alerts, audit-trail events and records
about the monitor itself on stdout, one per line, flushed as they happen (logs go to
stderr); `monitor check --json` prints one line per posture finding. Fields ECS defines have
ECS's names, types and allowed values (`event.kind`, `event.category`, `event.type`,
`event.outcome`); everything ECS does not define lives under one vendor object, `monitor`.
Objects are nested (`{"process":{"parent":{"pid":1}}}`, not dotted keys). The end-to-end
tests check every line of real runs against this table and against Elastic's own field
definitions (npm `@elastic/ecs@{ECS}`). Elasticsearch templates for these fields are in
[`siem/`](siem/).

## Lines

- **Alerts** (`event.kind: "alert"`, `event.dataset: "monitor.runtime"`): a rule of kind
  `alert` or a built-in detection matched.
- **Audit-trail events** (`event.kind: "event"`, same dataset), with `--audit-trail`: matches
  of `kind=event` rules (the container runtime's own work). Same fields as alerts.
- **Records about the monitor** (`event.dataset: "monitor.status"`): `monitor-start` (first
  line), `heartbeat` (every `--heartbeat` seconds, default 30), `events-lost` (within a second
  of the kernel failing to hand events over, with the count and the interval),
  `alerts-suppressed` (the count of identical alerts an aggregation window held back),
  `rules-reloaded` / `rules-reload-failed` (SIGHUP), `monitor-stop` (totals and the reason).
- **Posture findings** (`event.kind: "state"`, `event.dataset: "monitor.check"`): one per
  check and subject, from `monitor check --json`.

Alerts, audit-trail events and records share `event.sequence`: it starts at 1 and has no
gaps, so a missing number means lines lost after the monitor wrote them.

## Strings

Strings taken from the kernel (paths, argv, comm) are whatever bytes the caller chose. They
are JSON-escaped, so every line is exactly one JSON object. A string that is not valid UTF-8
is kept losslessly: each byte outside a valid UTF-8 sequence is written `%XX` and `%` itself
`%25`, and the field's dotted path is listed in `monitor.encoding.percent`
(`["process.args.2", "file.path"]`); percent-decoding such a field gives the original bytes.
Fields not listed there are the exact text. Long values are cut, never dropped, and the cut
is flagged (`monitor.process.args_truncated`, `monitor.file.truncated`,
`monitor.docker.body_truncated`). `message` shows the same strings shortened and with control
characters escaped, for reading.

## Fields

**type** is the ECS (Elasticsearch) type; `[]` marks an array. **lines** says which lines
always carry the field: `every` line, `runtime` (alerts, audit-trail events and records),
`alert` (alerts and audit-trail events), `docker` (decoded Docker API requests), `setid`
(setuid and setgid), `tamper` (signals, ptrace and process_vm aimed at the monitor),
`container` (alerts raised inside a container), `record`, `check`; `optional` fields are
present when they apply (the meaning says when). Fields under `monitor.` are
the monitor's own; all others are ECS fields.

| field | type | lines | meaning |
|---|---|---|---|
"#;

const CATEGORIES: &str = r#"
## `event.category` and `event.type`

| `event.action` | `event.category` | `event.type` |
|---|---|---|
"#;

const AFTER_CATEGORIES: &str = r#"| `docker-request` | `api` | `creation` (a create endpoint), `deletion` (DELETE), `access` (GET, HEAD), `change` (other requests) |
| `user-message` | `session`, `authentication`, `iam`, `process` or `host` by record type (USER_LOGIN/USER_START/USER_END, USER_AUTH/USER_ACCT/CRED_*, ADD_USER/DEL_USER/USER_MGMT/..., USER_CMD, others) | `start`, `end`, `info`, `creation`, `deletion`, `change` |
"#;

const OUTRO: &str = r#"
## Renamed in the move to ECS

Before lines followed ECS exactly, some facts had names of their own. Each is now here:

| was | is |
|---|---|
| `rule.key` | `rule.id` |
| `rule.keys` | `monitor.rule.keys` |
| `rule.source` | `monitor.rule.source` (and `rule.ruleset`: the file or detection) |
| `rule.severity`, `event.severity` 1-4 | `monitor.severity`, `event.severity` 21/47/73/99 |
| `rule.remediation` | `monitor.rule.remediation` |
| `process.ancestors`, `process.args_truncated` | `monitor.process.ancestors`, `monitor.process.args_truncated` |
| `user.audit.id` | `monitor.user.audit.id` |
| `group.id`, `group.effective.id` | `user.group.id`, `user.effective.group.id` |
| `syscall.*` | `monitor.syscall.*` |
| `encoding.percent` | `monitor.encoding.percent` |
| `file.target_path` (rename, link) | `monitor.file.new_path` |
| `file.link_target` (symlink) | `file.target_path` |
| `file.inode` (number), `file.mode` (`100644`) | `file.inode` (string), `file.mode` (`0644`) and `file.type` |
| `file.open_flags`, `file.truncated`, `file.resolved_from` | `monitor.file.*` |
| `socket.requested_path` | `destination.address` |
| `docker.request.method`, `.path`, `.query`, `.api_version` | `http.request.method`, `url.path`, `url.query`, `monitor.docker.api_version` |
| `docker.findings`, `.create`, `.exec`, `.body_truncated` | `monitor.docker.*` |
| `tamper.*`, `setid.*`, `audit.message.*` | `monitor.tamper.*`, `monitor.setid.*`, `monitor.audit.message.*` |
| `process.executable: null` and other nulls | the field is absent |
| records: `monitor.window`, `monitor.reason`, `monitor.suppressed` (total) | `event.start`/`event.end`, `event.reason`, `monitor.alerts_suppressed` |

`monitor replay` of a capture made before the change writes its recorded records in this
schema too.

## Stability

Fields are only ever added from here on. A consumer should ignore fields it does not know.
"#;

fn type_cell(ty: Type, array: bool) -> String {
    let t = match ty {
        Type::Object => "object",
        other => other.mapping(),
    };
    if array {
        format!("{t}[]")
    } else {
        t.to_string()
    }
}

/// The markdown document.
pub fn markdown() -> String {
    let mut out = INTRO.replace("{ECS}", ECS_VERSION);
    for f in FIELDS {
        let when = if f.when == When::Optional { "optional" } else { f.when.as_str() };
        let _ = writeln!(
            out,
            "| `{}` | {} | {when} | {} |",
            f.name,
            type_cell(f.ty, f.array),
            f.meaning.replace('|', "\\|")
        );
    }
    out.push_str(CATEGORIES);
    let actions: &[(Action, &str)] = &[
        (Action::Exec, "exec"),
        (Action::SetId, "setuid, setgid"),
        (Action::Signal, "signal, ptrace, process-vm"),
        (Action::Other, "syscall"),
        (Action::Open, "open"),
        (Action::Open, "write"),
        (Action::Rename, "rename, truncate, chmod, chown, setxattr, removexattr"),
        (Action::Unlink, "unlink, rmdir"),
        (Action::Link, "link, symlink, mkdir, mknod"),
        (Action::Connect, "connect"),
    ];
    for (a, names) in actions {
        let (c, t) = crate::sink::ecs::of_action(*a, names);
        let names: Vec<String> = names.split(", ").map(|n| format!("`{n}`")).collect();
        let _ =
            writeln!(out, "| {} | `{}` | `{}` |", names.join(", "), c.join("`, `"), t.join("`, `"));
    }
    out.push_str(AFTER_CATEGORIES);
    for r in [
        "monitor-start",
        "monitor-stop",
        "heartbeat",
        "events-lost",
        "alerts-suppressed",
        "rules-reloaded",
        "rules-reload-failed",
    ] {
        let (k, c, t) = crate::sink::ecs::of_record(r);
        let _ = writeln!(
            out,
            "| `{r}` (`event.kind: {k}`) | `{}` | `{}` |",
            c.join("`, `"),
            t.join("`, `")
        );
    }
    out.push_str("| `posture-check` (`event.kind: state`) | `configuration` | `info` |\n");
    out.push_str("\n## Examples\n\nShown indented; the monitor writes each on one line.\n\n");
    for (what, line) in examples() {
        let v: serde_json::Value = serde_json::from_str(&line).expect("an example line is JSON");
        let _ = write!(
            out,
            "{what}:\n\n```json\n{}\n```\n\n",
            serde_json::to_string_pretty(&v).unwrap()
        );
    }
    out.push_str(OUTRO.trim_start_matches('\n'));
    out
}

/// The example host: a Debian 12 VM.
fn sample_host() -> HostInfo {
    HostInfo {
        name: "vm".into(),
        id: Some("3f1c2a9e8b7d4c6f9a0e1d2c3b4a5f60".into()),
        architecture: Some("x86_64".into()),
        kernel: Some("6.18.0".into()),
        os_name: Some("Debian GNU/Linux".into()),
        os_version: Some("12".into()),
        os_platform: Some("debian".into()),
        os_full: Some("Debian GNU/Linux 12 (bookworm)".into()),
        os_family: Some("debian".into()),
    }
}

/// A rename of a Docker configuration file by `mv`, as the renderer writes it.
fn rename_alert() -> String {
    let ev = Event {
        args: [0xffffff9c, 0x7fff24ef3ae6, 0xffffff9c, 0x7fff24ef3af0],
        pid: 24078,
        tid: 24078,
        ppid: 24071,
        auid: 1000,
        sessionid: 3,
        comm: b"mv".to_vec(),
        path: Some(b"/etc/docker/daemon.json.new".to_vec()),
        path2: Some(b"/etc/docker/daemon.json".to_vec()),
        ..Event::new(Action::Rename, 316)
    };
    let clock = Clock { offset_ns: 1_795_400_000_000_000_000 };
    let host = sample_host();
    let bash = ProcInfo {
        ppid: 1,
        exe: Some(b"/usr/bin/bash".to_vec()),
        args: vec![b"-bash".to_vec()],
        comm: b"bash".to_vec(),
        start: Some(120_000),
    };
    let args = [b"mv".to_vec(), b"daemon.json.new".to_vec(), b"daemon.json".to_vec()];
    let view = ProcessView {
        pid: ev.pid,
        exe: Some(b"/usr/bin/mv"),
        args: &args,
        start: Some(431_655),
        ppid: ev.ppid,
        parent: Some(&bash),
        ancestors: vec![
            (24071, Some(b"/usr/bin/bash"), Some(120_000)),
            (1, Some(b"/sbin/init"), Some(0)),
        ],
    };
    let mut ctx = Context::default();
    ctx.process.render(&view, host.key(), clock);
    ctx.user.render(&ev, |uid| (uid == 0).then_some("root"), |gid| (gid == 0).then_some("root"));
    ctx.host = HostParts::render(Some(&host), "vm");
    let source = crate::rules::model::Source { file: "builtin:docker.rules".into(), line: 41 };
    let keys = ["docker-config".to_string()];
    ctx.rules
        .push(Some(RuleJson::render(&RuleRef { keys: &keys, source: RuleSource::Line(&source) })));
    let alert = Alert {
        ev: Arc::new(ev),
        kind: crate::rules::model::Kind::Alert,
        rule: RaisedBy::Loaded(0),
        sequence: 7,
        wall_ns: clock.wall_ns(4_316_550_123_456_789),
        container: None,
        docker: None,
        tamper: None,
        monitor_pid: 812,
    };
    let mut line = Vec::new();
    render_into(
        &alert,
        &ctx,
        "2026-11-23T15:10:16.972098963Z",
        "2026-11-23T15:10:16.972315400Z",
        &mut line,
    );
    String::from_utf8(line).expect("JSON is UTF-8")
}

fn examples() -> Vec<(&'static str, String)> {
    let host = sample_host();
    let frame = crate::sink::record::Frame { host: &host, observer: "vm", monitor_pid: 812 };
    let heartbeat = crate::sink::record::render(
        "heartbeat",
        8,
        "2026-11-23T15:10:30.000118342Z",
        &frame,
        serde_json::json!({"events": 51234, "alerts": 7, "trail": 112, "alerts_suppressed": 0, "lost": 0, "decode_errors": 0}),
    );
    vec![
        ("A rename under `/etc/docker` (an alert)", rename_alert()),
        ("A heartbeat (a record)", heartbeat),
    ]
}
