//! CIS section 3, the daemon's configuration files: ownership and permissions of the unit
//! files, /etc/docker, registry and TLS certificates, the Docker and containerd sockets,
//! daemon.json, /etc/default/docker and /etc/sysconfig/docker. A file that does not exist
//! here is not applicable; every copy that exists (a unit in /etc and in /lib) is judged.

use super::cis;
use crate::check::{Check, Host, Outcome, Probe};
use std::os::unix::fs::MetadataExt;

const G: &str = "cis-3 files";

macro_rules! own {
    ($id:literal, $file:expr, $title:literal, $fix:literal) => {
        cis!($id, 1, Medium, G, $file, $title, $fix, Probe::HostArg(item, $id))
    };
}

pub const CHECKS: &[Check] = &[
    own!("3.1", "/lib/systemd/system/docker.service", "Ensure that the docker.service file ownership is set to root:root", "chown root:root on the docker.service unit file (and its drop-ins)."),
    own!("3.2", "/lib/systemd/system/docker.service", "Ensure that docker.service file permissions are appropriately set", "chmod 644 (or stricter) on the docker.service unit file."),
    own!("3.3", "/lib/systemd/system/docker.socket", "Ensure that docker.socket file ownership is set to root:root", "chown root:root on the docker.socket unit file."),
    own!("3.4", "/lib/systemd/system/docker.socket", "Ensure that docker.socket file permissions are set to 644 or more restrictive", "chmod 644 on the docker.socket unit file."),
    own!("3.5", "/etc/docker", "Ensure that the /etc/docker directory ownership is set to root:root", "chown root:root /etc/docker"),
    own!("3.6", "/etc/docker", "Ensure that /etc/docker directory permissions are set to 755 or more restrictively", "chmod 755 /etc/docker"),
    own!("3.7", "/etc/docker/certs.d", "Ensure that registry certificate file ownership is set to root:root", "chown root:root /etc/docker/certs.d/*/*"),
    own!("3.8", "/etc/docker/certs.d", "Ensure that registry certificate file permissions are set to 444 or more restrictively", "chmod 444 /etc/docker/certs.d/*/*"),
    own!("3.9", "/etc/docker/daemon.json", "Ensure that TLS CA certificate file ownership is set to root:root", "chown root:root on the file tlscacert names."),
    own!("3.10", "/etc/docker/daemon.json", "Ensure that TLS CA certificate file permissions are set to 444 or more restrictively", "chmod 444 on the file tlscacert names."),
    own!("3.11", "/etc/docker/daemon.json", "Ensure that Docker server certificate file ownership is set to root:root", "chown root:root on the file tlscert names."),
    own!("3.12", "/etc/docker/daemon.json", "Ensure that the Docker server certificate file permissions are set to 444 or more restrictively", "chmod 444 on the file tlscert names."),
    own!("3.13", "/etc/docker/daemon.json", "Ensure that the Docker server certificate key file ownership is set to root:root", "chown root:root on the file tlskey names."),
    cis!("3.14", 1, High, G, "/etc/docker/daemon.json", "Ensure that the Docker server certificate key file permissions are set to 400", "chmod 400 on the file tlskey names.", Probe::HostArg(item, "3.14")),
    own!("3.15", "/run/docker.sock", "Ensure that the Docker socket file ownership is set to root:docker", "chown root:docker /var/run/docker.sock"),
    cis!("3.16", 1, High, G, "/run/docker.sock", "Ensure that the Docker socket file permissions are set to 660 or more restrictively", "chmod 660 /var/run/docker.sock (and SocketMode=0660 in docker.socket).", Probe::HostArg(item, "3.16")),
    own!("3.17", "/etc/docker/daemon.json", "Ensure that the daemon.json file ownership is set to root:root", "chown root:root /etc/docker/daemon.json"),
    own!("3.18", "/etc/docker/daemon.json", "Ensure that daemon.json file permissions are set to 644 or more restrictive", "chmod 644 /etc/docker/daemon.json"),
    own!("3.19", "/etc/default/docker", "Ensure that the /etc/default/docker file ownership is set to root:root", "chown root:root /etc/default/docker"),
    own!("3.20", "/etc/default/docker", "Ensure that the /etc/default/docker file permissions are set to 644 or more restrictively", "chmod 644 /etc/default/docker"),
    own!("3.21", "/etc/sysconfig/docker", "Ensure that the /etc/sysconfig/docker file permissions are set to 644 or more restrictively", "chmod 644 /etc/sysconfig/docker"),
    own!("3.22", "/etc/sysconfig/docker", "Ensure that the /etc/sysconfig/docker file ownership is set to root:root", "chown root:root /etc/sysconfig/docker"),
    own!("3.23", "/run/containerd/containerd.sock", "Ensure that the Containerd socket file ownership is set to root:root", "chown root:root /run/containerd/containerd.sock"),
    cis!("3.24", 1, High, G, "/run/containerd/containerd.sock", "Ensure that the Containerd socket file permissions are set to 660 or more restrictively", "chmod 660 /run/containerd/containerd.sock", Probe::HostArg(item, "3.24")),
];

