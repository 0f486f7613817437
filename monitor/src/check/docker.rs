//! The Docker daemon: its socket's permissions, the socket unit, its state partition,
//! daemon.json settings that weaken isolation, the engine version.

use super::{Check, Host, Outcome, Severity};
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

pub const CHECKS: &[Check] = &[
    Check {
        id: "DOCKER-SOCKET-PERMS",
        group: "docker",
        title: "The Docker socket is owned by root and not accessible to others",
        severity: Severity::Critical,
        remediation: "`chown root:docker /run/docker.sock && chmod 660 /run/docker.sock`; fix whatever loosened it (a SocketMode= drop-in, a chmod in a unit).",
        run: socket_perms,
    },
    Check {
        id: "DOCKER-SOCKET-UNIT",
        group: "docker",
        title: "docker.socket restricts access with SocketGroup/SocketMode",
        severity: Severity::Medium,
        remediation: "Add a drop-in /etc/systemd/system/docker.socket.d/10-group.conf with `[Socket]` `SocketMode=0660` and `SocketGroup=` a dedicated group with no members but those who need the API.",
        run: socket_unit,
    },
    Check {
        id: "DOCKER-PARTITION",
        group: "docker",
        title: "/var/lib/docker is on its own partition",
        severity: Severity::Low,
        remediation: "Mount a dedicated filesystem at /var/lib/docker so that images and containers cannot fill the root filesystem.",
        run: partition,
    },
    Check {
        id: "DOCKER-USERNS",
        group: "docker",
        title: "User namespace remapping is enabled",
        severity: Severity::Medium,
        remediation: "Set \"userns-remap\": \"default\" in /etc/docker/daemon.json: root in a container is then not root on the host.",
        run: userns,
    },
    Check {
        id: "DOCKER-ICC",
        group: "docker",
        title: "Inter-container communication on the default bridge is off",
        severity: Severity::Low,
        remediation: "Set \"icc\": false in /etc/docker/daemon.json and link containers explicitly.",
        run: icc,
    },
    Check {
        id: "DOCKER-INSECURE-REGISTRY",
        group: "docker",
        title: "No insecure registries are configured",
        severity: Severity::Medium,
        remediation: "Remove \"insecure-registries\" from /etc/docker/daemon.json and serve registries over TLS.",
        run: insecure_registries,
    },
    Check {
        id: "DOCKER-LIVE-RESTORE",
        group: "docker",
        title: "live-restore is enabled",
        severity: Severity::Low,
        remediation: "Set \"live-restore\": true in /etc/docker/daemon.json so the daemon can be restarted (and patched) without stopping containers.",
        run: live_restore,
    },
    Check {
        id: "DOCKER-NO-NEW-PRIVILEGES",
        group: "docker",
        title: "Containers run with no-new-privileges by default",
        severity: Severity::Low,
        remediation: "Set \"no-new-privileges\": true in /etc/docker/daemon.json: setuid binaries in containers then cannot raise privileges.",
        run: no_new_privileges,
    },
    Check {
        id: "DOCKER-VERSION",
        group: "docker",
        title: "Docker engine version (for comparison with current releases)",
        severity: Severity::Info,
        remediation: "Keep the engine on a supported, patched release.",
        run: version,
    },
];

fn installed(h: &Host) -> bool {
    ["/usr/bin/dockerd", "/usr/sbin/dockerd", "/usr/local/bin/dockerd"].iter().any(|p| h.exists(p)) || h.exists("/run/docker.sock")
}

macro_rules! require_docker {
    ($h:expr) => {
        if !installed($h) {
            return Outcome::not_applicable("Docker is not installed");
        }
    };
}

fn socket_perms(h: &Host) -> Outcome {
    require_docker!(h);
    let path = h.path("/run/docker.sock");
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) => return Outcome::unknown(format!("{}: {e} (dockerd not running?)", path.display())),
    };
    let mode = meta.permissions().mode() & 0o7777;
    let fact = format!("/run/docker.sock mode {mode:04o} uid {} gid {}", meta.uid(), meta.gid());
    let mut against = Vec::new();
    if mode & 0o007 != 0 {
        against.push(format!("{fact}: others may connect"));
    }
    if meta.uid() != 0 {
        against.push(format!("{fact}: not owned by root"));
    }
    if against.is_empty() {
        Outcome::pass(vec![fact])
    } else {
        Outcome::fail(against)
    }
}

