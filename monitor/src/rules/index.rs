//! Candidate rules for an event: rules out, before any condition is tested, the exit rules
//! that cannot match it — those whose syscall set lacks the call, and those whose path
//! condition names an object the event does not touch.
//!
//! The matcher still tests every condition of the remaining rules in load order, so the
//! index changes how fast a verdict comes, never which one. Each lookup below is a
//! necessary condition of the matcher's test for the same field (`matcher::Matcher::cond`).

use super::model::*;
use crate::hash::FastHash;
use crate::plan::FilterPlan;
use std::collections::HashMap;

/// Rule sets larger than this are evaluated without the index (every rule is tried).
pub const MAX_RULES: usize = 1024;
const WORDS: usize = MAX_RULES / 64;
/// Syscall numbers below this (every number a rule may name) have their own candidate
/// set; events with higher numbers (audit records) share `high_syscalls`.
const SYSCALLS: usize = crate::vocab::MAX_NR as usize;

/// A set of rule positions.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RuleSet([u64; WORDS]);

impl RuleSet {
    const EMPTY: RuleSet = RuleSet([0; WORDS]);

    fn insert(&mut self, rule: usize) {
        self.0[rule / 64] |= 1 << (rule % 64);
    }

    fn union(&mut self, other: &RuleSet) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a |= b;
        }
    }

    fn intersect(&mut self, other: &RuleSet) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a &= b;
        }
    }

    /// Rule positions in ascending (load) order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &bits)| {
            let mut rest = bits;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                Some(w * 64 + bit)
            })
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AnchorKind {
    /// `path=` / a file watch: the object is the path (by spelling or by inode).
    Path,
    /// `dir=` / a directory watch: the object is at or below the directory.
    Dir,
    /// `exe=`: the acting process runs this executable.
    Exe,
}

/// The positive path condition a rule is filed under.
#[derive(Clone, Debug)]
struct Anchor {
    rule: usize,
    kind: AnchorKind,
    written: String,
}

type Spellings = HashMap<Box<[u8]>, RuleSet, FastHash>;

/// A set of byte lengths; lengths from 255 up share one member.
#[derive(Clone, Copy, Debug, Default)]
struct Lengths([u64; 4]);

impl Lengths {
    fn insert(&mut self, len: usize) {
        let len = len.min(255);
        self.0[len / 64] |= 1 << (len % 64);
    }

    fn contains(&self, len: usize) -> bool {
        let len = len.min(255);
        self.0[len / 64] & (1 << (len % 64)) != 0
    }

    /// The lengths of the prefixes of `object` that end before a '/' and may be a key: only
    /// the few lengths in the set are looked at (not every '/' of the path); past 255
    /// bytes, where lengths are not told apart, every '/' is.
    fn slash_prefixes<'o>(&'o self, object: &'o [u8]) -> impl Iterator<Item = usize> + 'o {
        let long = if object.len() > 255 && self.contains(255) { 255..object.len() } else { 0..0 };
        self.below(object.len()).chain(long).filter(|&i| object[i] == b'/')
    }

    /// The lengths in the set below `end` (at most 255), in increasing order.
    fn below(&self, end: usize) -> impl Iterator<Item = usize> + '_ {
        let end = end.min(255);
        (0..4).flat_map(move |w| {
            let lo = w * 64;
            let keep = if end >= lo + 64 {
                !0
            } else if end <= lo {
                0
            } else {
                (1u64 << (end - lo)) - 1
            };
            let mut bits = self.0[w] & keep;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let b = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    lo + b
                })
            })
        })
    }
}

#[derive(Clone, Debug)]
pub struct RuleIndex {
    rule_count: usize,
    by_syscall: Vec<RuleSet>,
    /// Rules that may match a call numbered `SYSCALLS` or above.
    high_syscalls: RuleSet,
    /// Rules without a positive path condition: candidates whatever the event touches.
    unanchored: RuleSet,
    anchors: Vec<Anchor>,
    // Built from `anchors` and the targets' current spellings and identities.
    exact: Spellings,
    dir: Spellings,
    /// The lengths of `dir`'s keys: most prefixes of a path have a length no key has, and
    /// are skipped without hashing.
    dir_lengths: Lengths,
    exe: Spellings,
    identity: HashMap<(u32, u64), RuleSet, FastHash>,
}

