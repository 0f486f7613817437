//! Read-only views of host state the checks share: files under a root (the real `/`, or a
//! fixture tree in unit tests), listening sockets with their processes, account databases,
//! systemd units with their drop-ins.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The host being checked.
pub struct Host {
    root: PathBuf,
    /// Listening sockets, read once for all the checks that need them (reading them walks
    /// every process's descriptors).
    listeners: std::sync::OnceLock<Result<Vec<Listener>, String>>,
    /// Docker's state files, read once for every Docker check (see `docker_state`).
    pub(super) docker: std::sync::OnceLock<super::docker_state::DockerState>,
    /// `auditctl -l`'s watches, read once for every audit item.
    pub(super) audit_watches: std::sync::OnceLock<Result<Vec<String>, String>>,
}

impl Host {
    /// This machine.
    pub fn real() -> Host {
        Host::at(PathBuf::from("/"))
    }

    /// A tree laid out like a root filesystem (tests).
    pub fn at(root: PathBuf) -> Host {
        Host {
            root,
            listeners: std::sync::OnceLock::new(),
            docker: std::sync::OnceLock::new(),
            audit_watches: std::sync::OnceLock::new(),
        }
    }

    /// Whether this is the real host (commands may be run).
    pub fn is_real(&self) -> bool {
        self.root == Path::new("/")
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }

    pub fn read(&self, p: &str) -> std::io::Result<String> {
        std::fs::read_to_string(self.path(p))
    }

    pub fn exists(&self, p: &str) -> bool {
        self.path(p).exists()
    }

    /// Whether something is at `p`, as far as can be told: only "no such file" says no (a
    /// path this process may not look at is present, and reading it then says why not).
    pub fn present(&self, p: &str) -> bool {
        match std::fs::symlink_metadata(self.path(p)) {
            Ok(_) => true,
            Err(e) => e.kind() != std::io::ErrorKind::NotFound,
        }
    }

    /// The containers in Docker's state (see `docker_state`).
    pub fn containers(&self) -> Result<&[super::docker_state::Container], &str> {
        self.docker().containers_of(self)
    }

    /// The images in Docker's image store.
    pub fn images(&self) -> Result<&[super::docker_state::Image], &str> {
        self.docker().images_of(self)
    }

    /// Files of a directory (sorted), empty when it does not exist.
    pub fn dir(&self, p: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.path(p))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Group name → members (from /etc/group, plus users whose primary group it is).
    pub fn groups(&self) -> std::io::Result<HashMap<String, Vec<String>>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        let mut by_gid: HashMap<String, String> = HashMap::new();
        for line in self.read("/etc/group")?.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 {
                continue;
            }
            by_gid.insert(f[2].to_string(), f[0].to_string());
            let members = f[3].split(',').filter(|m| !m.is_empty()).map(str::to_string).collect();
            out.insert(f[0].to_string(), members);
        }
        for u in self.users()? {
            if let Some(g) = by_gid.get(&u.gid) {
                let m = out.entry(g.clone()).or_default();
                if !m.contains(&u.name) {
                    m.push(u.name.clone());
                }
            }
        }
        Ok(out)
    }

    pub fn users(&self) -> std::io::Result<Vec<User>> {
        Ok(self
            .read("/etc/passwd")?
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 7).then(|| User {
                    name: f[0].into(),
                    uid: f[2].into(),
                    gid: f[3].into(),
                    shell: f[6].into(),
                })
            })
            .collect())
    }

    /// User → password field of /etc/shadow.
    pub fn shadow(&self) -> std::io::Result<HashMap<String, String>> {
        Ok(self
            .read("/etc/shadow")?
            .lines()
            .filter_map(|l| {
                let mut f = l.split(':');
                Some((f.next()?.to_string(), f.next()?.to_string()))
            })
            .collect())
    }

    /// `Key=` values of a systemd unit: the unit file (first found in the usual
    /// directories), then its drop-ins in name order; later values win, as in systemd.
    pub fn unit_setting(&self, unit: &str, key: &str) -> Option<UnitValue> {
        let mut found: Option<UnitValue> = None;
        let mut any = false;
        let mut files = Vec::new();
        for dir in [
            "/etc/systemd/system",
            "/run/systemd/system",
            "/usr/lib/systemd/system",
            "/lib/systemd/system",
        ] {
            let f = self.path(&format!("{dir}/{unit}"));
            if f.exists() {
                files.push(f);
                break;
            }
        }
        for dir in [
            "/usr/lib/systemd/system",
            "/lib/systemd/system",
            "/run/systemd/system",
            "/etc/systemd/system",
        ] {
            files.extend(
                self.dir(&format!("{dir}/{unit}.d"))
                    .into_iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "conf")),
            );
        }
        for f in files {
            any = true;
            let Ok(text) = std::fs::read_to_string(&f) else { continue };
            for line in text.lines() {
                if let Some(v) =
                    line.trim().strip_prefix(key).and_then(|r| r.trim_start().strip_prefix('='))
                {
                    found = Some(UnitValue {
                        value: v.trim().to_string(),
                        file: f.display().to_string(),
                    });
                }
            }
        }
        if any && found.is_none() {
            return Some(UnitValue { value: String::new(), file: String::new() });
        }
        found
    }

    /// Whether a unit file exists anywhere systemd looks.
    pub fn unit_exists(&self, unit: &str) -> bool {
        [
            "/etc/systemd/system",
            "/run/systemd/system",
            "/usr/lib/systemd/system",
            "/lib/systemd/system",
        ]
        .iter()
        .any(|d| self.exists(&format!("{d}/{unit}")))
    }

    /// Listening TCP sockets and bound UDP sockets, with the process holding each.
    pub fn listeners(&self) -> Result<&[Listener], &str> {
        match self.listeners.get_or_init(|| self.read_listeners().map_err(|e| e.to_string())) {
            Ok(l) => Ok(l),
            Err(e) => Err(e),
        }
    }

    fn read_listeners(&self) -> std::io::Result<Vec<Listener>> {
        let owners = self.socket_owners();
        let mut out = Vec::new();
        for (file, proto, v6) in [
            ("/proc/net/tcp", "tcp", false),
            ("/proc/net/tcp6", "tcp", true),
            ("/proc/net/udp", "udp", false),
            ("/proc/net/udp6", "udp", true),
        ] {
            let text = match self.read(file) {
                Ok(t) => t,
                Err(e) if file.ends_with('6') && e.kind() == std::io::ErrorKind::NotFound => {
                    continue
                }
                Err(e) => return Err(e),
            };
            for line in text.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 10 {
                    continue;
                }
                // TCP_LISTEN is 0A; an unconnected UDP socket is 07 (TCP_CLOSE).
                let state = f[3];
                if (proto == "tcp" && state != "0A") || (proto == "udp" && state != "07") {
                    continue;
                }
                let Some((addr, port)) = parse_addr(f[1], v6) else { continue };
                let owner = owners.get(f[9]).cloned();
                out.push(Listener { proto, addr, port, owner });
            }
        }
        Ok(out)
    }

    /// socket inode → "name[pid]" for every process whose fds we can read.
    fn socket_owners(&self) -> HashMap<String, String> {
        let mut out = HashMap::new();
        for proc_dir in self.dir("/proc") {
            let Some(pid) = proc_dir
                .file_name()
                .and_then(|n| n.to_str())
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let comm = std::fs::read_to_string(proc_dir.join("comm")).unwrap_or_default();
            let Ok(fds) = std::fs::read_dir(proc_dir.join("fd")) else { continue };
            for fd in fds.filter_map(|e| e.ok()) {
                if let Ok(target) = std::fs::read_link(fd.path()) {
                    if let Some(inode) = target
                        .to_str()
                        .and_then(|t| t.strip_prefix("socket:["))
                        .and_then(|t| t.strip_suffix(']'))
                    {
                        out.insert(inode.to_string(), format!("{}[{pid}]", comm.trim()));
                    }
                }
            }
        }
        out
    }
}

