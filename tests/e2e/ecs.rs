//! Every line the monitor prints is valid ECS (the version the monitor pins), checked
//! against Elastic's own field definitions (npm `@elastic/ecs`, downloaded in the set-up)
//! and the monitor's field table: real runs covering every kind of line — alerts on every
//! file action, exec (on the host and in a container), setid, connect, Docker API requests
//! to a real dockerd, tampering, the audit trail; the records (start, heartbeat, events
//! lost, alerts suppressed, rule reloads, stop); the replay of the run's capture and of an
//! auditd log; `monitor check --json` findings. Prints what it checked.

use monitor_tests::docker::{ensure, IMAGE};
use monitor_tests::{
    check_lines, check_schema, ecs, monitor_bin, privileged, s, scratch_dir, setresuid_child,
    Monitor,
};
use serde_json::Value;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn cstr(p: &Path) -> std::ffi::CString {
    std::ffi::CString::new(p.to_str().unwrap()).unwrap()
}

/// Every file action on `dir` (watched `rwa`): each syscall class once.
fn file_actions(dir: &Path) {
    let f = dir.join("f");
    std::fs::write(&f, "x").unwrap();
    std::fs::read(&f).unwrap();
    std::fs::rename(&f, dir.join("g")).unwrap();
    let g = dir.join("g");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&g, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&g, Some(0), Some(0)).unwrap();
    std::fs::hard_link(&g, dir.join("hard")).unwrap();
    std::os::unix::fs::symlink("target text", dir.join("soft")).unwrap();
    std::fs::create_dir(dir.join("d")).unwrap();
    std::fs::remove_dir(dir.join("d")).unwrap();
    unsafe {
        assert_eq!(libc::truncate(cstr(&g).as_ptr(), 0), 0);
        assert_eq!(libc::mkfifo(cstr(&dir.join("fifo")).as_ptr(), 0o600), 0);
        let (name, v) = (c"user.ecs", b"v");
        assert_eq!(libc::setxattr(cstr(&g).as_ptr(), name.as_ptr(), v.as_ptr().cast(), 1, 0), 0);
        assert_eq!(libc::removexattr(cstr(&g).as_ptr(), name.as_ptr()), 0);
    }
    std::fs::remove_file(dir.join("hard")).unwrap();
}

/// Fork a child that sends `sig` to `pid`; returns once it has exited.
fn signal_from_child(pid: i32, sig: i32) {
    // Only raw syscalls between fork and _exit: the test process has threads.
    let child = unsafe { libc::fork() };
    assert!(child >= 0);
    if child == 0 {
        unsafe {
            libc::kill(pid, sig);
            libc::_exit(0);
        }
    }
    unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
}

/// Write `path` `n` times from one child process (identical alerts: aggregated).
fn flood(path: &Path, n: usize) {
    let c = cstr(path);
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        for _ in 0..n {
            unsafe {
                let fd = libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_CREAT, 0o600);
                libc::close(fd);
            }
        }
        unsafe { libc::_exit(0) };
    }
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
}

