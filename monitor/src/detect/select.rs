//! The responder's selection (`monitor replay --since/--until/--key/--min-severity/--pid/
//! --container/--action`): which of the verdicts a replay prints. Every event still goes
//! through every stage (the process table must see a process's parents, aggregation its
//! neighbours); only what is printed is narrowed.

use crate::enrich::container::ContainerInfo;

/// Every `event.action` an alert can have (for `--action`).
pub const ACTIONS: &[&str] = &[
    "exec",
    "connect",
    "write",
    "open",
    "unlink",
    "rmdir",
    "rename",
    "link",
    "symlink",
    "mkdir",
    "mknod",
    "truncate",
    "chmod",
    "chown",
    "setxattr",
    "removexattr",
    "setuid",
    "setgid",
    "signal",
    "ptrace",
    "process-vm",
    "syscall",
    "user-message",
    "docker-request",
];

/// Severity words in order; their position is the rank `--min-severity` compares.
pub const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

/// What to print. Empty lists select everything.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Events at or after this time (ns since the epoch).
    pub since_ns: Option<i128>,
    /// Events before this time.
    pub until_ns: Option<i128>,
    /// Our rule keys, or the audit keys an audit record carried.
    pub keys: Vec<String>,
    /// The least severity rank (see [`SEVERITIES`]); a key without metadata is `info`.
    pub min_severity: Option<u8>,
    /// These processes and their descendants.
    pub pids: Vec<u32>,
    /// Container ids (or prefixes of them) or names.
    pub containers: Vec<String>,
    /// `event.action` values.
    pub actions: Vec<String>,
}

/// A verdict as the selection sees it.
pub struct Candidate<'a> {
    pub wall_ns: i128,
    pub keys: &'a [String],
    pub audit_keys: &'a [String],
    /// The severity rank (see [`SEVERITIES`]).
    pub severity: u8,
    pub action: &'a str,
    /// The process, then its ancestors.
    pub lineage: &'a [u32],
    pub container: Option<&'a ContainerInfo>,
}

impl Selection {
    /// Whether anything is narrowed at all.
    pub fn is_everything(&self) -> bool {
        self.since_ns.is_none()
            && self.until_ns.is_none()
            && self.keys.is_empty()
            && self.min_severity.is_none()
            && self.pids.is_empty()
            && self.containers.is_empty()
            && self.actions.is_empty()
    }

    pub fn needs_container(&self) -> bool {
        !self.containers.is_empty()
    }

    pub fn needs_lineage(&self) -> bool {
        !self.pids.is_empty()
    }

    /// Whether an event at `wall_ns` is in the time range.
    pub fn in_time(&self, wall_ns: i128) -> bool {
        self.since_ns.is_none_or(|t| wall_ns >= t) && self.until_ns.is_none_or(|t| wall_ns < t)
    }

    pub fn admits(&self, c: &Candidate) -> bool {
        self.in_time(c.wall_ns)
            && (self.keys.is_empty()
                || c.keys.iter().chain(c.audit_keys).any(|k| self.keys.contains(k)))
            && self.min_severity.is_none_or(|m| c.severity >= m)
            && (self.actions.is_empty() || self.actions.iter().any(|a| a == c.action))
            && (self.pids.is_empty() || c.lineage.iter().any(|p| self.pids.contains(p)))
            && (self.containers.is_empty()
                || c.container.is_some_and(|info| {
                    self.containers.iter().any(|want| {
                        info.id.starts_with(want.as_str())
                            || info.meta.as_ref().and_then(|m| m.name.as_deref())
                                == Some(want.trim_start_matches('/'))
                    })
                }))
    }
}

/// The severity rank of a word (`high`) or number (`3`).
pub fn parse_severity(text: &str) -> Result<u8, String> {
    let t = text.trim().to_ascii_lowercase();
    if let Some(i) = SEVERITIES.iter().position(|s| *s == t) {
        return Ok(i as u8);
    }
    match t.parse::<u8>() {
        Ok(n) if (n as usize) < SEVERITIES.len() => Ok(n),
        _ => Err(format!("{text:?} is not a severity: use {}", SEVERITIES.join(", "))),
    }
}

