//! The Docker daemon: its socket's permissions, the socket unit, its state partition, daemon
//! settings that weaken isolation (daemon.json or dockerd's command line), the engine
//! version against the shipped end-of-life table. Most of these decide a CIS recommendation
//! exactly and carry its id.

use super::docker_state::installed;
use super::eol::{self, Verdict};
use super::{Check, Cis, Host, Outcome, Probe, Severity, GUIDE};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

pub const CHECKS: &[Check] = &[
    Check {
        id: "DOCKER-SOCKET-PERMS",
        group: "docker",
        title: "The Docker socket is owned by root and not accessible to others",
        severity: Severity::Critical,
        remediation: "`chown root:docker /run/docker.sock && chmod 660 /run/docker.sock`; fix whatever loosened it (a SocketMode= drop-in, a chmod in a unit).",
        file: "/run/docker.sock",
        probe: Probe::Host(socket_perms),
        ..GUIDE
    },
    Check {
        id: "DOCKER-SOCKET-UNIT",
        group: "docker",
        title: "docker.socket restricts access with SocketGroup/SocketMode",
        severity: Severity::Medium,
        remediation: "Add a drop-in /etc/systemd/system/docker.socket.d/10-group.conf with `[Socket]` `SocketMode=0660` and `SocketGroup=` a dedicated group with no members but those who need the API.",
        file: "/lib/systemd/system/docker.socket",
        probe: Probe::Host(socket_unit),
        ..GUIDE
    },
    Check {
        id: "DOCKER-PARTITION",
        group: "docker",
        title: "/var/lib/docker is on its own partition",
        severity: Severity::Low,
        remediation: "Mount a dedicated filesystem at /var/lib/docker so that images and containers cannot fill the root filesystem.",
        file: "/var/lib/docker",
        cis: Some(Cis { id: "1.1.1", level: 1, title: "Ensure a separate partition for containers has been created" }),
        reference: super::cis::REFERENCE,
        probe: Probe::Host(partition),
        ..GUIDE
    },
    Check {
        id: "DOCKER-USERNS",
        group: "docker",
        title: "User namespace remapping is enabled",
        severity: Severity::Medium,
        remediation: "Set \"userns-remap\": \"default\" in /etc/docker/daemon.json: root in a container is then not root on the host.",
        file: "/etc/docker/daemon.json",
        cis: Some(Cis { id: "2.9", level: 2, title: "Enable user namespace support" }),
        reference: super::cis::REFERENCE,
        probe: Probe::Host(userns),
        ..GUIDE
    },
    Check {
        id: "DOCKER-ICC",
        group: "docker",
        title: "Inter-container communication on the default bridge is off (icc)",
        severity: Severity::Low,
        remediation: "Set \"icc\": false in /etc/docker/daemon.json and link containers explicitly.",
        file: "/etc/docker/daemon.json",
        cis: Some(Cis { id: "2.2", level: 1, title: "Ensure network traffic is restricted between containers on the default bridge" }),
        reference: super::cis::REFERENCE,
        probe: Probe::Host(icc),
        ..GUIDE
    },
    Check {
        id: "DOCKER-INSECURE-REGISTRY",
        group: "docker",
        title: "No insecure registries are configured",
        severity: Severity::Medium,
        remediation: "Remove \"insecure-registries\" from /etc/docker/daemon.json and serve registries over TLS.",
        file: "/etc/docker/daemon.json",
        cis: Some(Cis { id: "2.5", level: 1, title: "Ensure insecure registries are not used" }),
        reference: super::cis::REFERENCE,
        probe: Probe::Host(insecure_registries),
        ..GUIDE
    },
    Check {
        id: "DOCKER-LIVE-RESTORE",
        group: "docker",
        title: "live-restore is enabled",
        severity: Severity::Low,
        remediation: "Set \"live-restore\": true in /etc/docker/daemon.json so the daemon can be restarted (and patched) without stopping containers.",
        file: "/etc/docker/daemon.json",
        cis: Some(Cis { id: "2.15", level: 1, title: "Ensure live restore is enabled" }),
        reference: super::cis::REFERENCE,
        probe: Probe::Host(live_restore),
        ..GUIDE
    },
    Check {
        id: "DOCKER-NO-NEW-PRIVILEGES",
        group: "docker",
        title: "Containers run with no-new-privileges by default",
        severity: Severity::Low,
        remediation: "Set \"no-new-privileges\": true in /etc/docker/daemon.json: setuid binaries in containers then cannot raise privileges.",
        file: "/etc/docker/daemon.json",
        cis: Some(Cis { id: "2.14", level: 1, title: "Ensure containers are restricted from acquiring new privileges" }),
        reference: super::cis::REFERENCE,
        probe: Probe::Host(no_new_privileges),
        ..GUIDE
    },
    Check {
        id: "DOCKER-VERSION",
        group: "docker",
        title: "The Docker engine is a maintained release, patched to the latest of its line",
        severity: Severity::Medium,
        remediation: "Upgrade the engine to a maintained release line (see https://endoflife.date/docker-engine) and its latest patch release; with a distribution's package, keep it on a release the distribution still supports with security updates.",
        file: "/usr/sbin/dockerd",
        cis: Some(Cis { id: "1.2.2", level: 1, title: "Ensure that the version of Docker is up to date" }),
        reference: super::cis::REFERENCE,
        probe: Probe::Host(version),
        ..GUIDE
    },
];

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
        Err(e) => {
            return Outcome::unknown(format!("{}: {e} (dockerd not running?)", path.display()))
        }
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
    Outcome::fail_or_pass(against, || vec![fact])
}

