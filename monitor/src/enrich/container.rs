//! Container context: which container an event came from, and what the runtime says of it.
//!
//! The kernel sends the name of the task's cgroup with every event; container runtimes name
//! that cgroup after the container (`<64-hex id>` under `/docker/` or `/moby/` with the
//! cgroupfs driver, `docker-<id>.scope`, `libpod-<id>.scope`, `crio-<id>.scope`,
//! `cri-containerd-<id>.scope` with systemd). Names, images and the privileged flag come
//! from the runtime's state on disk (Docker's `config.v2.json` and `hostconfig.json`), read
//! without ever talking to the daemon, cached, and re-read when the files change. When the
//! state is not there (yet), the alert still carries the id.

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// A container an event was attributed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRef {
    /// Full 64-hex id.
    pub id: String,
    /// `docker`, `podman`, `cri-o`, `containerd`, or `None` when the cgroup name alone does not say.
    pub runtime: Option<&'static str>,
}

/// The container an event came from, as its alerts show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub runtime: Option<&'static str>,
    /// What the runtime's state said of it, when it could be read.
    pub meta: Option<ContainerMeta>,
}

/// What the runtime's state says of a container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerMeta {
    pub name: Option<String>,
    pub image: Option<String>,
    pub privileged: Option<bool>,
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The container named by one cgroup directory name, if any.
pub fn from_cgroup_name(name: &str) -> Option<ContainerRef> {
    if is_id(name) {
        return Some(ContainerRef { id: name.to_string(), runtime: None });
    }
    let scope = name.strip_suffix(".scope")?;
    for (prefix, runtime) in [
        ("docker-", "docker"),
        ("libpod-", "podman"),
        ("crio-", "cri-o"),
        ("cri-containerd-", "containerd"),
    ] {
        if let Some(id) = scope.strip_prefix(prefix) {
            if is_id(id) {
                return Some(ContainerRef { id: id.to_string(), runtime: Some(runtime) });
            }
        }
    }
    None
}

/// The container named by a cgroup path (`/docker/<id>`, `/system.slice/docker-<id>.scope`,
/// `/kubepods/burstable/pod…/<id>`, …): the innermost component that names one.
pub fn from_cgroup_path(path: &str) -> Option<ContainerRef> {
    let mut found = None;
    let mut parent = "";
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if let Some(mut c) = from_cgroup_name(part) {
            if c.runtime.is_none() {
                c.runtime = match parent {
                    "docker" => Some("docker"),
                    "moby" => Some("docker"),
                    _ => None,
                };
            }
            found = Some(c);
        }
        parent = part;
    }
    found
}

/// The container of a live process, from `/proc/<pid>/cgroup` (every hierarchy).
pub fn from_proc(pid: u32) -> Option<ContainerRef> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().filter_map(|l| l.splitn(3, ':').nth(2)).find_map(from_cgroup_path)
}

/// How long a cache entry is trusted before its files are looked at again.
const RECHECK: Duration = Duration::from_secs(1);

struct Entry {
    meta: Option<ContainerMeta>,
    runtime: Option<&'static str>,
    stamp: Option<(SystemTime, SystemTime)>,
    checked: Instant,
    /// When its state directory was first found gone (a `--rm` container that exited):
    /// the metadata read before is kept for `GONE_KEPT`, for the events still in flight.
    gone_since: Option<Instant>,
}

/// How long a removed container's metadata still names its late events.
const GONE_KEPT: Duration = Duration::from_secs(60);

/// Cache of container metadata read from the runtimes' state directories.
pub struct Containers {
    docker_root: PathBuf,
    cache: HashMap<String, Entry>,
    /// The container (or none) of the cgroups whose name did not say, read from /proc once
    /// per cgroup (its id, which the eBPF sensors give for the cgroup they name, v1 or v2),
    /// then trusted for `CGROUP_TRUST`: not once per process or alert (an exec storm in one
    /// cgroup reads /proc once). A source that knows no id (the audit source, id 0) is read
    /// once per process. The name is kept with the entry (a reused id misses).
    by_cgroup: crate::hash::FastMap<(u64, u32), CgroupEntry>,
}