fn socket_unit(h: &Host) -> Outcome {
    require_docker!(h);
    if !h.unit_exists("docker.socket") {
        return Outcome::not_applicable("no docker.socket unit (dockerd creates its socket itself)");
    }
    let get = |key: &str| h.unit_setting("docker.socket", key).filter(|v| !v.value.is_empty());
    let (mode_set, group_set) = (get("SocketMode"), get("SocketGroup"));
    let shown = |v: &Option<super::host::UnitValue>, unset: &str| match v {
        Some(v) => format!("{} (from {})", v.value, v.file),
        None => unset.to_string(),
    };
    let mut evidence = vec![
        format!("SocketMode={}", shown(&mode_set, "(unset: 0666)")),
        format!("SocketGroup={}", shown(&group_set, "(unset: root)")),
    ];
    let mode = mode_set.map(|v| v.value);
    let group = group_set.map(|v| v.value);
    let mode_bits = mode.as_deref().and_then(|m| u32::from_str_radix(m, 8).ok()).unwrap_or(0o666);
    if mode_bits & 0o007 != 0 {
        evidence.push("others may connect".into());
        return Outcome::fail(evidence);
    }
    if group.is_none() && mode_bits & 0o070 != 0 {
        evidence.push("no SocketGroup set".into());
        return Outcome::fail(evidence);
    }
    Outcome::pass(evidence)
}

fn partition(h: &Host) -> Outcome {
    require_docker!(h);
    // Its own filesystem: a different device from its parent's (a bind mount of the same
    // filesystem does not count).
    let dev = |p: &str| std::fs::metadata(h.path(p)).map(|m| m.dev());
    match (dev("/var/lib/docker"), dev("/var/lib")) {
        (Ok(d), Ok(parent)) if d != parent => Outcome::pass(vec!["/var/lib/docker is its own filesystem".into()]),
        (Ok(_), Ok(_)) => Outcome::fail(vec!["/var/lib/docker is on the same filesystem as /var/lib".into()]),
        (Err(e), _) | (_, Err(e)) => Outcome::unknown(format!("cannot stat /var/lib/docker: {e}")),
    }
}

/// daemon.json, or `None` (defaults) when it does not exist.
fn daemon_json(h: &Host) -> Result<Option<Value>, Outcome> {
    match h.read("/etc/docker/daemon.json") {
        Ok(t) => serde_json::from_str(&t)
            .map(Some)
            .map_err(|e| Outcome::unknown(format!("/etc/docker/daemon.json is not valid JSON: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Outcome::unknown(format!("cannot read /etc/docker/daemon.json: {e}"))),
    }
}

/// Check one daemon.json setting: `bad(value)` says why it weakens isolation (None: fine).
fn setting(h: &Host, key: &str, bad: fn(Option<&Value>) -> Option<String>) -> Outcome {
    require_docker!(h);
    let config = match daemon_json(h) {
        Ok(c) => c,
        Err(o) => return o,
    };
    let value = config.as_ref().and_then(|c| c.get(key));
    let shown = value.map(|v| v.to_string()).unwrap_or_else(|| "(not set)".into());
    match bad(value) {
        Some(why) => Outcome::fail(vec![format!("daemon.json {key}: {shown}: {why}")]),
        None => Outcome::pass(vec![format!("daemon.json {key}: {shown}")]),
    }
}

fn userns(h: &Host) -> Outcome {
    setting(h, "userns-remap", |v| match v.and_then(Value::as_str) {
        Some(s) if !s.is_empty() => None,
        _ => Some("container root is host root".into()),
    })
}

fn icc(h: &Host) -> Outcome {
    setting(h, "icc", |v| match v.and_then(Value::as_bool) {
        Some(false) => None,
        _ => Some("containers on the default bridge can talk to each other".into()),
    })
}

fn insecure_registries(h: &Host) -> Outcome {
    setting(h, "insecure-registries", |v| match v.and_then(Value::as_array) {
        Some(a) if !a.is_empty() => Some("images may be pulled without TLS".into()),
        _ => None,
    })
}

fn live_restore(h: &Host) -> Outcome {
    setting(h, "live-restore", |v| match v.and_then(Value::as_bool) {
        Some(true) => None,
        _ => Some("restarting dockerd stops every container".into()),
    })
}

fn no_new_privileges(h: &Host) -> Outcome {
    setting(h, "no-new-privileges", |v| match v.and_then(Value::as_bool) {
        Some(true) => None,
        _ => Some("setuid binaries in containers can raise privileges".into()),
    })
}

fn version(h: &Host) -> Outcome {
    require_docker!(h);
    if !h.is_real() {
        return Outcome::unknown("not the running host");
    }
    for bin in ["/usr/sbin/dockerd", "/usr/bin/dockerd", "/usr/local/bin/dockerd"] {
        if let Ok(out) = std::process::Command::new(bin).arg("--version").output() {
            if out.status.success() {
                return Outcome::pass(vec![String::from_utf8_lossy(&out.stdout).trim().to_string()]);
            }
        }
    }
    Outcome::unknown("dockerd --version did not answer")
}
