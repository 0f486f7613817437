//! CIS section 2, the Docker daemon's configuration: daemon.json (or the file
//! `--config-file` names) and dockerd's command line, read from /proc. 2.2, 2.5, 2.9, 2.14
//! and 2.15 are guide checks (`DOCKER-ICC`, ...).

use super::cis;
use crate::check::docker_state::{installed, Daemon, Found};
use crate::check::{Check, Host, Outcome, Probe};

const G: &str = "cis-2 daemon";
const F: &str = "/etc/docker/daemon.json";

pub const CHECKS: &[Check] = &[
    cis!("2.1", 1, Info, G, "/usr/sbin/dockerd", "Run the Docker daemon as a non-root user, if possible",
        "Where the workloads allow it, run Docker in rootless mode (dockerd-rootless-setuptool.sh install).", Probe::Host(rootless)),
    cis!("2.3", 1, Low, G, F, "Ensure the logging level is set to 'info'",
        "Remove \"log-level\" from daemon.json and --log-level/-l from dockerd's command line, or set them to \"info\".", Probe::Host(log_level)),
    cis!("2.4", 1, Medium, G, F, "Ensure Docker is allowed to make changes to iptables",
        "Remove \"iptables\": false from daemon.json and --iptables=false from dockerd's command line: Docker then keeps the firewall in step with the containers' networks.", Probe::Host(iptables)),
    cis!("2.6", 1, Low, G, F, "Ensure aufs storage driver is not used",
        "Use overlay2: set \"storage-driver\": \"overlay2\" (and migrate the images).", Probe::Host(aufs)),
    cis!("2.7", 1, High, G, F, "Ensure TLS authentication for Docker daemon is configured",
        "If the API must listen on TCP, set tlsverify with tlscacert, tlscert and tlskey (daemon.json or --tlsverify --tlscacert= --tlscert= --tlskey=) and use port 2376.", Probe::Host(tls)),
    cis!("2.8", 1, Low, G, F, "Ensure the default ulimit is configured appropriately",
        "Set \"default-ulimits\" in daemon.json (e.g. nofile and nproc) to what the workloads need.", Probe::Host(default_ulimits)),
    cis!("2.10", 2, Low, G, F, "Ensure the default cgroup usage has been confirmed",
        "Leave \"cgroup-parent\" unset unless a dedicated parent cgroup is intended.", Probe::Host(cgroup_parent)),
    cis!("2.11", 2, Low, G, F, "Ensure base device size is not changed until needed",
        "Remove dm.basesize from \"storage-opts\" unless the workloads need larger base devices.", Probe::Host(base_device_size)),
    cis!("2.12", 2, Medium, G, F, "Ensure that authorization for Docker client commands is enabled",
        "Install an authorization plugin and set \"authorization-plugins\" in daemon.json (--authorization-plugin).", Probe::Host(authorization)),
    cis!("2.13", 2, Low, G, F, "Ensure centralized and remote logging is configured",
        "Set \"log-driver\" to a remote driver (syslog, journald, gelf, fluentd, splunk, ...) with its \"log-opts\".", Probe::Host(remote_logging)),
    cis!("2.16", 1, Low, G, F, "Ensure Userland Proxy is Disabled",
        "Set \"userland-proxy\": false in daemon.json (--userland-proxy=false): published ports are then forwarded by the kernel's NAT.", Probe::Host(userland_proxy)),
    cis!("2.17", 2, Low, G, F, "Ensure that a daemon-wide custom seccomp profile is applied if appropriate",
        "Where the default profile does not fit, set \"seccomp-profile\" to a reviewed profile file (never \"unconfined\").", Probe::Host(seccomp_profile)),
    cis!("2.18", 1, Low, G, F, "Ensure that experimental features are not implemented in production",
        "Remove \"experimental\": true from daemon.json and --experimental from dockerd's command line.", Probe::Host(experimental)),
];

/// The daemon's configuration, or the outcome when there is none to read.
fn daemon(h: &Host) -> Result<&Daemon, Outcome> {
    if !installed(h) {
        return Err(Outcome::not_applicable("Docker is not installed"));
    }
    Ok(&h.docker().daemon)
}

