//! Docker end to end: a real dockerd, the real `docker` CLI, and the default rule pack (from
//! `rules/`) plus a few test rules, watched by one real `monitor run`.

use monitor_tests::docker::{docker, PackMonitor, IMAGE, SUID_IMAGE};
use monitor_tests::{get, s};
use serde_json::Value;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

type Env = PackMonitor;

fn env() -> Option<&'static Env> {
    static ENV: OnceLock<Env> = OnceLock::new();
    PackMonitor::once(&ENV, "docker", |root| {
        std::fs::create_dir_all(root.join("bin")).unwrap();
        // A static binary, so that it also runs inside the busybox containers.
        std::fs::copy("/bin/busybox", root.join("bin/watched-busybox")).unwrap();
        format!("-w {}/bin/watched-busybox -p x -k e2e-exec\n", root.display())
    })
}

/// Run the docker CLI as a child; returns its pid (the alerts name it) and whether it succeeded.
fn docker_cli(args: &[&str]) -> (u64, bool) {
    let mut child =
        Command::new("docker").args(args).stdout(std::process::Stdio::null()).spawn().unwrap();
    let pid = child.id() as u64;
    (pid, child.wait().unwrap().success())
}

/// `docker run --network none OPTS -v MOUNT... IMAGE CMD...` (see [`docker_cli`]).
fn run_container(opts: &[&str], mounts: &[&str], image: &str, cmd: &[&str]) -> (u64, bool) {
    let mut args = vec!["run", "--network", "none"];
    args.extend(opts);
    for m in mounts {
        args.extend(["-v", m]);
    }
    args.push(image);
    args.extend(cmd);
    docker_cli(&args)
}

fn by_pid(pid: u64) -> impl Fn(&Value) -> bool {
    move |a: &Value| get(a, "process.pid").as_u64() == Some(pid)
}

fn is_container_id(v: &str) -> bool {
    v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", std::process::id())
}

/// Removes the named container when dropped (the test passed or failed).
struct Removed(String);

impl Drop for Removed {
    fn drop(&mut self) {
        docker(&["rm", "-f", &self.0]);
    }
}

#[test]
fn the_docker_cli_is_seen_connecting_and_asking() {
    let Some(e) = env() else { return };
    let (pid, ok) = docker_cli(&["version"]);
    assert!(ok);
    let a = e.monitor.wait_for("docker version connect", |a| {
        by_pid(pid)(a) && s(a, "event.action") == "connect"
    });
    assert_eq!(s(&a.json, "rule.id"), "docker-socket");
    assert_eq!(s(&a.json, "rule.name"), "Connection to the Docker API socket");
    assert_eq!(get(&a.json, "event.severity").as_u64(), Some(73), "high");
    assert_eq!(get(&a.json, "threat.technique.id.0").as_str(), Some("T1610"));
    assert_eq!(s(&a.json, "process.name"), "docker");
    assert_eq!(s(&a.json, "user.name"), "root");
    assert_eq!(s(&a.json, "file.path"), "/run/docker.sock");
    assert_eq!(s(&a.json, "event.outcome"), "success");
    let ancestors = get(&a.json, "monitor.process.ancestors").as_array().unwrap();
    let me = std::process::id() as u64;
    assert!(
        ancestors.iter().any(|x| x["pid"].as_u64() == Some(me)),
        "test process among the ancestors: {ancestors:?}"
    );
    assert!(a.json.get("container").is_none(), "a host process has no container fields");

    let (pid, ok) = docker_cli(&["ps"]);
    assert!(ok);
    let r = e.monitor.wait_for("docker ps request", |a| {
        by_pid(pid)(a)
            && s(a, "event.action") == "docker-request"
            && s(a, "url.path").ends_with("/containers/json")
    });
    assert_eq!(s(&r.json, "rule.id"), "docker-api");
    assert_eq!(s(&r.json, "monitor.rule.source"), "builtin:docker-api");
    assert_eq!(s(&r.json, "http.request.method"), "GET");
    assert!(!s(&r.json, "monitor.docker.api_version").is_empty(), "{}", r.json);
}

/// Serialises tests that change the (process-wide) working directory.
static CWD: Mutex<()> = Mutex::new(());

