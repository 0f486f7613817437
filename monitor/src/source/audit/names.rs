//! What an audit event says beyond the event itself, as the logging host said it: the
//! names its ids had there (the enriched format's `UID="alice"`, `GID="docker"`, ...) and
//! the audit rule keys that selected it (`key=`). A log read on another machine keeps
//! these: this host's /etc/passwd may not know the user, or know another one by that id.

use super::group::Group;
use super::record::{decode, Record};
use crate::vocab::records as types;

/// (id, name) pairs the records give for user ids and for group ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    pub users: Vec<(u32, String)>,
    pub groups: Vec<(u32, String)>,
}

/// Raw field → interpreted field, for user and group ids, as auditd writes them.
const USER_FIELDS: &[(&str, &str)] = &[
    ("uid", "UID"),
    ("euid", "EUID"),
    ("suid", "SUID"),
    ("fsuid", "FSUID"),
    ("auid", "AUID"),
    ("ouid", "OUID"),
];
const GROUP_FIELDS: &[(&str, &str)] =
    &[("gid", "GID"), ("egid", "EGID"), ("sgid", "SGID"), ("fsgid", "FSGID"), ("ogid", "OGID")];

/// The names the records of `g` give their ids (SYSCALL, PATH and user messages).
pub fn names(g: &Group) -> Names {
    let mut out = Names::default();
    for r in g.records.iter().filter(|r| {
        matches!(r.rtype, types::SYSCALL | types::PATH) || types::is_user_message(r.rtype)
    }) {
        collect(r, USER_FIELDS, &mut out.users);
        collect(r, GROUP_FIELDS, &mut out.groups);
    }
    out
}

fn collect(r: &Record, fields: &[(&str, &str)], out: &mut Vec<(u32, String)>) {
    for (raw, interpreted) in fields {
        let (Some(id), Some(name)) = (r.num(raw), r.interpreted(interpreted)) else { continue };
        let Ok(id) = u32::try_from(id) else { continue };
        // auditd's words for an id it could not name.
        if id == u32::MAX || name.is_empty() || name == "unset" || name == "?" {
            continue;
        }
        if name.starts_with("unknown(") {
            continue;
        }
        if !out.iter().any(|(i, _)| *i == id) {
            out.push((id, name.to_string()));
        }
    }
}

/// The keys of the audit rules that selected a syscall event: `key="k"`, or several
/// joined by 0x01 and hex-encoded; `key=(null)` is none.
pub fn audit_keys(syscall: &Record) -> Option<Box<[String]>> {
    let bytes = syscall.get("key").and_then(decode)?;
    let keys: Vec<String> = bytes
        .split(|b| *b == 0x01)
        .filter(|k| !k.is_empty())
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    (!keys.is_empty()).then(|| keys.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_enriched_fields_and_unnamed_ids_are_left_out() {
        let g = Group::of_lines(&[
            "type=SYSCALL msg=audit(1.000:1): arch=c000003e syscall=2 pid=5 auid=4294967295 uid=1001 gid=1002 euid=0 suid=1001 fsuid=0 egid=1002 sgid=1002 fsgid=1002 key=\"k\"\x1dARCH=x86_64 AUID=\"unset\" UID=\"alice\" GID=\"staff\" EUID=\"root\" SUID=\"alice\" FSUID=\"root\" EGID=\"staff\" SGID=\"staff\" FSGID=\"staff\"",
            "type=PATH msg=audit(1.000:1): item=0 name=\"/x\" ouid=1003 ogid=1004\x1dOUID=\"unknown(1003)\" OGID=\"adm\"",
        ]);
        let n = names(&g);
        assert_eq!(n.users, [(1001, "alice".to_string()), (0, "root".to_string())]);
        assert_eq!(n.groups, [(1002, "staff".to_string()), (1004, "adm".to_string())]);
        let raw =
            Group::of_lines(&["type=SYSCALL msg=audit(1.000:2): arch=c000003e syscall=2 uid=0"]);
        assert_eq!(names(&raw), Names::default(), "the raw format names nothing");
    }

    #[test]
    fn keys_quoted_hex_joined_or_null() {
        let r = |k: &str| {
            Record::parse_line(&format!("type=SYSCALL msg=audit(1.000:1): syscall=2 key={k}"))
                .unwrap()
        };
        assert_eq!(audit_keys(&r("\"docker\"")).as_deref(), Some(&["docker".to_string()][..]));
        // "a" 0x01 "bc"
        assert_eq!(
            audit_keys(&r("61016263")).as_deref(),
            Some(&["a".to_string(), "bc".to_string()][..])
        );
        assert_eq!(audit_keys(&r("(null)")), None);
    }
}
