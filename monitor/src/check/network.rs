//! Remote listening services: sshd, anything else on a non-loopback address, the Docker API on TCP.

use super::{Check, Host, Outcome, Probe, Severity, GUIDE};

pub const CHECKS: &[Check] = &[
    Check {
        id: "NET-SSHD",
        group: "network",
        title: "sshd is not listening",
        severity: Severity::Medium,
        remediation: "Disable remote logins where they are not needed: `systemctl disable --now sshd.socket sshd.service` (Flatcar/CoreOS: mask sshd.socket), or restrict ListenAddress.",
        file: "/proc/net/tcp",
        probe: Probe::Host(sshd),
        ..GUIDE
    },
    Check {
        id: "NET-LISTEN",
        group: "network",
        title: "No service listens on a non-loopback address",
        severity: Severity::Low,
        remediation: "Stop or bind to 127.0.0.1 every service that need not be reachable from the network.",
        file: "/proc/net/tcp",
        probe: Probe::Host(listeners),
        ..GUIDE
    },
    Check {
        id: "NET-DOCKER-TCP",
        group: "network",
        title: "The Docker API is not exposed on TCP",
        severity: Severity::Critical,
        remediation: "Remove tcp:// from dockerd's -H flags and daemon.json \"hosts\"; if remote access is required use 2376 with tlsverify and client certificates.",
        file: "/etc/docker/daemon.json",
        probe: Probe::Host(docker_tcp),
        ..GUIDE
    },
];

fn sshd(h: &Host) -> Outcome {
    let listeners = match h.listeners() {
        Ok(l) => l,
        Err(e) => return Outcome::unknown(format!("cannot read /proc/net: {e}")),
    };
    let mut against: Vec<String> = listeners
        .iter()
        .filter(|l| {
            l.proto == "tcp"
                && (l.port == 22 || l.owner.as_deref().is_some_and(|o| o.starts_with("sshd[")))
        })
        .map(|l| format!("listening: {l}"))
        .collect();
    for unit in ["sshd.socket", "ssh.socket", "sshd.service", "ssh.service"] {
        for wants in ["sockets.target.wants", "multi-user.target.wants"] {
            if h.exists(&format!("/etc/systemd/system/{wants}/{unit}")) {
                against.push(format!("{unit} enabled ({wants})"));
            }
        }
    }
    Outcome::fail_if_any(against)
}

fn listeners(h: &Host) -> Outcome {
    match h.listeners() {
        Ok(l) => Outcome::fail_if_any(
            l.iter().filter(|l| !l.is_loopback()).map(|l| format!("listening: {l}")).collect(),
        ),
        Err(e) => Outcome::unknown(format!("cannot read /proc/net: {e}")),
    }
}

fn docker_tcp(h: &Host) -> Outcome {
    let mut against = Vec::new();
    match h.listeners() {
        Ok(l) => {
            for l in l.iter().filter(|l| l.proto == "tcp") {
                let dockerd = l.owner.as_deref().is_some_and(|o| o.starts_with("dockerd["));
                if l.port == 2375 || (dockerd && l.port != 2376) {
                    against.push(format!("unauthenticated Docker API: {l}"));
                } else if l.port == 2376 || dockerd {
                    against.push(format!("Docker API over TLS reachable: {l}"));
                }
            }
        }
        Err(e) => return Outcome::unknown(format!("cannot read /proc/net: {e}")),
    }
    if let Ok(text) = h.read("/etc/docker/daemon.json") {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            for host in v
                .get("hosts")
                .and_then(|x| x.as_array())
                .into_iter()
                .flatten()
                .filter_map(|x| x.as_str())
            {
                if host.starts_with("tcp://") {
                    against.push(format!("daemon.json hosts: {host}"));
                }
            }
        }
    }
    for p in h.dir("/proc") {
        if std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim() == "dockerd") {
            let cmdline = std::fs::read(p.join("cmdline")).unwrap_or_default();
            for arg in cmdline.split(|&b| b == 0).map(String::from_utf8_lossy) {
                if arg.contains("tcp://") {
                    against.push(format!("dockerd argument: {arg}"));
                }
            }
        }
    }
    Outcome::fail_if_any(against)
}
