//! The auditctl rule parser on arbitrary text: errors are diagnostics, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monitor::rules::{parse::IdResolver, RuleSet};

struct Ids;
impl IdResolver for Ids {
    fn user(&self, name: &str) -> Option<u32> {
        (name == "root").then_some(0)
    }
    fn group(&self, name: &str) -> Option<u32> {
        (name == "docker").then_some(105)
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(set) = RuleSet::from_texts([("fuzz.rules".to_string(), text)], &Ids) {
            // Everything that loads can be planned and described.
            let _ = monitor::rules::compile::Compiled::new(&set.rules);
            for r in &set.rules {
                let _ = r.describe();
            }
        }
    }
});
