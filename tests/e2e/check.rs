//! `monitor check` against the real host: each test creates a condition the guides warn
//! about, asserts the finding flips, and puts the host back (also when it fails).

use monitor_tests::{docker, get, json_lines, monitor_bin, privileged, privileged_turn, s};
use serde_json::Value;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Mutex;

/// The tests change global host state that other checks read: one at a time.
static HOST: Mutex<()> = Mutex::new(());

/// Undo actions, run in reverse order when dropped.
#[derive(Default)]
struct Restore(Vec<Box<dyn FnOnce()>>);

impl Restore {
    fn push(&mut self, f: impl FnOnce() + 'static) {
        self.0.push(Box::new(f));
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        while let Some(f) = self.0.pop() {
            f();
        }
    }
}

/// `monitor check --json --only ID`: the finding and the exit code.
fn check(id: &str) -> (Value, i32) {
    let out = Command::new(monitor_bin()).args(["check", "--json", "--only", id]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let finding: Value = serde_json::from_str(lines.next().expect("one finding")).unwrap();
    assert!(lines.next().is_none());
    assert_eq!(s(&finding, "rule.id"), id);
    (finding, out.status.code().unwrap())
}

fn status(id: &str) -> String {
    s(&check(id).0, "monitor.check.result").to_string()
}

fn evidence(id: &str) -> String {
    get(&check(id).0, "monitor.check.evidence").to_string()
}

fn run(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd).args(args).status().unwrap();
    assert!(st.success(), "{cmd} {args:?}: {st}");
}

#[test]
fn a_core_user_in_the_docker_group_is_reported() {
    let Some(_host) = privileged_turn(&HOST) else { return };
    let mut restore = Restore::default();
    if Command::new("getent").args(["group", "docker"]).output().unwrap().stdout.is_empty() {
        run("groupadd", &["docker"]);
        restore.push(|| run("groupdel", &["docker"]));
    }
    if Command::new("id").arg("core").output().unwrap().status.success() {
        panic!("a `core` user already exists here; this test creates and removes its own");
    }
    run("useradd", &["-M", "-s", "/bin/bash", "core"]);
    restore.push(|| run("userdel", &["core"]));
    run("gpasswd", &["-a", "core", "docker"]);
    let (f, code) = check("USR-DOCKER-GROUP");
    assert_eq!(s(&f, "monitor.check.result"), "fail", "{f}");
    assert!(get(&f, "monitor.check.evidence").to_string().contains("core (including core)"), "{f}");
    assert_eq!(code, 13, "high severity");
    drop(restore);
    assert!(!evidence("USR-DOCKER-GROUP").contains("core"));
}

