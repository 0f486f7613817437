//! The hardening pack (rules/hardening.rules, with the rest of the default pack): each concern
//! caused for real raises its key; the benign counterpart stays silent. The host is put back.

use monitor_tests::docker::{ensure, IMAGE};
use monitor_tests::{connect_as, get, privileged, s, scratch_dir, Monitor};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

struct Env {
    monitor: Monitor,
    fence_dir: std::path::PathBuf,
}

fn env() -> Option<&'static Env> {
    if !privileged() {
        return None;
    }
    static ENV: OnceLock<Env> = OnceLock::new();
    Some(ENV.get_or_init(|| {
        ensure();
        let root = scratch_dir("hardening");
        let fence_dir = root.join("fence");
        std::fs::create_dir_all(&fence_dir).unwrap();
        let extra = root.join("fence.rules");
        std::fs::write(&extra, format!("-w {} -p w -k e2e-fence\n", fence_dir.display())).unwrap();
        let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
        Env { monitor: Monitor::start_with(&[&pack, &extra]), fence_dir }
    }))
}

impl Env {
    fn fence(&self) {
        self.monitor.fence(&self.fence_dir);
    }

    fn expect_key(&self, key: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let a = self.monitor.wait_for(what, |a| s(a, "rule.key") == key && pred(a)).json;
        assert!(!s(&a, "rule.name").is_empty() && get(&a, "event.severity").as_u64().unwrap_or(0) > 0, "metadata: {a}");
        a
    }
}

/// Create `path` for the test and remove it (and directories created for it) afterwards.
struct TempFile {
    path: &'static str,
    created_dirs: Vec<std::path::PathBuf>,
}

impl TempFile {
    fn write(path: &'static str, text: &str) -> TempFile {
        assert!(!Path::new(path).exists(), "{path} exists already");
        let mut created_dirs = Vec::new();
        let mut dir = Path::new(path).parent().unwrap().to_path_buf();
        while !dir.exists() {
            created_dirs.push(dir.clone());
            dir = dir.parent().unwrap().to_path_buf();
        }
        std::fs::create_dir_all(Path::new(path).parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        TempFile { path, created_dirs }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path);
        for d in &self.created_dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
fn configuration_files_of_each_concern_raise_their_key() {
    let Some(e) = env() else { return };
    for (key, path) in [
        ("sudoers", "/etc/sudoers.d/monitor-e2e"),
        ("kernel-modules", "/etc/modprobe.d/monitor-e2e.conf"),
        ("sysctl", "/etc/sysctl.d/99-monitor-e2e.conf"),
        ("audit-config", "/etc/audit/rules.d/monitor-e2e.rules"),
        ("sshd", "/etc/ssh/sshd_config.d/monitor-e2e.conf"),
        ("selinux", "/etc/selinux/config"),
        ("etcd-tls", "/etc/etcd/monitor-e2e.pem"),
        ("rkt", "/var/lib/rkt/monitor-e2e"),
    ] {
        if key == "selinux" && Path::new(path).exists() {
            continue; // a real SELinux host: not ours to touch
        }
        let f = TempFile::write(path, "# monitor e2e\n");
        e.expect_key(key, &format!("{key} via {path}"), |a| s(a, "file.path") == path && s(a, "event.action") == "write");
        drop(f);
        e.expect_key(key, &format!("{key} unlink {path}"), |a| s(a, "file.path") == path && s(a, "event.action") == "unlink");
    }
}

#[test]
fn group_changes_and_account_tools_are_reported_reads_are_not() {
    let Some(e) = env() else { return };
    let name = format!("mone2e{}", std::process::id() % 100_000);
    let out = Command::new("groupadd").arg(&name).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let del = Command::new("groupdel").arg(&name).output().unwrap();
    assert!(del.status.success());
    e.expect_key("account-tools", "groupadd run", |a| s(a, "event.action") == "exec" && s(a, "process.executable").ends_with("/groupadd"));
    e.expect_key("identity", "/etc/group replaced", |a| s(a, "file.path") == "/etc/group" || s(a, "file.target_path") == "/etc/group");
    let out = Command::new("auditctl").arg("-l").output().unwrap();
    assert!(out.status.success());
    e.expect_key("audit-tools", "auditctl run", |a| s(a, "event.action") == "exec");
    // Reading the account databases is not a change.
    let me = std::process::id() as u64;
    std::fs::read_to_string("/etc/group").unwrap();
    std::fs::read_to_string("/etc/passwd").unwrap();
    e.fence();
    let reads = e.monitor.matching(|a| s(a, "rule.key") == "identity" && get(a, "process.pid").as_u64() == Some(me));
    assert!(reads.is_empty(), "{reads:#?}");
}

#[test]
fn the_docker_daemons_own_writes_stay_silent() {
    let Some(e) = env() else { return };
    let out = Command::new("docker").args(["run", "--rm", "--network", "none", IMAGE, "true"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    e.fence();
    let daemons = ["/usr/sbin/dockerd", "/usr/bin/dockerd", "/usr/bin/containerd", "/usr/sbin/runc", "/usr/bin/runc", "/usr/bin/containerd-shim-runc-v2"];
    let noisy = e.monitor.matching(|a| s(a, "rule.key") == "docker-data" && daemons.contains(&s(a, "process.executable")));
    assert!(noisy.is_empty(), "the daemons' work under /var/lib/docker: {noisy:#?}");
    // Anyone else writing there is reported.
    let f = TempFile::write("/var/lib/docker/monitor-e2e", "x");
    e.expect_key("docker-data", "a foreign write under /var/lib/docker", |a| s(a, "file.path") == f.path);
}

#[test]
fn runtime_sysctl_and_docker_socket_changes_are_reported() {
    let Some(e) = env() else { return };
    // Writing the current value back changes nothing but is the write the rule is about.
    let now = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let out = Command::new("sysctl").arg("-w").arg(format!("net.ipv4.ip_forward={}", now.trim())).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    e.expect_key("sysctl", "sysctl -w", |a| s(a, "file.path") == "/proc/sys/net/ipv4/ip_forward");
    // The socket's mode set again (to what it is).
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata("/run/docker.sock").unwrap().permissions().mode() & 0o7777;
    std::fs::set_permissions("/run/docker.sock", std::fs::Permissions::from_mode(mode)).unwrap();
    e.expect_key("docker-socket", "chmod of the socket", |a| s(a, "event.action") == "chmod" && s(a, "file.path") == "/run/docker.sock");
    // A docker.socket drop-in (no daemon-reload: nothing takes effect).
    let f = TempFile::write("/etc/systemd/system/docker.socket.d/99-monitor-e2e.conf", "[Socket]\n");
    e.expect_key("docker-units", "docker.socket drop-in", |a| s(a, "file.path") == f.path);
}

#[test]
fn a_non_root_connect_to_the_docker_socket_has_its_own_key() {
    let Some(e) = env() else { return };
    let pid = connect_as(65534, "/run/docker.sock");
    let a = e.expect_key("docker-socket-nonroot", "connect as nobody", |a| get(a, "process.pid").as_u64() == Some(pid as u64));
    assert_eq!(s(&a, "user.id"), "65534", "{a}");
    assert_eq!(s(&a, "event.outcome"), "failure", "the socket is root:docker 0660: {a}");
    assert_eq!(s(&a, "socket.requested_path"), "/run/docker.sock", "{a}");
}
