//! `monitor check`: the hardening guides' host settings, checked right now.
//!
//! Each check reads host state (files under /proc, /sys, /etc, /run, the Docker state and a
//! couple of read-only commands), and says pass, fail (with the evidence found and the
//! guide's remediation), not applicable, or unknown (with why it could not tell — never a
//! silent pass). Nothing is changed on the host.

pub mod audit;
pub mod docker;
pub mod host;
pub mod kernel;
pub mod mac;
pub mod network;
pub mod services;
pub mod users;

pub use host::Host;

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    /// The thing checked does not exist on this host (no sshd, no etcd).
    NotApplicable,
    /// The check could not tell; the reason says why.
    Unknown(String),
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::NotApplicable => "n/a",
            Status::Unknown(_) => "unknown",
        }
    }
}

/// What one check found.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: Status,
    /// Facts found, one per line (`/run/docker.sock mode 0666`).
    pub evidence: Vec<String>,
}

impl Outcome {
    pub fn pass(evidence: Vec<String>) -> Outcome {
        Outcome { status: Status::Pass, evidence }
    }
    pub fn fail(evidence: Vec<String>) -> Outcome {
        Outcome { status: Status::Fail, evidence }
    }
    /// Fail when there is evidence against, pass otherwise.
    pub fn fail_if_any(against: Vec<String>) -> Outcome {
        if against.is_empty() {
            Outcome::pass(Vec::new())
        } else {
            Outcome::fail(against)
        }
    }
    pub fn unknown(reason: impl fmt::Display) -> Outcome {
        Outcome { status: Status::Unknown(reason.to_string()), evidence: Vec::new() }
    }
    pub fn not_applicable(why: impl Into<String>) -> Outcome {
        Outcome { status: Status::NotApplicable, evidence: vec![why.into()] }
    }
}

/// A check: what it is, and how to run it.
pub struct Check {
    pub id: &'static str,
    pub group: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub remediation: &'static str,
    pub run: fn(&Host) -> Outcome,
}

/// A check with its outcome.
pub struct Finding {
    pub check: &'static Check,
    pub outcome: Outcome,
}

/// Every check, in report order.
pub fn all() -> Vec<&'static Check> {
    let mut v: Vec<&'static Check> = Vec::new();
    for group in [network::CHECKS, users::CHECKS, docker::CHECKS, audit::CHECKS, kernel::CHECKS, mac::CHECKS, services::CHECKS] {
        v.extend(group.iter());
    }
    v
}

/// Run the selected checks. `only` and `skip` take ids or id prefixes (`DOCKER-`).
pub fn run(host: &Host, only: &[String], skip: &[String]) -> Result<Vec<Finding>, String> {
    let checks = all();
    let matches = |id: &str, sel: &String| {
        let sel = sel.to_ascii_uppercase();
        id == sel || (sel.ends_with('-') && id.starts_with(&sel))
    };
    for sel in only.iter().chain(skip) {
        if !checks.iter().any(|c| matches(c.id, sel)) {
            return Err(format!("no check has the id {sel:?} (see `monitor check --list`)"));
        }
    }
    Ok(checks
        .into_iter()
        .filter(|c| only.is_empty() || only.iter().any(|s| matches(c.id, s)))
        .filter(|c| !skip.iter().any(|s| matches(c.id, s)))
        .map(|check| Finding { check, outcome: (check.run)(host) })
        .collect())
}

