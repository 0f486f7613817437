//! Parser for auditctl rule files: one rule per line, `#` comment lines, whitespace-separated
//! options exactly as `auditctl -R` reads them.
//!
//! Every problem is a [`Diagnostic`] with file, line and column. Errors make the whole load
//! fail; rules the monitor can parse but not evaluate load as inactive with a warning.

use super::model::*;
use crate::vocab as syscalls;
use std::sync::Arc;

/// Resolves user and group names in `uid=`/`gid=`-style fields.
pub trait IdResolver {
    fn user(&self, name: &str) -> Option<u32>;
    fn group(&self, name: &str) -> Option<u32>;
}

/// Reads /etc/passwd and /etc/group once.
pub struct SystemIds {
    users: Vec<(String, u32)>,
    groups: Vec<(String, u32)>,
}

impl SystemIds {
    pub fn load() -> SystemIds {
        use crate::enrich::users::read_id_table;
        SystemIds {
            users: read_id_table("/etc/passwd"),
            groups: read_id_table("/etc/group"),
        }
    }
}

impl IdResolver for SystemIds {
    fn user(&self, name: &str) -> Option<u32> {
        self.users
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
    }
    fn group(&self, name: &str) -> Option<u32> {
        self.groups
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
    }
}

/// What one line of a rules file is.
#[derive(Debug)]
pub enum Line {
    Rule(Box<Rule>, Placement),
    /// `-D`: delete every rule loaded so far.
    DeleteAll,
    /// `-d ...` or `-W ...`: delete the earlier rule equal to this one.
    Delete(Box<Rule>),
    /// `-b`, `-e`, `-f`, `-r`, ...: kernel audit settings, which the monitor has no use for.
    Control,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Append,
    Prepend,
}

/// Problems found on one line.
#[derive(Default)]
pub struct LineReport {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

struct Tok<'a> {
    text: &'a str,
    col: u32,
}

fn tokenize(line: &str) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            if let Some(s) = start.take() {
                out.push(Tok {
                    text: &line[s..i],
                    col: s as u32 + 1,
                });
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(Tok {
            text: &line[s..],
            col: s as u32 + 1,
        });
    }
    out
}

const UNEVALUATED_FIELDS: &[&str] = &[
    "subj_user",
    "subj_role",
    "subj_type",
    "subj_sen",
    "subj_clr",
    "obj_user",
    "obj_role",
    "obj_type",
    "obj_lev_low",
    "obj_lev_high",
    "obj_uid",
    "obj_gid",
    "devmajor",
    "devminor",
    "pers",
    "fstype",
    "saddr_fam",
    "exit_code",
];

const CONTROL_WITH_ARG: &[&str] = &["-b", "-f", "-e", "-r", "--backlog_wait_time", "-t", "-R"];
const CONTROL_NO_ARG: &[&str] = &[
    "-i",
    "-c",
    "--loginuid-immutable",
    "--reset-lost",
    "-l",
    "-s",
    "-q",
    "-v",
    "-m",
];