struct CgroupEntry {
    name: Vec<u8>,
    container: Option<ContainerRef>,
    read: Instant,
}

/// How long a task's container, read from /proc, is trusted.
const CGROUP_TRUST: Duration = Duration::from_secs(2);
/// Cgroups remembered in `by_cgroup` before the expired ones are dropped.
const MAX_CGROUPS: usize = 4096;

impl Containers {
    /// Docker's state lives in `data-root` of /etc/docker/daemon.json, /var/lib/docker by default.
    pub fn new() -> Containers {
        let docker_root = std::fs::read_to_string("/etc/docker/daemon.json")
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v.get("data-root").and_then(Value::as_str).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/lib/docker"));
        Containers::with_docker_root(docker_root)
    }

    pub fn with_docker_root(docker_root: PathBuf) -> Containers {
        Containers { docker_root, cache: HashMap::new(), by_cgroup: Default::default() }
    }

    /// The container of a task in cgroup `cgroup_id` named `cgroup_name`: from the name
    /// when the runtime put the id there, else from `/proc/PID/cgroup` (the host's root
    /// cgroup `/` is no container), remembered for a short while.
    pub fn of_task(
        &mut self,
        cgroup_id: u64,
        cgroup_name: &[u8],
        pid: u32,
    ) -> Option<ContainerRef> {
        let name = String::from_utf8_lossy(cgroup_name);
        if let Some(c) = from_cgroup_name(&name) {
            return Some(c);
        }
        if cgroup_name.is_empty() || cgroup_name == b"/" {
            return None;
        }
        let key = (cgroup_id, if cgroup_id == 0 { pid } else { 0 });
        if let Some(e) = self.by_cgroup.get(&key) {
            if e.name == cgroup_name && e.read.elapsed() < CGROUP_TRUST {
                return e.container.clone();
            }
        }
        let found = from_proc(pid);
        if self.by_cgroup.len() >= MAX_CGROUPS {
            self.by_cgroup.retain(|_, e| e.read.elapsed() < CGROUP_TRUST);
            if self.by_cgroup.len() >= MAX_CGROUPS {
                self.by_cgroup.clear();
            }
        }
        let entry = CgroupEntry {
            name: cgroup_name.to_vec(),
            container: found.clone(),
            read: Instant::now(),
        };
        self.by_cgroup.insert(key, entry);
        found
    }

    /// Metadata and runtime of `c` (runtime from the state found when the cgroup name did
    /// not say). Never blocks on a daemon: only files are read.
    pub fn lookup(&mut self, c: &ContainerRef) -> (Option<ContainerMeta>, Option<&'static str>) {
        let dir = self.docker_root.join("containers").join(&c.id);
        let now = Instant::now();
        if let Some(e) = self.cache.get(&c.id) {
            if now.duration_since(e.checked) < RECHECK {
                return (e.meta.clone(), c.runtime.or(e.runtime));
            }
        }
        let stamp = stamps(&dir);
        if let Some(e) = self.cache.get_mut(&c.id) {
            e.checked = now;
            if e.stamp == stamp {
                return (e.meta.clone(), c.runtime.or(e.runtime));
            }
            if stamp.is_none() && e.meta.is_some() {
                // Removed since it was read: what it was still names it.
                e.gone_since.get_or_insert(now);
                return (e.meta.clone(), c.runtime.or(e.runtime));
            }
        }
        let meta = stamp.and_then(|_| read_docker(&dir));
        let runtime = if meta.is_some() { Some("docker") } else { None };
        self.cache.insert(
            c.id.clone(),
            Entry { meta: meta.clone(), runtime, stamp, checked: now, gone_since: None },
        );
        (meta, c.runtime.or(runtime))
    }