/// Run `judge` on a setting, with the unreadable-config and not-installed cases handled.
fn with<T>(
    h: &Host,
    read: impl FnOnce(&Daemon) -> Result<T, String>,
    judge: impl FnOnce(&Daemon, T) -> Outcome,
) -> Outcome {
    match daemon(h) {
        Err(o) => o,
        Ok(d) => match read(d) {
            Ok(v) => judge(d, v),
            Err(e) => Outcome::unknown(e),
        },
    }
}

fn unset(d: &Daemon, key: &str) -> String {
    format!("{key} not set ({})", d.sources())
}

/// A setting `read` looks up: `judge` gets its value (`None`: not set) and the evidence,
/// which says where it is set or that `key` is not.
fn judged<T>(
    h: &Host,
    key: &str,
    read: impl FnOnce(&Daemon) -> Result<Option<Found<T>>, String>,
    judge: impl FnOnce(Option<T>, String) -> Outcome,
) -> Outcome {
    with(h, read, |d, v| match v {
        Some((value, s)) => judge(Some(value), s),
        None => judge(None, unset(d, key)),
    })
}

/// A string setting (`key` in daemon.json, `flags` on the command line).
fn setting(
    h: &Host,
    key: &str,
    flags: &[&str],
    judge: impl FnOnce(Option<String>, String) -> Outcome,
) -> Outcome {
    judged(h, key, |d| d.str_setting(key, flags), judge)
}

/// A true/false setting.
fn switch(
    h: &Host,
    key: &str,
    flag: &str,
    judge: impl FnOnce(Option<bool>, String) -> Outcome,
) -> Outcome {
    judged(h, key, |d| d.bool_setting(key, flag), judge)
}

fn rootless(h: &Host) -> Outcome {
    let d = match daemon(h) {
        Ok(d) => d,
        Err(o) => return o,
    };
    match (d.pid, d.uid) {
        (None, _) => Outcome::unknown("dockerd is not running: which user it runs as is unknown"),
        (Some(pid), Some(uid)) if uid != 0 => Outcome::pass(vec![format!("dockerd (pid {pid}) runs as uid {uid}")]),
        (Some(pid), Some(_)) => Outcome::warn("dockerd runs as root: consider rootless mode where the workloads allow it (a manual judgement in the benchmark)", vec![format!("dockerd (pid {pid}) runs as uid 0")]),
        (Some(pid), None) => Outcome::unknown(format!("cannot read /proc/{pid}/status")),
    }
}

fn log_level(h: &Host) -> Outcome {
    setting(h, "log-level", &["--log-level", "-l"], |v, s| match v.as_deref() {
        None => Outcome::pass(vec![format!("{s} (default: info)")]),
        Some("info") => Outcome::pass(vec![s]),
        Some(_) => Outcome::fail(vec![format!("{s}: not info")]),
    })
}

fn iptables(h: &Host) -> Outcome {
    switch(h, "iptables", "--iptables", |v, s| match v {
        Some(false) => Outcome::fail(vec![format!(
            "{s}: Docker does not manage the firewall rules of its networks"
        )]),
        Some(true) => Outcome::pass(vec![s]),
        None => Outcome::pass(vec![format!("{s} (default: true)")]),
    })
}

fn aufs(h: &Host) -> Outcome {
    let root = h.docker().root.clone();
    setting(h, "storage-driver", &["--storage-driver", "-s"], |v, s| match v.as_deref() {
        Some("aufs") => Outcome::fail(vec![s]),
        Some(_) => Outcome::pass(vec![s]),
        None => {
            // Not configured: the driver in use is the one whose directory holds the images.
            let in_use: Vec<String> = h
                .dir(&format!("{root}/image"))
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            let shown = format!(
                "{s}; image store: {}",
                if in_use.is_empty() { "none".to_string() } else { in_use.join(", ") }
            );
            Outcome::pass_if(!in_use.iter().any(|d| d == "aufs"), shown.clone(), shown)
        }
    })
}