pub struct User {
    pub name: String,
    pub uid: String,
    pub gid: String,
    pub shell: String,
}

impl User {
    pub fn has_login_shell(&self) -> bool {
        !(self.shell.is_empty()
            || self.shell.ends_with("/nologin")
            || self.shell.ends_with("/false")
            || self.shell == "/bin/sync")
    }
}

/// A unit setting and the file that set it (empty when the unit exists but sets nothing).
pub struct UnitValue {
    pub value: String,
    pub file: String,
}

#[derive(Clone, Debug)]
pub struct Listener {
    pub proto: &'static str,
    pub addr: std::net::IpAddr,
    pub port: u16,
    /// `name[pid]` of the process holding the socket, when readable.
    pub owner: Option<String>,
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let addr = match self.addr {
            std::net::IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        };
        write!(f, "{} {addr}:{}", self.proto, self.port)?;
        if let Some(o) = &self.owner {
            write!(f, " ({o})")?;
        }
        Ok(())
    }
}

impl Listener {
    pub fn is_loopback(&self) -> bool {
        match self.addr {
            std::net::IpAddr::V4(a) => a.is_loopback(),
            std::net::IpAddr::V6(a) => {
                a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        }
    }
}

/// `0100007F:0016` (little-endian words) → (127.0.0.1, 22).
fn parse_addr(field: &str, v6: bool) -> Option<(std::net::IpAddr, u16)> {
    let (a, p) = field.split_once(':')?;
    let port = u16::from_str_radix(p, 16).ok()?;
    let addr = if v6 {
        if a.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for w in 0..4 {
            let word = u32::from_str_radix(&a[w * 8..w * 8 + 8], 16).ok()?;
            bytes[w * 4..w * 4 + 4].copy_from_slice(&word.to_le_bytes());
        }
        std::net::IpAddr::V6(std::net::Ipv6Addr::from(bytes))
    } else {
        let word = u32::from_str_radix(a, 16).ok()?;
        std::net::IpAddr::V4(std::net::Ipv4Addr::from(word.to_le_bytes()))
    };
    Some((addr, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_addresses() {
        assert_eq!(parse_addr("0100007F:0016", false), Some(("127.0.0.1".parse().unwrap(), 22)));
        assert_eq!(parse_addr("00000000:0947", false), Some(("0.0.0.0".parse().unwrap(), 2375)));
        assert_eq!(
            parse_addr("00000000000000000000000001000000:0016", true),
            Some(("::1".parse().unwrap(), 22))
        );
        assert_eq!(parse_addr("zz:1", false), None);
    }
}