    /// Forget containers whose state has been gone for `GONE_KEPT`.
    pub fn prune(&mut self) {
        let root = self.docker_root.join("containers");
        let now = Instant::now();
        self.cache.retain(|id, e| {
            if e.meta.is_none() || root.join(id).exists() {
                e.gone_since = None;
                return true;
            }
            now.duration_since(*e.gone_since.get_or_insert(now)) < GONE_KEPT
        });
    }

    /// The container `ev` came from: by the cgroup name the kernel sent, else (a process in
    /// a sub-cgroup of its container) by its full cgroup paths while it still runs.
    pub fn of_event(&mut self, ev: &crate::event::Event) -> Option<ContainerInfo> {
        let c = self.of_task(ev.cgroup_id, &ev.cgroup_name, ev.pid)?;
        let (meta, runtime) = self.lookup(&c);
        Some(ContainerInfo { id: c.id, runtime, meta })
    }

    /// A process of a container (named by its cgroup) started a program: read the
    /// container's metadata now, while its state exists. A `--rm` container whose process
    /// exits at once (`su -c true`) is removed within milliseconds, often before an alert
    /// about that process is handled. Tasks whose cgroup name names no container cost
    /// nothing here (no /proc read).
    pub fn note_exec(&mut self, cgroup_name: &[u8]) {
        if let Some(c) = std::str::from_utf8(cgroup_name).ok().and_then(from_cgroup_name) {
            let _ = self.lookup(&c);
        }
    }
}

impl Default for Containers {
    fn default() -> Self {
        Containers::new()
    }
}

fn stamps(dir: &Path) -> Option<(SystemTime, SystemTime)> {
    let m = |f: &str| std::fs::metadata(dir.join(f)).and_then(|m| m.modified()).ok();
    Some((m("config.v2.json")?, m("hostconfig.json").unwrap_or(SystemTime::UNIX_EPOCH)))
}

/// Bytes read from one state file at most (they are a few KiB).
const STATE_FILE_MAX: u64 = 4 << 20;

fn read_json(path: &Path) -> Option<Value> {
    use std::io::Read;
    let mut text = Vec::new();
    std::fs::File::open(path).ok()?.take(STATE_FILE_MAX).read_to_end(&mut text).ok()?;
    serde_json::from_slice(&text).ok()
}