/// Which files a recommendation is about.
enum Target {
    Paths(&'static [&'static str]),
    /// A systemd unit: every copy and drop-in.
    Unit(&'static str),
    /// Every file under /etc/docker/certs.d/*/.
    RegistryCerts,
    /// The file a daemon TLS setting names.
    Tls(&'static str),
    /// The unix sockets the daemon listens on.
    DockerSockets,
    /// The daemon.json in effect.
    DaemonJson,
}

#[derive(Clone, Copy, PartialEq)]
enum Owner {
    RootRoot,
    /// root, group docker (or the stricter root).
    RootDocker,
}

/// (CIS id, target, owner to require, or the loosest mode allowed).
const SPECS: &[(&str, Target, Option<Owner>, Option<u32>)] = &[
    ("3.1", Target::Unit("docker.service"), Some(Owner::RootRoot), None),
    ("3.2", Target::Unit("docker.service"), None, Some(0o644)),
    ("3.3", Target::Unit("docker.socket"), Some(Owner::RootRoot), None),
    ("3.4", Target::Unit("docker.socket"), None, Some(0o644)),
    ("3.5", Target::Paths(&["/etc/docker"]), Some(Owner::RootRoot), None),
    ("3.6", Target::Paths(&["/etc/docker"]), None, Some(0o755)),
    ("3.7", Target::RegistryCerts, Some(Owner::RootRoot), None),
    ("3.8", Target::RegistryCerts, None, Some(0o444)),
    ("3.9", Target::Tls("tlscacert"), Some(Owner::RootRoot), None),
    ("3.10", Target::Tls("tlscacert"), None, Some(0o444)),
    ("3.11", Target::Tls("tlscert"), Some(Owner::RootRoot), None),
    ("3.12", Target::Tls("tlscert"), None, Some(0o444)),
    ("3.13", Target::Tls("tlskey"), Some(Owner::RootRoot), None),
    ("3.14", Target::Tls("tlskey"), None, Some(0o400)),
    ("3.15", Target::DockerSockets, Some(Owner::RootDocker), None),
    ("3.16", Target::DockerSockets, None, Some(0o660)),
    ("3.17", Target::DaemonJson, Some(Owner::RootRoot), None),
    ("3.18", Target::DaemonJson, None, Some(0o644)),
    ("3.19", Target::Paths(&["/etc/default/docker"]), Some(Owner::RootRoot), None),
    ("3.20", Target::Paths(&["/etc/default/docker"]), None, Some(0o644)),
    ("3.21", Target::Paths(&["/etc/sysconfig/docker"]), None, Some(0o644)),
    ("3.22", Target::Paths(&["/etc/sysconfig/docker"]), Some(Owner::RootRoot), None),
    ("3.23", Target::Paths(&["/run/containerd/containerd.sock"]), Some(Owner::RootRoot), None),
    ("3.24", Target::Paths(&["/run/containerd/containerd.sock"]), None, Some(0o660)),
];

const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// The files of a target that exist here, or why there are none.
fn files(h: &Host, target: &Target) -> Result<Vec<String>, Outcome> {
    let existing =
        |paths: Vec<String>| paths.into_iter().filter(|p| h.present(p)).collect::<Vec<_>>();
    let (found, what) = match target {
        Target::Paths(p) => (existing(p.iter().map(|s| s.to_string()).collect()), p.join(", ")),
        Target::Unit(unit) => {
            let mut paths: Vec<String> = UNIT_DIRS.iter().map(|d| format!("{d}/{unit}")).collect();
            for d in UNIT_DIRS {
                paths.extend(h.dir(&format!("{d}/{unit}.d")).iter().filter_map(|p| {
                    p.strip_prefix(h.path("/")).ok().map(|r| format!("/{}", r.display()))
                }));
            }
            // /lib is a link to /usr/lib on merged-/usr systems: one file, listed once.
            let mut found = existing(paths);
            let mut seen = std::collections::HashSet::new();
            found.retain(|p| {
                seen.insert(std::fs::canonicalize(h.path(p)).unwrap_or_else(|_| p.into()))
            });
            (found, format!("the {unit} unit"))
        }
        Target::RegistryCerts => {
            let files: Vec<String> = h
                .dir("/etc/docker/certs.d")
                .iter()
                .flat_map(|d| {
                    std::fs::read_dir(d)
                        .into_iter()
                        .flatten()
                        .filter_map(|e| e.ok())
                        .map(|e| e.path())
                })
                .filter_map(|p| {
                    p.strip_prefix(h.path("/")).ok().map(|r| format!("/{}", r.display()))
                })
                .collect();
            (files, "registry certificates under /etc/docker/certs.d".to_string())
        }
        Target::Tls(key) => {
            let daemon = &h.docker().daemon;
            match daemon.str_setting(key, &[&format!("--{key}")]) {
                Ok(Some((path, _))) => (existing(vec![path.clone()]), path),
                Ok(None) => {
                    return Err(Outcome::not_applicable(format!(
                        "{key} is not configured ({})",
                        daemon.sources()
                    )))
                }
                Err(e) => return Err(Outcome::unknown(e)),
            }
        }
        Target::DockerSockets => {
            let hosts = h.docker().daemon.hosts().map_err(Outcome::unknown)?;
            let paths: Vec<String> = hosts
                .iter()
                .filter_map(|(a, _)| a.strip_prefix("unix://"))
                .map(|p| p.replace("/var/run/", "/run/"))
                .collect();
            (existing(paths.clone()), paths.join(", "))
        }
        Target::DaemonJson => {
            let p = h.docker().daemon.config_path.clone();
            (existing(vec![p.clone()]), p)
        }
    };
    if found.is_empty() {
        return Err(Outcome::not_applicable(format!("{what}: not present on this host")));
    }
    Ok(found)
}

/// The docker group's gid, from /etc/group.
fn docker_gid(h: &Host) -> Option<u32> {
    h.read("/etc/group").ok()?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == "docker").then(|| f[2].parse().ok()).flatten()
    })
}

