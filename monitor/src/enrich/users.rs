//! User and group names for ids: live, this host's /etc/passwd and /etc/group (re-read
//! when they change); in a replay, what the recording says (a capture's tables, or the
//! names an audit log gives its ids), never this host's files.

use crate::hash::FastMap;
use std::collections::HashMap;
use std::time::SystemTime;

/// (name, id) pairs of a passwd- or group-format file (`name:x:id:...`); empty if unreadable.
pub fn read_id_table(path: &str) -> Vec<(String, u32)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split(':');
            let name = it.next()?;
            let id = it.nth(1)?.parse().ok()?;
            Some((name.to_string(), id))
        })
        .collect()
}

const PASSWD: &str = "/etc/passwd";
const GROUP: &str = "/etc/group";

pub struct Users {
    names: FastMap<u32, String>,
    groups: FastMap<u32, String>,
    /// Live: the files' modification times when last read; `None`: a fixed table.
    mtimes: Option<[Option<SystemTime>; 2]>,
    /// Changes with the names (see [`crate::enrich::next_version`]).
    version: u64,
}

impl Default for Users {
    fn default() -> Self {
        Users {
            names: FastMap::default(),
            groups: FastMap::default(),
            mtimes: None,
            version: crate::enrich::next_version(),
        }
    }
}

fn mtime(path: &str) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn table(path: &str) -> FastMap<u32, String> {
    read_id_table(path).into_iter().map(|(name, id)| (id, name)).collect()
}

impl Users {
    /// This host's names, kept up to date by [`Users::refresh`].
    pub fn new() -> Users {
        let mut u = Users::default();
        u.reload();
        u
    }

    fn reload(&mut self) {
        self.mtimes = Some([mtime(PASSWD), mtime(GROUP)]);
        self.names = table(PASSWD);
        self.groups = table(GROUP);
        self.version = crate::enrich::next_version();
    }

    /// Re-read the files if they changed since the last read (live); whether they did.
    pub fn refresh(&mut self) -> bool {
        let Some(then) = self.mtimes else { return false };
        if [mtime(PASSWD), mtime(GROUP)] != then {
            self.reload();
            return true;
        }
        false
    }

    /// The user table (a capture records it).
    pub fn snapshot(&self) -> &FastMap<u32, String> {
        &self.names
    }

    /// The group table (a capture records it).
    pub fn groups_snapshot(&self) -> &FastMap<u32, String> {
        &self.groups
    }

    /// A fixed user table (replay of a capture).
    pub fn from_map(names: HashMap<u32, String>) -> Users {
        Users { names: names.into_iter().collect(), ..Users::default() }
    }

    /// The recording's group table (replay of a capture).
    pub fn set_groups(&mut self, groups: HashMap<u32, String>) {
        self.groups = groups.into_iter().collect();
        self.version = crate::enrich::next_version();
    }

    /// Names a recording gives for ids (an audit log's enriched fields): added, or
    /// replacing what was known (the logging host renamed a user).
    pub fn learn(&mut self, users: &[(u32, String)], groups: &[(u32, String)]) {
        let mut changed = false;
        for (table, pairs) in [(&mut self.names, users), (&mut self.groups, groups)] {
            for (id, name) in pairs {
                if table.get(id) != Some(name) {
                    table.insert(*id, name.clone());
                    changed = true;
                }
            }
        }
        if changed {
            self.version = crate::enrich::next_version();
        }
    }

    /// The same only while the names are (see [`crate::enrich::next_version`]).
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn name(&self, uid: u32) -> Option<&str> {
        self.names.get(&uid).map(String::as_str)
    }

    pub fn group(&self, gid: u32) -> Option<&str> {
        self.groups.get(&gid).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learned_names_replace_and_version_only_on_change() {
        let mut u = Users::default();
        let v0 = u.version();
        u.learn(&[(1001, "alice".into())], &[(1002, "staff".into())]);
        let v1 = u.version();
        assert!(v1 != v0);
        assert_eq!((u.name(1001), u.group(1002)), (Some("alice"), Some("staff")));
        u.learn(&[(1001, "alice".into())], &[]);
        assert_eq!(u.version(), v1, "nothing new: same version");
        u.learn(&[(1001, "alice2".into())], &[]);
        assert!(u.version() != v1);
        assert_eq!(u.name(1001), Some("alice2"));
        assert!(!u.refresh(), "a learned table is not re-read from this host");
    }
}
