//! Rule evaluation with auditd's semantics: exit rules in load order, the first rule whose
//! syscall set and every condition match decides (`always` alerts, `never` suppresses).

use super::compile::Compiled;
use super::index::{Probe, RuleIndex};
use super::model::*;
use crate::event::{Action as Act, Actor, Event};
use crate::plan::Target;

/// Access kinds of an event, in `perm` bits. A unix socket connect counts as a write.
pub fn event_perm(ev: &Event) -> u8 {
    const O_ACCMODE: u32 = 3;
    const O_CREAT: u32 = 0o100;
    const O_TRUNC: u32 = 0o1000;
    match ev.action {
        Act::Exec => perm::EXEC,
        Act::Open => {
            let mut p = match ev.open_flags & O_ACCMODE {
                0 => perm::READ,
                1 => perm::WRITE,
                _ => perm::READ | perm::WRITE,
            };
            if ev.open_flags & (O_CREAT | O_TRUNC) != 0 {
                p |= perm::WRITE;
            }
            p
        }
        Act::Unlink
        | Act::Rmdir
        | Act::Rename
        | Act::Link
        | Act::Symlink
        | Act::Mkdir
        | Act::Mknod
        | Act::Truncate
        | Act::Connect => perm::WRITE,
        Act::Chmod | Act::Chown | Act::SetXattr | Act::RemoveXattr => perm::ATTR,
        Act::SetId
        | Act::Fork
        | Act::Exit
        | Act::Payload
        | Act::Signal
        | Act::Ptrace
        | Act::ProcessVm
        | Act::Other
        | Act::UserMessage => 0,
    }
}

/// What an event is about, for `path=`/`dir=` conditions. None by spelling when the task's
/// root is not the host's: its paths name the container's files, and only the kernel's
/// inode match (`watch`, `ino`) says whether a host object was touched.
fn objects(ev: &Event) -> impl Iterator<Item = &[u8]> {
    let (a, b): (Option<&Vec<u8>>, Option<&Vec<u8>>) = match ev.action {
        _ if ev.flag(monitor_common::flag::FOREIGN_ROOT) => (None, None),
        // Canonical socket path first, then the caller's spelling.
        Act::Connect => (ev.path2.as_ref(), ev.path.as_ref()),
        // A symlink's second field is the link's text, not an object.
        Act::Symlink => (ev.path.as_ref(), None),
        _ => (ev.path.as_ref(), ev.path2.as_ref()),
    };
    a.into_iter().chain(b).map(|v| v.as_slice())
}

fn under(object: &[u8], dir: &str) -> bool {
    let dir = dir.as_bytes();
    if dir == b"/" {
        return object.starts_with(b"/");
    }
    object.starts_with(dir) && (object.len() == dir.len() || object[dir.len()] == b'/')
}

pub struct Matcher<'a> {
    pub rules: &'a [Rule],
    pub compiled: &'a Compiled,
}

