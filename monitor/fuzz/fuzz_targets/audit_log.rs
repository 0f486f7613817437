//! Audit input on arbitrary bytes: recognised as an input (what it holds, described), log
//! lines and netlink messages through grouping, mapping, rule matching (the built-in pack,
//! as an audit source evaluates it) and JSON output. Every line written must be one JSON
//! object that follows the field table (every field documented with its type, the fields
//! its kind of line needs present), and its text form one line without a control character.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monitor::detect::Detector;
use monitor::enrich::{Clock, Enricher, HostInfo, HostOf};
use monitor::pipeline::{Pipeline, Presentation};
use monitor::rules::{parse::SystemIds, RuleSet};
use monitor::sink::Sink;
use monitor::source::audit::events::Events;
use monitor::source::audit::record::Record;
use monitor::source::Input;
use std::sync::OnceLock;

fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| RuleSet::builtin(&SystemIds::load()).expect("built-in pack").for_audit().0)
}

fuzz_target!(|data: &[u8]| {
    let detect = Detector::new(rules().clone(), 0);
    let mut events = Events::new(0, false);
    events.set_excluded(detect.plan().excluded_types.clone());
    let sink =
        Sink::new(Vec::new(), Clock { offset_ns: 0 }, Some(HostInfo::named("fuzz")), 0, false);
    let mut p = Pipeline::new(
        Enricher::offline(HostOf::FromLog(None)),
        detect,
        sink,
        Presentation::default(),
    );
    // The first bytes as a netlink message (type, body), then everything as log lines.
    if data.len() >= 2 {
        let rtype = u16::from_le_bytes([data[0], data[1]]);
        if let Ok(r) = Record::parse_netlink(rtype, &data[2..]) {
            events.push(r, 0);
        }
    }
    for line in String::from_utf8_lossy(data).split('\n') {
        if let Ok(r) = Record::parse_line(line) {
            events.push(r, 0);
        }
    }
    events.finish();
    while let Some(a) = events.pop() {
        p.handle(Input::Event(Box::new(a))).unwrap();
    }
    p.finish().unwrap();
    for line in p.written().split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v =
            serde_json::from_slice::<serde_json::Value>(line).expect("one JSON object per line");
        let problems = monitor::sink::schema::problems(&v);
        assert!(problems.is_empty(), "{problems:?} in {v}");
        let mut text = String::new();
        monitor::sink::text::render(line, false, &mut text);
        assert!(!text.chars().any(char::is_control), "an inert text line: {text:?}");
    }
    let content = monitor::source::input::content(data);
    let _ = monitor::source::input::looks_like(data, false, content);
});