fn tls(h: &Host) -> Outcome {
    with(
        h,
        |d| d.hosts(),
        |d, hosts| {
            let tcp: Vec<&Found<String>> =
                hosts.iter().filter(|(a, _)| a.starts_with("tcp://")).collect();
            if tcp.is_empty() {
                return Outcome::not_applicable(format!(
                    "the API does not listen on TCP ({})",
                    hosts
                        .iter()
                        .map(|(a, s)| format!("{a} from {s}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let mut evidence: Vec<String> =
                tcp.iter().map(|(a, s)| format!("listens on {a} ({s})")).collect();
            let mut missing = Vec::new();
            match d.bool_setting("tlsverify", "--tlsverify") {
                Ok(Some((true, s))) => evidence.push(s),
                Ok(_) => missing.push("tlsverify"),
                Err(e) => return Outcome::unknown(e),
            }
            for key in ["tlscacert", "tlscert", "tlskey"] {
                match d.str_setting(key, &[&format!("--{key}")]) {
                    Ok(Some((_, s))) => evidence.push(s),
                    Ok(None) => missing.push(key),
                    Err(e) => return Outcome::unknown(e),
                }
            }
            if missing.is_empty() {
                Outcome::pass(evidence)
            } else {
                evidence.push(format!(
                    "not set: {}: clients are not authenticated by certificate",
                    missing.join(", ")
                ));
                Outcome::fail(evidence)
            }
        },
    )
}

/// A list setting: passes with its values where it is set; `if_unset` judges its absence
/// (given the evidence that says so).
fn listed(
    h: &Host,
    key: &str,
    flags: &[&str],
    if_unset: impl FnOnce(String) -> Outcome,
) -> Outcome {
    with(
        h,
        |d| d.list_setting(key, flags),
        |d, v| {
            if v.is_empty() {
                if_unset(unset(d, key))
            } else {
                Outcome::pass(v.into_iter().map(|(_, s)| s).collect())
            }
        },
    )
}

fn default_ulimits(h: &Host) -> Outcome {
    listed(h, "default-ulimits", &["--default-ulimit"], |unset| {
        Outcome::warn("no daemon-wide default ulimits: containers inherit dockerd's limits; confirm they suit the workloads", vec![unset])
    })
}

fn cgroup_parent(h: &Host) -> Outcome {
    setting(h, "cgroup-parent", &["--cgroup-parent"], |v, s| match v {
        None => Outcome::pass(vec![s]),
        Some(_) => {
            Outcome::warn("a default cgroup parent is set: confirm it is the intended one", vec![s])
        }
    })
}

fn base_device_size(h: &Host) -> Outcome {
    with(
        h,
        |d| d.list_setting("storage-opts", &["--storage-opt"]),
        |d, v| {
            let set: Vec<String> = v
                .into_iter()
                .filter(|(o, _)| o.starts_with("dm.basesize"))
                .map(|(_, s)| s)
                .collect();
            let reason = "the base device size is changed: confirm the workloads need it";
            Outcome::warn_or_pass(reason, set, &unset(d, "dm.basesize"))
        },
    )
}

fn authorization(h: &Host) -> Outcome {
    listed(h, "authorization-plugins", &["--authorization-plugin"], |unset| {
        Outcome::fail(vec![format!("{unset}: every client of the API may do everything")])
    })
}

fn remote_logging(h: &Host) -> Outcome {
    setting(h, "log-driver", &["--log-driver"], |v, s| match v.as_deref() {
        Some(driver) if !["json-file", "local", "none"].contains(&driver) => Outcome::pass(vec![s]),
        Some(_) => Outcome::fail(vec![format!("{s}: container logs stay on this host")]),
        None => Outcome::fail(vec![format!(
            "{s} (default json-file): container logs stay on this host"
        )]),
    })
}

fn userland_proxy(h: &Host) -> Outcome {
    switch(h, "userland-proxy", "--userland-proxy", |v, s| match v {
        Some(false) => Outcome::pass(vec![s]),
        Some(true) => Outcome::fail(vec![s]),
        None => Outcome::fail(vec![format!(
            "{s} (default: true, a docker-proxy process per published port)"
        )]),
    })
}

fn seccomp_profile(h: &Host) -> Outcome {
    setting(h, "seccomp-profile", &["--seccomp-profile"], |v, s| {
        match v.as_deref() {
        Some("unconfined") => {
            Outcome::fail(vec![format!("{s}: containers run without seccomp")])
        }
        Some(_) => Outcome::pass(vec![s]),
        None => Outcome::warn("Docker's built-in default seccomp profile is in use: decide whether a custom daemon-wide profile is appropriate", vec![s]),
    }
    })
}

fn experimental(h: &Host) -> Outcome {
    switch(h, "experimental", "--experimental", |v, s| {
        Outcome::pass_if(v != Some(true), s.clone(), s)
    })
}
