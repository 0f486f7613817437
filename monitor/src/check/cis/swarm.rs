//! Swarm mode: CIS 5.1 (not enabled unless needed) and section 7 (its configuration).
//! Whether this node is in a swarm, and how it listens, is in
//! `<data-root>/swarm/docker-state.json`; a manager also keeps `swarm/raft`. The cluster's
//! own settings (managers, networks, autolock, certificates) live in the encrypted raft
//! store, readable only through the API this check does not use: on a swarm node those
//! recommendations are a manual review with the command that shows them.

use super::cis;
use crate::check::{Check, Host, Outcome, Probe};
use serde::Deserialize;

const G5: &str = "cis-5 runtime";
const G: &str = "cis-7 swarm";
const F: &str = "/var/lib/docker/swarm/docker-state.json";

pub const SECTION_5: &[Check] = &[cis!("5.1", 1, Medium, G5, F, "Ensure swarm mode is not Enabled, if not needed",
    "If this host need not be in a swarm: `docker swarm leave` (a manager: `docker swarm leave --force` after handing over).", Probe::Host(swarm_mode))];

pub const CHECKS: &[Check] = &[
    cis!("7.1", 1, Medium, G, F, "Ensure that the minimum number of manager nodes have been created in a swarm",
        "Keep an odd number of managers, no more than needed for fault tolerance (`docker node demote`).", Probe::HostArg(review, "7.1")),
    cis!("7.2", 1, Medium, G, F, "Ensure that swarm services are bound to a specific host interface",
        "Re-initialise or re-join with --listen-addr on a specific interface (`docker swarm init --listen-addr 10.0.0.5:2377`).", Probe::Host(listen_addr)),
    cis!("7.3", 1, Medium, G, F, "Ensure that all Docker swarm overlay networks are encrypted",
        "Create overlay networks with --opt encrypted.", Probe::HostArg(review, "7.3")),
    cis!("7.4", 1, Low, G, F, "Ensure that Docker's secret management commands are used for managing secrets in a swarm cluster",
        "Keep service secrets in `docker secret`, not in environment variables or images.", Probe::HostArg(review, "7.4")),
    cis!("7.5", 1, Medium, G, F, "Ensure that swarm manager is run in auto-lock mode",
        "`docker swarm update --autolock=true` and keep the unlock key offline.", Probe::HostArg(review, "7.5")),
    cis!("7.6", 1, Low, G, F, "Ensure that the swarm manager auto-lock key is rotated periodically",
        "Rotate the key on a schedule: `docker swarm unlock-key --rotate`.", Probe::HostArg(review, "7.6")),
    cis!("7.7", 1, Low, G, F, "Ensure that node certificates are rotated as appropriate",
        "Set a certificate expiry that suits your policy: `docker swarm update --cert-expiry 48h`.", Probe::HostArg(review, "7.7")),
    cis!("7.8", 1, Low, G, F, "Ensure that CA certificates are rotated as appropriate",
        "Rotate the swarm CA on a schedule: `docker swarm ca --rotate`.", Probe::HostArg(review, "7.8")),
    cis!("7.9", 1, Low, G, F, "Ensure that management plane traffic is separated from data plane traffic",
        "Join or initialise with --data-path-addr on an interface other than --advertise-addr.", Probe::Host(data_path)),
];

/// `docker-state.json`: how this node takes part in a swarm.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "PascalCase")]
struct NodeState {
    listen_addr: String,
    advertise_addr: String,
    data_path_addr: String,
}

/// This node's swarm state: `None` when it is in no swarm.
fn node(h: &Host) -> Result<Option<(NodeState, bool)>, String> {
    let root = &h.docker().root;
    let path = format!("{root}/swarm/docker-state.json");
    match h.read(&path) {
        Ok(t) => {
            let state = serde_json::from_str(&t).map_err(|e| format!("{path}: {e}"))?;
            Ok(Some((state, h.exists(&format!("{root}/swarm/raft")))))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {path}: {e}")),
    }
}

fn swarm_mode(h: &Host) -> Outcome {
    match node(h) {
        Ok(None) => Outcome::pass(vec![format!(
            "no swarm state ({}/swarm/docker-state.json absent)",
            h.docker().root
        )]),
        Ok(Some((n, manager))) => Outcome::fail(vec![format!(
            "swarm mode is enabled: this node is a {}, listening on {}",
            if manager { "manager" } else { "worker" },
            n.listen_addr
        )]),
        Err(e) => Outcome::unknown(e),
    }
}

/// The node's state, or the outcome when there is no swarm.
fn in_swarm(h: &Host) -> Result<(NodeState, bool), Outcome> {
    match node(h) {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err(Outcome::not_applicable("swarm mode is not enabled on this host")),
        Err(e) => Err(Outcome::unknown(e)),
    }
}

/// What to run on a manager to judge a recommendation kept in the raft store.
fn review(h: &Host, id: &'static str) -> Outcome {
    let (_, manager) = match in_swarm(h) {
        Ok(n) => n,
        Err(o) => return o,
    };
    let (what, command) = match id {
        "7.1" => ("the number of managers", "docker node ls --filter role=manager"),
        "7.3" => ("whether every overlay network is encrypted", "docker network ls --filter driver=overlay --quiet | xargs docker network inspect --format '{{.Name}} {{.Options}}'"),
        "7.4" => ("how services receive secrets", "docker secret ls; docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Env}}' SERVICE"),
        "7.5" => ("whether managers auto-lock", "docker info --format '{{.Swarm.Cluster.Spec.EncryptionConfig.AutoLockManagers}}'"),
        "7.6" => ("when the unlock key was last rotated", "your key-rotation records (`docker swarm unlock-key --rotate`)"),
        "7.7" => ("the node certificate expiry", "docker info --format '{{.Swarm.Cluster.Spec.CAConfig.NodeCertExpiry}}'"),
        _ => ("the CA rotation schedule", "docker info --format '{{.Swarm.Cluster.Spec.CAConfig}}'"),
    };
    if !manager && ["7.1", "7.5", "7.6"].contains(&id) {
        return Outcome::not_applicable(
            "this node is a swarm worker; the recommendation is about managers",
        );
    }
    Outcome::manual(format!("{what} is kept in the swarm's raft store, readable only through the API: run `{command}` on a manager"))
}

fn listen_addr(h: &Host) -> Outcome {
    let (n, _) = match in_swarm(h) {
        Ok(n) => n,
        Err(o) => return o,
    };
    let host = n.listen_addr.rsplit_once(':').map(|(a, _)| a).unwrap_or(&n.listen_addr);
    Outcome::pass_if(
        !(host.is_empty() || host == "0.0.0.0" || host == "[::]"),
        format!("swarm listen address {}", n.listen_addr),
        format!("swarm listen address {}: every interface", n.listen_addr),
    )
}

fn data_path(h: &Host) -> Outcome {
    let (n, _) = match in_swarm(h) {
        Ok(n) => n,
        Err(o) => return o,
    };
    if n.data_path_addr.is_empty() || n.data_path_addr == n.advertise_addr {
        Outcome::fail(vec![format!(
            "data path address {:?} is the management address {:?}",
            n.data_path_addr, n.advertise_addr
        )])
    } else {
        Outcome::pass(vec![format!(
            "data path {}, management {}",
            n.data_path_addr, n.advertise_addr
        )])
    }
}