/// The live run: the default pack plus test rules, the audit trail, heartbeats, a
/// capture; every kind of alert and record. Returns its lines and the capture.
fn live_run(root: &Path, pack: &Path, extra: &Path) -> (Vec<Value>, std::path::PathBuf) {
    let capture = root.join("run.cap");
    let m = Monitor::start_args(
        &[pack, extra],
        &[
            "--audit-trail",
            "--heartbeat",
            "1",
            "--aggregate-window",
            "1",
            "--capture",
            capture.to_str().unwrap(),
        ],
    );
    file_actions(&root.join("watched"));
    flood(&root.join("watched/flood"), 200);
    // Exec of the watched binary on the host and inside a container (busybox picks its
    // applet by argv[0]).
    let bin = root.join("bin/watched-busybox");
    assert!(Command::new(&bin).arg0("busybox").arg("true").status().unwrap().success());
    let mount = format!("{}:/busybox:ro", bin.display());
    let name = format!("ecs-{}", std::process::id());
    let run = Command::new("docker")
        .args(["run", "--name", &name, "--network", "none", "-v", "/etc:/h:ro", "-v", &mount])
        .args([IMAGE, "/busybox", "true"])
        .status()
        .unwrap();
    let _ = monitor_tests::docker::docker(&["rm", "-f", &name]);
    assert!(run.success());
    // A socket, a setuid to root.
    let sock = root.join("sock/s");
    let _listener = UnixListener::bind(&sock).unwrap();
    UnixStream::connect(&sock).unwrap();
    setresuid_child(&[(65534, 65534, 0), (0, 0, 0)]);
    // Reaching for the monitor: a stranger's stop (and our SIGCONT), ptrace, process_vm.
    let pid = m.pid() as i32;
    signal_from_child(pid, libc::SIGSTOP);
    unsafe { libc::kill(pid, libc::SIGCONT) };
    unsafe { libc::ptrace(libc::PTRACE_PEEKDATA, pid, 0usize, 0usize) };
    let mut buf = [0u8; 1];
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: 1 };
    let remote = libc::iovec { iov_base: 0x1000 as *mut _, iov_len: 1 };
    unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    // Rules reloaded, refused, reloaded.
    let good = std::fs::read_to_string(extra).unwrap();
    std::fs::write(extra, format!("{good}-a always,exit -S nosuchcall\n")).unwrap();
    unsafe { libc::kill(pid, libc::SIGHUP) };
    m.wait_for("rules-reload-failed", |a| s(a, "event.action") == "rules-reload-failed");
    std::fs::write(extra, &good).unwrap();
    unsafe { libc::kill(pid, libc::SIGHUP) };
    m.wait_for("rules-reloaded", |a| s(a, "event.action") == "rules-reloaded");
    for (what, action) in [
        ("the exec in the container", "exec"),
        ("the setuid", "setuid"),
        ("the Docker request", "docker-request"),
        ("the process_vm_readv", "process-vm"),
        ("the flood's count", "alerts-suppressed"),
        ("a heartbeat", "heartbeat"),
    ] {
        m.wait_for(what, |a| s(a, "event.action") == action);
    }
    m.wait_for("an alert from the container", |a| a.get("container").is_some());
    assert_eq!(m.stop(libc::SIGTERM), "exit status: 0");
    (m.all(), capture)
}

/// A run whose reader stalls under a burst: the kernel drops events and says so.
fn loss_run(root: &Path) -> Vec<Value> {
    let dir = root.join("lossy");
    std::fs::create_dir_all(&dir).unwrap();
    let rules = root.join("lossy.rules");
    std::fs::write(&rules, format!("-w {} -p wa -k ecs-lossy\n", dir.display())).unwrap();
    let m = Monitor::start_args(&[&rules], &["--heartbeat", "0"]);
    m.pause_reading(true);
    let children: Vec<i32> = (0..8)
        .map(|p| {
            let names: Vec<std::ffi::CString> =
                (0..12_000).map(|i| cstr(&dir.join(format!("{p}-{i}")))).collect();
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                for n in &names {
                    let fd =
                        unsafe { libc::open(n.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o600) };
                    unsafe { libc::close(fd) };
                }
                unsafe { libc::_exit(0) };
            }
            pid
        })
        .collect();
    for pid in children {
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    }
    m.pause_reading(false);
    assert_eq!(m.stop(libc::SIGTERM), "exit status: 0");
    m.all()
}

