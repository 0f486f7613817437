//! Docker as its files describe it, read once per run and never by asking dockerd: the
//! daemon's effective configuration (daemon.json, or the file `--config-file` names, and
//! dockerd's command line from /proc), the containers in its state
//! (`<data-root>/containers/*/config.v2.json` and `hostconfig.json`, whatever their state),
//! the images in its store (`<data-root>/image/<driver>/imagedb`) and, for running
//! containers, their processes (from /proc/PID/cgroup).

pub use super::docker_files::*;
use super::{Host, Subject};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

const DAEMON_JSON: &str = "/etc/docker/daemon.json";
const DATA_ROOT: &str = "/var/lib/docker";

/// Whether Docker is installed (a dockerd binary or its socket).
pub fn installed(h: &Host) -> bool {
    ["/usr/bin/dockerd", "/usr/sbin/dockerd", "/usr/local/bin/dockerd"].iter().any(|p| h.exists(p))
        || h.exists("/run/docker.sock")
}

/// Everything read about Docker, each part on first use.
pub struct DockerState {
    pub daemon: Daemon,
    /// The data root (`/var/lib/docker` unless configured).
    pub root: String,
    containers: OnceLock<Result<Vec<Container>, String>>,
    images: OnceLock<Result<Vec<Image>, String>>,
    /// Container id → its processes (pid, comm), for running containers.
    processes: OnceLock<HashMap<String, Vec<(u32, String)>>>,
}

impl Host {
    /// Docker's state (read on first use, then shared by every check of the run).
    pub fn docker(&self) -> &DockerState {
        self.docker.get_or_init(|| DockerState::read(self))
    }
}

impl DockerState {
    fn read(h: &Host) -> DockerState {
        let daemon = Daemon::read(h);
        let root = daemon
            .str_setting("data-root", &["--data-root", "-g", "--graph"])
            .ok()
            .flatten()
            .or_else(|| daemon.json_str("graph").map(|g| (g, String::new())))
            .map(|(r, _)| r.trim_end_matches('/').to_string())
            .unwrap_or_else(|| DATA_ROOT.to_string());
        DockerState {
            daemon,
            root,
            containers: OnceLock::new(),
            images: OnceLock::new(),
            processes: OnceLock::new(),
        }
    }

    pub fn containers_of(&self, h: &Host) -> Result<&[Container], &str> {
        match self.containers.get_or_init(|| read_containers(h, &self.root)) {
            Ok(c) => Ok(c),
            Err(e) => Err(e),
        }
    }

    pub fn images_of(&self, h: &Host) -> Result<&[Image], &str> {
        match self.images.get_or_init(|| read_images(h, &self.root)) {
            Ok(i) => Ok(i),
            Err(e) => Err(e),
        }
    }