/// Exit code: 0 when nothing failed, else 10 + the worst failed severity (info 10 ... critical 14).
pub fn exit_code(findings: &[Finding]) -> u8 {
    findings
        .iter()
        .filter(|f| f.outcome.status == Status::Fail)
        .map(|f| 10 + f.check.severity as u8)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for c in all() {
            assert!(seen.insert(c.id), "duplicate id {}", c.id);
            assert!(c.id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'), "{}", c.id);
            assert!(!c.title.is_empty() && !c.remediation.is_empty(), "{}", c.id);
        }
    }

    /// A fixture root: `files` written under a fresh directory.
    fn fixture(name: &str, files: &[(&str, &str)]) -> Host {
        let root = std::env::temp_dir().join(format!("monitor-check-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (path, text) in files {
            let p = root.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        std::fs::create_dir_all(&root).unwrap();
        Host::at(root)
    }

    fn outcome(h: &Host, id: &str) -> Outcome {
        run(h, &[id.into()], &[]).unwrap().remove(0).outcome
    }

    #[test]
    fn selection_and_exit_code() {
        let host = fixture("empty", &[]);
        let f = run(&host, &["docker-".into()], &["DOCKER-VERSION".into()]).unwrap();
        assert!(!f.is_empty() && f.iter().all(|f| f.check.id.starts_with("DOCKER-") && f.check.id != "DOCKER-VERSION"));
        assert!(run(&host, &["NOPE".into()], &[]).is_err());
        // Unreadable state is unknown, never a pass.
        for id in ["NET-LISTEN", "USR-DOCKER-GROUP", "USR-EMPTY-PASSWORD", "KERN-SMT", "KERN-IP-FORWARD"] {
            assert!(matches!(outcome(&host, id).status, Status::Unknown(_)), "{id}");
        }
        let f = run(&host, &["KERN-TMOUT".into(), "KERN-SMT".into()], &[]).unwrap();
        assert_eq!(exit_code(&f), 10 + Severity::Low as u8, "TMOUT fails (low), SMT unknown");
    }

    #[test]
    fn users_groups_and_sudoers() {
        let h = fixture(
            "users",
            &[
                ("/etc/passwd", "root:x:0:0::/root:/bin/bash\ncore:x:500:500::/home/core:/bin/bash\nsvc:x:600:600::/:/usr/sbin/nologin\nopen:x:700:700::/:/bin/sh\n"),
                ("/etc/group", "docker:x:233:core\nsudo:x:27:\nwheel:x:10:\ncore:x:500:\n"),
                ("/etc/shadow", "root:!:1::::::\ncore:$6$x:1::::::\nsvc::1::::::\nopen::1::::::\n"),
                ("/etc/sudoers.d/90-cloud", "# comment NOPASSWD\ncore ALL=(ALL) NOPASSWD: ALL\n"),
            ],
        );
        let o = outcome(&h, "USR-DOCKER-GROUP");
        assert_eq!(o.status, Status::Fail);
        assert_eq!(o.evidence, vec!["group docker: core (including core)"]);
        assert_eq!(outcome(&h, "USR-SUDO-GROUP").status, Status::Pass);
        let o = outcome(&h, "USR-EMPTY-PASSWORD");
        assert_eq!(o.evidence.len(), 1, "svc has nologin: {:?}", o.evidence);
        assert!(o.evidence[0].starts_with("open "));
        assert!(outcome(&h, "USR-LOCKED-SHELL").evidence[0].starts_with("root "));
        let o = outcome(&h, "USR-NOPASSWD-SUDO");
        assert_eq!(o.status, Status::Fail);
        assert!(o.evidence[0].ends_with("90-cloud:2: core ALL=(ALL) NOPASSWD: ALL"), "{:?}", o.evidence);
    }

    #[test]
    fn docker_socket_unit_drop_ins_win() {
        let unit = "[Socket]\nListenStream=/run/docker.sock\nSocketMode=0660\nSocketUser=root\nSocketGroup=docker\n";
        let h = fixture("unit", &[("/usr/bin/dockerd", ""), ("/lib/systemd/system/docker.socket", unit)]);
        assert_eq!(outcome(&h, "DOCKER-SOCKET-UNIT").status, Status::Pass);
        let h = fixture(
            "unit-open",
            &[
                ("/usr/bin/dockerd", ""),
                ("/lib/systemd/system/docker.socket", unit),
                ("/etc/systemd/system/docker.socket.d/99-open.conf", "[Socket]\nSocketMode=0666\n"),
            ],
        );
        let o = outcome(&h, "DOCKER-SOCKET-UNIT");
        assert_eq!(o.status, Status::Fail);
        assert!(o.evidence[0].contains("0666 (from") && o.evidence[0].contains("99-open.conf"), "{:?}", o.evidence);
        assert_eq!(outcome(&fixture("nodocker", &[]), "DOCKER-SOCKET-UNIT").status, Status::NotApplicable);
    }

    #[test]
    fn kernel_files() {
        let h = fixture(
            "kernel",
            &[
                ("/etc/modprobe.d/usb.conf", "install usb-storage /bin/false\n"),
                ("/proc/modules", "ext4 1 0 - Live 0x0\n"),
                ("/etc/profile.d/tmout.sh", "readonly TMOUT=900; export TMOUT\n"),
                ("/sys/devices/system/cpu/smt/control", "on\n"),
                ("/sys/devices/system/cpu/vulnerabilities/mds", "Mitigation: Clear CPU buffers; SMT vulnerable\n"),
                ("/proc/sys/net/ipv4/ip_forward", "0\n"),
            ],
        );
        assert_eq!(outcome(&h, "KERN-USB-STORAGE").status, Status::Pass);
        assert_eq!(outcome(&h, "KERN-TMOUT").status, Status::Pass);
        assert_eq!(outcome(&h, "KERN-IP-FORWARD").status, Status::Pass);
        let o = outcome(&h, "KERN-SMT");
        assert_eq!(o.status, Status::Fail);
        assert!(o.evidence[1].starts_with("mds: "));
        let h = fixture("kernel-loaded", &[("/etc/modprobe.d/usb.conf", "blacklist usb-storage\n"), ("/proc/modules", "usb_storage 1 0 - Live 0x0\n")]);
        assert_eq!(outcome(&h, "KERN-USB-STORAGE").status, Status::Fail);
        let h = fixture("kernel-blacklist-only", &[("/etc/modprobe.d/usb.conf", "blacklist usb-storage\n"), ("/proc/modules", "")]);
        assert_eq!(outcome(&h, "KERN-USB-STORAGE").status, Status::Fail, "blacklist alone does not stop `modprobe usb-storage`");
        let h = fixture("kernel-nomodules", &[]);
        assert_eq!(outcome(&h, "KERN-USB-STORAGE").status, Status::Pass);
        let h = fixture("kernel-builtin", &[("/sys/module/usb_storage/parameters/delay_use", "1")]);
        assert_eq!(outcome(&h, "KERN-USB-STORAGE").status, Status::Fail);
    }

    #[test]
    fn cluster_services_only_where_they_exist() {
        let h = fixture("noservices", &[]);
        for id in ["SVC-ETCD-TLS", "SVC-FLEET-TLS", "SVC-LOCKSMITH-TLS"] {
            assert_eq!(outcome(&h, id).status, Status::NotApplicable, "{id}");
        }
        let h = fixture(
            "etcd-plain",
            &[
                ("/lib/systemd/system/etcd.service", "[Service]\nEnvironment=ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379\n"),
                ("/lib/systemd/system/locksmithd.service", "[Service]\n"),
                ("/etc/coreos/update.conf", "LOCKSMITHD_ENDPOINT=http://10.0.0.1:2379\n"),
            ],
        );
        let o = outcome(&h, "SVC-ETCD-TLS");
        assert_eq!(o.status, Status::Fail);
        assert!(o.evidence.iter().any(|e| e == "ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379"), "{:?}", o.evidence);
        assert_eq!(outcome(&h, "SVC-LOCKSMITH-TLS").status, Status::Fail);
        let h = fixture(
            "etcd-tls",
            &[
                ("/lib/systemd/system/etcd.service", "[Service]\n"),
                ("/etc/etcd/etcd.conf", "ETCD_LISTEN_CLIENT_URLS=https://0.0.0.0:2379\nETCD_CERT_FILE=/etc/ssl/etcd.pem\nETCD_CLIENT_CERT_AUTH=true\n"),
            ],
        );
        assert_eq!(outcome(&h, "SVC-ETCD-TLS").status, Status::Pass);
    }
}