#[test]
fn a_world_writable_docker_socket_is_critical() {
    let Some(_host) = privileged_turn(&HOST) else { return };
    docker::ensure();
    let sock = "/run/docker.sock";
    let mode = std::fs::metadata(sock).unwrap().permissions().mode() & 0o7777;
    let mut restore = Restore::default();
    restore.push(move || {
        std::fs::set_permissions(sock, std::fs::Permissions::from_mode(mode)).unwrap()
    });
    std::fs::set_permissions(sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (f, code) = check("DOCKER-SOCKET-PERMS");
    assert_eq!(s(&f, "monitor.check.result"), "fail", "{f}");
    assert!(get(&f, "monitor.check.evidence").to_string().contains("mode 0666"), "{f}");
    assert_eq!(code, 14, "critical");
    std::fs::set_permissions(sock, std::fs::Permissions::from_mode(0o660)).unwrap();
    assert_eq!(status("DOCKER-SOCKET-PERMS"), "pass");
}

#[test]
fn listeners_on_any_address_and_the_docker_port_are_reported() {
    let Some(_host) = privileged_turn(&HOST) else { return };
    let any = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = format!(":{} ", any.local_addr().unwrap().port());
    let local = TcpListener::bind("127.0.0.1:0").unwrap();
    let local_port = format!(":{} ", local.local_addr().unwrap().port());
    let e = evidence("NET-LISTEN");
    assert!(e.contains(&port), "{port} in {e}");
    assert!(!e.contains(&local_port), "loopback listeners are fine: {e}");
    drop(any);
    assert!(!evidence("NET-LISTEN").contains(&port));

    // The unauthenticated Docker API port, even on loopback, is critical.
    assert_eq!(status("NET-DOCKER-TCP"), "pass");
    let api = TcpListener::bind("127.0.0.1:2375").expect("port 2375 free");
    let (f, code) = check("NET-DOCKER-TCP");
    assert_eq!(s(&f, "monitor.check.result"), "fail", "{f}");
    assert!(get(&f, "monitor.check.evidence").to_string().contains("127.0.0.1:2375"), "{f}");
    assert_eq!(code, 14);
    drop(api);
    assert_eq!(status("NET-DOCKER-TCP"), "pass");
}

/// Write `path` for the duration of the test (it must not exist yet).
fn temp_file(restore: &mut Restore, path: &'static str, text: &str) {
    assert!(!std::path::Path::new(path).exists(), "{path} exists already");
    std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    restore.push(move || std::fs::remove_file(path).unwrap());
}

#[test]
fn config_files_flip_kernel_and_user_findings() {
    let Some(_host) = privileged_turn(&HOST) else { return };
    let usb_before = status("KERN-USB-STORAGE");
    let tmout_before = status("KERN-TMOUT");
    let sudo_before = check("USR-NOPASSWD-SUDO").0;
    {
        let mut restore = Restore::default();
        temp_file(
            &mut restore,
            "/etc/modprobe.d/monitor-e2e-usb.conf",
            "install usb-storage /bin/false\n",
        );
        temp_file(
            &mut restore,
            "/etc/profile.d/monitor-e2e-tmout.sh",
            "readonly TMOUT=900; export TMOUT\n",
        );
        temp_file(&mut restore, "/etc/sudoers.d/monitor-e2e", "core ALL=(ALL) NOPASSWD: ALL\n");
        match std::fs::read_to_string("/proc/modules") {
            Ok(m) if !m.lines().any(|l| l.starts_with("usb_storage ")) => {
                assert_eq!(status("KERN-USB-STORAGE"), "pass");
                assert!(evidence("KERN-USB-STORAGE").contains("monitor-e2e-usb.conf"));
            }
            Ok(_) => {
                assert_eq!(status("KERN-USB-STORAGE"), "fail", "loaded: modprobe.d cannot help")
            }
            // No module loading at all (our CI kernel): nothing for modprobe.d to change.
            Err(_) => assert!(evidence("KERN-USB-STORAGE").contains("cannot load modules")),
        }
        assert_eq!(status("KERN-TMOUT"), "pass");
        let (f, _) = check("USR-NOPASSWD-SUDO");
        assert_eq!(s(&f, "monitor.check.result"), "fail", "{f}");
        assert!(
            get(&f, "monitor.check.evidence").to_string().contains("/etc/sudoers.d/monitor-e2e:1"),
            "{f}"
        );
    }
    // Back as they were.
    assert_eq!(status("KERN-USB-STORAGE"), usb_before);
    assert_eq!(status("KERN-TMOUT"), tmout_before);
    assert_eq!(
        check("USR-NOPASSWD-SUDO").0["monitor"]["check"]["result"],
        sudo_before["monitor"]["check"]["result"]
    );
    // A fresh machine of ours has no TMOUT (the guides' settings are not applied).
    if std::env::var("CI").as_deref() == Ok("true") {
        assert_eq!(tmout_before, "fail");
    }
}

#[test]
fn what_cannot_be_read_is_unknown_never_pass() {
    if !privileged() {
        return;
    }
    let out = Command::new(monitor_bin())
        .args(["check", "--json", "--only", "USR-EMPTY-PASSWORD", "USR-LOCKED-SHELL"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let lines: Vec<Value> = json_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(lines.len(), 2);
    for f in &lines {
        assert_eq!(s(f, "monitor.check.result"), "unknown", "{f}");
        assert!(s(f, "monitor.check.reason").contains("/etc/shadow"), "{f}");
        assert_eq!(s(f, "event.outcome"), "unknown");
    }
    assert_eq!(
        out.status.code(),
        Some(9),
        "unknown is not a failure, but not a clean result either"
    );
}

#[test]
fn the_full_report_is_json_lines_with_a_matching_exit_code() {
    let Some(_host) = privileged_turn(&HOST) else { return };
    let started = std::time::Instant::now();
    let out = Command::new(monitor_bin()).args(["check", "--json"]).output().unwrap();
    let elapsed = started.elapsed();
    let findings: Vec<Value> = json_lines(&String::from_utf8(out.stdout).unwrap());
    // One line per check, and one per container or image for the checks that look at each.
    let list = Command::new(monitor_bin()).args(["check", "--list"]).output().unwrap();
    let ids: std::collections::BTreeSet<&str> = findings.iter().map(|f| s(f, "rule.id")).collect();
    assert_eq!(ids.len(), String::from_utf8(list.stdout).unwrap().lines().count());
    let severities = ["info", "low", "medium", "high", "critical"];
    let mut worst = None;
    let mut unknown = false;
    for f in &findings {
        assert_eq!(s(f, "event.kind"), "state");
        assert!(
            ["pass", "fail", "warn", "unknown", "not-applicable"]
                .contains(&s(f, "monitor.check.result")),
            "{f}"
        );
        assert!(!s(f, "monitor.check.remediation").is_empty());
        let sev = severities.iter().position(|w| *w == s(f, "monitor.severity")).unwrap();
        assert_eq!(get(f, "event.severity").as_u64(), Some([0, 21, 47, 73, 99][sev]), "{f}");
        match s(f, "monitor.check.result") {
            "fail" => worst = worst.max(Some(sev as i32)),
            "unknown" => unknown = true,
            _ => {}
        }
    }
    let expected = match worst {
        Some(w) => 10 + w,
        None if unknown => 9,
        None => 0,
    };
    assert_eq!(out.status.code(), Some(expected));
    // The table says the same.
    let table = Command::new(monitor_bin()).arg("check").output().unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains(&format!("{} checks:", findings.len())), "{text}");
    assert!(!text.contains('\x1b'), "no colours when stdout is not a terminal");
    eprintln!("monitor check --json: {} checks in {} ms", findings.len(), elapsed.as_millis());
}

#[test]
fn the_docker_audit_items_pass_while_the_monitor_watches_them() {
    let Some(_host) = privileged_turn(&HOST) else { return };
    docker::ensure();
    let before = check("AUDIT-DOCKER").0;
    if !before.to_string().contains("monitor run") {
        // Without auditd rules (a fresh machine) the items are reported missing, one by one.
        assert_eq!(s(&before, "monitor.check.result"), "fail", "{before}");
        assert!(before.to_string().contains("1.1.5 /var/lib/docker"), "{before}");
    }
    let m = monitor_tests::Monitor::start_with(&[]);
    let (f, _) = check("AUDIT-DOCKER");
    assert_eq!(s(&f, "monitor.check.result"), "pass", "{f}");
    assert!(f.to_string().contains(&format!("pid {}", m.pid())), "{f}");
}
