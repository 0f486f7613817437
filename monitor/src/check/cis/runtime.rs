//! CIS section 5, how each container runs: resource limits (memory, CPU, pids), read-only
//! root, restart policy, published ports and the interfaces they bind, ulimits, cgroup
//! parent, health checks, the default bridge, and sshd among a running container's
//! processes. One finding per container in Docker's state.

use super::{cis, manual};
use crate::check::docker_state::{Container, Healthcheck};
use crate::check::{Check, Host, Outcome, Probe};

const G: &str = "cis-5 runtime";
const F: &str = "/var/lib/docker/containers";

pub const CHECKS: &[Check] = &[
    cis!("5.7", 1, Medium, G, "/proc", "Ensure sshd is not run within containers",
        "Remove sshd from the container; use `docker exec` for administration.", Probe::Container(sshd)),
    cis!("5.8", 1, Low, G, F, "Ensure privileged ports are not mapped within containers",
        "Publish container ports on host ports above 1023.", Probe::Container(privileged_ports)),
    cis!("5.9", 1, Info, G, F, "Ensure that only needed ports are open on the container",
        "Publish only the ports the service needs (no -P / --publish-all).", Probe::Container(open_ports)),
    cis!("5.11", 1, Medium, G, F, "Ensure that the memory usage for containers is limited",
        "Recreate the container with --memory (e.g. --memory 256m).", Probe::Container(memory)),
    cis!("5.12", 1, Low, G, F, "Ensure that CPU priority is set appropriately on containers",
        "Recreate the container with --cpus, --cpu-shares or --cpu-quota set to its share of the host.", Probe::Container(cpu)),
    cis!("5.13", 1, Medium, G, F, "Ensure that the container's root filesystem is mounted as read only",
        "Recreate the container with --read-only (and --tmpfs or volumes for what it must write).", Probe::Container(read_only)),
    cis!("5.14", 1, Medium, G, F, "Ensure that incoming container traffic is bound to a specific host interface",
        "Publish ports on a specific address (`-p 10.0.0.5:8080:80`), not on every interface.", Probe::Container(bound_interface)),
    cis!("5.15", 1, Low, G, F, "Ensure that the 'on-failure' container restart policy is set to '5'",
        "Recreate the container with --restart on-failure:5 (or no restart policy).", Probe::Container(restart_policy)),
    cis!("5.19", 1, Info, G, F, "Ensure that the default ulimit is overwritten at runtime if needed",
        "Where the daemon's default does not suit a container, set --ulimit for it.", Probe::Container(ulimits)),
    cis!("5.25", 1, Low, G, F, "Ensure that cgroup usage is confirmed",
        "Do not use --cgroup-parent unless a dedicated parent cgroup is intended.", Probe::Container(cgroup_parent)),
    cis!("5.27", 1, Low, G, F, "Ensure that container health is checked at runtime",
        "Give the container a health check (HEALTHCHECK in the image or --health-cmd) and watch its status.", Probe::Container(health)),
    cis!("5.28", 1, Info, G, F, "Ensure that Docker commands always make use of the latest version of their image",
        "Pull images by digest or with --pull always, so that a stale local copy is never used.",
        Probe::HostArg(manual, "whether a cached image was used instead of the newest is decided per `docker run`: review how containers are deployed (pinned digests, --pull always)")),
    cis!("5.29", 1, Medium, G, F, "Ensure that the PIDs cgroup limit is used",
        "Recreate the container with --pids-limit (e.g. 100).", Probe::Container(pids)),
    cis!("5.30", 1, Low, G, F, "Ensure that Docker's default bridge 'docker0' is not used",
        "Attach the container to a user-defined network instead of the default bridge.", Probe::Container(default_bridge)),
];

fn sshd(h: &Host, c: &Container) -> Outcome {
    if c.state != "running" && c.state != "paused" {
        return Outcome::not_applicable(format!(
            "the container is {}: it has no processes",
            c.state
        ));
    }
    let procs = h.docker().processes(h, &c.id);
    if procs.is_empty() {
        return Outcome::unknown("no process of the container found in /proc");
    }
    let sshd: Vec<String> = procs
        .iter()
        .filter(|(_, comm)| comm == "sshd")
        .map(|(pid, _)| format!("sshd running (host pid {pid})"))
        .collect();
    Outcome::fail_or_pass(sshd, || vec![format!("{} process(es), no sshd", procs.len())])
}

/// Published ports: (container port, host ip, host port).
fn published(c: &Container) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (port, bindings) in c.host.port_bindings.iter().flatten() {
        for b in bindings.iter().flatten() {
            out.push((port.clone(), b.host_ip.clone(), b.host_port.clone()));
        }
    }
    out
}

fn show((port, ip, host): &(String, String, String)) -> String {
    let ip = if ip.is_empty() { "0.0.0.0" } else { ip };
    let host = if host.is_empty() { "(random)" } else { host };
    format!("{ip}:{host} -> {port}")
}

fn privileged_ports(_: &Host, c: &Container) -> Outcome {
    let ports = published(c);
    let bad: Vec<String> = ports
        .iter()
        .filter(|(_, _, host)| host.parse::<u16>().is_ok_and(|p| p > 0 && p < 1024))
        .map(|p| format!("published on privileged host port: {}", show(p)))
        .collect();
    Outcome::fail_or_pass(bad, || {
        vec![format!("{} published port(s), none below 1024", ports.len())]
    })
}