/// One recommendation of section 3 (`3.16`).
pub fn item(h: &Host, id: &'static str) -> Outcome {
    let Some((_, target, owner, mode)) = SPECS.iter().find(|s| s.0 == id) else {
        return Outcome::unknown(format!("no file recommendation {id}"));
    };
    let paths = match files(h, target) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for p in paths {
        let meta = match std::fs::metadata(h.path(&p)) {
            Ok(m) => m,
            Err(e) => return Outcome::unknown(format!("cannot stat {p}: {e}")),
        };
        let m = meta.mode() & 0o7777;
        let fact = format!("{p}: mode {m:04o}, uid {} gid {}", meta.uid(), meta.gid());
        let ok = match (owner, mode) {
            (Some(Owner::RootRoot), _) => meta.uid() == 0 && meta.gid() == 0,
            (Some(Owner::RootDocker), _) => {
                meta.uid() == 0 && (meta.gid() == 0 || Some(meta.gid()) == docker_gid(h))
            }
            (None, Some(max)) => m & !max == 0,
            (None, None) => true,
        };
        if ok {
            good.push(fact);
        } else {
            let want = match (owner, mode) {
                (Some(Owner::RootRoot), _) => "root:root".to_string(),
                (Some(Owner::RootDocker), _) => "root:docker".to_string(),
                (_, Some(max)) => format!("{max:04o} or stricter"),
                _ => String::new(),
            };
            bad.push(format!("{fact}: should be {want}"));
        }
    }
    Outcome::fail_or_pass(bad, || good)
}
