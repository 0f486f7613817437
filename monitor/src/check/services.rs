//! Cluster services of the CoreOS lineage (etcd, fleet, locksmith): where they exist, their
//! sockets and endpoints use TLS.

use super::{Check, Host, Outcome, Probe, Severity, GUIDE};

pub const CHECKS: &[Check] = &[
    Check {
        id: "SVC-ETCD-TLS",
        group: "services",
        title: "etcd serves clients and peers over TLS",
        severity: Severity::High,
        remediation: "Set ETCD_CERT_FILE/ETCD_KEY_FILE/ETCD_CLIENT_CERT_AUTH and https:// listen URLs (and the ETCD_PEER_* equivalents).",
        file: "/etc/etcd/etcd.conf",
        probe: Probe::Host(etcd),
        ..GUIDE
    },
    Check {
        id: "SVC-FLEET-TLS",
        group: "services",
        title: "fleet talks to etcd over TLS and its API socket is not world-accessible",
        severity: Severity::Medium,
        remediation: "Set FLEET_ETCD_SERVERS to https:// URLs with FLEET_ETCD_CAFILE/CERTFILE/KEYFILE; keep fleet.socket at SocketMode=0660.",
        file: "/etc/fleet/fleet.conf",
        probe: Probe::Host(fleet),
        ..GUIDE
    },
    Check {
        id: "SVC-LOCKSMITH-TLS",
        group: "services",
        title: "locksmith talks to etcd over TLS",
        severity: Severity::Medium,
        remediation: "Set LOCKSMITHD_ENDPOINT to https:// URLs with LOCKSMITHD_ETCD_CAFILE/CERTFILE/KEYFILE.",
        file: "/etc/coreos/update.conf",
        probe: Probe::Host(locksmith),
        ..GUIDE
    },
];

/// `KEY=value` settings of a service from its unit (Environment=) and env files.
fn env_settings(h: &Host, unit: &str, files: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut texts: Vec<String> = files.iter().filter_map(|f| h.read(f).ok()).collect();
    if let Some(v) = h.unit_setting(unit, "Environment") {
        texts.push(v.value);
    }
    for t in texts {
        for part in
            t.lines().flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        {
            if let Some((k, v)) = part.trim_matches('"').split_once('=') {
                out.push((k.to_string(), v.trim_matches('"').to_string()));
            }
        }
    }
    out
}

fn urls_without_tls(settings: &[(String, String)], keys: &[&str]) -> Vec<String> {
    settings
        .iter()
        .filter(|(k, _)| keys.contains(&k.as_str()))
        .filter(|(_, v)| v.split(',').any(|u| u.starts_with("http://")))
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

fn etcd(h: &Host) -> Outcome {
    let present = ["etcd.service", "etcd2.service", "etcd-member.service"]
        .iter()
        .find(|u| h.unit_exists(u))
        .copied();
    let Some(unit) = present.or_else(|| h.exists("/etc/etcd/etcd.conf").then_some("etcd.service"))
    else {
        return Outcome::not_applicable("etcd is not installed");
    };
    let s = env_settings(h, unit, &["/etc/etcd/etcd.conf", "/etc/default/etcd"]);
    let mut against = urls_without_tls(
        &s,
        &[
            "ETCD_LISTEN_CLIENT_URLS",
            "ETCD_ADVERTISE_CLIENT_URLS",
            "ETCD_LISTEN_PEER_URLS",
            "ETCD_INITIAL_ADVERTISE_PEER_URLS",
        ],
    );
    if !s.iter().any(|(k, _)| k == "ETCD_CERT_FILE") {
        against.push("ETCD_CERT_FILE not set".into());
    }
    if !s.iter().any(|(k, v)| k == "ETCD_CLIENT_CERT_AUTH" && v == "true") {
        against.push("ETCD_CLIENT_CERT_AUTH not true".into());
    }
    Outcome::fail_if_any(against)
}

fn fleet(h: &Host) -> Outcome {
    if !h.unit_exists("fleet.service") {
        return Outcome::not_applicable("fleet is not installed");
    }
    let s = env_settings(h, "fleet.service", &["/etc/fleet/fleet.conf"]);
    let mut against = urls_without_tls(&s, &["FLEET_ETCD_SERVERS", "etcd_servers"]);
    if let Some(mode) =
        h.unit_setting("fleet.socket", "SocketMode").map(|v| v.value).filter(|v| !v.is_empty())
    {
        if u32::from_str_radix(&mode, 8).is_ok_and(|m| m & 0o007 != 0) {
            against.push(format!("fleet.socket SocketMode={mode}"));
        }
    }
    Outcome::fail_if_any(against)
}

fn locksmith(h: &Host) -> Outcome {
    if !h.unit_exists("locksmithd.service") {
        return Outcome::not_applicable("locksmith is not installed");
    }
    let s = env_settings(h, "locksmithd.service", &["/etc/coreos/update.conf"]);
    Outcome::fail_if_any(urls_without_tls(&s, &["LOCKSMITHD_ENDPOINT"]))
}
