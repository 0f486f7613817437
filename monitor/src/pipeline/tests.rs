//! The pipeline on hand-made events: the members alerts share follow what changed, and a
//! flood is one alert and a count.

use super::*;
use crate::detect::aggregate::Settings;
use crate::enrich::Clock;
use crate::enrich::HostInfo;
use crate::event::{Action, Event};
use crate::rules::parse::SystemIds;
use crate::rules::tests::event_at;
use crate::rules::RuleSet;
use crate::source::Arrival;
use serde_json::{json, Value};

fn rules(text: &str) -> RuleSet {
    RuleSet::from_texts([("t.rules".to_string(), text)], &SystemIds::load()).unwrap()
}

fn pipeline(text: &str, aggregation: Settings) -> Pipeline<Vec<u8>> {
    let sink = Sink::new(Vec::new(), Clock { offset_ns: 0 }, Some(HostInfo::named("h")), 1, false);
    Pipeline::new(
        Enricher::offline(crate::enrich::HostOf::Named("h".into())),
        Detector::new(rules(text), 0),
        sink,
        Presentation { audit_trail: false, aggregation },
    )
}

fn feed(p: &mut Pipeline<Vec<u8>>, ev: Event) {
    p.handle(Input::Event(Box::new(Arrival::event(ev)))).unwrap();
}

