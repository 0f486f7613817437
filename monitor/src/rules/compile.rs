//! From rules to what evaluates them: the kernel filter plan ([`plan`]: the paths watched,
//! by which event classes, and the classes that reach userspace unfiltered) and, linked to
//! the rules, where each path condition finds its target and the index of candidate rules
//! ([`Compiled`]).

use super::index::RuleIndex;
use super::model::*;
use crate::plan::{FilterPlan, Target};
use crate::vocab::class_of;
use monitor_common::class;
use monitor_common::sys::OPENS as OPEN_SYSCALLS;
use std::collections::BTreeMap;

pub const ALL_CLASSES: u32 = class::EXEC | class::CONNECT | class::FILE | class::SETID;

/// Event classes a rule's syscalls cover.
fn rule_classes(rule: &Rule) -> u32 {
    let mut classes = match &rule.syscalls {
        Syscalls::All => ALL_CLASSES,
        Syscalls::Set(set) => set.iter().fold(0, |acc, nr| acc | class_of(*nr)),
    };
    for c in &rule.conds {
        if let Cond::Perm(p) = c {
            classes &= perm_classes(*p);
        }
    }
    classes
}

/// Whether `rule` could match an open that only reads: it covers an open syscall and has
/// no `perm` condition without `r` (`-w … -p wa` cannot). Other conditions are not looked
/// at: this may say yes too often, never no too often.
fn may_match_read_opens(rule: &Rule) -> bool {
    let opens = OPEN_SYSCALLS.iter().any(|nr| rule.syscalls.contains(*nr));
    let perm_excludes_reads =
        rule.conds.iter().any(|c| matches!(c, Cond::Perm(p) if p & perm::READ == 0));
    opens && !perm_excludes_reads
}

/// Classes that can produce each access kind. A unix socket connect counts as a write.
pub fn perm_classes(p: u8) -> u32 {
    let mut c = 0;
    if p & perm::EXEC != 0 {
        c |= class::EXEC;
    }
    if p & (perm::READ | perm::WRITE | perm::ATTR) != 0 {
        c |= class::FILE;
    }
    if p & perm::WRITE != 0 {
        c |= class::CONNECT;
    }
    c
}

pub fn plan(rules: &[Rule]) -> FilterPlan {
    let mut by_path: BTreeMap<String, u32> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut unfiltered = 0;
    let mut read_opens = false;
    for rule in rules {
        if rule.inactive.is_some() || rule.list != List::Exit || rule.action != Action::Always {
            continue;
        }
        read_opens |= may_match_read_opens(rule);
        let classes = rule_classes(rule);
        let mut selected = false;
        for c in &rule.conds {
            if let Cond::Path { field: PathField::Path | PathField::Dir, negate: false, path } = c {
                selected = true;
                let entry = by_path.entry(path.clone()).or_insert_with(|| {
                    order.push(path.clone());
                    0
                });
                *entry |= classes;
            }
        }
        if !selected {
            // Setid rules that require some id to be 0 are served by the kernel's
            // "id became 0" filter; any other setid rule needs every setid call.
            let needs = if requires_root_id(rule) { classes & !class::SETID } else { classes };
            unfiltered |= needs;
        }
    }
    // Paths in `never` rules or negated conditions still need ids so the matcher can name
    // them, but select no classes.
    for rule in rules {
        for c in &rule.conds {
            if let Cond::Path { field: PathField::Path | PathField::Dir, path, .. } = c {
                if !by_path.contains_key(path) {
                    by_path.insert(path.clone(), 0);
                    order.push(path.clone());
                }
            }
        }
    }
    let excluded = excluded_types(rules);
    let mut plan = FilterPlan::default();
    (plan.unfiltered, plan.read_opens, plan.excluded_types) = (unfiltered, read_opens, excluded);
    for written in &order {
        plan.add(FilterPlan::resolve(written, by_path[written]));
    }
    plan
}