fn open_ports(_: &Host, c: &Container) -> Outcome {
    let ports: Vec<String> = published(c).iter().map(show).collect();
    Outcome::warn_or_pass("confirm every published port is needed", ports, "no published port")
}

fn memory(_: &Host, c: &Container) -> Outcome {
    match c.host.memory {
        0 => Outcome::fail(vec!["no memory limit".into()]),
        m => Outcome::pass(vec![format!("memory limit {} MiB", m / (1 << 20))]),
    }
}

fn cpu(_: &Host, c: &Container) -> Outcome {
    let h = &c.host;
    let mut set = Vec::new();
    if h.nano_cpus > 0 {
        set.push(format!("--cpus {}", h.nano_cpus as f64 / 1e9));
    }
    if h.cpu_shares > 0 && h.cpu_shares != 1024 {
        set.push(format!("--cpu-shares {}", h.cpu_shares));
    }
    if h.cpu_quota > 0 {
        set.push(format!("--cpu-quota {}", h.cpu_quota));
    }
    if !h.cpuset_cpus.is_empty() {
        set.push(format!("--cpuset-cpus {}", h.cpuset_cpus));
    }
    if set.is_empty() {
        Outcome::fail(vec!["no CPU limit or share set".into()])
    } else {
        Outcome::pass(set)
    }
}

fn read_only(_: &Host, c: &Container) -> Outcome {
    Outcome::pass_if(
        c.host.readonly_rootfs,
        "root filesystem read-only",
        "root filesystem writable",
    )
}

fn bound_interface(_: &Host, c: &Container) -> Outcome {
    let ports = published(c);
    if ports.is_empty() {
        return Outcome::pass(vec!["no published port".into()]);
    }
    let any = |ip: &str| ip.is_empty() || ip == "0.0.0.0" || ip == "::";
    let bad: Vec<String> = ports
        .iter()
        .filter(|(_, ip, _)| any(ip))
        .map(|p| format!("published on every interface: {}", show(p)))
        .collect();
    Outcome::fail_or_pass(bad, || ports.iter().map(show).collect())
}

fn restart_policy(_: &Host, c: &Container) -> Outcome {
    let p = &c.host.restart_policy;
    match p.name.as_str() {
        "" | "no" => Outcome::pass(vec!["restart policy: no".into()]),
        "on-failure" if (1..=5).contains(&p.maximum_retry_count) => {
            Outcome::pass(vec![format!("restart policy: on-failure:{}", p.maximum_retry_count)])
        }
        "on-failure" => Outcome::fail(vec![format!(
            "restart policy: on-failure with {} retries (unbounded when 0)",
            p.maximum_retry_count
        )]),
        other => Outcome::fail(vec![format!("restart policy: {other}: restarts without bound")]),
    }
}

fn ulimits(_: &Host, c: &Container) -> Outcome {
    let u: Vec<String> = c
        .host
        .ulimits
        .iter()
        .flatten()
        .map(|u| format!("--ulimit {}={}:{}", u.name, u.soft, u.hard))
        .collect();
    if u.is_empty() {
        Outcome::warn(
            "the container uses the daemon's default ulimits: confirm they suit it",
            vec!["no --ulimit".into()],
        )
    } else {
        Outcome::pass(u)
    }
}

fn cgroup_parent(_: &Host, c: &Container) -> Outcome {
    if c.host.cgroup_parent.is_empty() {
        Outcome::pass(vec!["default cgroup parent".into()])
    } else {
        Outcome::warn(
            "the container runs under a custom cgroup parent: confirm it is intended",
            vec![format!("--cgroup-parent {}", c.host.cgroup_parent)],
        )
    }
}

fn health(_: &Host, c: &Container) -> Outcome {
    if !Healthcheck::defined(&c.config.config.healthcheck) {
        return Outcome::fail(vec![
            "no health check (neither the image's HEALTHCHECK nor --health-cmd)".into(),
        ]);
    }
    let status = c.config.state.health.as_ref().map(|h| h.status.clone()).filter(|s| !s.is_empty());
    Outcome::pass(vec![match status {
        Some(s) => format!("health check defined; status {s}"),
        None => format!("health check defined; the container is {}", c.state),
    }])
}

fn pids(_: &Host, c: &Container) -> Outcome {
    match c.host.pids_limit {
        Some(n) if n > 0 => Outcome::pass(vec![format!("pids limit {n}")]),
        _ => {
            Outcome::fail(
                vec!["no pids limit: a fork bomb can exhaust the host's processes".into()],
            )
        }
    }
}

fn default_bridge(_: &Host, c: &Container) -> Outcome {
    match c.host.network_mode.as_str() {
        "" | "default" | "bridge" => Outcome::warn("the container is on Docker's default bridge, where every container can reach the others: prefer a user-defined network", vec![format!("--network {}", if c.host.network_mode.is_empty() { "default" } else { &c.host.network_mode })]),
        m => Outcome::pass(vec![format!("--network {m}")]),
    }
}