#[test]
fn every_spelling_of_the_docker_socket_raises_exactly_one_alert() {
    let Some(e) = env() else { return };
    let link_dir = e.root.join("run-link");
    let _ = std::os::unix::fs::symlink("/run", &link_dir);
    // A hard link must live on the socket's filesystem (/run).
    let hard = PathBuf::from(format!("/run/{}.sock", unique("monitor-e2e-hardlink")));
    let _ = std::fs::remove_file(&hard);
    std::fs::hard_link("/run/docker.sock", &hard).unwrap();
    let spellings: Vec<String> = vec![
        "/run/docker.sock".into(),
        "/var/run/docker.sock".into(),
        format!("{}/docker.sock", link_dir.display()),
        hard.display().to_string(),
        "/proc/self/root/run/docker.sock".into(),
        "docker.sock".into(),
    ];
    for sp in &spellings {
        if sp == "docker.sock" {
            let _cwd = CWD.lock().unwrap();
            let old = std::env::current_dir().unwrap();
            std::env::set_current_dir("/run").unwrap();
            let r = UnixStream::connect(sp);
            std::env::set_current_dir(old).unwrap();
            r.unwrap();
        } else {
            UnixStream::connect(sp).unwrap();
        }
    }
    // An unrelated unix socket stays silent.
    let other = e.root.join("unrelated.sock");
    let _l = UnixListener::bind(&other).unwrap();
    UnixStream::connect(&other).unwrap();
    e.fence();
    std::fs::remove_file(&hard).unwrap();
    let me = std::process::id() as u64;
    for sp in &spellings {
        let alerts = e.monitor.matching(|a| {
            by_pid(me)(a) && s(a, "event.action") == "connect" && s(a, "destination.address") == sp
        });
        assert_eq!(alerts.len(), 1, "{sp}: {alerts:#?}");
        assert_eq!(s(&alerts[0], "file.path"), "/run/docker.sock", "{sp}");
        assert_eq!(s(&alerts[0], "rule.id"), "docker-socket", "{sp}");
    }
    let other = other.display().to_string();
    assert!(e.monitor.matching(|a| s(a, "destination.address") == other).is_empty());
}