/// A time as a user writes it: RFC 3339 (`2024-12-06T15:00:00Z`, an offset, fractions) or
/// an audit timestamp (`1733500000.123`, seconds since the epoch). In ns since the epoch.
pub fn parse_time(text: &str) -> Result<i128, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
        if frac.len() > 9 || frac.contains('.') || secs.is_empty() {
            return Err(format!("{text:?}: an audit timestamp is SECONDS[.FRACTION]"));
        }
        let secs: i128 = secs.parse().map_err(|_| format!("{text:?}: seconds out of range"))?;
        let frac_ns: i128 =
            if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().unwrap_or(0) };
        return Ok(secs * 1_000_000_000 + frac_ns);
    }
    let parsed = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            format!(
                "{text:?} is not a time ({e}): use RFC 3339 with a zone, e.g. \
                     2024-12-06T15:00:00Z, or an audit timestamp, e.g. 1733497200.123"
            )
        })?;
    Ok(parsed.unix_timestamp_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_either_spelling() {
        assert_eq!(parse_time("1700000000.1").unwrap(), 1_700_000_000_100_000_000);
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000_000_000_000);
        assert_eq!(parse_time("2023-11-14T22:13:20.100Z").unwrap(), 1_700_000_000_100_000_000);
        assert_eq!(parse_time("2023-11-14T23:13:20+01:00").unwrap(), 1_700_000_000_000_000_000);
        for bad in ["yesterday", "2023-11-14 22:13:20", "2023-11-14T22:13:20", "1.2.3", ""] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_severity("High"), Ok(3));
        assert_eq!(parse_severity("0"), Ok(0));
        assert!(parse_severity("severe").is_err());
    }

    #[test]
    fn every_action_an_alert_can_name_can_be_selected() {
        use crate::event::Action::*;
        // SetId is written setuid or setgid, an open that can modify its file write.
        for name in ["setuid", "setgid", "write", "docker-request"] {
            assert!(ACTIONS.contains(&name), "{name}");
        }
        for a in [Exec, Connect, Open, Unlink, Rmdir, Rename, Link, Symlink, Mkdir, Mknod]
            .into_iter()
            .chain([Truncate, Chmod, Chown, SetXattr, RemoveXattr, Signal, Ptrace, ProcessVm])
            .chain([Other, UserMessage])
        {
            assert!(ACTIONS.contains(&a.as_str()), "{}", a.as_str());
        }
    }

    #[test]
    fn every_criterion_narrows() {
        let keys = ["docker-config".to_string()];
        let audit = ["k-audit".to_string()];
        let c = Candidate {
            wall_ns: 100,
            keys: &keys,
            audit_keys: &audit,
            severity: 2,
            action: "write",
            lineage: &[30, 20, 1],
            container: None,
        };
        let all = Selection::default();
        assert!(all.is_everything() && all.admits(&c));
        let s = |f: fn(&mut Selection)| {
            let mut s = Selection::default();
            f(&mut s);
            s.admits(&c)
        };
        assert!(s(|s| s.since_ns = Some(100)) && !s(|s| s.since_ns = Some(101)));
        assert!(s(|s| s.until_ns = Some(101)) && !s(|s| s.until_ns = Some(100)));
        assert!(s(|s| s.keys = vec!["k-audit".into()]) && !s(|s| s.keys = vec!["x".into()]));
        assert!(s(|s| s.min_severity = Some(2)) && !s(|s| s.min_severity = Some(3)));
        assert!(s(|s| s.pids = vec![20]) && !s(|s| s.pids = vec![21]));
        assert!(s(|s| s.actions = vec!["write".into()]) && !s(|s| s.actions = vec!["exec".into()]));
        assert!(!s(|s| s.containers = vec!["abc".into()]), "no container: not selected");
        let info = ContainerInfo {
            id: "abcdef".into(),
            runtime: Some("docker"),
            meta: Some(crate::enrich::container::ContainerMeta {
                name: Some("web".into()),
                ..Default::default()
            }),
        };
        let in_container = Candidate { container: Some(&info), ..c };
        for want in ["abc", "web", "/web"] {
            let sel = Selection { containers: vec![want.into()], ..Default::default() };
            assert!(sel.admits(&in_container), "{want}");
        }
        let sel = Selection { containers: vec!["bcd".into()], ..Default::default() };
        assert!(!sel.admits(&in_container));
    }
}
