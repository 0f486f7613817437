//! The parts of Docker's state files the checks read, as serde types: a container's
//! config.v2.json and hostconfig.json, and an image's config. Every field has a default, and
//! those Docker writes as `null` are `Option`s, so files of other engine versions still parse.

use serde::Deserialize;
use std::collections::BTreeMap;

/// config.v2.json (the fields the checks read).
#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct ConfigV2 {
    pub state: ContainerState,
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub image: String,
    pub config: ContainerConfig,
    pub mount_points: Option<BTreeMap<String, MountPoint>>,
    pub app_armor_profile: String,
    pub seccomp_profile: String,
    pub no_new_privileges: bool,
    pub process_label: String,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerState {
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    pub dead: bool,
    pub removal_in_progress: bool,
    pub pid: i64,
    pub started_at: String,
    pub health: Option<Health>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct Health {
    pub status: String,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerConfig {
    pub user: String,
    pub image: String,
    pub healthcheck: Option<Healthcheck>,
    pub env: Option<Vec<String>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct Healthcheck {
    pub test: Option<Vec<String>>,
}

impl Healthcheck {
    /// Whether it defines a test (`["NONE"]` disables the image's).
    pub fn defined(h: &Option<Healthcheck>) -> bool {
        h.as_ref().and_then(|h| h.test.as_ref()).is_some_and(|t| !t.is_empty() && t[0] != "NONE")
    }
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct MountPoint {
    pub source: String,
    pub destination: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    #[serde(rename = "Type")]
    pub kind: String,
    pub propagation: String,
    pub name: String,
}

/// hostconfig.json (the fields the checks read).
#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct HostConfig {
    pub binds: Option<Vec<String>>,
    pub network_mode: String,
    pub port_bindings: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
    pub restart_policy: RestartPolicy,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub ipc_mode: String,
    pub pid_mode: String,
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    pub userns_mode: String,
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Option<Vec<String>>,
    pub cpu_shares: i64,
    pub nano_cpus: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub memory: i64,
    pub pids_limit: Option<i64>,
    pub cgroup_parent: String,
    pub devices: Option<Vec<Device>>,
    pub ulimits: Option<Vec<Ulimit>>,
    pub mounts: Option<Vec<Mount>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: i64,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct Device {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct Mount {
    #[serde(rename = "Type")]
    pub kind: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub bind_options: Option<BindOptions>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default, rename_all = "PascalCase")]
pub struct BindOptions {
    pub propagation: String,
}

/// An image config (the fields the checks read).
#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct ImageFile {
    pub config: Option<ContainerConfig>,
    pub history: Option<Vec<History>>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(default)]
pub struct History {
    pub created_by: Option<String>,
}