impl<'a> Matcher<'a> {
    /// The first exit rule that matches, if it is an `always` rule.
    ///
    /// A user-space message (audit sources) is decided by the `user` list instead: it
    /// alerts when the first matching user rule is `always` (auditd would log every message
    /// no `never` rule drops; an alert needs a rule that asks for it).
    pub fn evaluate(&self, ev: &Event, actor: Actor) -> Option<&'a Rule> {
        self.evaluate_at(ev, actor).map(|ri| &self.rules[ri])
    }

    /// [`Matcher::evaluate`], saying where the rule is in `rules`.
    pub fn evaluate_at(&self, ev: &Event, actor: Actor) -> Option<usize> {
        let list = if ev.action == Act::UserMessage { List::User } else { List::Exit };
        if list == List::Exit && ev.syscall < 0 {
            return None; // scheduler lifecycle events only feed the process table
        }
        let perm_bits = event_perm(ev);
        let decide = |ri: usize, rule: &'a Rule| {
            rule.conds
                .iter()
                .enumerate()
                .all(|(ci, c)| self.cond(c, (ri, ci), ev, actor, perm_bits))
        };
        if let Some(index) = self.index(list) {
            // Same order, same conditions: the index only skips rules that cannot match.
            let candidates = index.candidates(&self.probe(ev, actor.exe));
            let ri = candidates.iter().find(|&ri| decide(ri, &self.rules[ri]))?;
            return (self.rules[ri].action == Action::Always).then_some(ri);
        }
        for (ri, rule) in self.rules.iter().enumerate() {
            if rule.list != list || rule.inactive.is_some() {
                continue;
            }
            if list == List::Exit && !rule.syscalls.contains(ev.syscall as u32) {
                continue;
            }
            if decide(ri, rule) {
                return (rule.action == Action::Always).then_some(ri);
            }
        }
        None
    }

    /// The plan's candidate index, when it serves these rules' exit list.
    fn index(&self, list: List) -> Option<&'a RuleIndex> {
        let index = self.compiled.index()?;
        (list == List::Exit && index.rule_count() == self.rules.len()).then_some(index)
    }

    /// What the index looks the event up by: the same fields `cond` tests.
    fn probe<'e>(&self, ev: &'e Event, exe: Option<&'e [u8]>) -> Probe<'e>
    where
        'a: 'e,
    {
        let mut objects = objects(ev);
        let watched = [ev.watch, ev.watch2]
            .map(|id| self.compiled.plan.target(id).map(|t| t.canonical.as_str()));
        Probe {
            syscall: ev.syscall as u32,
            objects: [objects.next(), objects.next()],
            identity: (ev.ino != 0).then_some((ev.dev, ev.ino)),
            watched,
            exe,
        }
    }

    /// Whether an `exclude` rule drops records of type `rtype` before they make events
    /// (audit sources). auditd drops on any matching exclude rule, whatever its action.
    pub fn excluded(&self, rtype: u16) -> bool {
        super::compile::excludes(self.rules, rtype)
    }

    /// Whether condition `c` (condition `at.1` of rule `at.0`) holds for the event.
    fn cond(&self, c: &Cond, at: (usize, usize), ev: &Event, actor: Actor, perm_bits: u8) -> bool {
        match c {
            Cond::Num { field, op, value } => match num_field(ev, *field) {
                Some(v) => op.compare(v, *value),
                None => false,
            },
            Cond::Perm(p) => perm_bits & p != 0,
            Cond::FileType { negate, mode } => {
                ev.mode != 0 && ((ev.mode & 0o170000 == *mode) != *negate)
            }
            Cond::Compare { a, b, negate } => (id_field(ev, *a) == id_field(ev, *b)) != *negate,
            Cond::Path { field, negate, path } => {
                let target = self.compiled.path_target(at.0, at.1, path);
                let hit = match field {
                    PathField::Exe => actor.exe.is_some_and(|e| same_path(e, path, target)),
                    PathField::ParentExe => {
                        actor.parent_exe.is_some_and(|e| same_path(e, path, target))
                    }
                    PathField::Path => self.is_path(ev, path, target),
                    PathField::Dir => self.is_under(ev, path, target),
                };
                hit != *negate
            }
        }
    }

    fn is_path(&self, ev: &Event, path: &str, target: Option<&Target>) -> bool {
        if objects(ev).any(|o| same_path(o, path, target)) {
            return true;
        }
        // Reached under another name (hard link, bind mount): same inode, and the same
        // object (not a later inode that reuses the number).
        target.is_some_and(|t| t.is_object(ev.dev, ev.ino, ev.generation))
    }

    fn is_under(&self, ev: &Event, dir: &str, target: Option<&Target>) -> bool {
        if objects(ev).any(|o| spellings(dir, target).any(|d| under(o, d))) {
            return true;
        }
        // The kernel matched a watched ancestor by inode: the object is below that watch,
        // hence below every watch that contains it.
        let Some(dir_target) = target else {
            return false;
        };
        [ev.watch, ev.watch2]
            .iter()
            .filter_map(|id| self.compiled.plan.target(*id))
            .any(|t| under(t.canonical.as_bytes(), &dir_target.canonical))
    }
}

/// A path as written in the rule and, when it differs, as the plan resolved it (symlinks).
fn spellings<'p>(path: &'p str, target: Option<&'p Target>) -> impl Iterator<Item = &'p str> {
    std::iter::once(path).chain(target.map(|t| t.canonical.as_str()).filter(|c| *c != path))
}

fn same_path(object: &[u8], path: &str, target: Option<&Target>) -> bool {
    spellings(path, target).any(|p| object == p.as_bytes())
}

fn id_field(ev: &Event, f: IdField) -> u32 {
    match f {
        IdField::Uid => ev.ids.uid,
        IdField::Euid => ev.ids.euid,
        IdField::Suid => ev.ids.suid,
        IdField::Fsuid => ev.ids.fsuid,
        IdField::Auid => ev.auid,
        IdField::Gid => ev.ids.gid,
        IdField::Egid => ev.ids.egid,
        IdField::Sgid => ev.ids.sgid,
        IdField::Fsgid => ev.ids.fsgid,
    }
}

fn num_field(ev: &Event, f: NumField) -> Option<u64> {
    Some(match f {
        NumField::Uid => ev.ids.uid as u64,
        NumField::Euid => ev.ids.euid as u64,
        NumField::Suid => ev.ids.suid as u64,
        NumField::Fsuid => ev.ids.fsuid as u64,
        NumField::Gid => ev.ids.gid as u64,
        NumField::Egid => ev.ids.egid as u64,
        NumField::Sgid => ev.ids.sgid as u64,
        NumField::Fsgid => ev.ids.fsgid as u64,
        NumField::Auid => ev.auid as u64,
        NumField::Pid => ev.pid as u64,
        NumField::Ppid => ev.ppid as u64,
        NumField::SessionId => ev.sessionid as u64,
        NumField::Success => ev.success() as u64,
        NumField::Exit => ev.ret as u64,
        NumField::Arg(i) => *ev.args.get(i as usize)?,
        NumField::MsgType if ev.action == Act::UserMessage => ev.args[0],
        NumField::MsgType => return None,
        NumField::Inode => {
            if ev.ino == 0 {
                return None;
            }
            ev.ino
        }
    })
}