fn read_docker(dir: &Path) -> Option<ContainerMeta> {
    let config = read_json(&dir.join("config.v2.json"))?;
    let host = read_json(&dir.join("hostconfig.json"));
    let name =
        config.get("Name").and_then(Value::as_str).map(|n| n.trim_start_matches('/').to_string());
    let image = config.pointer("/Config/Image").and_then(Value::as_str).map(str::to_string);
    let privileged = host.as_ref().and_then(|h| h.get("Privileged")).and_then(Value::as_bool);
    Some(ContainerMeta { name, image, privileged })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "c0ea9afb8f6b69662b6b4e7277c2fd62a5e0973e3732714090cf8eb9ac547d59";

    #[test]
    fn cgroup_names_of_every_runtime() {
        assert_eq!(from_cgroup_name(ID), Some(ContainerRef { id: ID.into(), runtime: None }));
        for (name, runtime) in [
            (format!("docker-{ID}.scope"), "docker"),
            (format!("libpod-{ID}.scope"), "podman"),
            (format!("crio-{ID}.scope"), "cri-o"),
            (format!("cri-containerd-{ID}.scope"), "containerd"),
        ] {
            assert_eq!(
                from_cgroup_name(&name),
                Some(ContainerRef { id: ID.into(), runtime: Some(runtime) }),
                "{name}"
            );
        }
        for not in [
            "",
            "init.scope",
            "user.slice",
            &ID[1..],
            &ID.to_uppercase(),
            "docker-x.scope",
            "505baded37ac7b4cde9578c94f8e94e0",
        ] {
            assert_eq!(from_cgroup_name(not), None, "{not}");
        }
        assert_eq!(
            from_cgroup_name(&format!("libpod-conmon-{ID}.scope")),
            None,
            "conmon is not the container"
        );
    }

    #[test]
    fn cgroup_paths_v1_v2_and_nested() {
        let docker = Some(ContainerRef { id: ID.into(), runtime: Some("docker") });
        assert_eq!(from_cgroup_path(&format!("/docker/{ID}")), docker);
        assert_eq!(from_cgroup_path(&format!("/moby/{ID}")), docker);
        assert_eq!(from_cgroup_path(&format!("/system.slice/docker-{ID}.scope")), docker);
        assert_eq!(
            from_cgroup_path(&format!("/system.slice/docker-{ID}.scope/init.scope")),
            docker
        );
        assert_eq!(
            from_cgroup_path(&format!("/kubepods/burstable/pod1234/{ID}")),
            Some(ContainerRef { id: ID.into(), runtime: None })
        );
        assert_eq!(from_cgroup_path("/"), None);
        assert_eq!(from_cgroup_path("/user.slice/user-0.slice/session-1.scope"), None);
    }

    #[test]
    fn docker_state_is_read_and_refreshed() {
        let root = std::env::temp_dir().join(format!("monitor-containers-{}", std::process::id()));
        let dir = root.join("containers").join(ID);
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = Containers::with_docker_root(root.clone());
        let r = ContainerRef { id: ID.into(), runtime: None };
        // No state yet: the id still resolves, without metadata.
        assert_eq!(c.lookup(&r), (None, None));
        std::fs::write(
            dir.join("config.v2.json"),
            r#"{"Name":"/web","Config":{"Image":"local/busybox:1"}}"#,
        )
        .unwrap();
        std::fs::write(dir.join("hostconfig.json"), r#"{"Privileged":true}"#).unwrap();
        c.cache.get_mut(ID).unwrap().checked -= RECHECK;
        let (meta, runtime) = c.lookup(&r);
        let meta = meta.unwrap();
        assert_eq!(meta.name.as_deref(), Some("web"));
        assert_eq!(meta.image.as_deref(), Some("local/busybox:1"));
        assert_eq!(meta.privileged, Some(true));
        assert_eq!(runtime, Some("docker"));
        // Malformed state is no metadata, not an error.
        std::fs::write(dir.join("config.v2.json"), "{not json").unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(dir.join("config.v2.json"))
            .unwrap()
            .set_modified(later)
            .unwrap();
        c.cache.get_mut(ID).unwrap().checked -= RECHECK;
        assert_eq!(c.lookup(&r).0, None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_removed_containers_metadata_names_its_late_events_for_a_while() {
        let root =
            std::env::temp_dir().join(format!("monitor-containers-gone-{}", std::process::id()));
        let dir = root.join("containers").join(ID);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.v2.json"),
            r#"{"Name":"/once","Config":{"Image":"local/busybox:1"}}"#,
        )
        .unwrap();
        let mut c = Containers::with_docker_root(root.clone());
        // Read when one of its processes execs (the cgroup name is the id: cgroupfs driver).
        c.note_exec(ID.as_bytes());
        c.note_exec(b"user.slice");
        assert_eq!(c.cache.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
        let r = ContainerRef { id: ID.into(), runtime: None };
        c.cache.get_mut(ID).unwrap().checked -= RECHECK;
        assert_eq!(
            c.lookup(&r).0.and_then(|m| m.name).as_deref(),
            Some("once"),
            "removed, still named"
        );
        c.prune();
        assert_eq!(
            c.lookup(&r).0.and_then(|m| m.name).as_deref(),
            Some("once"),
            "kept through a prune"
        );
        *c.cache.get_mut(ID).unwrap().gone_since.as_mut().unwrap() -= GONE_KEPT;
        c.prune();
        assert!(c.cache.is_empty(), "forgotten {GONE_KEPT:?} after it went");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
