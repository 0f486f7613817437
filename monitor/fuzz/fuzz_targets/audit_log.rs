//! Audit input on arbitrary bytes: log lines and netlink messages through grouping,
//! mapping, rule matching (the built-in pack, as an audit source evaluates it) and JSON
//! output. Every line written must be one JSON object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monitor::enrich::Clock;
use monitor::pipeline::{audit::AuditFeed, Pipeline};
use monitor::rules::{parse::SystemIds, targets, RuleSet};
use monitor::source::audit::record::Record;
use std::sync::OnceLock;

fn rules() -> &'static (RuleSet, targets::FilterPlan) {
    static RULES: OnceLock<(RuleSet, targets::FilterPlan)> = OnceLock::new();
    RULES.get_or_init(|| {
        let set = RuleSet::builtin(&SystemIds::load()).expect("built-in pack").for_audit().0;
        let plan = targets::plan(&set.rules);
        (set, plan)
    })
}

fuzz_target!(|data: &[u8]| {
    let (set, plan) = rules();
    let mut p = Pipeline::offline(set.clone(), plan.clone(), Vec::new(), Clock { offset_ns: 0 }, "fuzz".into(), 0);
    let mut feed = AuditFeed::default();
    // The first bytes as a netlink message (type, body), then everything as log lines.
    if data.len() >= 2 {
        let rtype = u16::from_le_bytes([data[0], data[1]]);
        if let Ok(r) = Record::parse_netlink(rtype, &data[2..]) {
            feed.push(r, 0, &mut p).unwrap();
        }
    }
    for line in String::from_utf8_lossy(data).split('\n') {
        if let Ok(r) = Record::parse_line(line) {
            feed.push(r, 0, &mut p).unwrap();
        }
    }
    feed.finish(&mut p).unwrap();
    for line in p.out.inline_writer().split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        serde_json::from_slice::<serde_json::Value>(line).expect("one JSON object per line");
    }
});