fn socket_unit(h: &Host) -> Outcome {
    require_docker!(h);
    if !h.unit_exists("docker.socket") {
        return Outcome::not_applicable(
            "no docker.socket unit (dockerd creates its socket itself)",
        );
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
        (Ok(d), Ok(parent)) if d != parent => {
            Outcome::pass(vec!["/var/lib/docker is its own filesystem".into()])
        }
        (Ok(_), Ok(_)) => {
            Outcome::fail(vec!["/var/lib/docker is on the same filesystem as /var/lib".into()])
        }
        (Err(e), _) | (_, Err(e)) => Outcome::unknown(format!("cannot stat /var/lib/docker: {e}")),
    }
}

/// Check one daemon setting (daemon.json or dockerd's flag): `bad(value)` says why it
/// weakens isolation (None: fine). `value` is None when the setting is not given.
fn setting(
    h: &Host,
    key: &str,
    flag: &str,
    bad: fn(Option<bool>) -> Option<&'static str>,
) -> Outcome {
    if !installed(h) {
        return Outcome::not_applicable("Docker is not installed");
    }
    let daemon = &h.docker().daemon;
    let found = match daemon.bool_setting(key, flag) {
        Ok(f) => f,
        Err(e) => return Outcome::unknown(e),
    };
    let shown = match &found {
        Some((_, source)) => source.clone(),
        None => format!("{key} not set ({})", daemon.sources()),
    };
    match bad(found.map(|f| f.0)) {
        Some(why) => Outcome::fail(vec![format!("{shown}: {why}")]),
        None => Outcome::pass(vec![shown]),
    }
}

fn userns(h: &Host) -> Outcome {
    if !installed(h) {
        return Outcome::not_applicable("Docker is not installed");
    }
    let daemon = &h.docker().daemon;
    match daemon.str_setting("userns-remap", &["--userns-remap"]) {
        Ok(Some((v, source))) if !v.is_empty() => Outcome::pass(vec![source]),
        Ok(_) => Outcome::fail(vec![format!(
            "userns-remap not set ({}): container root is host root",
            daemon.sources()
        )]),
        Err(e) => Outcome::unknown(e),
    }
}

fn icc(h: &Host) -> Outcome {
    setting(h, "icc", "--icc", |v| {
        (v != Some(false)).then_some("containers on the default bridge can talk to each other")
    })
}

fn insecure_registries(h: &Host) -> Outcome {
    if !installed(h) {
        return Outcome::not_applicable("Docker is not installed");
    }
    let daemon = &h.docker().daemon;
    match daemon.list_setting("insecure-registries", &["--insecure-registry"]) {
        Ok(l) if l.is_empty() => {
            Outcome::pass(vec![format!("no insecure registry ({})", daemon.sources())])
        }
        Ok(l) => Outcome::fail(
            l.into_iter().map(|(_, s)| format!("{s}: images may be pulled without TLS")).collect(),
        ),
        Err(e) => Outcome::unknown(e),
    }
}

fn live_restore(h: &Host) -> Outcome {
    setting(h, "live-restore", "--live-restore", |v| {
        (v != Some(true)).then_some("restarting dockerd stops every container")
    })
}

fn no_new_privileges(h: &Host) -> Outcome {
    setting(h, "no-new-privileges", "--no-new-privileges", |v| {
        (v != Some(true)).then_some("setuid binaries in containers can raise privileges")
    })
}