    /// The processes of a running container (pid, comm).
    pub fn processes(&self, h: &Host, container_id: &str) -> &[(u32, String)] {
        self.processes
            .get_or_init(|| container_processes(h))
            .get(container_id)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// The Docker daemon's configuration: daemon.json and, when dockerd runs, its command line.
pub struct Daemon {
    pub pid: Option<u32>,
    pub uid: Option<u32>,
    /// dockerd's arguments after the program name (empty when it is not running).
    pub args: Vec<String>,
    /// The daemon.json in effect (`--config-file`, else /etc/docker/daemon.json).
    pub config_path: String,
    /// Its content: `None` when it does not exist, an error when unreadable or not JSON.
    pub json: Result<Option<Value>, String>,
}

/// A setting's value and where it was found (`daemon.json "icc"`, `dockerd --icc=false`).
pub type Found<T> = (T, String);

impl Daemon {
    fn read(h: &Host) -> Daemon {
        let mut pid = None;
        let mut uid = None;
        let mut args = Vec::new();
        for p in h.dir("/proc") {
            let Some(n) =
                p.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim() == "dockerd") {
                let cmdline = std::fs::read(p.join("cmdline")).unwrap_or_default();
                args = cmdline
                    .split(|&b| b == 0)
                    .skip(1)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                uid = std::fs::read_to_string(p.join("status")).ok().and_then(|s| {
                    s.lines().find_map(|l| {
                        l.strip_prefix("Uid:")
                            .and_then(|r| r.split_whitespace().nth(1)?.parse().ok())
                    })
                });
                pid = Some(n);
                break;
            }
        }
        let config_path =
            flag_values(&args, &["--config-file"]).pop().unwrap_or_else(|| DAEMON_JSON.to_string());
        let json = match h.read(&config_path) {
            Ok(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| format!("{config_path} is not valid JSON: {e}")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {config_path}: {e}")),
        };
        Daemon { pid, uid, args, config_path, json }
    }

    pub fn running(&self) -> bool {
        self.pid.is_some()
    }

    /// Where the settings were read from, for evidence.
    pub fn sources(&self) -> String {
        let json = match &self.json {
            Ok(Some(_)) => self.config_path.clone(),
            _ => format!("no {}", self.config_path),
        };
        match self.pid {
            Some(pid) => format!(
                "{json}; dockerd (pid {pid}) {}",
                if self.args.is_empty() {
                    "without arguments".to_string()
                } else {
                    self.args.join(" ")
                }
            ),
            None => format!("{json}; dockerd is not running (its command line is unknown)"),
        }
    }

    fn json_value(&self, key: &str) -> Result<Option<&Value>, String> {
        match &self.json {
            Ok(j) => Ok(j.as_ref().and_then(|j| j.get(key))),
            Err(e) => Err(e.clone()),
        }
    }

    fn json_str(&self, key: &str) -> Option<String> {
        self.json_value(key).ok().flatten().and_then(Value::as_str).map(str::to_string)
    }

    /// A boolean setting: the command line's `--flag[=bool]` or daemon.json's `key`.
    pub fn bool_setting(&self, key: &str, flag: &str) -> Result<Option<Found<bool>>, String> {
        for a in self.args.iter().rev() {
            if a == flag {
                return Ok(Some((true, format!("dockerd {a}"))));
            }
            if let Some(v) = a.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
                return Ok(Some((v != "false" && v != "0", format!("dockerd {a}"))));
            }
        }
        Ok(self
            .json_value(key)?
            .and_then(Value::as_bool)
            .map(|b| (b, format!("{} \"{key}\": {b}", self.config_path))))
    }

    /// A string setting: the last of the command line's flags, or daemon.json's `key`.
    pub fn str_setting(&self, key: &str, flags: &[&str]) -> Result<Option<Found<String>>, String> {
        if let Some(v) = flag_values(&self.args, flags).pop() {
            return Ok(Some((v.clone(), format!("dockerd {}={v}", flags[0]))));
        }
        Ok(self
            .json_value(key)?
            .and_then(Value::as_str)
            .map(|s| (s.to_string(), format!("{} \"{key}\": {s:?}", self.config_path))))
    }

    /// A list setting (every flag occurrence, every element of daemon.json's array, or
    /// the keys of its object).
    pub fn list_setting(&self, key: &str, flags: &[&str]) -> Result<Vec<Found<String>>, String> {
        let mut out: Vec<Found<String>> = flag_values(&self.args, flags)
            .into_iter()
            .map(|v| (v.clone(), format!("dockerd {}={v}", flags[0])))
            .collect();
        let shown = |v: &str| format!("{} \"{key}\": {v}", self.config_path);
        match self.json_value(key)? {
            Some(Value::Array(a)) => out.extend(a.iter().map(|v| {
                let s = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                (s.clone(), shown(&s))
            })),
            Some(Value::Object(o)) => {
                out.extend(o.iter().map(|(k, v)| (k.clone(), shown(&format!("{k}: {v}")))))
            }
            Some(Value::String(s)) => out.push((s.clone(), shown(s))),
            _ => {}
        }
        Ok(out)
    }

    /// The addresses the API listens on (`-H`, daemon.json `hosts`; the default unix socket
    /// when none is given).
    pub fn hosts(&self) -> Result<Vec<Found<String>>, String> {
        let hosts = self.list_setting("hosts", &["-H", "--host"])?;
        if hosts.is_empty() {
            return Ok(vec![("unix:///var/run/docker.sock".into(), "the default".into())]);
        }
        Ok(hosts)
    }
}

/// Every value given to one of `flags` (`--f=v`, `--f v`, `-f v`).
fn flag_values(args: &[String], flags: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        for f in flags {
            if a == f {
                if let Some(v) = it.next() {
                    out.push(v.clone());
                }
                break;
            }
            if let Some(v) = a.strip_prefix(f).and_then(|r| r.strip_prefix('=')) {
                out.push(v.to_string());
                break;
            }
        }
    }
    out
}

/// A container in Docker's state.
#[derive(Debug)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// The image as the container was created from it (`local/busybox:1`).
    pub image: String,
    /// running, paused, restarting, created, exited, dead or removing.
    pub state: &'static str,
    /// Its state directory (`/var/lib/docker/containers/ID`).
    pub dir: String,
    pub config: ConfigV2,
    pub host: HostConfig,
}

impl Container {
    pub fn subject(&self) -> Subject {
        Subject::Container {
            id: self.id.clone(),
            name: self.name.clone(),
            image: self.image.clone(),
            state: self.state,
            dir: self.dir.clone(),
        }
    }

