//! The parsed form of auditctl rules.

use std::fmt;
use std::sync::Arc;

/// Where a rule (or a problem) comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub file: Arc<str>,
    pub line: u32,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A problem found while reading rules, printed as `file:line:col: message`.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub source: Source,
    pub col: u32,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.col, self.message)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    Exit,
    Task,
    User,
    Exclude,
    Filesystem,
    IoUring,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    /// `&`: all bits of the value set.
    BitMask,
    /// `&=`: bit test (any of the value's bits set).
    BitTest,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Ge => ">=",
            Op::BitMask => "&",
            Op::BitTest => "&=",
        }
    }

    pub fn compare(self, lhs: u64, rhs: u64) -> bool {
        match self {
            Op::Eq => lhs == rhs,
            Op::Ne => lhs != rhs,
            Op::Lt => lhs < rhs,
            Op::Gt => lhs > rhs,
            Op::Le => lhs <= rhs,
            Op::Ge => lhs >= rhs,
            Op::BitMask => lhs & rhs == rhs,
            Op::BitTest => lhs & rhs != 0,
        }
    }
}

/// Numeric fields the monitor evaluates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumField {
    Uid,
    Euid,
    Suid,
    Fsuid,
    Gid,
    Egid,
    Sgid,
    Fsgid,
    Auid,
    Pid,
    Ppid,
    SessionId,
    Success,
    Exit,
    Arg(u8),
    Inode,
    /// Record type (`user` and `exclude` lists).
    MsgType,
}

/// Access classes of `-p` / `perm=`.
pub mod perm {
    pub const READ: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const EXEC: u8 = 4;
    pub const ATTR: u8 = 8;
    pub const ALL: u8 = READ | WRITE | EXEC | ATTR;

    pub fn parse(s: &str) -> Option<u8> {
        let mut bits = 0;
        for c in s.chars() {
            bits |= match c {
                'r' => READ,
                'w' => WRITE,
                'x' => EXEC,
                'a' => ATTR,
                _ => return None,
            };
        }
        (bits != 0).then_some(bits)
    }

    pub fn render(bits: u8) -> String {
        [(READ, 'r'), (WRITE, 'w'), (EXEC, 'x'), (ATTR, 'a')]
            .iter()
            .filter(|(b, _)| bits & b != 0)
            .map(|(_, c)| *c)
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cond {
    Num {
        field: NumField,
        op: Op,
        value: u64,
    },
    /// `path=` (exact object), `dir=` (object at or below), `exe=` (process executable).
    Path {
        field: PathField,
        negate: bool,
        path: String,
    },
    Perm(u8),
    /// `filetype=`: S_IF* value of the object.
    FileType {
        negate: bool,
        mode: u32,
    },
    /// `-C a=b` / `-C a!=b` between two credential ids.
    Compare {
        a: IdField,
        b: IdField,
        negate: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdField {
    Uid,
    Euid,
    Suid,
    Fsuid,
    Auid,
    Gid,
    Egid,
    Sgid,
    Fsgid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathField {
    Path,
    Dir,
    Exe,
    /// `parent_exe=` (an extension: auditd has no such field): the executable of the acting
    /// process's parent, from the process table.
    ParentExe,
}

/// What a matching `always` rule prints (`kind=`, an extension): an alert, or a line of the
/// audit trail (`event.kind: "event"`, printed with `--audit-trail`) for what is worth a
/// record but not an analyst's attention, such as the container runtime's own work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Kind {
    #[default]
    Alert,
    Event,
}

/// A set of syscall numbers, or all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Syscalls {
    All,
    Set(Vec<u32>),
}

impl Syscalls {
    pub fn contains(&self, nr: u32) -> bool {
        match self {
            Syscalls::All => true,
            Syscalls::Set(set) => set.contains(&nr),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Origin {
    /// `-w PATH -p PERMS`
    Watch { path: String, perms: u8 },
    /// `-a list,action ...`
    Syscall,
}

/// One rule, in load order. Watches are stored as the exit rules auditctl turns them into.
#[derive(Clone, Debug)]
pub struct Rule {
    pub source: Source,
    /// The rule as written (its line, trimmed).
    pub text: Arc<str>,
    pub origin: Origin,
    pub list: List,
    pub action: Action,
    pub syscalls: Syscalls,
    pub conds: Vec<Cond>,
    pub keys: Vec<String>,
    /// Why the monitor cannot evaluate this rule (it is loaded but never matches).
    pub inactive: Option<String>,
    /// `inactive` holds for the eBPF source only: audit records carry what the rule selects
    /// (user messages, syscalls no hook observes). See `RuleSet::for_audit`.
    pub audit_only: bool,
    /// What a match prints (`-F kind=`).
    pub kind: Kind,
}

impl Rule {
    /// The rule in auditctl-like words, for `monitor rules list`.
    pub fn describe(&self) -> String {
        let lower = |d: String| d.to_lowercase();
        let mut out = match &self.origin {
            Origin::Watch { path, perms } => format!("-w {path} -p {}", perm::render(*perms)),
            Origin::Syscall => {
                let calls = match &self.syscalls {
                    Syscalls::All => "-S all".to_string(),
                    Syscalls::Set(set) => {
                        let names: Vec<&str> =
                            set.iter().map(|n| crate::vocab::name(*n).unwrap_or("?")).collect();
                        format!("-S {}", names.join(","))
                    }
                };
                format!(
                    "-a {},{} {calls}",
                    lower(format!("{:?}", self.action)),
                    lower(format!("{:?}", self.list))
                )
            }
        };
        if let Origin::Syscall = self.origin {
            for c in &self.conds {
                let text = match c {
                    Cond::Num { field: NumField::Arg(i), op, value } => {
                        format!("a{i}{}{value:#x}", op.as_str())
                    }
                    Cond::Num { field, op, value } => {
                        format!("{}{}{value}", lower(format!("{field:?}")), op.as_str())
                    }
                    Cond::Path { field, negate, path } => {
                        let name = match field {
                            PathField::Path => "path",
                            PathField::Dir => "dir",
                            PathField::Exe => "exe",
                            PathField::ParentExe => "parent_exe",
                        };
                        format!("{name}{}{path}", if *negate { "!=" } else { "=" })
                    }
                    Cond::Perm(bits) => format!("perm={}", perm::render(*bits)),
                    Cond::FileType { negate, mode } => {
                        format!("filetype{}{mode:o}", if *negate { "!=" } else { "=" })
                    }
                    Cond::Compare { a, b, negate } => {
                        let op = if *negate { "!=" } else { "=" };
                        out.push_str(&format!(
                            " -C {}{op}{}",
                            lower(format!("{a:?}")),
                            lower(format!("{b:?}"))
                        ));
                        continue;
                    }
                };
                out.push_str(" -F ");
                out.push_str(&text);
            }
        }
        if self.kind == Kind::Event {
            out.push_str(" -F kind=event");
        }
        for k in &self.keys {
            out.push_str(" -k ");
            out.push_str(k);
        }
        out
    }

    /// The rule's key for alerts: its first `-k`, or "" when it has none.
    pub fn key(&self) -> &str {
        self.keys.first().map(String::as_str).unwrap_or("")
    }
}
