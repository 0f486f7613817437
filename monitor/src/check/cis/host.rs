//! CIS section 1, host configuration: who controls the daemon, the audit watches on
//! Docker's files and binaries (1.1.3-1.1.18, each its own finding), the host's hardening.
//! 1.1.1 (`DOCKER-PARTITION`) and 1.2.2 (`DOCKER-VERSION`) are guide checks.

use super::{cis, manual};
use crate::check::{audit, Check, Host, Outcome, Probe};

const G: &str = "cis-1 host";
const FIX_AUDIT: &str = "Add `-w PATH -k docker` for it to /etc/audit/rules.d/docker.rules and load it (`augenrules --load`, or `auditctl -R`), or keep `monitor run` running: its built-in pack watches every item.";

pub const CHECKS: &[Check] = &[
    cis!("1.1.2", 1, Medium, G, "/etc/group", "Ensure only trusted users are allowed to control Docker daemon",
        "Keep the docker group to the people who must control Docker (`gpasswd -d USER docker` for the others): membership is root on the host.",
        Probe::Host(trusted_users)),
    cis!("1.1.3", 1, Medium, G, "/usr/sbin/dockerd", "Ensure auditing is configured for the Docker daemon", FIX_AUDIT, Probe::HostArg(audit::item, "1.1.3")),
    cis!("1.1.4", 1, Medium, G, "/run/containerd", "Ensure auditing is configured for Docker files and directories - /run/containerd", FIX_AUDIT, Probe::HostArg(audit::item, "1.1.4")),
    cis!("1.1.5", 1, Medium, G, "/var/lib/docker", "Ensure auditing is configured for Docker files and directories - /var/lib/docker", FIX_AUDIT, Probe::HostArg(audit::item, "1.1.5")),
    cis!("1.1.6", 1, Medium, G, "/etc/docker", "Ensure auditing is configured for Docker files and directories - /etc/docker", FIX_AUDIT, Probe::HostArg(audit::item, "1.1.6")),
    cis!("1.1.7", 2, Low, G, "/lib/systemd/system/docker.service", "Ensure auditing is configured for Docker files and directories - docker.service", FIX_AUDIT, Probe::HostArg(audit::item, "1.1.7")),
    cis!("1.1.8", 2, Low, G, "/run/containerd/containerd.sock", "Ensure auditing is configured for Docker files and directories - containerd.sock", FIX_AUDIT, Probe::HostArg(audit::item, "1.1.8")),
    cis!("1.1.9", 2, Low, G, "/lib/systemd/system/docker.socket", "Ensure auditing is configured for Docker files and directories - docker.socket", FIX_AUDIT, Probe::HostArg(audit::item, "1.1.9")),
    cis!("1.1.10", 2, Low, G, "/etc/default/docker", "Ensure auditing is configured for Docker files and directories - /etc/default/docker", FIX_AUDIT, Probe::HostArg(audit::item, "1.1.10")),
    cis!("1.1.11", 2, Low, G, "/etc/docker/daemon.json", "Ensure auditing is configured for Docker files and directories - /etc/docker/daemon.json", FIX_AUDIT, Probe::HostArg(audit::item, "1.1.11")),
    cis!("1.1.12", 2, Low, G, "/etc/containerd/config.toml", "Ensure auditing is configured for Docker files and directories - /etc/containerd/config.toml", FIX_AUDIT, Probe::HostArg(audit::item, "1.1.12")),
    cis!("1.1.13", 2, Low, G, "/etc/sysconfig/docker", "Ensure auditing is configured for Docker files and directories - /etc/sysconfig/docker", FIX_AUDIT, Probe::HostArg(audit::item, "1.1.13")),
    cis!("1.1.14", 2, Low, G, "/usr/bin/containerd", "Ensure auditing is configured for Docker files and directories - /usr/bin/containerd", FIX_AUDIT, Probe::HostArg(audit::item, "1.1.14")),
    cis!("1.1.15", 2, Low, G, "/usr/bin/containerd-shim", "Ensure auditing is configured for Docker files and directories - /usr/bin/containerd-shim", FIX_AUDIT, Probe::HostArg(audit::item, "1.1.15")),
    cis!("1.1.16", 2, Low, G, "/usr/bin/containerd-shim-runc-v1", "Ensure auditing is configured for Docker files and directories - /usr/bin/containerd-shim-runc-v1", FIX_AUDIT, Probe::HostArg(audit::item, "1.1.16")),
    cis!("1.1.17", 2, Low, G, "/usr/bin/containerd-shim-runc-v2", "Ensure auditing is configured for Docker files and directories - /usr/bin/containerd-shim-runc-v2", FIX_AUDIT, Probe::HostArg(audit::item, "1.1.17")),
    cis!("1.1.18", 2, Low, G, "/usr/sbin/runc", "Ensure auditing is configured for Docker files and directories - /usr/bin/runc", FIX_AUDIT, Probe::HostArg(audit::item, "1.1.18")),
    cis!("1.2.1", 1, Info, G, "/", "Ensure the container host has been Hardened",
        "Harden the host OS (a CIS benchmark for the distribution, or the guides' items: `monitor check --profile hardening-guides`).",
        Probe::HostArg(manual, "host hardening is judged against a guide for the whole OS; `monitor check --profile hardening-guides` reports the host guides' items")),
];

/// 1.1.2: the docker group's members, for a person to confirm (an empty group passes).
fn trusted_users(h: &Host) -> Outcome {
    let groups = match h.groups() {
        Ok(g) => g,
        Err(e) => return Outcome::unknown(format!("cannot read /etc/group or /etc/passwd: {e}")),
    };
    match groups.get("docker") {
        None => Outcome::pass(vec!["no docker group".into()]),
        Some(m) if m.is_empty() => Outcome::pass(vec!["the docker group has no members".into()]),
        Some(m) => Outcome::warn("each member of the docker group can control the daemon (root on the host): confirm every one is trusted", vec![format!("group docker: {}", m.join(", "))]),
    }
}
