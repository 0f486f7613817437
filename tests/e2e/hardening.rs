//! The hardening pack (rules/hardening.rules, with the rest of the default pack): each concern
//! caused for real raises its key; the benign counterpart stays silent. The host is put back.

use monitor_tests::docker::{PackMonitor, IMAGE};
use monitor_tests::{connect_as, get, s};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// Taken by tests that replace the daemons' files and by the one that runs a container, so a
/// container never starts from a binary being swapped.
static DAEMON_FILES: Mutex<()> = Mutex::new(());

fn env() -> Option<&'static PackMonitor> {
    static ENV: OnceLock<PackMonitor> = OnceLock::new();
    PackMonitor::once(&ENV, "hardening", |_| String::new())
}

/// What the hardening tests expect of the pack's monitor.
trait Expect {
    /// The alert under `key` that `pred` accepts, with the pack's metadata (name, severity).
    fn expect_key(&self, key: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value;
    /// Runs a command that must not alert: no alert carries its pid.
    fn assert_benign(&self, cmd: &mut Command);
    /// [`Expect::assert_benign`] for `sh -c SCRIPT`.
    fn assert_benign_sh(&self, script: &str) {
        self.assert_benign(Command::new("sh").args(["-c", script]));
    }
}

impl Expect for PackMonitor {
    fn expect_key(&self, key: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let a = self.monitor.wait_for(what, |a| s(a, "rule.id") == key && pred(a)).json;
        assert!(
            !s(&a, "rule.name").is_empty() && get(&a, "event.severity").as_u64().unwrap_or(0) > 0,
            "metadata: {a}"
        );
        a
    }