/// A plan linked to the rules it serves: where each path condition finds its target, and
/// the candidate-rule index (see `rules::index`).
#[derive(Clone, Debug, Default)]
pub struct Compiled {
    pub plan: FilterPlan,
    /// For rule r and condition c: the index of the condition's path in the plan's
    /// targets. Matching looks targets up here first ([`Compiled::path_target`]).
    cond_targets: Vec<Vec<Option<u32>>>,
    index: Option<RuleIndex>,
}

impl Compiled {
    /// The plan of `rules`, linked to them.
    pub fn new(rules: &[Rule]) -> Compiled {
        Compiled::linked(plan(rules), rules)
    }

    /// `plan` (made from these rules, or read back from a capture) linked to `rules`.
    pub fn linked(plan: FilterPlan, rules: &[Rule]) -> Compiled {
        let cond_targets = rules
            .iter()
            .map(|r| {
                r.conds
                    .iter()
                    .map(|c| match c {
                        Cond::Path { path, .. } => plan.by_written(path).map(|t| t.id - 1),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        let index = RuleIndex::new(rules, &plan);
        Compiled { plan, cond_targets, index }
    }

    /// The same without its candidate index (tests compare both ways of matching).
    #[cfg(test)]
    pub fn unindexed(&self) -> Compiled {
        Compiled { index: None, ..self.clone() }
    }

    /// The candidate-rule index of the rules this plan was linked to.
    pub fn index(&self) -> Option<&RuleIndex> {
        self.index.as_ref()
    }

    /// The target of `path`, written in condition `cond` of rule `rule`: found by position
    /// when these are the rules this plan was made from (checked), by name otherwise.
    pub fn path_target(&self, rule: usize, cond: usize, path: &str) -> Option<&Target> {
        let linked = self.cond_targets.get(rule).and_then(|r| r.get(cond).copied().flatten());
        match linked.and_then(|i| self.plan.targets.get(i as usize)) {
            Some(t) if t.written == path => Some(t),
            _ => self.plan.by_written(path),
        }
    }

    /// Re-read the targets' identities on this host; the index follows. Whether anything
    /// changed.
    pub fn refresh(&mut self) -> bool {
        let changed = self.plan.refresh();
        if changed {
            if let Some(index) = self.index.as_mut() {
                index.retarget(&self.plan);
            }
        }
        changed
    }

    /// Add a target (replay: a recorded watch these rules do not name); its id. The links
    /// stay: a rule's target is the first written as it, and the new one comes last.
    pub fn add(&mut self, target: Target) -> u32 {
        self.plan.add(target)
    }
}

/// Whether the rule only matches events after which some credential id is 0.
fn requires_root_id(rule: &Rule) -> bool {
    rule.conds.iter().any(|c| {
        matches!(
            c,
            Cond::Num {
                field: NumField::Uid
                    | NumField::Euid
                    | NumField::Suid
                    | NumField::Fsuid
                    | NumField::Gid
                    | NumField::Egid
                    | NumField::Sgid
                    | NumField::Fsgid,
                op: Op::Eq,
                value: 0,
            }
        )
    })
}

/// Whether an `exclude` rule of `rules` drops audit records of type `rtype`.
pub fn excludes(rules: &[Rule], rtype: u16) -> bool {
    rules.iter().any(|r| {
        r.list == List::Exclude
            && r.inactive.is_none()
            && r.conds.iter().all(|c| matches!(c, Cond::Num { field: NumField::MsgType, op, value } if op.compare(rtype as u64, *value)))
    })
}

/// The audit record types (1000-2999, where the kernel and user space put them) that an
/// `exclude` rule of `rules` drops.
pub fn excluded_types(rules: &[Rule]) -> Vec<u16> {
    if !rules.iter().any(|r| r.list == List::Exclude) {
        return Vec::new();
    }
    (1000..3000).filter(|t| excludes(rules, *t)).collect()
}