/// An auditd log of every record shape the audit reader maps: an exec (split, hex
/// arguments), a rename, a setuid, a connect, a kill (any syscall), a user message.
const AUDIT_LOG: &str = "\
node=web1 type=SYSCALL msg=audit(1700000000.100:10): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=0 items=2 ppid=1 pid=100 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 comm=\"docker\" exe=\"/usr/bin/docker\" key=\"docker-client\"
node=web1 type=EXECVE msg=audit(1700000000.100:10): argc=3 a0=\"docker\" a1=\"run\" a2_len=8
node=web1 type=EXECVE msg=audit(1700000000.100:10): a2[0]=2D2D707269
node=web1 type=EXECVE msg=audit(1700000000.100:10): a2[1]=76
node=web1 type=CWD msg=audit(1700000000.100:10): cwd=\"/home/u\"
node=web1 type=PATH msg=audit(1700000000.100:10): item=0 name=\"/usr/bin/docker\" inode=5 dev=fe:00 mode=0100755 nametype=NORMAL
node=web1 type=PROCTITLE msg=audit(1700000000.100:10): proctitle=646F636B65720072756E
type=SYSCALL msg=audit(1700000001.000:20): arch=c000003e syscall=82 success=yes exit=0 a0=1 a1=2 a2=0 a3=0 items=4 ppid=1 pid=200 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=2 comm=\"mv\" exe=\"/usr/bin/mv\" key=(null)
type=CWD msg=audit(1700000001.000:20): cwd=\"/etc/docker\"
type=PATH msg=audit(1700000001.000:20): item=0 name=\"./\" inode=9 dev=fe:00 mode=040755 nametype=PARENT
type=PATH msg=audit(1700000001.000:20): item=1 name=\"./\" inode=9 dev=fe:00 mode=040755 nametype=PARENT
type=PATH msg=audit(1700000001.000:20): item=2 name=\"a\" inode=11 dev=fe:00 mode=0100644 nametype=DELETE
type=PATH msg=audit(1700000001.000:20): item=3 name=\"daemon.json\" inode=11 dev=fe:00 mode=0100644 nametype=CREATE
type=SYSCALL msg=audit(1700000001.500:21): arch=c000003e syscall=117 success=yes exit=0 a0=0 a1=0 a2=0 a3=0 items=0 ppid=1 pid=210 auid=1000 uid=0 gid=1000 euid=0 suid=0 fsuid=0 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 comm=\"su\" exe=\"/usr/bin/su\" key=\"setuid-root\"
type=SYSCALL msg=audit(1700000001.600:22): arch=c000003e syscall=42 success=no exit=-13 a0=3 a1=7ffd a2=6e a3=0 items=1 ppid=1 pid=220 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 comm=\"curl\" exe=\"/usr/bin/curl\" key=\"docker-socket\"
type=SOCKADDR msg=audit(1700000001.600:22): saddr=01002F72756E2F646F636B65722E736F636B00
type=PATH msg=audit(1700000001.600:22): item=0 name=\"/run/docker.sock\" inode=77 dev=00:19 mode=0140660 nametype=NORMAL
type=SYSCALL msg=audit(1700000001.700:23): arch=c000003e syscall=62 success=yes exit=0 a0=4d2 a1=9 a2=0 a3=0 items=0 ppid=1 pid=230 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=2 comm=\"kill\" exe=\"/usr/bin/kill\" key=\"kill9\"
type=USER_CMD msg=audit(1700000002.000:24): pid=300 uid=1000 auid=1000 ses=1 msg='cwd=\"/\" cmd=6964202D75 exe=\"/usr/bin/sudo\" terminal=pts/0 res=success'
";