#[test]
fn a_client_in_a_container_reaching_the_mounted_socket_is_named_with_its_container() {
    let Some(e) = env() else { return };
    let name = unique("e2e-sock");
    // The host's docker CLI and libraries, mounted read-only into a busybox container.
    let mounts = [
        "/var/run/docker.sock:/x.sock",
        "/usr:/usr:ro",
        "/usr/lib:/lib:ro",
        "/usr/lib64:/lib64:ro",
    ];
    let client = ["/usr/bin/docker", "-H", "unix:///x.sock", "version"];
    let (_, ok) = run_container(&["--rm", "--name", &name], &mounts, IMAGE, &client);
    assert!(ok, "docker version inside the container failed");
    let a = e.monitor.wait_for("connect from inside the container", |a| {
        s(a, "event.action") == "connect" && s(a, "destination.address") == "/x.sock"
    });
    let a = a.json;
    assert_eq!(s(&a, "rule.id"), "docker-socket", "{a}");
    assert_eq!(s(&a, "file.path"), "/run/docker.sock", "{a}");
    assert!(is_container_id(s(&a, "container.id")), "{a}");
    assert_eq!(s(&a, "container.name"), name, "{a}");
    assert_eq!(s(&a, "container.image.name"), IMAGE, "{a}");
    assert_eq!(s(&a, "container.runtime"), "docker", "{a}");
    assert_eq!(get(&a, "container.security_context.privileged").as_bool(), Some(false), "{a}");
    let chain: Vec<String> = get(&a, "monitor.process.ancestors")
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["executable"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(chain.iter().any(|x| x.contains("containerd-shim")), "shim in the ancestry: {chain:?}");
}

#[test]
fn privileged_and_host_root_creates_and_exec_are_decoded() {
    let Some(e) = env() else { return };
    // The VM may refuse to *start* a privileged container; what the client asked is the point.
    let (pid, _) = run_container(&["--rm", "--privileged"], &[], IMAGE, &["true"]);
    let a = e.monitor.wait_for("privileged create", |a| {
        by_pid(pid)(a) && s(a, "rule.id") == "docker-privileged"
    });
    assert_eq!(s(&a.json, "event.action"), "docker-request");
    assert_eq!(
        get(&a.json, "monitor.docker.create.privileged").as_bool(),
        Some(true),
        "{}",
        a.json
    );
    assert!(s(&a.json, "url.path").ends_with("/containers/create"));

    let (pid, _) = run_container(&["--rm", "--pid", "host"], &["/:/host"], IMAGE, &["true"]);
    let a = e
        .monitor
        .wait_for("host root mount", |a| by_pid(pid)(a) && s(a, "rule.id") == "docker-host-mount");
    let a = a.json;
    assert_eq!(s(&a, "monitor.docker.create.binds.0.source"), "/", "{a}");
    assert_eq!(s(&a, "monitor.docker.create.binds.0.sensitive"), "host root", "{a}");
    assert_eq!(s(&a, "monitor.docker.create.namespaces.pid"), "host", "{a}");
    let keys: Vec<&str> =
        get(&a, "monitor.rule.keys").as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(keys, ["docker-host-mount", "docker-host-namespace"], "{a}");

    let name = unique("e2e-exec");
    let (_, ok) = run_container(&["-d", "--name", &name], &[], IMAGE, &["sleep", "60"]);
    assert!(ok);
    let (pid, ok) = docker_cli(&["exec", &name, "cat", "/etc/hostname"]);
    docker(&["rm", "-f", &name]);
    assert!(ok);
    let a =
        e.monitor.wait_for("docker exec", |a| by_pid(pid)(a) && s(a, "rule.id") == "docker-exec");
    assert_eq!(s(&a.json, "monitor.docker.exec.container"), name, "{}", a.json);
    assert_eq!(
        get(&a.json, "monitor.docker.exec.cmd"),
        &serde_json::json!(["cat", "/etc/hostname"])
    );
}

#[test]
fn exec_and_setuid_inside_a_container_carry_its_context() {
    let Some(e) = env() else { return };
    // Not `--rm`: the container's state must outlive its one process until the alert is
    // handled (the monitor reads its name and image from that state; a `--rm` container is
    // gone within milliseconds, a race with the monitor's lag this test is not about).
    let name = unique("e2e-in");
    let _removed = Removed(name.clone());
    let bin = format!("{}/bin/watched-busybox:/busybox:ro", e.root.display());
    let (_, ok) = run_container(&["--name", &name], &[&bin], IMAGE, &["/busybox", "true"]);
    assert!(ok);
    let a = e.monitor.wait_for("exec of the watched binary in a container", |a| {
        s(a, "rule.id") == "e2e-exec" && s(a, "container.name") == name
    });
    assert_eq!(s(&a.json, "event.action"), "exec");
    assert_eq!(
        s(&a.json, "process.executable"),
        "/busybox",
        "the container's own path: {}",
        a.json
    );
    assert!(is_container_id(s(&a.json, "container.id")));

    let name = unique("e2e-su");
    let _removed_su = Removed(name.clone());
    let su = ["su", "-c", "true", "root"];
    let (_, ok) = run_container(&["--name", &name, "--user", "1000:1000"], &[], SUID_IMAGE, &su);
    assert!(ok, "su inside the container failed");
    let a = e.monitor.wait_for("uid 1000 -> 0 inside a container", |a| {
        s(a, "rule.id") == "setuid-root" && s(a, "container.name") == name
    });
    let a = a.json;
    assert_eq!(get(&a, "monitor.setid.before.uid").as_u64(), Some(1000), "{a}");
    assert_eq!(get(&a, "monitor.setid.after.uid").as_u64(), Some(0), "{a}");
    assert_eq!(s(&a, "container.image.name"), SUID_IMAGE, "{a}");
}

#[test]
fn docker_alerts_follow_the_documented_schema() {
    let Some(e) = env() else { return };
    // A request with findings, and an alert from inside the container it creates.
    let bin = format!("{}/bin/watched-busybox:/busybox:ro", e.root.display());
    let (_, ok) = run_container(&["--rm"], &["/etc:/h:ro", &bin], IMAGE, &["/busybox", "true"]);
    assert!(ok);
    e.fence();
    let all = e.monitor.all();
    assert!(all.iter().any(|a| s(a, "event.action") == "docker-request"));
    assert!(all.iter().any(|a| a.get("container").is_some()), "some alert from inside a container");
    monitor_tests::check_schema(&all);
}
