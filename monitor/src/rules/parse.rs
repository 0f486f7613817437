//! Parser for auditctl rule files: one rule per line, `#` comment lines, whitespace-separated
//! options exactly as `auditctl -R` reads them.
//!
//! Every problem is a [`Diagnostic`] with file, line and column. Errors make the whole load
//! fail; rules the monitor can parse but not evaluate load as inactive with a warning.

pub use super::fields::{normalise, IdResolver, SystemIds};
use super::fields::{parse_compare, parse_field, FieldOut};
use super::model::*;
use crate::vocab as syscalls;
use std::sync::Arc;

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
                out.push(Tok { text: &line[s..i], col: s as u32 + 1 });
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(Tok { text: &line[s..], col: s as u32 + 1 });
    }
    out
}

const CONTROL_WITH_ARG: &[&str] = &["-b", "-f", "-e", "-r", "--backlog_wait_time", "-t", "-R"];
const CONTROL_NO_ARG: &[&str] =
    &["-i", "-c", "--loginuid-immutable", "--reset-lost", "-l", "-s", "-q", "-v", "-m"];

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
        report.errors.push(Diagnostic { source: source.clone(), col, message: msg });
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
        let needs_arg =
            matches!(opt, "-w" | "-W" | "-p" | "-k" | "-a" | "-A" | "-d" | "-S" | "-F" | "-C")
                || CONTROL_WITH_ARG.contains(&opt);
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
        match (opt, arg) {
            ("-w" | "-W", Some(a)) => {
                if !a.text.starts_with('/') {
                    err(report, a.col, format!("watch path must be absolute: {}", a.text));
                }
                watch = Some((a.text.to_string(), a.col, opt == "-W"));
            }
            ("-p", Some(a)) => match perm::parse(a.text) {
                Some(bits) => perms = Some((bits, a.col)),
                None => err(
                    report,
                    a.col,
                    format!("permission {:?} is not a combination of r, w, x, a", a.text),
                ),
            },
            ("-k", Some(a)) => {
                if a.text.len() > 256 {
                    err(report, a.col, "key is longer than 256 characters".into());
                }
                keys.push(a.text.to_string());
            }
            ("-a" | "-A" | "-d", Some(a)) => match parse_list_action(a.text) {
                Some((l, act)) => {
                    let placement =
                        if opt == "-A" { Placement::Prepend } else { Placement::Append };
                    list_action = Some((l, act, placement, opt == "-d"));
                }
                None => err(
                    report,
                    a.col,
                    format!("{:?} is not list,action (e.g. always,exit)", a.text),
                ),
            },
            ("-S", Some(a)) => {
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
            ("-F", Some(a)) => match parse_field(a.text, ids) {
                Ok(FieldOut::Cond(c)) => conds.push(c),
                Ok(FieldOut::Key(k)) => keys.push(k),
                Ok(FieldOut::Kind(k)) => kind = k,
                Ok(FieldOut::Arch64) => {}
                Ok(FieldOut::Inactive(reason)) => inactive.push(reason),
                Err(msg) => err(report, a.col, msg),
            },
            ("-C", Some(a)) => match parse_compare(a.text) {
                Ok(c) => conds.push(c),
                Err(Some(msg)) => err(report, a.col, msg),
                Err(None) => inactive.push(format!("field comparison {} is not evaluated", a.text)),
            },
            ("-D", _) => delete_all = true,
            (o, _) if CONTROL_WITH_ARG.contains(&o) || CONTROL_NO_ARG.contains(&o) => {
                control = true
            }
            (o, _) => {
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
    // What every rule of the line has, whatever its form.
    let rule_of = |origin, list, action, syscalls, conds| Rule {
        source: source.clone(),
        text: text.trim().into(),
        origin,
        list,
        action,
        syscalls,
        conds,
        keys,
        inactive: None,
        audit_only: false,
        kind,
    };
    let rule = if let Some((path, col, remove)) = watch {
        if list_action.is_some() || !syscalls_seen.is_empty() || all_syscalls {
            err(report, col, "a watch (-w) cannot be combined with -a or -S".into());
            return None;
        }
        let perms = perms.map(|(p, _)| p).unwrap_or(perm::ALL);
        let path = normalise(&path);
        let conds = vec![
            Cond::Path { field: PathField::Dir, negate: false, path: path.clone() },
            Cond::Perm(perms),
        ];
        let rule = rule_of(
            Origin::Watch { path, perms },
            List::Exit,
            Action::Always,
            Syscalls::All,
            conds,
        );
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
            err(
                report,
                first_col,
                "kind=event applies to always rules (a never rule prints nothing)".into(),
            );
            return None;
        }
        // Reasons that hold for the eBPF source only: audit records carry these events.
        let mut ebpf_only: Vec<String> = Vec::new();
        let msgtype_conds = conds
            .iter()
            .filter(|c| matches!(c, Cond::Num { field: NumField::MsgType, .. }))
            .count();
        match list {
            List::Exit | List::User if msgtype_conds == 0 || list == List::User => {}
            List::Exclude if msgtype_conds == conds.len() => {}
            List::Exclude => inactive.push("exclude rules are evaluated on msgtype only".into()),
            List::Exit => inactive.push("msgtype applies to the user and exclude lists".into()),
            _ => inactive.push(format!("the {list:?} list is not evaluated").to_lowercase()),
        }
        if matches!(list, List::User | List::Exclude) {
            ebpf_only.push(
                format!("the {list:?} list has records only from audit sources").to_lowercase(),
            );
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
        let mut rule = rule_of(Origin::Syscall, list, action, syscalls, conds);
        if delete {
            return Some(Line::Delete(Box::new(rule)));
        }
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
        let source = Source { file: file.clone(), line: n as u32 + 1 };
        if let Some(parsed) = parse_line(line, &source, ids, &mut report) {
            lines.push((parsed, source));
        }
    }
    (lines, report)
}