    /// The security options, `key=value` (Docker also accepts `key:value`).
    pub fn security_opts(&self) -> Vec<String> {
        self.host
            .security_opt
            .iter()
            .flatten()
            .map(|o| if o.contains('=') { o.clone() } else { o.replacen(':', "=", 1) })
            .collect()
    }

    /// Host-side mounts: (source, destination, read-write, propagation).
    pub fn mounts(&self) -> Vec<(String, String, bool, String)> {
        let mut out: Vec<(String, String, bool, String)> = self
            .config
            .mount_points
            .iter()
            .flatten()
            .filter(|(_, m)| m.kind == "bind" || (m.kind.is_empty() && m.name.is_empty()))
            .map(|(_, m)| (m.source.clone(), m.destination.clone(), m.rw, m.propagation.clone()))
            .collect();
        if out.is_empty() {
            // A created container whose mount points were not recorded yet: its binds.
            for b in self.host.binds.iter().flatten() {
                let parts: Vec<&str> = b.split(':').collect();
                if parts.len() >= 2 && parts[0].starts_with('/') {
                    let opts = parts.get(2).copied().unwrap_or("");
                    let prop = opts
                        .split(',')
                        .find(|o| {
                            o.contains("shared") || o.contains("slave") || o.contains("private")
                        })
                        .unwrap_or("");
                    out.push((
                        parts[0].into(),
                        parts[1].into(),
                        !opts.split(',').any(|o| o == "ro"),
                        prop.into(),
                    ));
                }
            }
            for m in self.host.mounts.iter().flatten().filter(|m| m.kind == "bind") {
                let prop =
                    m.bind_options.as_ref().map(|b| b.propagation.clone()).unwrap_or_default();
                out.push((m.source.clone(), m.target.clone(), !m.read_only, prop));
            }
        }
        out.sort();
        out
    }
}

fn container_state(s: &ContainerState) -> &'static str {
    if s.removal_in_progress {
        "removing"
    } else if s.dead {
        "dead"
    } else if s.restarting {
        "restarting"
    } else if s.paused {
        "paused"
    } else if s.running {
        "running"
    } else if s.started_at.is_empty() || s.started_at.starts_with("0001-01-01") {
        "created"
    } else {
        "exited"
    }
}

fn read_containers(h: &Host, root: &str) -> Result<Vec<Container>, String> {
    let dir = format!("{root}/containers");
    let entries = match std::fs::read_dir(h.path(&dir)) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {dir}: {e}")),
    };
    let mut ids: Vec<String> =
        entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect();
    ids.sort();
    let mut out = Vec::new();
    for id in ids {
        let cdir = format!("{dir}/{id}");
        let read = |f: &str| std::fs::read(h.path(&format!("{cdir}/{f}")));
        // A container being created or removed may lack its files: not a container yet.
        let Ok(config) = read("config.v2.json") else { continue };
        let config: ConfigV2 =
            serde_json::from_slice(&config).map_err(|e| format!("{cdir}/config.v2.json: {e}"))?;
        let host: HostConfig = match read("hostconfig.json") {
            Ok(b) => {
                serde_json::from_slice(&b).map_err(|e| format!("{cdir}/hostconfig.json: {e}"))?
            }
            Err(e) => return Err(format!("cannot read {cdir}/hostconfig.json: {e}")),
        };
        let name = config.name.trim_start_matches('/').to_string();
        let image = if config.config.image.is_empty() {
            config.image.clone()
        } else {
            config.config.image.clone()
        };
        out.push(Container {
            id: if config.id.is_empty() { id.clone() } else { config.id.clone() },
            name,
            image,
            state: container_state(&config.state),
            dir: cdir,
            config,
            host,
        });
    }
    Ok(out)
}

/// An image in Docker's store.
#[derive(Debug)]
pub struct Image {
    /// `sha256:…`
    pub id: String,
    /// Its tags (`local/busybox:1`); empty for an untagged image.
    pub names: Vec<String>,
    /// Its config file.
    pub file: String,
    pub config: ImageFile,
}

impl Image {
    pub fn subject(&self) -> Subject {
        Subject::Image { id: self.id.clone(), names: self.names.clone(), file: self.file.clone() }
    }

    /// Its tags, or its short id when untagged.
    pub fn label(&self) -> String {
        if self.names.is_empty() {
            self.id.trim_start_matches("sha256:").chars().take(12).collect()
        } else {
            self.names.join(", ")
        }
    }
}

