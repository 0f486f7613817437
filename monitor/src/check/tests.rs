//! Fixture tests of the checks: a tree laid out like a root filesystem stands in for the host.

use super::*;

#[test]
fn ids_are_unique_and_well_formed() {
    let mut seen = std::collections::HashSet::new();
    for c in all() {
        assert!(seen.insert(c.id), "duplicate id {}", c.id);
        assert!(
            c.id.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'.'),
            "{}",
            c.id
        );
        assert!(!c.title.is_empty() && !c.remediation.is_empty(), "{}", c.id);
    }
}

/// A fixture root: `files` written under a fresh directory.
pub(super) fn fixture(name: &str, files: &[(&str, &str)]) -> Host {
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

fn select(only: &[&str], skip: &[&str]) -> Selection {
    Selection {
        only: only.iter().map(|s| s.to_string()).collect(),
        skip: skip.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

pub(super) fn outcome(h: &Host, id: &str) -> Outcome {
    run(h, &select(&[id], &[])).unwrap().remove(0).outcome
}

#[test]
fn selection_and_exit_code() {
    let host = fixture("empty", &[]);
    let f = run(&host, &select(&["docker-"], &["DOCKER-VERSION"])).unwrap();
    assert!(
        !f.is_empty()
            && f.iter()
                .all(|f| f.check.id.starts_with("DOCKER-") && f.check.id != "DOCKER-VERSION")
    );
    assert!(run(&host, &select(&["NOPE"], &[])).is_err());
    // Unreadable state is unknown, never a pass.
    for id in
        ["NET-LISTEN", "USR-DOCKER-GROUP", "USR-EMPTY-PASSWORD", "KERN-SMT", "KERN-IP-FORWARD"]
    {
        assert_eq!(outcome(&host, id).status, Status::Unknown, "{id}");
    }
    let f = run(&host, &select(&["KERN-TMOUT", "KERN-SMT"], &[])).unwrap();
    assert_eq!(exit_code(&f), 10 + Severity::Low as u8, "TMOUT fails (low), SMT unknown");
    let f = run(&host, &select(&["KERN-SMT"], &[])).unwrap();
    assert_eq!(exit_code(&f), EXIT_ONLY_UNKNOWN, "nothing failed, something unknown");
    let f = run(&host, &select(&["SVC-"], &[])).unwrap();
    assert_eq!(exit_code(&f), 0, "not applicable only");
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
    assert!(
        o.evidence[0].ends_with("90-cloud:2: core ALL=(ALL) NOPASSWD: ALL"),
        "{:?}",
        o.evidence
    );
}

#[test]
fn docker_socket_unit_drop_ins_win() {
    let unit = "[Socket]\nListenStream=/run/docker.sock\nSocketMode=0660\nSocketUser=root\nSocketGroup=docker\n";
    let h =
        fixture("unit", &[("/usr/bin/dockerd", ""), ("/lib/systemd/system/docker.socket", unit)]);
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
    assert!(
        o.evidence[0].contains("0666 (from") && o.evidence[0].contains("99-open.conf"),
        "{:?}",
        o.evidence
    );
    assert_eq!(
        outcome(&fixture("nodocker", &[]), "DOCKER-SOCKET-UNIT").status,
        Status::NotApplicable
    );
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
            (
                "/sys/devices/system/cpu/vulnerabilities/mds",
                "Mitigation: Clear CPU buffers; SMT vulnerable\n",
            ),
            ("/proc/sys/net/ipv4/ip_forward", "0\n"),
        ],
    );
    assert_eq!(outcome(&h, "KERN-USB-STORAGE").status, Status::Pass);
    assert_eq!(outcome(&h, "KERN-TMOUT").status, Status::Pass);
    assert_eq!(outcome(&h, "KERN-IP-FORWARD").status, Status::Pass);
    let o = outcome(&h, "KERN-SMT");
    assert_eq!(o.status, Status::Fail);
    assert!(o.evidence[1].starts_with("mds: "));
    let h = fixture(
        "kernel-loaded",
        &[
            ("/etc/modprobe.d/usb.conf", "blacklist usb-storage\n"),
            ("/proc/modules", "usb_storage 1 0 - Live 0x0\n"),
        ],
    );
    assert_eq!(outcome(&h, "KERN-USB-STORAGE").status, Status::Fail);
    let h = fixture(
        "kernel-blacklist-only",
        &[("/etc/modprobe.d/usb.conf", "blacklist usb-storage\n"), ("/proc/modules", "")],
    );
    assert_eq!(
        outcome(&h, "KERN-USB-STORAGE").status,
        Status::Fail,
        "blacklist alone does not stop `modprobe usb-storage`"
    );
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
            (
                "/lib/systemd/system/etcd.service",
                "[Service]\nEnvironment=ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379\n",
            ),
            ("/lib/systemd/system/locksmithd.service", "[Service]\n"),
            ("/etc/coreos/update.conf", "LOCKSMITHD_ENDPOINT=http://10.0.0.1:2379\n"),
        ],
    );
    let o = outcome(&h, "SVC-ETCD-TLS");
    assert_eq!(o.status, Status::Fail);
    assert!(
        o.evidence.iter().any(|e| e == "ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379"),
        "{:?}",
        o.evidence
    );
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
