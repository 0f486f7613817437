//! uid → user name, from /etc/passwd, re-read when the file changes.

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

pub struct Users {
    names: FastMap<u32, String>,
    mtime: Option<SystemTime>,
    /// Changes with the names (see [`crate::enrich::next_version`]).
    version: u64,
}

impl Default for Users {
    fn default() -> Self {
        Users { names: FastMap::default(), mtime: None, version: crate::enrich::next_version() }
    }
}

impl Users {
    pub fn new() -> Users {
        let mut u = Users::default();
        u.reload();
        u
    }

    fn reload(&mut self) {
        let path = "/etc/passwd";
        self.mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        self.names = read_id_table(path).into_iter().map(|(name, id)| (id, name)).collect();
        self.version = crate::enrich::next_version();
    }

    /// Re-read /etc/passwd if it changed since the last read; returns whether it did.
    pub fn refresh(&mut self) -> bool {
        let now = std::fs::metadata("/etc/passwd").and_then(|m| m.modified()).ok();
        if now != self.mtime {
            self.reload();
            return true;
        }
        false
    }

    /// The table (a capture records it).
    pub fn snapshot(&self) -> &FastMap<u32, String> {
        &self.names
    }

    /// A fixed table (replay).
    pub fn from_map(names: HashMap<u32, String>) -> Users {
        Users { names: names.into_iter().collect(), ..Users::default() }
    }

    /// The same only while the names are (see [`crate::enrich::next_version`]).
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn name(&self, uid: u32) -> Option<&str> {
        self.names.get(&uid).map(String::as_str)
    }
}
