//! One `-F` field or `-C` comparison of an auditctl rule, parsed into a condition.
//!
//! Values are read as auditctl reads them: numbers with strtoul's base detection, ids by
//! number or by name, errno names for `exit=`, and the monitor's own fields (`parent_exe=`,
//! `kind=`). A field the monitor can parse but not evaluate is [`FieldOut::Inactive`].

use super::model::*;

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
        SystemIds { users: read_id_table("/etc/passwd"), groups: read_id_table("/etc/group") }
    }
}

impl IdResolver for SystemIds {
    fn user(&self, name: &str) -> Option<u32> {
        self.users.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }
    fn group(&self, name: &str) -> Option<u32> {
        self.groups.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }
}

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

/// Fields auditctl accepts that the monitor's sources cannot evaluate (LSM labels, device
/// numbers, personality, filesystem type): rules using them load inactive.
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

pub(super) enum FieldOut {
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
            let first = s.find(['=', '!', '<', '>', '&']).unwrap_or(pos);
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

pub(super) fn parse_field(s: &str, ids: &dyn IdResolver) -> Result<FieldOut, String> {
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
        "a0" | "a1" | "a2" | "a3" => {
            num(NumField::Arg(name.as_bytes()[1] - b'0'), parse_number(value))
        }
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
            Ok(FieldOut::Cond(Cond::Path { field, negate, path: normalise(value) }))
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
        "msgtype" => {
            num(NumField::MsgType, crate::vocab::records::parse_msgtype(value).map(u64::from))
        }
        n if UNEVALUATED_FIELDS.contains(&n) => {
            Ok(FieldOut::Inactive(format!("field {n} is not evaluated by the monitor")))
        }
        n => Err(format!("unknown field {n:?}")),
    }
}

/// `-C a op b`: id comparisons are evaluated; others are valid but inactive (`Err(None)`).
pub(super) fn parse_compare(s: &str) -> Result<Cond, Option<String>> {
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
        (Some(x), Some(y)) => Ok(Cond::Compare { a: x, b: y, negate: op == Op::Ne }),
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