    fn assert_benign(&self, cmd: &mut Command) {
        let (pid, _) = run_pid(cmd);
        self.fence();
        let quiet = self.monitor.matching(|a| get(a, "process.pid").as_u64() == Some(pid));
        assert!(quiet.is_empty(), "{cmd:?}: {quiet:#?}");
    }
}

/// Runs `cmd` and requires success (its stderr in the failure message).
fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `cmd` to its end with its output discarded: its pid (to find its alerts) and status.
fn run_pid(cmd: &mut Command) -> (u64, std::process::ExitStatus) {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let pid = child.id() as u64;
    (pid, child.wait().unwrap())
}

/// Removes a path created by a test, also when the test fails.
struct Remove(&'static str);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

/// A host user (and the groups it needed) for the account-tool tests, deleted afterwards.
struct TempUser {
    name: String,
    created_groups: Vec<&'static str>,
}

impl TempUser {
    fn new() -> TempUser {
        let name = format!("mone2eu{}", std::process::id() % 100_000);
        let mut created_groups = Vec::new();
        for g in ["wheel", "rkt"] {
            if !Command::new("getent").args(["group", g]).output().unwrap().status.success() {
                assert!(Command::new("groupadd").arg(g).status().unwrap().success());
                created_groups.push(g);
            }
        }
        run_ok(Command::new("useradd").args(["-M", "-s", "/usr/sbin/nologin"]).arg(&name));
        TempUser { name, created_groups }
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
        for g in &self.created_groups {
            let _ = Command::new("groupdel").arg(g).output();
        }
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
        e.expect_key(key, &format!("{key} via {path}"), |a| {
            s(a, "file.path") == path && s(a, "event.action") == "write"
        });
        drop(f);
        e.expect_key(key, &format!("{key} unlink {path}"), |a| {
            s(a, "file.path") == path && s(a, "event.action") == "unlink"
        });
    }
}

#[test]
fn group_changes_and_account_tools_are_reported_reads_are_not() {
    let Some(e) = env() else { return };
    let name = format!("mone2e{}", std::process::id() % 100_000);
    run_ok(Command::new("groupadd").arg(&name));
    let del = Command::new("groupdel").arg(&name).output().unwrap();
    assert!(del.status.success());
    e.expect_key("account-tools", "groupadd run", |a| {
        s(a, "event.action") == "exec" && s(a, "process.executable").ends_with("/groupadd")
    });
    e.expect_key("identity", "/etc/group replaced", |a| {
        s(a, "file.path") == "/etc/group" || s(a, "monitor.file.new_path") == "/etc/group"
    });
    let out = Command::new("auditctl").arg("-l").output().unwrap();
    assert!(out.status.success());
    e.expect_key("audit-tools", "auditctl run", |a| s(a, "event.action") == "exec");
    // Reading the account databases is not a change.
    let me = std::process::id() as u64;
    std::fs::read_to_string("/etc/group").unwrap();
    std::fs::read_to_string("/etc/passwd").unwrap();
    e.fence();
    let reads = e
        .monitor
        .matching(|a| s(a, "rule.id") == "identity" && get(a, "process.pid").as_u64() == Some(me));
    assert!(reads.is_empty(), "{reads:#?}");
}

#[test]
fn the_docker_daemons_own_writes_stay_silent() {
    let Some(e) = env() else { return };
    let _files = DAEMON_FILES.lock().unwrap_or_else(|p| p.into_inner());
    run_ok(Command::new("docker").args(["run", "--rm", "--network", "none", IMAGE, "true"]));
    e.fence();
    let daemons = [
        "/usr/sbin/dockerd",
        "/usr/bin/dockerd",
        "/usr/bin/containerd",
        "/usr/sbin/runc",
        "/usr/bin/runc",
        "/usr/bin/containerd-shim-runc-v2",
    ];
    let noisy = e.monitor.matching(|a| {
        s(a, "rule.id") == "docker-data" && daemons.contains(&s(a, "process.executable"))
    });
    assert!(noisy.is_empty(), "the daemons' work under /var/lib/docker: {noisy:#?}");
    // Anyone else writing there is reported.
    let f = TempFile::write("/var/lib/docker/monitor-e2e", "x");
    e.expect_key("docker-data", "a foreign write under /var/lib/docker", |a| {
        s(a, "file.path") == f.path
    });
}

#[test]
fn runtime_sysctl_and_docker_socket_changes_are_reported() {
    let Some(e) = env() else { return };
    // Writing the current value back changes nothing but is the write the rule is about.
    let now = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    run_ok(Command::new("sysctl").arg("-w").arg(format!("net.ipv4.ip_forward={}", now.trim())));
    e.expect_key("sysctl", "sysctl -w", |a| s(a, "file.path") == "/proc/sys/net/ipv4/ip_forward");
    // ICMP redirects, the same way.
    let key = "net.ipv4.conf.all.accept_redirects";
    let now = std::fs::read_to_string("/proc/sys/net/ipv4/conf/all/accept_redirects").unwrap();
    run_ok(Command::new("sysctl").arg("-w").arg(format!("{key}={}", now.trim())));
    e.expect_key("sysctl", "sysctl -w accept_redirects", |a| {
        s(a, "file.path") == "/proc/sys/net/ipv4/conf/all/accept_redirects"
    });
    // Reading them changes nothing.
    e.assert_benign(Command::new("sysctl").args(["net.ipv4.ip_forward", key]));
    // The socket's mode set again (to what it is).
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata("/run/docker.sock").unwrap().permissions().mode() & 0o7777;
    std::fs::set_permissions("/run/docker.sock", std::fs::Permissions::from_mode(mode)).unwrap();
    e.expect_key("docker-socket", "chmod of the socket", |a| {
        s(a, "event.action") == "chmod" && s(a, "file.path") == "/run/docker.sock"
    });
    // A docker.socket drop-in (no daemon-reload: nothing takes effect).
    let f =
        TempFile::write("/etc/systemd/system/docker.socket.d/99-monitor-e2e.conf", "[Socket]\n");
    e.expect_key("docker-units", "docker.socket drop-in", |a| s(a, "file.path") == f.path);
}

#[test]
fn a_non_root_connect_to_the_docker_socket_has_its_own_key() {
    let Some(e) = env() else { return };
    let pid = connect_as(65534, "/run/docker.sock");
    let a = e.expect_key("docker-socket-nonroot", "connect as nobody", |a| {
        get(a, "process.pid").as_u64() == Some(pid as u64)
    });
    assert_eq!(s(&a, "user.id"), "65534", "{a}");
    assert_eq!(s(&a, "event.outcome"), "failure", "the socket is root:docker 0660: {a}");
    assert_eq!(s(&a, "destination.address"), "/run/docker.sock", "{a}");
}

#[test]
fn sshd_socket_reenabled_is_reported_reading_it_is_not() {
    let Some(e) = env() else { return };
    // Unmasking or overriding: a unit file for sshd.socket under /etc/systemd/system.
    let unit = TempFile::write(
        "/etc/systemd/system/sshd.socket",
        "[Socket]\nListenStream=22\nAccept=yes\n",
    );
    e.expect_key("sshd", "sshd.socket unit written", |a| {
        s(a, "file.path") == unit.path && s(a, "event.action") == "write"
    });
    // Enabling: the link `systemctl enable sshd.socket` creates (no daemon-reload: nothing starts).
    let link = "/etc/systemd/system/sockets.target.wants/sshd.socket";
    assert!(!Path::new(link).exists(), "{link} exists already");
    std::os::unix::fs::symlink(unit.path, link).unwrap();
    let _link = Remove(link);
    e.expect_key("sshd", "sshd.socket enabled", |a| {
        s(a, "file.path") == link && s(a, "event.action") == "symlink"
    });
    // Reading the units and listing what is enabled changes nothing.
    e.assert_benign_sh(&format!(
        "cat {} {link}; ls -l /etc/systemd/system/sockets.target.wants",
        unit.path
    ));
}

#[test]
fn group_additions_by_usermod_and_gpasswd_are_reported_lookups_are_not() {
    let Some(e) = env() else { return };
    let user = TempUser::new();
    for group in ["wheel", "docker", "rkt"] {
        run_ok(Command::new("usermod").args(["-aG", group, &user.name]));
        let a = e.expect_key("account-tools", &format!("usermod -aG {group}"), |a| {
            s(a, "process.executable") == "/usr/sbin/usermod"
                && get(a, "process.args").as_array().is_some_and(|v| v.iter().any(|x| x == group))
        });
        assert_eq!(s(&a, "event.action"), "exec", "{a}");
        e.expect_key("identity", &format!("/etc/group rewritten by usermod for {group}"), |a| {
            s(a, "process.executable") == "/usr/sbin/usermod"
                && (s(a, "file.path") == "/etc/group"
                    || s(a, "monitor.file.new_path") == "/etc/group")
        });
        run_ok(Command::new("gpasswd").args(["-d", &user.name, group]));
        run_ok(Command::new("gpasswd").args(["-a", &user.name, group]));
        e.expect_key("account-tools", &format!("gpasswd -a {group}"), |a| {
            s(a, "process.executable") == "/usr/bin/gpasswd"
                && get(a, "process.args").as_array().is_some_and(|v| v.iter().any(|x| x == "-a"))
        });
        e.expect_key("identity", &format!("/etc/gshadow rewritten by gpasswd for {group}"), |a| {
            s(a, "process.executable") == "/usr/bin/gpasswd"
                && (s(a, "file.path") == "/etc/gshadow"
                    || s(a, "monitor.file.new_path") == "/etc/gshadow")
        });
    }
    // A login shell given to the account: /etc/passwd rewritten.
    run_ok(Command::new("usermod").args(["-s", "/bin/sh", &user.name]));
    e.expect_key("identity", "/etc/passwd rewritten for a shell change", |a| {
        s(a, "process.executable") == "/usr/sbin/usermod"
            && (s(a, "file.path") == "/etc/passwd"
                || s(a, "monitor.file.new_path") == "/etc/passwd")
    });
    // groupmod on the user's own group (userdel removes it afterwards).
    run_ok(Command::new("groupmod").args(["-g", "64999", &user.name]));
    e.expect_key("account-tools", "groupmod run", |a| {
        s(a, "process.executable") == "/usr/sbin/groupmod" && s(a, "event.action") == "exec"
    });
    e.expect_key("identity", "/etc/group rewritten by groupmod", |a| {
        s(a, "process.executable") == "/usr/sbin/groupmod"
            && (s(a, "file.path") == "/etc/group" || s(a, "monitor.file.new_path") == "/etc/group")
    });
    // Looking up membership is not a change.
    e.assert_benign_sh(&format!("id {0}; getent group docker wheel rkt; groups {0}", user.name));
}

#[test]
fn fleet_socket_clients_are_reported_other_sockets_are_not() {
    let Some(e) = env() else { return };
    let path = "/run/fleet.sock";
    assert!(!Path::new(path).exists(), "{path} exists already");
    let _fleet = std::os::unix::net::UnixListener::bind(path).unwrap();
    let _remove = Remove(path);
    let pid = connect_as(65534, path);
    let a = e.expect_key("fleet", "a client of fleet.sock", |a| {
        get(a, "process.pid").as_u64() == Some(pid as u64)
    });
    assert_eq!(s(&a, "event.action"), "connect", "{a}");
    assert_eq!(s(&a, "destination.address"), path, "{a}");
    let other = "/run/monitor-e2e-other.sock";
    let _other = std::os::unix::net::UnixListener::bind(other).unwrap();
    let _remove_other = Remove(other);
    let pid = connect_as(65534, other) as u64;
    e.fence();
    let quiet = e.monitor.matching(|a| get(a, "process.pid").as_u64() == Some(pid));
    assert!(quiet.is_empty(), "{quiet:#?}");
}

#[test]
fn smt_control_writes_are_reported_reads_are_not() {
    let Some(e) = env() else { return };
    let control = "/sys/devices/system/cpu/smt/control";
    assert!(Path::new(control).exists(), "this kernel has no SMT control file");
    let before = std::fs::read_to_string(control).unwrap();
    // The value it has (or "on" where the kernel has no SMT: refused, but the open for
    // writing is the attempt the rule is about).
    let value = match before.trim() {
        v @ ("on" | "off") => v,
        _ => "on",
    };
    let (pid, _) = run_pid(Command::new("sh").args(["-c", &format!("echo {value} > {control}")]));
    e.expect_key("smt-control", "a write to SMT control", |a| {
        get(a, "process.pid").as_u64() == Some(pid) && s(a, "file.path") == control
    });
    assert_eq!(std::fs::read_to_string(control).unwrap(), before, "SMT state changed");
    e.assert_benign(Command::new("cat").arg(control));
}

#[test]
fn selinux_set_permissive_is_reported_asking_is_not() {
    let Some(e) = env() else { return };
    // The real setenforce (selinux-utils): without SELinux it refuses, the exec is the alert.
    let (pid, _) = run_pid(Command::new("setenforce").arg("0"));
    e.expect_key("selinux", "setenforce 0", |a| {
        get(a, "process.pid").as_u64() == Some(pid) && s(a, "event.action") == "exec"
    });
    e.assert_benign(&mut Command::new("getenforce"));
    // /sys/fs/selinux/enforce: this kernel has no SELinux, so no selinuxfs. The same path on
    // a tmpfs in a private mount namespace gets the same write; a read of it stays silent.
    let selinuxfs = Path::new("/sys/fs/selinux").exists();
    let script = if selinuxfs {
        "cat /sys/fs/selinux/enforce > /sys/fs/selinux/enforce".to_string()
    } else {
        "mount -t tmpfs none /sys/fs && mkdir /sys/fs/selinux && echo 0 > /sys/fs/selinux/enforce && cat /sys/fs/selinux/enforce".to_string()
    };
    let (pid, status) = run_pid(Command::new("unshare").args(["-m", "sh", "-c", &script]));
    assert!(status.success());
    let a = e.expect_key("selinux", "a write to /sys/fs/selinux/enforce", |a| {
        s(a, "file.path") == "/sys/fs/selinux/enforce"
    });
    assert_eq!(get(&a, "process.pid").as_u64(), Some(pid), "only the write alerts: {a}");
    e.fence();
    let all = e.monitor.matching(|a| s(a, "file.path") == "/sys/fs/selinux/enforce");
    assert_eq!(all.len(), 1, "the read (cat) stays silent: {all:#?}");
}

/// Replaces `path` the way a package upgrade or an editor does: an identical copy (mode
/// included) written beside it and renamed over it. The content never changes.
fn replace_with_identical_copy(path: &str) {
    let copy = format!("{path}.monitor-e2e");
    std::fs::copy(path, &copy).unwrap();
    std::fs::rename(&copy, path).unwrap();
}

/// /etc/docker/daemon.json for a test that replaces it: Debian's docker.io (20.10) ships
/// none, and `{}` is dockerd's default configuration. A file made here is removed on drop,
/// so the host keeps the configuration it had.
struct DaemonJson {
    made: bool,
}

impl DaemonJson {
    const PATH: &'static str = "/etc/docker/daemon.json";

    fn ensure() -> DaemonJson {
        let made = !Path::new(Self::PATH).exists();
        if made {
            std::fs::write(Self::PATH, "{}\n").expect("writing /etc/docker/daemon.json");
        }
        DaemonJson { made }
    }
}

impl Drop for DaemonJson {
    fn drop(&mut self) {
        if self.made {
            let _ = std::fs::remove_file(Self::PATH);
        }
    }
}

#[test]
fn daemon_binaries_and_configuration_replaced_are_reported_looking_is_not() {
    let Some(e) = env() else { return };
    let _files = DAEMON_FILES.lock().unwrap_or_else(|p| p.into_inner());
    let _config = DaemonJson::ensure();
    // Not running now: replaced for real, with the same bytes.
    for (key, path) in [
        ("runc", "/usr/sbin/runc"),
        ("containerd", "/usr/bin/containerd-shim-runc-v2"),
        ("docker-config", "/etc/docker/daemon.json"),
        ("docker-config", "/etc/default/docker"),
    ] {
        assert!(
            Path::new(path).exists(),
            "{path} (docker.io installs it; daemon.json is made above)"
        );
        replace_with_identical_copy(path);
        let a = e.expect_key(key, &format!("{path} replaced"), |a| {
            s(a, "event.action") == "rename" && s(a, "monitor.file.new_path") == path
        });
        assert_eq!(s(&a, "event.outcome"), "success", "{a}");
    }
    // Running daemons cannot be rewritten (ETXTBSY): the attempt is what gets reported.
    let me = std::process::id() as u64;
    for (key, path) in
        [("docker-daemon", "/usr/sbin/dockerd"), ("containerd", "/usr/bin/containerd")]
    {
        let err = std::fs::OpenOptions::new().write(true).open(path).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ETXTBSY), "{path} is running: {err}");
        let a = e.expect_key(key, &format!("write to the running {path}"), |a| {
            s(a, "file.path") == path && get(a, "process.pid").as_u64() == Some(me)
        });
        assert_eq!(s(&a, "event.outcome"), "failure", "{a}");
    }
    // Listing and stat-ing them opens nothing.
    e.assert_benign_sh("ls -l /usr/sbin/dockerd /usr/bin/containerd /usr/sbin/runc /etc/docker; stat /etc/default/docker");
}
