//! The pipeline on hand-made events: the members alerts share follow what changed, and a
//! flood is one alert and a count.

use super::*;
use crate::detect::aggregate::Settings;
use crate::enrich::Clock;
use crate::event::{Action, Event};
use crate::rules::parse::SystemIds;
use crate::rules::tests::event_at;
use crate::source::Arrival;
use serde_json::{json, Value};

fn rules(text: &str) -> RuleSet {
    RuleSet::from_texts([("t.rules".to_string(), text)], &SystemIds::load()).unwrap()
}

fn pipeline(text: &str, aggregation: Settings) -> Pipeline<Vec<u8>> {
    let sink = Sink::new(Vec::new(), Clock { offset_ns: 0 }, "h", 1, false);
    Pipeline::new(
        Enricher::offline(),
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