/// Parse one line. Returns `None` for blank and comment lines.
pub fn parse_line(
    text: &str,
    source: &Source,
    ids: &dyn IdResolver,
    report: &mut LineReport,
) -> Option<Line> {
    let trimmed = text.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    let toks = tokenize(text);
    let err = |report: &mut LineReport, col: u32, msg: String| {
        report.errors.push(Diagnostic {
            source: source.clone(),
            col,
            message: msg,
        });
    };
    let mut watch: Option<(String, u32, bool)> = None; // path, col, is -W
    let mut perms: Option<(u8, u32)> = None;
    let mut list_action: Option<(List, Action, Placement, bool)> = None; // bool: -d
    let mut syscalls_seen: Vec<u32> = Vec::new();
    let mut all_syscalls = false;
    let mut unknown_syscalls: Vec<String> = Vec::new();
    let mut conds: Vec<Cond> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    let mut kind = Kind::Alert;
    let mut inactive: Vec<String> = Vec::new();
    let mut control = false;
    let mut delete_all = false;

    let mut i = 0;
    while i < toks.len() {
        let tok = &toks[i];
        let opt = tok.text;
        let needs_arg = matches!(
            opt,
            "-w" | "-W" | "-p" | "-k" | "-a" | "-A" | "-d" | "-S" | "-F" | "-C"
        ) || CONTROL_WITH_ARG.contains(&opt);
        let arg = if needs_arg {
            i += 1;
            match toks.get(i) {
                Some(t) => Some(t),
                None => {
                    err(report, tok.col, format!("option {opt} needs an argument"));
                    return None;
                }
            }
        } else {
            None
        };
        match opt {
            "-w" | "-W" => {
                let a = arg.unwrap();
                if !a.text.starts_with('/') {
                    err(
                        report,
                        a.col,
                        format!("watch path must be absolute: {}", a.text),
                    );
                }
                watch = Some((a.text.to_string(), a.col, opt == "-W"));
            }
            "-p" => {
                let a = arg.unwrap();
                match perm::parse(a.text) {
                    Some(bits) => perms = Some((bits, a.col)),
                    None => err(
                        report,
                        a.col,
                        format!("permission {:?} is not a combination of r, w, x, a", a.text),
                    ),
                }
            }
            "-k" => {
                let a = arg.unwrap();
                if a.text.len() > 256 {
                    err(report, a.col, "key is longer than 256 characters".into());
                }
                keys.push(a.text.to_string());
            }
            "-a" | "-A" | "-d" => {
                let a = arg.unwrap();
                match parse_list_action(a.text) {
                    Some((l, act)) => {
                        let placement = if opt == "-A" {
                            Placement::Prepend
                        } else {
                            Placement::Append
                        };
                        list_action = Some((l, act, placement, opt == "-d"));
                    }
                    None => err(
                        report,
                        a.col,
                        format!("{:?} is not list,action (e.g. always,exit)", a.text),
                    ),
                }
            }
            "-S" => {
                let a = arg.unwrap();
                for name in a.text.split(',') {
                    if name == "all" {
                        all_syscalls = true;
                    } else if let Ok(n) = name.parse::<u32>() {
                        if n >= syscalls::MAX_NR {
                            err(report, a.col, format!("syscall number {n} is out of range"));
                        } else {
                            syscalls_seen.push(n);
                        }
                    } else if let Some(n) = syscalls::number(name) {
                        syscalls_seen.push(n);
                    } else if KNOWN_ELSEWHERE.contains(&name) {
                        unknown_syscalls.push(name.to_string());
                    } else {
                        err(report, a.col, format!("unknown syscall {name:?}"));
                    }
                }
            }
            "-F" => {
                let a = arg.unwrap();
                match parse_field(a.text, ids) {
                    Ok(FieldOut::Cond(c)) => conds.push(c),
                    Ok(FieldOut::Key(k)) => keys.push(k),
                    Ok(FieldOut::Kind(k)) => kind = k,
                    Ok(FieldOut::Arch64) => {}
                    Ok(FieldOut::Inactive(reason)) => inactive.push(reason),
                    Err(msg) => err(report, a.col, msg),
                }
            }
            "-C" => {
                let a = arg.unwrap();
                match parse_compare(a.text) {
                    Ok(c) => conds.push(c),
                    Err(Some(msg)) => err(report, a.col, msg),
                    Err(None) => {
                        inactive.push(format!("field comparison {} is not evaluated", a.text))
                    }
                }
            }
            "-D" => delete_all = true,
            o if CONTROL_WITH_ARG.contains(&o) || CONTROL_NO_ARG.contains(&o) => control = true,
            o => {
                err(report, tok.col, format!("unknown option {o:?}"));
                return None;
            }
        }
        i += 1;
    }
    if !report.errors.is_empty() {
        return None;
    }
    if delete_all {
        return Some(Line::DeleteAll);
    }
    let first_col = toks.first().map(|t| t.col).unwrap_or(1);
    let rule = if let Some((path, col, remove)) = watch {
        if list_action.is_some() || !syscalls_seen.is_empty() || all_syscalls {
            err(
                report,
                col,
                "a watch (-w) cannot be combined with -a or -S".into(),
            );
            return None;
        }
        let perms = perms.map(|(p, _)| p).unwrap_or(perm::ALL);
        let path = normalise(&path);
        let rule = Rule {
            source: source.clone(),
            origin: Origin::Watch {
                path: path.clone(),
                perms,
            },
            list: List::Exit,
            action: Action::Always,
            syscalls: Syscalls::All,
            conds: vec![
                Cond::Path {
                    field: PathField::Dir,
                    negate: false,
                    path,
                },
                Cond::Perm(perms),
            ],
            keys,
            inactive: None,
            audit_only: false,
            kind,
        };
        if remove {
            return Some(Line::Delete(Box::new(rule)));
        }
        rule
    } else if let Some((list, action, placement, delete)) = list_action {
        if let Some((_, col)) = perms {
            err(
                report,
                col,
                "-p only applies to watches (-w); use -F perm= in syscall rules".into(),
            );
            return None;
        }
        let syscalls = if all_syscalls || (syscalls_seen.is_empty() && unknown_syscalls.is_empty())
        {
            Syscalls::All
        } else {
            syscalls_seen.sort_unstable();
            syscalls_seen.dedup();
            Syscalls::Set(syscalls_seen)
        };
        if kind == Kind::Event && action == Action::Never {
            err(report, first_col, "kind=event applies to always rules (a never rule prints nothing)".into());
            return None;
        }
        // Reasons that hold for the eBPF source only: audit records carry these events.
        let mut ebpf_only: Vec<String> = Vec::new();
        let msgtype_conds = conds.iter().filter(|c| matches!(c, Cond::Num { field: NumField::MsgType, .. })).count();
        match list {
            List::Exit | List::User if msgtype_conds == 0 || list == List::User => {}
            List::Exclude if msgtype_conds == conds.len() => {}
            List::Exclude => inactive.push("exclude rules are evaluated on msgtype only".into()),
            List::Exit => inactive.push("msgtype applies to the user and exclude lists".into()),
            _ => inactive.push(format!("the {list:?} list is not evaluated").to_lowercase()),
        }
        if matches!(list, List::User | List::Exclude) {
            ebpf_only.push(format!("the {list:?} list has records only from audit sources").to_lowercase());
        }
        if inactive.is_empty() && list == List::Exit {
            if let Syscalls::Set(set) = &syscalls {
                if set.is_empty() {
                    inactive.push(format!(
                        "no syscall of this rule exists on x86-64 ({})",
                        unknown_syscalls.join(",")
                    ));
                } else if set.iter().all(|n| syscalls::class_of(*n) == 0) {
                    let names: Vec<&str> = set.iter().filter_map(|n| syscalls::name(*n)).collect();
                    ebpf_only.push(format!("no eBPF hook observes {}", names.join(",")));
                } else {
                    let unobserved: Vec<&str> = set
                        .iter()
                        .filter(|n| syscalls::class_of(**n) == 0)
                        .filter_map(|n| syscalls::name(*n))
                        .collect();
                    if !unobserved.is_empty() {
                        report.warnings.push(Diagnostic {
                            source: source.clone(),
                            col: first_col,
                            message: format!(
                                "syscalls not observed by any hook are ignored: {}",
                                unobserved.join(",")
                            ),
                        });
                    }
                }
            }
        }
        let rule = Rule {
            source: source.clone(),
            origin: Origin::Syscall,
            list,
            action,
            syscalls,
            conds,
            keys,
            inactive: None,
            audit_only: false,
            kind,
        };
        if delete {
            return Some(Line::Delete(Box::new(rule)));
        }
        let mut rule = rule;
        // Inactive everywhere, or only with the eBPF source (audit records carry it).
        let verdict = if !inactive.is_empty() {
            Some((inactive.join("; "), false))
        } else if !ebpf_only.is_empty() {
            Some((ebpf_only.join("; "), true))
        } else {
            None
        };
        if let Some((reason, audit_only)) = verdict {
            let message = if audit_only {
                format!("rule inactive with the eBPF source ({reason}); evaluated with --source audit and auditd log replay")
            } else {
                format!("rule loaded but inactive: {reason}")
            };
            report.warnings.push(Diagnostic { source: source.clone(), col: first_col, message });
            rule.inactive = Some(reason);
            rule.audit_only = audit_only;
        }
        return Some(Line::Rule(Box::new(rule), placement));
    } else if control {
        return Some(Line::Control);
    } else {
        err(
            report,
            first_col,
            "line is neither a watch (-w), a rule (-a/-A/-d) nor a control option".into(),
        );
        return None;
    };
    Some(Line::Rule(Box::new(rule), Placement::Append))
}

