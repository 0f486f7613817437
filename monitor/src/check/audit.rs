//! Audit: the CIS Docker Benchmark 1.1.x watches present in the kernel's audit rules, or
//! covered by a running `monitor`.

use super::{Check, Host, Outcome, Probe, Severity, GUIDE};

pub const CHECKS: &[Check] = &[Check {
    id: "AUDIT-DOCKER",
    group: "audit",
    title: "Docker files and binaries are audited (CIS Docker Benchmark 1.1.3-1.1.18)",
    severity: Severity::Medium,
    remediation: "Load the monitor's rules/docker.rules into auditd (`auditctl -R rules/docker.rules`, or copy to /etc/audit/rules.d/), or keep `monitor run` running.",
    file: "/etc/audit/audit.rules",
    probe: Probe::Host(cis),
    ..GUIDE
}];

/// CIS item → the paths that satisfy it (any one, where it exists).
const ITEMS: &[(&str, &[&str])] = &[
    ("1.1.3 dockerd", &["/usr/bin/dockerd", "/usr/sbin/dockerd"]),
    ("1.1.4 /run/containerd", &["/run/containerd"]),
    ("1.1.5 /var/lib/docker", &["/var/lib/docker"]),
    ("1.1.6 /etc/docker", &["/etc/docker"]),
    (
        "1.1.7 docker.service",
        &[
            "/usr/lib/systemd/system/docker.service",
            "/lib/systemd/system/docker.service",
            "/etc/systemd/system/docker.service",
        ],
    ),
    ("1.1.8 containerd.sock", &["/run/containerd/containerd.sock"]),
    (
        "1.1.9 docker.socket",
        &[
            "/usr/lib/systemd/system/docker.socket",
            "/lib/systemd/system/docker.socket",
            "/etc/systemd/system/docker.socket",
        ],
    ),
    ("1.1.10 /etc/default/docker", &["/etc/default/docker"]),
    ("1.1.11 /etc/docker/daemon.json", &["/etc/docker/daemon.json"]),
    ("1.1.12 /etc/containerd/config.toml", &["/etc/containerd/config.toml"]),
    ("1.1.13 /etc/sysconfig/docker", &["/etc/sysconfig/docker"]),
    ("1.1.14 containerd", &["/usr/bin/containerd", "/usr/sbin/containerd"]),
    ("1.1.15 containerd-shim", &["/usr/bin/containerd-shim"]),
    ("1.1.16 containerd-shim-runc-v1", &["/usr/bin/containerd-shim-runc-v1"]),
    ("1.1.17 containerd-shim-runc-v2", &["/usr/bin/containerd-shim-runc-v2"]),
    ("1.1.18 runc", &["/usr/bin/runc", "/usr/sbin/runc"]),
];

/// `-w PATH` entries of `auditctl -l` (and the `dir=`/`path=` fields of syscall rules).
fn audit_watches() -> Result<Vec<String>, String> {
    let out = std::process::Command::new("auditctl")
        .arg("-l")
        .output()
        .map_err(|e| format!("auditctl: {e}"))?;
    if !out.status.success() {
        return Err(format!("auditctl -l: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut watches: Vec<String> = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix("-w ").and_then(|r| r.split_whitespace().next()).map(str::to_string)
        })
        .collect();
    watches.extend(text.lines().flat_map(|l| {
        l.split_whitespace()
            .filter_map(|w| w.strip_prefix("dir=").or_else(|| w.strip_prefix("path=")))
            .map(str::to_string)
    }));
    Ok(watches)
}

/// The kernel's watches, read once per run.
fn watches(h: &Host) -> Result<&[String], &str> {
    match h.audit_watches.get_or_init(audit_watches) {
        Ok(w) => Ok(w),
        Err(e) => Err(e),
    }
}

/// pid of a running `monitor run` with the built-in pack (it watches every item).
fn monitor_running(h: &Host) -> Option<String> {
    let me = std::process::id().to_string();
    h.dir("/proc").into_iter().find_map(|p| {
        let pid = p.file_name()?.to_str()?.to_string();
        if pid == me || std::fs::read_to_string(p.join("comm")).ok()?.trim() != "monitor" {
            return None;
        }
        let cmdline = std::fs::read(p.join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        (args.iter().any(|a| *a == b"run") && !args.iter().any(|a| *a == b"--rules" || *a == b"-r"))
            .then_some(pid)
    })
}

fn covered(watches: &[String], path: &str) -> bool {
    watches.iter().any(|w| {
        let w = w.trim_end_matches('/');
        path == w || (path.starts_with(w) && path.as_bytes().get(w.len()) == Some(&b'/'))
    })
}

/// One item's verdict: None when none of its paths exists here.
fn judge(h: &Host, watches: &[String], paths: &[&str]) -> Option<Result<String, String>> {
    let existing: Vec<&str> = paths.iter().copied().filter(|p| h.present(p)).collect();
    if existing.is_empty() {
        return None;
    }
    Some(match existing.iter().find(|p| covered(watches, p)) {
        Some(p) => Ok(format!("audit watch covers {p}")),
        None => Err(format!("no audit watch on {}", existing.join(" or "))),
    })
}

/// The kernel's audit watches, or the outcome when they do not decide: a running
/// `monitor run` watches `what` with the built-in pack (a pass), or they cannot be read.
fn kernel_watches<'a>(h: &'a Host, what: &str) -> Result<&'a [String], Outcome> {
    if let Some(pid) = monitor_running(h) {
        return Err(Outcome::pass(vec![format!(
            "monitor run (pid {pid}) watches {what} with the built-in pack"
        )]));
    }
    if !h.is_real() {
        return Err(Outcome::unknown("not the running host"));
    }
    watches(h).map_err(|e| Outcome::unknown(format!("{e}; and no `monitor run` is running")))
}

fn cis(h: &Host) -> Outcome {
    let watches = match kernel_watches(h, "every item") {
        Ok(w) => w,
        Err(o) => return o,
    };
    let mut missing = Vec::new();
    let mut present = Vec::new();
    for (item, paths) in ITEMS {
        match judge(h, watches, paths) {
            None => {}
            Some(Ok(_)) => present.push(item.to_string()),
            Some(Err(e)) => missing.push(format!("{item}: {e}")),
        }
    }
    Outcome::fail_or_pass(missing, || present)
}

/// One CIS 1.1.x item (`1.1.5`).
pub fn item(h: &Host, cis_id: &'static str) -> Outcome {
    let Some((name, paths)) = ITEMS.iter().find(|(i, _)| i.split(' ').next() == Some(cis_id))
    else {
        return Outcome::unknown(format!("no audit item {cis_id}"));
    };
    let what = name.split_once(' ').map(|n| n.1).unwrap_or(name);
    if !paths.iter().any(|p| h.present(p)) {
        return Outcome::not_applicable(format!(
            "{what} does not exist here ({})",
            paths.join(", ")
        ));
    }
    let watches = match kernel_watches(h, what) {
        Ok(w) => w,
        Err(o) => return o,
    };
    match judge(h, watches, paths) {
        Some(Ok(e)) => Outcome::pass(vec![e]),
        Some(Err(e)) => Outcome::fail(vec![e]),
        None => Outcome::not_applicable(format!("{what} does not exist here")),
    }
}
