//! Mandatory access control: SELinux or AppArmor enforcing, BPF-LSM, containers' labels.

use super::{Check, Host, Outcome, Probe, Severity, GUIDE};
use serde_json::Value;

pub const CHECKS: &[Check] = &[
    Check {
        id: "MAC-ENFORCING",
        group: "mac",
        title: "SELinux is enforcing or AppArmor is enabled",
        severity: Severity::Medium,
        remediation: "Boot with SELinux enforcing (Flatcar: SELINUX=enforcing in /etc/selinux/config) or AppArmor enabled (`apparmor=1 security=apparmor`).",
        file: "/sys/module/apparmor/parameters/enabled",
        probe: Probe::Host(enforcing),
        ..GUIDE
    },
    Check {
        id: "MAC-BPF-LSM",
        group: "mac",
        title: "BPF-LSM is active",
        severity: Severity::Info,
        remediation: "Add `bpf` to the `lsm=` boot parameter so that LSM programs can enforce policy.",
        file: "/sys/kernel/security/lsm",
        probe: Probe::Host(bpf_lsm),
        ..GUIDE
    },
    Check {
        id: "MAC-CONTAINER-LABELS",
        group: "mac",
        title: "Running containers are confined (no unconfined AppArmor, SELinux or seccomp)",
        severity: Severity::High,
        remediation: "Recreate the containers without `--security-opt apparmor=unconfined`, `seccomp=unconfined`, `label=disable` or `--privileged`.",
        file: "/var/lib/docker/containers",
        probe: Probe::Host(container_labels),
        ..GUIDE
    },
];

fn enforcing(h: &Host) -> Outcome {
    let selinux = h.read("/sys/fs/selinux/enforce").map(|v| v.trim() == "1").ok();
    let apparmor = h.read("/sys/module/apparmor/parameters/enabled").map(|v| v.trim() == "Y").ok();
    let evidence = vec![
        format!(
            "SELinux: {}",
            match selinux {
                Some(true) => "enforcing",
                Some(false) => "permissive",
                None => "absent",
            }
        ),
        format!(
            "AppArmor: {}",
            match apparmor {
                Some(true) => "enabled",
                Some(false) => "disabled",
                None => "absent",
            }
        ),
    ];
    if selinux == Some(true) || apparmor == Some(true) {
        Outcome::pass(evidence)
    } else {
        Outcome::fail(evidence)
    }
}

fn bpf_lsm(h: &Host) -> Outcome {
    if !h.exists("/sys/kernel/security/lsm") {
        return Outcome::unknown("securityfs is not mounted (/sys/kernel/security/lsm missing); check is read-only and does not mount it");
    }
    match h.read("/sys/kernel/security/lsm") {
        Ok(l) if l.split(',').any(|m| m.trim() == "bpf") => {
            Outcome::pass(vec![format!("lsm: {}", l.trim())])
        }
        Ok(l) => Outcome::fail(vec![format!("lsm: {}", l.trim())]),
        Err(e) => Outcome::unknown(format!("cannot read /sys/kernel/security/lsm: {e}")),
    }
}

fn container_labels(h: &Host) -> Outcome {
    let dirs = h.dir("/var/lib/docker/containers");
    if !h.exists("/var/lib/docker") {
        return Outcome::not_applicable("no /var/lib/docker");
    }
    let mut against = Vec::new();
    let mut running = 0;
    for d in dirs {
        let read = |f: &str| {
            std::fs::read(d.join(f)).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        };
        let Some(config) = read("config.v2.json") else { continue };
        if config.pointer("/State/Running").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        running += 1;
        let name = config
            .get("Name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .trim_start_matches('/')
            .to_string();
        let host = read("hostconfig.json").unwrap_or(Value::Null);
        if host.get("Privileged").and_then(Value::as_bool) == Some(true) {
            against.push(format!("{name}: privileged"));
        }
        if config.get("AppArmorProfile").and_then(Value::as_str) == Some("unconfined") {
            against.push(format!("{name}: AppArmor unconfined"));
        }
        for opt in host
            .get("SecurityOpt")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            let o = opt.replace(':', "=");
            if o == "seccomp=unconfined" || o == "apparmor=unconfined" || o == "label=disable" {
                against.push(format!("{name}: {opt}"));
            }
        }
    }
    Outcome::fail_or_pass(against, || vec![format!("{running} running container(s) confined")])
}