fn lines(p: &Pipeline<Vec<u8>>) -> Vec<Value> {
    String::from_utf8(p.written().clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const NO_AGGREGATION: Settings = Settings { window_ns: 0, max_keys: 1 };

/// Alerts from one process reuse its rendered process members; whatever changes the
/// table in between (its parent's exec or exit, a reparenting) shows in the next alert.
#[test]
fn process_members_follow_the_table_between_alerts() {
    let mut p = pipeline("-w /etc/watched -p wa -k w\n", NO_AGGREGATION);
    let exec = |pid: u32, ppid: u32, exe: &str| Event {
        pid,
        tid: pid,
        ppid,
        argv: vec![exe.as_bytes().to_vec(), b"-x".to_vec()],
        ..event_at(Action::Exec, 59, exe)
    };
    let alert = |pid: u32, ppid: u32| Event {
        pid,
        tid: pid,
        ppid,
        ..event_at(Action::Unlink, 87, "/etc/watched")
    };
    let fork = |pid: u32, child: u32| Event {
        pid,
        child_or_code: child as u64,
        ..event_at(Action::Fork, -1, "")
    };
    let exit = |pid: u32| Event { pid, ..event_at(Action::Exit, -1, "") };
    let steps = [
        exec(10, 1, "/bin/sh"),
        fork(10, 20),
        exec(20, 10, "/bin/tool"),
        alert(20, 10),
        alert(20, 10),
        exec(10, 1, "/bin/bash"),
        alert(20, 10),
        exit(10),
        alert(20, 10),
        alert(20, 1),
        exec(20, 1, "/bin/other"),
        alert(20, 1),
    ];
    for ev in steps {
        feed(&mut p, ev);
    }
    let process: Vec<Value> = lines(&p)
        .iter()
        .map(|v| {
            let pr = &v["process"];
            let parent =
                json!({"pid": pr["parent"]["pid"], "executable": pr["parent"]["executable"]});
            let ancestors: Vec<Value> = v["monitor"]["process"]["ancestors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| json!({"pid": a["pid"], "executable": a["executable"]}))
                .collect();
            json!([pr["executable"], pr["args"], parent, ancestors])
        })
        .collect();
    let tool = json!(["/bin/tool", "-x"]);
    assert_eq!(
        process,
        [
            json!(["/bin/tool", tool, {"pid": 10, "executable": "/bin/sh"}, [{"pid": 10, "executable": "/bin/sh"}, {"pid": 1, "executable": null}]]),
            json!(["/bin/tool", tool, {"pid": 10, "executable": "/bin/sh"}, [{"pid": 10, "executable": "/bin/sh"}, {"pid": 1, "executable": null}]]),
            json!(["/bin/tool", tool, {"pid": 10, "executable": "/bin/bash"}, [{"pid": 10, "executable": "/bin/bash"}, {"pid": 1, "executable": null}]]),
            json!(["/bin/tool", tool, {"pid": 10, "executable": null}, [{"pid": 10, "executable": null}]]),
            json!(["/bin/tool", tool, {"pid": 1, "executable": null}, [{"pid": 1, "executable": null}]]),
            json!(["/bin/other", ["/bin/other", "-x"], {"pid": 1, "executable": null}, [{"pid": 1, "executable": null}]]),
        ]
    );
}

/// Alerts reuse their rule's and their user's members; new ids, new user names and
/// reloaded rules show in the next alert.
#[test]
fn user_and_rule_members_follow_ids_names_and_reloaded_rules() {
    let mut p = pipeline("-w /etc/watched -p wa -k first\n", NO_AGGREGATION);
    p.handle(Input::Users([(1000, "alice".to_string())].into())).unwrap();
    let alert = |euid: u32| {
        let mut ev = event_at(Action::Unlink, 87, "/etc/watched");
        ev.ids.euid = euid;
        ev
    };
    feed(&mut p, alert(1000));
    feed(&mut p, alert(1000));
    feed(&mut p, alert(0));
    p.handle(Input::Users([(1000, "bob".to_string())].into())).unwrap();
    feed(&mut p, alert(0));
    p.reload(rules("-w /etc/watched -p wa -k second -k third\n")).unwrap();
    feed(&mut p, alert(0));
    let seen: Vec<Value> = lines(&p)
        .iter()
        .map(|v| {
            let effective = &v["user"]["effective"];
            let effective = json!({"id": effective["id"], "name": effective["name"]});
            json!([v["user"]["name"], effective, v["rule"]["id"], v["monitor"]["rule"]["keys"]])
        })
        .collect();
    assert_eq!(
        seen,
        [
            json!(["alice", {"id": "1000", "name": "alice"}, "first", null]),
            json!(["alice", {"id": "1000", "name": "alice"}, "first", null]),
            json!(["alice", {"id": "0", "name": null}, "first", null]),
            json!(["bob", {"id": "0", "name": null}, "first", null]),
            json!(["bob", {"id": "0", "name": null}, "second", ["second", "third"]]),
        ]
    );
}

/// An audit log's event as the pipeline takes it: what its records said beyond the event.
fn from_log(mut ev: Event, node: Option<&str>, names: &[(u32, &str)]) -> Input {
    ev.audit_key = Some(vec!["their-key".to_string()].into_boxed_slice());
    let audit = crate::source::AuditContext {
        node: node.map(str::to_string),
        names: crate::source::audit::names::Names {
            users: names.iter().map(|(i, n)| (*i, n.to_string())).collect(),
            groups: vec![(ev.ids.gid, "their-group".into())],
        },
        exe: ev.path.clone(),
        syscall: true,
        ..Default::default()
    };
    Input::Event(Box::new(Arrival { audit: Some(audit), ..Arrival::event(ev) }))
}

fn audit_pipeline(text: &str, fallback: Option<&str>) -> Pipeline<Vec<u8>> {
    let sink = Sink::new(Vec::new(), Clock { offset_ns: 0 }, None, 0, false);
    let enrich = Enricher::offline(crate::enrich::HostOf::FromLog(fallback.map(String::from)));
    Pipeline::new(enrich, Detector::new(rules(text), 0), sink, Presentation::default())
}

/// Host and names come from the log, the audit key is kept beside ours, and the host the
/// replay runs on is only the observer; a log that names no host leaves it unknown (or
/// the fallback the user gave).
#[test]
fn a_replayed_log_keeps_its_host_names_and_keys() {
    for (fallback, node, host) in [
        (None, Some("web1"), json!("web1")),
        (None, None, Value::Null),
        (Some("db7"), None, json!("db7")),
    ] {
        let mut p = audit_pipeline("-w /etc/watched -p wa -k ours\n", fallback);
        let mut ev = event_at(Action::Unlink, 87, "/etc/watched");
        (ev.ids.uid, ev.ids.euid, ev.ids.gid) = (4242, 0, 4343);
        p.handle(from_log(ev, node, &[(4242, "alice"), (0, "root")])).unwrap();
        p.finish().unwrap();
        let out = lines(&p);
        assert_eq!(out.len(), 1, "{out:?}");
        let a = &out[0];
        assert_eq!(a["host"]["name"], host, "{a}");
        assert_eq!(a["observer"]["hostname"], crate::enrich::hostname().as_str(), "{a}");
        assert_eq!(
            (&a["user"]["name"], &a["user"]["effective"]["name"]),
            (&json!("alice"), &json!("root"))
        );
        assert_eq!(a["user"]["group"]["name"], "their-group", "{a}");
        assert_eq!(a["rule"]["id"], "ours");
        assert_eq!(a["monitor"]["audit"]["key"], json!(["their-key"]));
    }
}

/// The selection narrows what is printed, not what is seen: a process's descendants are
/// known from the events before, and what was left out is counted.
#[test]
fn a_selection_prints_only_what_it_takes_and_counts_the_rest() {
    use crate::detect::select::Selection;
    let run = |select: Selection| {
        let mut p = audit_pipeline("-w /etc/watched -p wa -k w\n-w /etc/other -p wa -k o\n", None);
        p.select(select);
        let at = |pid: u32, ppid: u32, path: &str, sec: u64| {
            let mut ev = event_at(Action::Unlink, 87, path);
            (ev.pid, ev.tid, ev.ppid, ev.ts_boot_ns) = (pid, pid, ppid, sec * 1_000_000_000);
            from_log(ev, Some("h"), &[])
        };
        for input in [
            at(20, 1, "/etc/watched", 10),
            at(30, 20, "/etc/other", 20),
            at(40, 1, "/etc/other", 30),
            at(31, 30, "/etc/watched", 40),
        ] {
            p.handle(input).unwrap();
        }
        p.finish().unwrap();
        let pids: Vec<u64> =
            lines(&p).iter().filter_map(|a| a["process"]["pid"].as_u64()).collect();
        (pids, p.counts().filtered)
    };
    assert_eq!(run(Selection::default()), (vec![20, 30, 40, 31], 0));
    assert_eq!(run(Selection { pids: vec![20], ..Default::default() }), (vec![20, 30, 31], 1));
    assert_eq!(run(Selection { keys: vec!["o".into()], ..Default::default() }), (vec![30, 40], 2));
    let window = Selection {
        since_ns: Some(20_000_000_000),
        until_ns: Some(40_000_000_000),
        ..Default::default()
    };
    assert_eq!(run(window), (vec![30, 40], 2));
    assert_eq!(run(Selection { actions: vec!["exec".into()], ..Default::default() }), (vec![], 4));
}

/// 10 000 writes of one watched file by one process within the window: one alert, then
/// (at the end of the input) an `alerts-suppressed` record counting the rest, naming the
/// alert by its sequence. Alerts and counts add up to the verdicts.
#[test]
fn a_flood_is_one_alert_and_a_suppressed_count() {
    let mut p = pipeline("-w /etc/watched -p wa -k w\n", Settings::default());
    for i in 0..10_000u64 {
        let mut ev = event_at(Action::Unlink, 87, "/etc/watched");
        ev.ts_boot_ns = 5_000_000_000 + i * 1_000;
        feed(&mut p, ev);
    }
    p.finish().unwrap();
    let out = lines(&p);
    assert_eq!(out.len(), 2, "{out:#?}");
    assert_eq!(out[0]["event"]["kind"], "alert");
    assert_eq!(
        (out[1]["event"]["action"].as_str(), out[1]["monitor"]["suppressed"]["count"].as_u64()),
        (Some("alerts-suppressed"), Some(9_999))
    );
    assert_eq!(out[1]["monitor"]["suppressed"]["of_sequence"], out[0]["event"]["sequence"]);
    assert_eq!(out[1]["monitor"]["suppressed"]["about"]["rule"]["key"], "w");
    let c = p.counts();
    assert_eq!((c.alerts, c.suppressed, c.events), (1, 9_999, 10_000));
}