/// The installed distribution package of the engine (`docker.io 20.10.24+dfsg1-1+deb12u1`),
/// from dpkg's status file.
fn distribution_package(h: &Host) -> Option<String> {
    let status = h.read("/var/lib/dpkg/status").ok()?;
    status.split("\n\n").find_map(|para| {
        let field = |k: &str| para.lines().find_map(|l| l.strip_prefix(k).map(str::trim));
        let name = field("Package:")?;
        (["docker.io", "moby-engine"].contains(&name) && field("Status:")?.ends_with(" installed"))
            .then(|| format!("{name} {}", field("Version:").unwrap_or("?")))
    })
}

fn version(h: &Host) -> Outcome {
    if !installed(h) {
        return Outcome::not_applicable("Docker is not installed");
    }
    if !h.is_real() {
        return Outcome::unknown("not the running host");
    }
    let mut answer = None;
    for bin in ["/usr/sbin/dockerd", "/usr/bin/dockerd", "/usr/local/bin/dockerd"] {
        if let Ok(out) = std::process::Command::new(bin).arg("--version").output() {
            if out.status.success() {
                answer = Some((bin, String::from_utf8_lossy(&out.stdout).trim().to_string()));
                break;
            }
        }
    }
    let Some((bin, text)) = answer else {
        return Outcome::unknown("dockerd --version did not answer");
    };
    let Some(v) = eol::parse_dockerd_version(&text) else {
        return Outcome::unknown(format!("{bin} --version: unexpected answer {text:?}"));
    };
    let today = crate::enrich::today();
    judge_version(&v, &format!("{bin} --version: {text}"), distribution_package(h), &today)
}

/// The verdict on an engine version as an outcome (a distribution's package is a manual
/// review: its maintainers may backport fixes to a line upstream has ended).
fn judge_version(v: &str, seen: &str, package: Option<String>, today: &str) -> Outcome {
    let mut evidence = vec![seen.to_string()];
    if let Some(p) = &package {
        evidence.push(format!("installed from the distribution package {p}"));
    }
    let table = format!("end-of-life table of {} (shipped with monitor)", eol::as_of());
    if eol::year_after(eol::as_of()).as_str() <= today {
        evidence.push(format!("the {table} is more than a year old: newer releases may exist"));
    }
    let against = match eol::judge(v, today) {
        Verdict::Supported { release, behind: None } => {
            evidence.push(format!(
                "release line {} is maintained ({}; {table})",
                release.cycle,
                release
                    .eol
                    .map(|e| format!("end of life {e}"))
                    .unwrap_or("no end of life announced".into())
            ));
            return Outcome::pass(evidence);
        }
        Verdict::Supported { release, behind: Some(latest) } => format!(
            "{v} is not the latest patch release of line {} ({latest}, {table})",
            release.cycle
        ),
        Verdict::EndOfLife { release } => format!(
            "release line {} reached end of life on {} ({table})",
            release.cycle,
            release.eol.unwrap_or_default()
        ),
        Verdict::NotListed(why) => {
            return Outcome::warn(
                format!("{why}: check the engine's support status by hand"),
                evidence,
            )
        }
    };
    match package {
        Some(p) => Outcome::warn(format!("upstream: {against}; {p} is the distribution's build, which may carry backported security fixes: confirm the distribution still supports it"), evidence),
        None => {
            evidence.push(against);
            Outcome::fail(evidence)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;

    #[test]
    fn engine_versions_against_end_of_life() {
        let o = judge_version(
            "20.10.24",
            "dockerd --version: Docker version 20.10.24",
            None,
            "2026-12-06",
        );
        assert_eq!(o.status, Status::Fail);
        assert!(
            o.evidence[1].contains("release line 20.10 reached end of life on 2023-12-10"),
            "{:?}",
            o.evidence
        );
        let o = judge_version(
            "20.10.24+dfsg1",
            "x",
            Some("docker.io 20.10.24+dfsg1-1+deb12u1".into()),
            "2026-12-06",
        );
        assert_eq!(o.status, Status::Warn);
        assert!(o.reason.unwrap().contains("distribution's build"));
        let o = judge_version("29.7.2", "x", None, "2026-12-06");
        assert_eq!(o.status, Status::Pass, "{:?}", o.evidence);
        let o = judge_version("29.1.0", "x", None, "2026-12-06");
        assert_eq!(o.status, Status::Fail);
        assert!(
            o.evidence[1].contains("not the latest patch release of line 29 (29.7.2"),
            "{:?}",
            o.evidence
        );
        assert_eq!(judge_version("99.1.0", "x", None, "2026-12-06").status, Status::Warn);
    }
}