/// What an event offers the index: the objects it names and how the kernel matched them.
pub struct Probe<'e> {
    pub syscall: u32,
    pub objects: [Option<&'e [u8]>; 2],
    pub identity: Option<(u32, u64)>,
    /// Canonical spellings of the watches the kernel matched by inode.
    pub watched: [Option<&'e str>; 2],
    pub exe: Option<&'e [u8]>,
}

impl RuleIndex {
    /// Index `rules` against the targets of `plan`. None when there are too many rules.
    pub fn new(rules: &[Rule], plan: &FilterPlan) -> Option<RuleIndex> {
        if rules.len() > MAX_RULES {
            return None;
        }
        let mut by_syscall = vec![RuleSet::EMPTY; SYSCALLS];
        let mut high_syscalls = RuleSet::EMPTY;
        let mut unanchored = RuleSet::EMPTY;
        let mut anchors = Vec::new();
        for (ri, rule) in rules.iter().enumerate() {
            if rule.list != List::Exit || rule.inactive.is_some() {
                continue;
            }
            match &rule.syscalls {
                Syscalls::All => {
                    high_syscalls.insert(ri);
                    by_syscall.iter_mut().for_each(|s| s.insert(ri));
                }
                Syscalls::Set(set) => {
                    for &nr in set {
                        match by_syscall.get_mut(nr as usize) {
                            Some(s) => s.insert(ri),
                            None => high_syscalls.insert(ri),
                        }
                    }
                }
            }
            let anchor = rule.conds.iter().find_map(|c| match c {
                Cond::Path { field, negate: false, path } => Some(Anchor {
                    rule: ri,
                    kind: match field {
                        PathField::Path => AnchorKind::Path,
                        PathField::Dir => AnchorKind::Dir,
                        PathField::Exe => AnchorKind::Exe,
                        // Not in the probe: a condition like any other.
                        PathField::ParentExe => return None,
                    },
                    written: path.clone(),
                }),
                _ => None,
            });
            match anchor {
                Some(a) => anchors.push(a),
                None => unanchored.insert(ri),
            }
        }
        let mut index = RuleIndex {
            rule_count: rules.len(),
            by_syscall,
            high_syscalls,
            unanchored,
            anchors,
            exact: Default::default(),
            dir: Default::default(),
            dir_lengths: Default::default(),
            exe: Default::default(),
            identity: Default::default(),
        };
        index.retarget(plan);
        Some(index)
    }

    /// The number of rules indexed (an index serves only the rules it was built from).
    pub fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// Re-file the anchors under the targets' current spellings and identities (after the
    /// plan re-read them: a symlink changed, a file was recreated).
    pub fn retarget(&mut self, plan: &FilterPlan) {
        let (mut exact, mut dir, mut exe) =
            (Spellings::default(), Spellings::default(), Spellings::default());
        let mut identity: HashMap<(u32, u64), RuleSet, FastHash> = Default::default();
        for a in &self.anchors {
            // The condition's target, as the matcher finds it (`FilterPlan::path_target`).
            let target = plan.by_written(&a.written);
            let map = match a.kind {
                AnchorKind::Path => &mut exact,
                AnchorKind::Dir => &mut dir,
                AnchorKind::Exe => &mut exe,
            };
            for spelling in
                std::iter::once(a.written.as_str()).chain(target.map(|t| t.canonical.as_str()))
            {
                map.entry(spelling.as_bytes().into()).or_insert(RuleSet::EMPTY).insert(a.rule);
            }
            if let (AnchorKind::Path, Some(id)) = (a.kind, target.and_then(|t| t.identity)) {
                identity.entry(id).or_insert(RuleSet::EMPTY).insert(a.rule);
            }
        }
        self.dir_lengths = Lengths::default();
        dir.keys().for_each(|k| self.dir_lengths.insert(k.len()));
        (self.exact, self.dir, self.exe, self.identity) = (exact, dir, exe, identity);
    }

    /// The rules that may match: a superset of the matching ones, in load order.
    pub fn candidates(&self, probe: &Probe) -> RuleSet {
        let mut out = self.unanchored;
        for object in probe.objects.iter().flatten() {
            if let Some(rules) = self.exact.get(*object) {
                out.union(rules);
            }
            self.union_dirs_of(object, &mut out);
        }
        if let Some(rules) = probe.identity.and_then(|id| self.identity.get(&id)) {
            out.union(rules);
        }
        for watch in probe.watched.iter().flatten() {
            self.union_dirs_of(watch.as_bytes(), &mut out);
        }
        if let Some(rules) = probe.exe.and_then(|e| self.exe.get(e)) {
            out.union(rules);
        }
        out.intersect(self.by_syscall.get(probe.syscall as usize).unwrap_or(&self.high_syscalls));
        out
    }

    /// Add the rules of every indexed directory that contains `object` (itself, each
    /// prefix ending before a '/', and "/" for an absolute path).
    fn union_dirs_of(&self, object: &[u8], out: &mut RuleSet) {
        if self.dir.is_empty() {
            return;
        }
        let mut lookup = |spelling: &[u8]| {
            if !self.dir_lengths.contains(spelling.len()) {
                return;
            }
            if let Some(rules) = self.dir.get(spelling) {
                out.union(rules);
            }
        };
        lookup(object);
        if object.first() == Some(&b'/') {
            lookup(b"/");
        }
        for len in self.dir_lengths.slash_prefixes(object) {
            lookup(&object[..len]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slash_prefixes_are_the_slashes_at_indexed_lengths() {
        let naive = |lengths: &Lengths, object: &[u8]| -> Vec<usize> {
            (0..object.len()).filter(|&i| object[i] == b'/' && lengths.contains(i)).collect()
        };
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..2000 {
            let mut lengths = Lengths::default();
            for _ in 0..(next() % 12) {
                // Lengths around the word edges and past 255 (which collapse into 255).
                lengths.insert(match next() % 4 {
                    0 => (next() % 300) as usize,
                    1 => [0, 1, 63, 64, 65, 127, 128, 191, 192, 254, 255, 256]
                        [(next() % 12) as usize],
                    _ => (next() % 40) as usize,
                });
            }
            let len = if round % 10 == 0 { 240 + next() % 80 } else { next() % 48 } as usize;
            let object: Vec<u8> =
                (0..len).map(|_| if next() % 3 == 0 { b'/' } else { b'a' }).collect();
            assert_eq!(
                lengths.slash_prefixes(&object).collect::<Vec<_>>(),
                naive(&lengths, &object),
                "{lengths:?} {len}"
            );
        }
    }

    #[test]
    fn rule_sets_iterate_in_load_order() {
        let mut s = RuleSet::EMPTY;
        for i in [700, 3, 64, 0, 63, 1023] {
            s.insert(i);
        }
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 3, 63, 64, 700, 1023]);
        let mut t = RuleSet::EMPTY;
        t.insert(64);
        t.insert(5);
        s.intersect(&t);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![64]);
    }
}