#[test]
fn every_line_of_every_kind_is_ecs() {
    if !privileged() {
        return;
    }
    // The table's ECS fields are ECS's, with ECS's types.
    let wrong = ecs::table_problems();
    assert!(wrong.is_empty(), "the field table disagrees with ECS {}: {wrong:#?}", ecs::VERSION);
    ensure();
    let root = scratch_dir("ecs");
    for d in ["watched", "bin", "sock"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/watched-busybox")).unwrap();
    let r = root.display();
    let extra = root.join("ecs.rules");
    std::fs::write(
        &extra,
        format!(
            "-w {r}/watched -p rwa -k ecs-dir\n-w {r}/bin/watched-busybox -p x -k ecs-exec\n\
             -w {r}/sock -p w -k ecs-sock\n\
             -a always,exit -F arch=b64 -F dir={r}/bin -F perm=r -F kind=event -k ecs-trail\n"
        ),
    )
    .unwrap();
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");

    let (live, capture) = live_run(&root, &pack, &extra);
    check_schema(&live);
    assert!(
        live.iter()
            .any(|a| s(a, "event.kind") == "event" && s(a, "event.dataset") == "monitor.runtime"),
        "audit-trail lines"
    );

    let lossy = loss_run(&root);
    check_schema(&lossy);
    assert!(
        lossy.iter().any(|a| s(a, "event.action") == "events-lost"),
        "the stalled reader lost events"
    );

    // The capture replayed with the same rules: the same schema.
    let out = Command::new(monitor_bin())
        .arg("replay")
        .arg(&capture)
        .args(["--audit-trail", "--aggregate-window", "1", "--rules"])
        .arg(&pack)
        .arg("--rules")
        .arg(&extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let replayed = lines(&out.stdout);
    assert!(replayed.len() >= live.len() / 2, "{} of {} lines", replayed.len(), live.len());
    check_schema(&replayed);

    // An auditd log.
    let log = root.join("audit.log");
    std::fs::write(&log, AUDIT_LOG).unwrap();
    let rules = root.join("audit.rules");
    std::fs::write(
        &rules,
        "-a always,user -F msgtype=USER_CMD -F uid=1000 -k sudo-cmd\n\
         -w /etc/docker -p wa -k docker-config\n-w /usr/bin/docker -p x -k docker-client\n\
         -a always,exit -F arch=b64 -S setresuid -F euid=0 -k setuid-root\n\
         -w /run/docker.sock -p wa -k docker-socket\n\
         -a always,exit -F arch=b64 -S kill -F a1=9 -k kill9\n",
    )
    .unwrap();
    let out = Command::new(monitor_bin())
        .args(["replay", "--format", "auditd", "--audit-trail", "--rules"])
        .arg(&rules)
        .arg(&log)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let audit = lines(&out.stdout);
    let actions: Vec<&str> = audit.iter().map(|a| s(a, "event.action")).collect();
    for want in ["exec", "rename", "setuid", "connect", "syscall", "user-message"] {
        assert!(actions.contains(&want), "{want} from the auditd log: {actions:?}");
    }
    check_schema(&audit);

    // Posture findings (exit 0, 9 or 10+: what this host's posture is does not matter).
    let out = Command::new(monitor_bin()).args(["check", "--json"]).output().unwrap();
    let findings = lines(&out.stdout);
    assert!(findings.len() > 100, "{} findings", findings.len());
    check_lines(&findings);

    let t = ecs::tally();
    let seen = |k: &str| t.kinds.iter().any(|x| x.ends_with(&format!("/{k}")));
    for kind in [
        "exec",
        "setuid",
        "open",
        "write",
        "rename",
        "chmod",
        "chown",
        "link",
        "symlink",
        "unlink",
        "mkdir",
        "rmdir",
        "truncate",
        "mknod",
        "setxattr",
        "removexattr",
        "connect",
        "docker-request",
        "signal",
        "ptrace",
        "process-vm",
        "syscall",
        "user-message",
        "monitor-start",
        "heartbeat",
        "events-lost",
        "alerts-suppressed",
        "rules-reloaded",
        "rules-reload-failed",
        "monitor-stop",
        "posture-check",
    ] {
        assert!(seen(kind), "no {kind} line was checked: {:?}", t.kinds);
    }
    for kind in ["alert/", "event/", "metric/", "state/"] {
        assert!(t.kinds.iter().any(|k| k.starts_with(kind)), "no {kind} line: {:?}", t.kinds);
    }
    eprintln!(
        "ECS {} validation: {} lines, {} field values, {} distinct fields, {} kinds of line (event.kind/dataset/action):\n  {}",
        ecs::VERSION,
        t.lines,
        t.values,
        t.fields.len(),
        t.kinds.len(),
        t.kinds.iter().cloned().collect::<Vec<_>>().join(" ")
    );
}