/// The entries of a directory (sorted): none when it does not exist, an error when it
/// cannot be read (never an empty answer for an unreadable store).
fn entries(h: &Host, dir: &str) -> Result<Vec<std::path::PathBuf>, String> {
    match std::fs::read_dir(h.path(dir)) {
        Ok(d) => {
            let mut v: Vec<std::path::PathBuf> =
                d.filter_map(|e| e.ok()).map(|e| e.path()).collect();
            v.sort();
            Ok(v)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("cannot read {dir}: {e}")),
    }
}

fn read_images(h: &Host, root: &str) -> Result<Vec<Image>, String> {
    let mut out = Vec::new();
    for driver_dir in entries(h, &format!("{root}/image"))? {
        let driver =
            driver_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let base = format!("{root}/image/{driver}");
        let mut names: HashMap<String, Vec<String>> = HashMap::new();
        if let Ok(text) = h.read(&format!("{base}/repositories.json")) {
            let repos: Value = serde_json::from_str(&text)
                .map_err(|e| format!("{base}/repositories.json: {e}"))?;
            for tags in repos
                .get("Repositories")
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|r| r.values())
            {
                for (tag, id) in tags.as_object().into_iter().flatten() {
                    if let Some(id) = id.as_str().filter(|_| !tag.contains('@')) {
                        names.entry(id.to_string()).or_default().push(tag.clone());
                    }
                }
            }
        }
        let content = format!("{base}/imagedb/content/sha256");
        for f in entries(h, &content)? {
            let Some(hex) = f.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                continue;
            };
            let file = format!("{content}/{hex}");
            let bytes = std::fs::read(&f).map_err(|e| format!("cannot read {file}: {e}"))?;
            let config: ImageFile =
                serde_json::from_slice(&bytes).map_err(|e| format!("{file}: {e}"))?;
            let id = format!("sha256:{hex}");
            let mut n = names.remove(&id).unwrap_or_default();
            n.sort();
            out.push(Image { id, names: n, file, config });
        }
    }
    Ok(out)
}

/// Container id → processes, from every readable /proc/PID/cgroup naming a Docker
/// container (`/docker/ID`, `docker-ID.scope`).
fn container_processes(h: &Host) -> HashMap<String, Vec<(u32, String)>> {
    let mut out: HashMap<String, Vec<(u32, String)>> = HashMap::new();
    for p in h.dir("/proc") {
        let Some(pid) = p.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cgroup) = std::fs::read_to_string(p.join("cgroup")) else { continue };
        let id = cgroup.lines().find_map(|l| {
            let path = l.splitn(3, ':').nth(2)?;
            let last = path.rsplit('/').next()?;
            let id =
                last.strip_prefix("docker-").and_then(|r| r.strip_suffix(".scope")).unwrap_or(last);
            (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) && path.contains("docker"))
                .then(|| id.to_string())
        });
        if let Some(id) = id {
            let comm =
                std::fs::read_to_string(p.join("comm")).unwrap_or_default().trim().to_string();
            out.entry(id).or_default().push((pid, comm));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_in_every_spelling() {
        let args: Vec<String> = [
            "-H",
            "unix:///run/d.sock",
            "--host=tcp://0.0.0.0:2375",
            "--icc=false",
            "--log-level",
            "debug",
            "--iptables",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            flag_values(&args, &["-H", "--host"]),
            vec!["unix:///run/d.sock", "tcp://0.0.0.0:2375"]
        );
        let d = Daemon {
            pid: Some(1),
            uid: Some(0),
            args,
            config_path: DAEMON_JSON.into(),
            json: Ok(Some(
                serde_json::json!({"icc": true, "log-level": "info", "live-restore": true}),
            )),
        };
        assert_eq!(
            d.bool_setting("icc", "--icc").unwrap().unwrap(),
            (false, "dockerd --icc=false".to_string())
        );
        assert!(d.bool_setting("iptables", "--iptables").unwrap().unwrap().0);
        assert_eq!(
            d.bool_setting("live-restore", "--live-restore").unwrap().unwrap().1,
            "/etc/docker/daemon.json \"live-restore\": true"
        );
        assert_eq!(d.str_setting("log-level", &["--log-level", "-l"]).unwrap().unwrap().0, "debug");
        assert_eq!(d.hosts().unwrap().len(), 2);
    }

    #[test]
    fn container_states() {
        let s = |running, started: &str| {
            container_state(&ContainerState {
                running,
                started_at: started.into(),
                ..Default::default()
            })
        };
        assert_eq!(s(false, "0001-01-01T00:00:00Z"), "created");
        assert_eq!(s(true, "2026-01-01T00:00:00Z"), "running");
        assert_eq!(s(false, "2026-01-01T00:00:00Z"), "exited");
    }
}
