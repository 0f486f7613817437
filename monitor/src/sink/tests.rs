//! Every kind of line the sink writes, checked against the field table: alerts of every
//! action (file actions, exec, connect, a Docker request with findings, setid, tamper, an
//! audit user message, an audited syscall, from a container, with hostile bytes) and
//! every record.

use super::*;
use crate::detect::{Raised, Verdict};
use crate::enrich::container::{ContainerInfo, ContainerMeta};
use crate::enrich::process::ProcInfo;
use crate::event::Action;
use crate::rules::model::Kind;
use crate::rules::tests::event_at;
use serde_json::{json, Value};

fn verdict(keys: &[&str], source: &'static str) -> Verdict {
    Verdict {
        raised: Raised::Builtin { keys: keys.iter().map(|k| k.to_string()).collect(), source },
        kind: Kind::Alert,
        docker: None,
        tamper: None,
    }
}

/// Each event with its verdict and container.
fn alerts() -> Vec<(Event, Verdict, Option<ContainerInfo>)> {
    let mut out = Vec::new();
    let file = |a: Action, nr: i32, p: &str| {
        let mut ev = event_at(a, nr, p);
        ev.ino = 1234;
        ev.mode = 0o100644;
        ev
    };
    for (a, nr) in [
        (Action::Open, 257),
        (Action::Unlink, 87),
        (Action::Rmdir, 84),
        (Action::Mkdir, 83),
        (Action::Mknod, 259),
        (Action::Truncate, 76),
        (Action::Chmod, 90),
        (Action::Chown, 92),
        (Action::SetXattr, 188),
        (Action::RemoveXattr, 197),
    ] {
        out.push((file(a, nr, "/etc/docker/f"), verdict(&["docker-config"], "t.rules"), None));
    }
    let mut write = file(Action::Open, 257, "/etc/docker/w");
    write.open_flags = 0o1101;
    out.push((write, verdict(&["docker-config"], "t.rules"), None));
    for (a, nr) in [(Action::Rename, 82), (Action::Link, 86), (Action::Symlink, 88)] {
        let mut ev = file(a, nr, "/etc/docker/old");
        ev.path2 = Some(b"/etc/docker/new".to_vec());
        out.push((ev, verdict(&["docker-config", "other-key"], "t.rules"), None));
    }
    let mut exec = file(Action::Exec, 59, "/usr/bin/docker");
    exec.path = Some(b"/usr/bin/docker\xff".to_vec());
    exec.argv = vec![b"docker".to_vec(), b"ps\n-a".to_vec()];
    exec.flags = monitor_common::flag::PATH2_TRUNCATED | monitor_common::flag::PATH_FROM_STRING;
    let container = ContainerInfo {
        id: "ab".repeat(32),
        runtime: Some("docker"),
        meta: Some(ContainerMeta {
            name: Some("web".into()),
            image: Some("local/busybox:1".into()),
            privileged: Some(false),
        }),
    };
    out.push((exec, verdict(&["docker-client"], "t.rules"), Some(container)));
    let mut connect = event_at(Action::Connect, 42, "docker.sock");
    connect.path2 = Some(b"/run/docker.sock".to_vec());
    connect.ino = 99;
    connect.ret = -13;
    out.push((connect, verdict(&["docker-socket"], "t.rules"), None));
    let mut setid = event_at(Action::SetId, 117, "");
    setid.path = None;
    setid.old_ids.uid = 1000;
    setid.args = [u32::MAX as u64, 0, 0, 0];
    out.push((setid, verdict(&["setuid-root"], "t.rules"), None));
    let mut signal = event_at(Action::Signal, 62, "");
    signal.path = None;
    signal.args[0] = 19;
    let mut v = verdict(&["monitor-tamper"], "builtin:self-defence");
    v.tamper = Some("SIGSTOP sent to the monitor".into());
    out.push((signal, v, None));
    let req = crate::detect::http::Request {
        method: "POST".into(),
        path: "/v1.41/containers/create".into(),
        query: "name=x".into(),
        version: "HTTP/1.1".into(),
        headers: vec![],
        body: br#"{"Image":"busybox","HostConfig":{"Privileged":true,"Binds":["/:/host"]}}"#
            .to_vec(),
        body_truncated: true,
    };
    let decoded = crate::detect::docker_api::decode(&req);
    let mut payload = event_at(Action::Payload, 44, "");
    payload.path = None;
    let mut v = verdict(&["docker-privileged", "docker-host-mount"], "builtin:docker-api");
    v.docker = Some(Box::new((decoded, b"/run/docker.sock".to_vec())));
    out.push((payload, v, None));
    let mut message = event_at(Action::UserMessage, -1, "/usr/bin/sudo");
    message.args[0] = 1123; // USER_CMD
    message.payload = b"cwd=\"/\" cmd=id".to_vec();
    message.audit_key = Some(vec!["sudo".to_string(), "p\u{1}k".to_string()].into());
    let mut v = verdict(&["sudo-cmd"], "t.rules");
    v.kind = Kind::Event;
    out.push((message, v, None));
    let mut kill = event_at(Action::Other, 62, "");
    kill.path = None;
    out.push((kill, verdict(&[], "t.rules"), None));
    out
}

