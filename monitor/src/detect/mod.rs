//! Detection, the third stage: what an event raises. The loaded rules (first matching exit
//! rule decides, as in auditd), the Docker API requests sent on connections a rule caught
//! (`requests`), and the self-defence detections (`tamper`). Each event gives zero or more
//! [`Verdict`]s; [`select`] narrows them to what a replay was asked for, and [`aggregate`]
//! decides which are printed and which are counted.

pub mod aggregate;
pub mod docker_api;
pub mod http;
pub mod requests;
pub mod select;
pub mod tamper;

use crate::event::{Action, Actor, Event};
use crate::plan::{FilterPlan, Target};
use crate::rules::compile::Compiled;
use crate::rules::matcher::Matcher;
use crate::rules::model::{Kind, Rule};
use crate::rules::RuleSet;
use docker_api::DockerRequest;
use std::sync::Arc;

/// What raised a verdict: a loaded rule (its position), or a built-in detection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Raised {
    Rule(usize),
    Builtin { keys: Vec<String>, source: &'static str },
}

/// One thing an event raised.
#[derive(Debug)]
pub struct Verdict {
    pub raised: Raised,
    /// An alert, or a line of the audit trail (`kind=event` rules).
    pub kind: Kind,
    /// A decoded Docker API request (the event is the send that completed it) and the
    /// socket's path.
    pub docker: Option<Box<(DockerRequest, Vec<u8>)>>,
    /// Self-defence: what reached for the monitor.
    pub tamper: Option<String>,
}

impl Verdict {
    fn builtin(keys: Vec<String>, source: &'static str) -> Verdict {
        Verdict {
            raised: Raised::Builtin { keys, source },
            kind: Kind::Alert,
            docker: None,
            tamper: None,
        }
    }
}

/// The rules in force and what detection keeps between events.
pub struct Detector {
    rules: RuleSet,
    compiled: Compiled,
    requests: requests::Requests,
    /// The monitor's parent when it started: a stop request from it is orderly.
    monitor_ppid: u32,
}

impl Detector {
    pub fn new(rules: RuleSet, monitor_ppid: u32) -> Detector {
        let compiled = Compiled::new(&rules.rules);
        Detector { rules, compiled, requests: requests::Requests::default(), monitor_ppid }
    }

    /// What `ev` raises, into `out`. `actor` is its process as the enrichment knows it.
    pub fn judge(&mut self, ev: &Arc<Event>, actor: Actor, out: &mut Vec<Verdict>) {
        match ev.action {
            Action::Fork => return,
            Action::Exit => return self.requests.exit(ev.pid),
            Action::Payload => {
                for (request, socket) in self.requests.feed(ev) {
                    let keys = request.keys().into_iter().map(str::to_string).collect();
                    let mut v = Verdict::builtin(keys, docker_api::SOURCE);
                    v.docker = Some(Box::new((request, socket)));
                    out.push(v);
                }
                return;
            }
            Action::Signal | Action::Ptrace | Action::ProcessVm => return self.tamper(ev, out),
            _ => {}
        }
        let matcher = Matcher { rules: &self.rules.rules, compiled: &self.compiled };
        match matcher.evaluate_at(ev, actor) {
            Some(ri) => {
                if ev.action == Action::Connect && ev.success() {
                    // What the process now sends on this connection is decoded.
                    self.requests.open(ev);
                }
                let kind = self.rules.rules[ri].kind;
                out.push(Verdict { raised: Raised::Rule(ri), kind, docker: None, tamper: None });
            }
            None => tracing::trace!(
                action = ev.action.as_str(),
                pid = ev.pid,
                flags = ev.flags,
                "no rule matched"
            ),
        }
        self.tamper(ev, out);
    }

    /// Self-defence: when the event reaches for the monitor itself.
    fn tamper(&self, ev: &Event, out: &mut Vec<Verdict>) {
        if let Some((key, detail)) = tamper::judge(ev, self.monitor_ppid) {
            let mut v = Verdict::builtin(vec![key.to_string()], tamper::SOURCE);
            v.tamper = Some(detail);
            out.push(v);
        }
    }

    /// The monitor's parent when it started.
    pub fn monitor_ppid(&self) -> u32 {
        self.monitor_ppid
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    pub fn rule(&self, i: usize) -> &Rule {
        &self.rules.rules[i]
    }

    /// The keys of what raised `v` (a loaded rule's, or a built-in detection's).
    pub fn keys<'s>(&'s self, v: &'s Verdict) -> &'s [String] {
        match &v.raised {
            Raised::Rule(i) => &self.rules.rules[*i].keys,
            Raised::Builtin { keys, .. } => keys,
        }
    }

    /// The severity rank of `v` (its first key's metadata; `info`, 0, without).
    /// The severity rank of `v` (0 info … 4 critical, see `select::SEVERITIES`): its first
    /// key's, info without metadata.
    pub fn severity(&self, v: &Verdict) -> u8 {
        let word = self.keys(v).first().and_then(|k| crate::rules::metadata::get(k));
        let word = word.map_or("info", |m| m.severity.as_str());
        select::SEVERITIES.iter().position(|w| *w == word).unwrap_or(0) as u8
    }

    /// The kernel filter plan of the rules in force.
    pub fn plan(&self) -> &FilterPlan {
        &self.compiled.plan
    }

    /// Re-read the watched paths' identities on this host; whether any changed.
    pub fn refresh(&mut self) -> bool {
        self.compiled.refresh()
    }

    /// Put new rules in force (a reload).
    pub fn replace(&mut self, rules: RuleSet) {
        self.compiled = Compiled::new(&rules.rules);
        self.rules = rules;
    }

    /// Use `plan` (a capture's, made from these same rules) from now on.
    pub fn use_plan(&mut self, plan: FilterPlan) {
        self.compiled = Compiled::linked(plan, &self.rules.rules);
    }

    /// The id in the plan in force of target `id` of `recorded` (another run's plan),
    /// added (selecting nothing of its own) when these rules do not name its path: what
    /// the recording's kernel said of an object, by inode, carries over under its path.
    pub fn translate_watch(&mut self, recorded: &FilterPlan, id: u32) -> u32 {
        let Some(t) = recorded.target(id) else { return 0 };
        if let Some(mine) = self.compiled.plan.targets.iter().find(|m| m.canonical == t.canonical) {
            return mine.id;
        }
        self.compiled.add(Target { classes: 0, ..t.clone() })
    }

    /// The watches of the objects `identities` names (audit PATH records), as the kernel
    /// filter would have given them: the first two.
    pub fn watch_ids(&self, identities: &[(u32, u64)]) -> (u32, u32) {
        let mut ids = identities.iter().filter_map(|(dev, ino)| {
            self.compiled.plan.by_identity(*dev, *ino, None).map(|t| t.id)
        });
        (ids.next().unwrap_or(0), ids.next().unwrap_or(0))
    }
}