/// Syscalls that exist on other architectures: a rule naming them is valid, not for x86-64.
const KNOWN_ELSEWHERE: &[&str] = &[
    "socketcall",
    "ipc",
    "stime",
    "chown32",
    "fchown32",
    "lchown32",
    "setuid32",
    "setgid32",
    "setreuid32",
    "setregid32",
    "setresuid32",
    "setresgid32",
    "setfsuid32",
    "setfsgid32",
    "truncate64",
    "ftruncate64",
    "fcntl64",
    "stat64",
    "lstat64",
    "fstat64",
    "_llseek",
    "mmap2",
];

/// Collapse repeated slashes and drop a trailing slash (auditctl does the same).
pub fn normalise(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for part in path.split('/').filter(|p| !p.is_empty()) {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

fn parse_list_action(s: &str) -> Option<(List, Action)> {
    let (a, b) = s.split_once(',')?;
    let list = |x: &str| match x {
        "exit" => Some(List::Exit),
        "task" => Some(List::Task),
        "user" => Some(List::User),
        "exclude" => Some(List::Exclude),
        "filesystem" => Some(List::Filesystem),
        "io_uring" => Some(List::IoUring),
        "entry" => Some(List::Exit), // deprecated alias auditctl maps to exit
        _ => None,
    };
    let action = |x: &str| match x {
        "always" => Some(Action::Always),
        "never" => Some(Action::Never),
        _ => None,
    };
    list(a).zip(action(b)).or_else(|| list(b).zip(action(a)))
}

enum FieldOut {
    Cond(Cond),
    Key(String),
    Kind(Kind),
    Arch64,
    Inactive(String),
}

fn split_op(s: &str) -> Option<(&str, Op, &str)> {
    // Longest operators first.
    for (tok, op) in [
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("&=", Op::BitTest),
        ("=", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
        ("&", Op::BitMask),
    ] {
        if let Some(pos) = s.find(tok) {
            // The first operator character in the string decides where the name ends.
            let first = s
                .find(['=', '!', '<', '>', '&'])
                .unwrap_or(pos);
            if first == pos {
                return Some((&s[..pos], op, &s[pos + tok.len()..]));
            }
        }
    }
    None
}

/// A number as auditctl reads it (strtoul base 0): `0x` hex, a leading `0` octal
/// (`-F a2&=0100` is O_CREAT), else decimal; `-N` wraps.
fn parse_number(v: &str) -> Option<u64> {
    if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).ok();
    }
    if v.len() > 1 && v.starts_with('0') {
        return u64::from_str_radix(&v[1..], 8).ok();
    }
    if let Some(neg) = v.strip_prefix('-') {
        let n: i64 = neg.parse().ok()?;
        return Some((-n) as u64);
    }
    v.parse().ok()
}

/// Ids compare as u32: `-1`, `unset` and 4294967295 are the same value.
fn parse_id(v: &str, name: impl Fn(&str) -> Option<u32>) -> Option<u64> {
    if v == "unset" {
        return Some(u32::MAX as u64);
    }
    if let Some(n) = parse_number(v) {
        return Some(n as u32 as u64);
    }
    name(v).map(|id| id as u64)
}

fn parse_field(s: &str, ids: &dyn IdResolver) -> Result<FieldOut, String> {
    let (name, op, value) = split_op(s).ok_or_else(|| format!("field {s:?} has no operator"))?;
    if value.is_empty() {
        return Err(format!("field {name} has no value"));
    }
    let eq_only = |what: &str| -> Result<bool, String> {
        match op {
            Op::Eq => Ok(false),
            Op::Ne => Ok(true),
            _ => Err(format!("{what} only supports = and !=")),
        }
    };
    let num = |field: NumField, v: Option<u64>| -> Result<FieldOut, String> {
        let value = v.ok_or_else(|| format!("{name}: invalid value {value:?}"))?;
        Ok(FieldOut::Cond(Cond::Num { field, op, value }))
    };
    let user = |v: &str| parse_id(v, |n| ids.user(n));
    let group = |v: &str| parse_id(v, |n| ids.group(n));
    match name {
        "uid" => num(NumField::Uid, user(value)),
        "euid" => num(NumField::Euid, user(value)),
        "suid" => num(NumField::Suid, user(value)),
        "fsuid" => num(NumField::Fsuid, user(value)),
        "auid" | "loginuid" => num(NumField::Auid, user(value)),
        "gid" => num(NumField::Gid, group(value)),
        "egid" => num(NumField::Egid, group(value)),
        "sgid" => num(NumField::Sgid, group(value)),
        "fsgid" => num(NumField::Fsgid, group(value)),
        "pid" => num(NumField::Pid, parse_number(value)),
        "ppid" => num(NumField::Ppid, parse_number(value)),
        "sessionid" => num(NumField::SessionId, parse_id(value, |_| None)),
        "inode" => {
            eq_only("inode")?; // auditctl: "inode only takes = or != operators"
            num(NumField::Inode, parse_number(value))
        }
        "a0" | "a1" | "a2" | "a3" => num(
            NumField::Arg(name.as_bytes()[1] - b'0'),
            parse_number(value),
        ),
        "success" => num(
            NumField::Success,
            match value {
                "1" | "yes" | "true" => Some(1),
                "0" | "no" | "false" => Some(0),
                _ => None,
            },
        ),
        "exit" => num(NumField::Exit, parse_number(value).or_else(|| errno(value))),
        "arch" => {
            eq_only("arch")?;
            match value {
                "b64" | "x86_64" | "x86-64" | "amd64" => Ok(FieldOut::Arch64),
                "b32" | "i386" | "i486" | "i586" | "i686" => Ok(FieldOut::Inactive(
                    "32-bit (compat) syscalls are not observed: the syscall tracepoints skip them"
                        .into(),
                )),
                _ => Err(format!("unknown arch {value:?}")),
            }
        }
        "path" | "dir" | "exe" | "parent_exe" => {
            let negate = eq_only(name)?;
            if !value.starts_with('/') {
                return Err(format!("{name} must be an absolute path"));
            }
            let field = match name {
                "path" => PathField::Path,
                "dir" => PathField::Dir,
                "exe" => PathField::Exe,
                _ => PathField::ParentExe,
            };
            Ok(FieldOut::Cond(Cond::Path {
                field,
                negate,
                path: normalise(value),
            }))
        }
        "perm" => {
            if op != Op::Eq {
                return Err("perm only supports =".into());
            }
            perm::parse(value)
                .map(|p| FieldOut::Cond(Cond::Perm(p)))
                .ok_or_else(|| format!("permission {value:?} is not a combination of r, w, x, a"))
        }
        "filetype" => {
            let negate = eq_only("filetype")?;
            let mode = match value {
                "file" => 0o100000,
                "dir" => 0o040000,
                "socket" => 0o140000,
                "link" | "symlink" => 0o120000,
                "character" => 0o020000,
                "block" => 0o060000,
                "fifo" => 0o010000,
                _ => return Err(format!("unknown filetype {value:?}")),
            };
            Ok(FieldOut::Cond(Cond::FileType { negate, mode }))
        }
        "key" => {
            if op != Op::Eq {
                return Err("key only supports =".into());
            }
            Ok(FieldOut::Key(value.to_string()))
        }
        "kind" => {
            if op != Op::Eq {
                return Err("kind only supports =".into());
            }
            match value {
                "alert" => Ok(FieldOut::Kind(Kind::Alert)),
                "event" => Ok(FieldOut::Kind(Kind::Event)),
                _ => Err(format!("kind is alert or event, not {value:?}")),
            }
        }
        "msgtype" => num(
            NumField::MsgType,
            crate::vocab::records::parse_msgtype(value).map(u64::from),
        ),
        n if UNEVALUATED_FIELDS.contains(&n) => Ok(FieldOut::Inactive(format!(
            "field {n} is not evaluated by the monitor"
        ))),
        n => Err(format!("unknown field {n:?}")),
    }
}

/// `-C a op b`: id comparisons are evaluated; others are valid but inactive (`Err(None)`).
fn parse_compare(s: &str) -> Result<Cond, Option<String>> {
    let (a, op, b) =
        split_op(s).ok_or_else(|| Some(format!("comparison {s:?} has no operator")))?;
    if !matches!(op, Op::Eq | Op::Ne) {
        return Err(Some("field comparisons only support = and !=".into()));
    }
    const KNOWN: &[&str] = &[
        "uid", "euid", "suid", "fsuid", "auid", "loginuid", "gid", "egid", "sgid", "fsgid",
        "obj_uid", "obj_gid",
    ];
    for f in [a, b] {
        if !KNOWN.contains(&f) {
            return Err(Some(format!("unknown field {f:?} in comparison")));
        }
    }
    let field = |f: &str| match f {
        "uid" => Some(IdField::Uid),
        "euid" => Some(IdField::Euid),
        "suid" => Some(IdField::Suid),
        "fsuid" => Some(IdField::Fsuid),
        "auid" | "loginuid" => Some(IdField::Auid),
        "gid" => Some(IdField::Gid),
        "egid" => Some(IdField::Egid),
        "sgid" => Some(IdField::Sgid),
        "fsgid" => Some(IdField::Fsgid),
        _ => None,
    };
    match (field(a), field(b)) {
        (Some(x), Some(y)) => Ok(Cond::Compare {
            a: x,
            b: y,
            negate: op == Op::Ne,
        }),
        _ => Err(None),
    }
}

fn errno(name: &str) -> Option<u64> {
    const ERRNOS: &[(&str, i64)] = &[
        ("EPERM", 1),
        ("ENOENT", 2),
        ("ESRCH", 3),
        ("EINTR", 4),
        ("EIO", 5),
        ("ENXIO", 6),
        ("E2BIG", 7),
        ("ENOEXEC", 8),
        ("EBADF", 9),
        ("ECHILD", 10),
        ("EAGAIN", 11),
        ("ENOMEM", 12),
        ("EACCES", 13),
        ("EFAULT", 14),
        ("EBUSY", 16),
        ("EEXIST", 17),
        ("EXDEV", 18),
        ("ENODEV", 19),
        ("ENOTDIR", 20),
        ("EISDIR", 21),
        ("EINVAL", 22),
        ("ENFILE", 23),
        ("EMFILE", 24),
        ("ETXTBSY", 26),
        ("EFBIG", 27),
        ("ENOSPC", 28),
        ("EROFS", 30),
        ("EMLINK", 31),
        ("ENAMETOOLONG", 36),
        ("ENOSYS", 38),
        ("ENOTEMPTY", 39),
        ("ELOOP", 40),
        ("ECONNREFUSED", 111),
    ];
    let (neg, n) = match name.strip_prefix('-') {
        Some(n) => (true, n),
        None => (false, name),
    };
    let v = ERRNOS.iter().find(|(e, _)| *e == n)?.1;
    Some(if neg { (-v) as u64 } else { v as u64 })
}

pub use super::model::IdField;

/// Parse a whole file's text.
pub fn parse_text(
    text: &str,
    file: &str,
    ids: &dyn IdResolver,
) -> (Vec<(Line, Source)>, LineReport) {
    let file: Arc<str> = Arc::from(file);
    let mut report = LineReport::default();
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let source = Source {
            file: file.clone(),
            line: n as u32 + 1,
        };
        if let Some(parsed) = parse_line(line, &source, ids, &mut report) {
            lines.push((parsed, source));
        }
    }
    (lines, report)
}