fn written(sink: &Sink<Vec<u8>>) -> Vec<Value> {
    String::from_utf8(sink.inline_writer().clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_kind_of_line_follows_the_field_table() {
    let mut sink = Sink::new(Vec::new(), Clock { offset_ns: 0 }, Some(HostInfo::read()), 42, false);
    sink.record("monitor-start", json!({"start": {"version": "1", "source": "ebpf", "rules": {"count": 1, "hash": "h", "files": ["f"]}, "hooks": 2, "hook_points": ["a", "b"], "kernel": "k", "heartbeat_s": 30}})).unwrap();
    let parent = ProcInfo {
        ppid: 1,
        exe: Some(b"/bin/sh".to_vec()),
        args: vec![b"sh".to_vec()],
        comm: b"sh".to_vec(),
        start: Some(7),
    };
    let args = [b"docker".to_vec(), b"\xffps".to_vec()];
    let view = ProcessView {
        pid: 100,
        exe: Some(b"/usr/bin/docker"),
        args: &args,
        start: Some(9),
        ppid: 1,
        parent: Some(&parent),
        ancestors: vec![(1, None, None)],
    };
    sink.set_process((1, 100, 1), &view).unwrap();
    for (i, (ev, v, container)) in alerts().into_iter().enumerate() {
        let key = (2, [i as u32, 0, 0, 0, 0, 0, 0]);
        sink.set_user(
            key,
            &ev,
            |uid| (uid == 1000).then_some("alice"),
            |gid| (gid == 1000).then_some("staff"),
        )
        .unwrap();
        sink.alert(&Arc::new(ev), v, container).unwrap();
    }
    let w =
        json!({"start": "2026-01-01T00:00:00.000000000Z", "end": "2026-01-01T00:00:01.000000000Z"});
    sink.record("heartbeat", json!({"events": 1, "alerts": 2, "trail": 0, "alerts_suppressed": 0, "lost": 0, "decode_errors": 0})).unwrap();
    sink.record("events-lost", json!({"lost": 3, "lost_total": 3, "window": w})).unwrap();
    sink.record("alerts-suppressed", json!({"suppressed": {"count": 9, "of_sequence": 2, "window": w, "last": w["end"], "about": {"rule": {"key": "k", "source": "f:1"}, "process": {"pid": 1}, "action": "write", "path": "/x"}}})).unwrap();
    sink.record("rules-reloaded", json!({"rules": {"count": 1, "hash": "h", "files": ["f"]}}))
        .unwrap();
    sink.record("rules-reload-failed", json!({"errors": ["f:1:1: bad"], "rules": {"hash": "h"}}))
        .unwrap();
    sink.record("monitor-stop", json!({"events": 1, "alerts": 2, "trail": 0, "alerts_suppressed": 0, "lost": 0, "decode_errors": 0, "reason": "SIGTERM", "requested_by": {"relation": "parent", "pid": 1, "executable": "/bin/sh"}})).unwrap();
    let lines = written(&sink);
    assert_eq!(lines.len(), 7 + alerts().len());
    for (i, line) in lines.iter().enumerate() {
        let p = schema::problems(line);
        assert!(p.is_empty(), "line {i}: {p:#?}\n{line:#}");
        assert_eq!(line["event"]["sequence"], i as u64 + 1);
        let message = line["message"].as_str().unwrap();
        assert!(!message.is_empty() && message.chars().all(|c| !c.is_control()), "{message}");
    }
    // What each kind of alert carries.
    let by_action = |a: &str| lines.iter().find(|l| l["event"]["action"] == a).unwrap();
    let exec = by_action("exec");
    assert_eq!(exec["container"]["name"], "web");
    assert_eq!(exec["process"]["entity_id"].as_str().unwrap().len(), 32);
    assert_eq!(exec["process"]["parent"]["name"], "sh");
    assert_eq!(exec["monitor"]["process"]["args_truncated"], true);
    assert_eq!(exec["monitor"]["file"]["resolved_from"], "string");
    let encoded = exec["monitor"]["encoding"]["percent"].as_array().unwrap();
    assert!(encoded.contains(&json!("file.path")) && encoded.contains(&json!("process.args.1")));
    assert!(exec["message"].as_str().unwrap().contains("exec /usr/bin/docker\\xff ps\\x0a-a"));
    let rename = by_action("rename");
    assert_eq!(rename["monitor"]["file"]["new_path"], "/etc/docker/new");
    assert_eq!(rename["monitor"]["rule"]["keys"], json!(["docker-config", "other-key"]));
    assert_eq!(rename["file"]["inode"], "1234");
    assert_eq!(rename["file"]["mode"], "0644");
    assert_eq!(rename["file"]["type"], "file");
    assert_eq!(by_action("symlink")["file"]["target_path"], "/etc/docker/new");
    assert_eq!(by_action("write")["monitor"]["file"]["open_flags"], "0o1101");
    assert_eq!(by_action("write")["event"]["type"], json!(["change"]));
    assert_eq!(by_action("open")["event"]["type"], json!(["access"]));
    let connect = by_action("connect");
    assert_eq!(connect["destination"]["address"], "docker.sock");
    assert_eq!(connect["file"]["path"], "/run/docker.sock");
    assert_eq!(connect["event"]["outcome"], "failure");
    assert_eq!(connect["event"]["severity"], 73);
    assert_eq!(connect["monitor"]["severity"], "high");
    assert_eq!(connect["threat"]["technique"]["id"], json!(["T1610"]));
    let setuid = by_action("setuid");
    assert_eq!(setuid["monitor"]["setid"]["before"]["uid"], 1000);
    assert_eq!(setuid["monitor"]["setid"]["requested"], json!([-1, 0, 0]));
    let docker = by_action("docker-request");
    assert_eq!(docker["http"]["request"]["method"], "POST");
    assert_eq!(docker["url"]["path"], "/v1.41/containers/create");
    assert_eq!(docker["url"]["query"], "name=x");
    assert_eq!(docker["monitor"]["docker"]["api_version"], "1.41");
    assert_eq!(docker["monitor"]["docker"]["create"]["privileged"], true);
    assert_eq!(docker["event"]["category"], json!(["api"]));
    assert_eq!(docker["event"]["type"], json!(["creation"]));
    assert_eq!(docker["rule"]["id"], "docker-privileged");
    let signal = by_action("signal");
    assert_eq!(signal["monitor"]["tamper"]["signal"], 19);
    assert_eq!(signal["monitor"]["tamper"]["monitor_pid"], 42);
    let sudo = by_action("user-message");
    assert_eq!(sudo["event"]["kind"], "event");
    assert_eq!(sudo["monitor"]["audit"]["message"]["type"], "USER_CMD");
    assert_eq!(sudo["monitor"]["audit"]["key"], json!(["sudo", "p\u{1}k"]));
    assert_eq!(sudo["event"]["category"], json!(["process"]));
    let kill = by_action("syscall");
    assert!(kill.get("rule").is_some_and(|r| r.get("id").is_none()), "no key, no rule.id");
    let stop = lines.last().unwrap();
    assert_eq!(stop["event"]["reason"], "SIGTERM");
    assert_eq!(stop["process"]["pid"], 42);
}

#[test]
fn an_audit_logs_host_is_named_and_the_observer_stays_this_machine() {
    let mut sink = Sink::new(Vec::new(), Clock { offset_ns: 0 }, None, 0, false);
    sink.set_host(Some("web1"));
    let ev = event_at(Action::Unlink, 87, "/etc/docker/x");
    let view = ProcessView {
        pid: ev.pid,
        exe: None,
        args: &[],
        start: None,
        ppid: 1,
        parent: None,
        ancestors: vec![],
    };
    sink.set_process((1, ev.pid, 1), &view).unwrap();
    sink.set_user((1, [0; 7]), &ev, |_| None, |_| None).unwrap();
    sink.alert(&Arc::new(ev), verdict(&["k"], "t.rules"), None).unwrap();
    let line = &written(&sink)[0];
    assert_eq!(line["host"], json!({"name": "web1", "hostname": "web1"}));
    assert_eq!(line["observer"]["hostname"], crate::enrich::hostname());
    assert!(schema::problems(line).is_empty(), "{:?}", schema::problems(line));
}
