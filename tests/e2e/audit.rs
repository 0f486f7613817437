//! The audit-backed sources against the real thing: the pack loaded into the kernel with
//! Debian's `auditctl -R`, auditd writing its log, `monitor run --source audit` reading the
//! multicast beside it, and `monitor replay --format auditd` reading auditd's log after.
//! Also replay of hand-written logs covering every record shape the reader handles.

use monitor_tests::audit::AuditedHost;
use monitor_tests::{
    connect_as, docker, get, in_child, json_lines, monitor_bin, privileged, s, scratch_dir,
    setresuid_child, write_file, Monitor,
};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// `monitor replay --format auditd FILES...`: (alert lines, stderr, exit code).
fn replay(files: &[&Path], rules: Option<&Path>) -> (Vec<Value>, String, i32) {
    let mut cmd = Command::new(monitor_bin());
    cmd.args(["replay", "--format", "auditd", "--audit-trail"]).args(files);
    if let Some(r) = rules {
        cmd.arg("--rules").arg(r);
    }
    let out = cmd.output().expect("running monitor replay");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 8, "replay failed: {stderr}");
    let lines = String::from_utf8(out.stdout).expect("stdout is UTF-8");
    (json_lines(&lines), stderr, code)
}

/// The fields both sources must agree on.
fn core(a: &Value) -> Value {
    let pick = |f: &str| get(a, f).clone();
    serde_json::json!({
        "ts": pick("@timestamp"), "key": pick("rule.id"), "source": pick("monitor.rule.source"),
        "action": pick("event.action"), "outcome": pick("event.outcome"), "pid": pick("process.pid"),
        "exe": pick("process.executable"), "path": pick("file.path"), "uid": pick("user.id"),
        "syscall": pick("monitor.syscall.name"), "ret": pick("monitor.syscall.return"),
    })
}

#[test]
fn live_audit_source_and_auditd_log_replay_give_the_same_alerts() {
    if !privileged() {
        return;
    }
    docker::ensure(); // the socket must exist for the connect
    let dir = scratch_dir("audit-live");
    let host = AuditedHost::with_pack(&dir);
    // With the audit trail: the docker client's run is a line of it (`kind=event`).
    let m = Monitor::start_args(&[], &["--source", "audit", "--audit-trail"]);
    // It said it runs only once a record of its own came back through the multicast group.
    let start = m.matching(|a| s(a, "event.action") == "monitor-start");
    assert!(s(&start[0], "monitor.start.source_proof").starts_with("proven: "), "{}", start[0]);
    // Every audited call is made by a process started now: a process forked before auditing
    // was first enabled since boot (this test process, on a fresh machine booted without
    // audit=1) has no audit context, and the kernel never audits its calls.
    let conf = format!("/etc/docker/monitor-audit-e2e-{}", std::process::id());
    monitor_tests::sh(&format!("echo x > {conf} && rm {conf}"));
    let client = Command::new("/usr/bin/docker").arg("--version").spawn().unwrap();
    let client_pid = client.id() as u64;
    assert!(client.wait_with_output().unwrap().status.success());
    let root = setresuid_child(&[(65534, 65534, 0), (0, 0, 0)]) as u64;
    let nobody = connect_as(65534, "/run/docker.sock") as u64;
    // A module load: this kernel has no module support, so the call fails (ENOSYS); the
    // attempt is what the rule is about.
    let module = std::fs::File::open("/proc/self/exe").unwrap();
    let me = finit_module_child(std::os::fd::AsRawFd::as_raw_fd(&module)) as u64;

    type Check = (&'static str, Box<dyn Fn(&Value) -> bool>);
    let c1 = conf.clone();
    let c2 = conf.clone();
    let expected: Vec<Check> = vec![
        (
            "write under /etc/docker",
            Box::new(move |a: &Value| {
                s(a, "rule.id") == "docker-config"
                    && s(a, "event.action") == "write"
                    && s(a, "file.path") == c1
            }),
        ),
        (
            "unlink under /etc/docker",
            Box::new(move |a: &Value| {
                s(a, "rule.id") == "docker-config"
                    && s(a, "event.action") == "unlink"
                    && s(a, "file.path") == c2
            }),
        ),
        (
            "exec of the docker client",
            Box::new(move |a: &Value| {
                s(a, "rule.id") == "docker-client-run"
                    && s(a, "event.kind") == "event"
                    && s(a, "event.action") == "exec"
                    && get(a, "process.pid").as_u64() == Some(client_pid)
            }),
        ),
        (
            "setresuid back to root",
            Box::new(move |a: &Value| {
                s(a, "rule.id") == "setuid-root" && get(a, "process.pid").as_u64() == Some(root)
            }),
        ),
        (
            "connect to the docker socket as nobody",
            Box::new(move |a: &Value| {
                s(a, "rule.id") == "docker-socket-nonroot"
                    && get(a, "process.pid").as_u64() == Some(nobody)
            }),
        ),
        (
            "finit_module",
            Box::new(move |a: &Value| {
                s(a, "rule.id") == "kernel-modules"
                    && s(a, "monitor.syscall.name") == "finit_module"
                    && get(a, "process.pid").as_u64() == Some(me)
            }),
        ),
    ];
    let mut live = Vec::new();
    for (what, pred) in &expected {
        live.push(m.wait_for(what, pred).json);
    }
    let stop = m.stop(libc::SIGTERM);
    assert!(stop.contains("exit status: 0"), "{stop}");
    // Every line of the live audit source, ECS and the field table.
    monitor_tests::check_schema(&m.all());
    // Details the audit records carry.
    assert_eq!(s(&live[2], "process.executable"), "/usr/bin/docker", "{}", live[2]);
    assert_eq!(
        get(&live[2], "process.args"),
        &serde_json::json!(["/usr/bin/docker", "--version"]),
        "{}",
        live[2]
    );
    assert_eq!(s(&live[3], "monitor.syscall.name"), "setresuid", "{}", live[3]);
    assert_eq!(get(&live[3], "monitor.setid.after.euid").as_u64(), Some(0), "{}", live[3]);
    assert_eq!(s(&live[4], "user.id"), "65534", "{}", live[4]);
    assert_eq!(
        s(&live[4], "event.outcome"),
        "failure",
        "the socket is root:docker 0660: {}",
        live[4]
    );
    assert_eq!(s(&live[4], "destination.address"), "/run/docker.sock", "{}", live[4]);
    assert_eq!(s(&live[5], "event.outcome"), "failure", "{}", live[5]);
    assert_eq!(s(&live[5], "event.action"), "syscall", "{}", live[5]);
    // Audit stamps events in milliseconds.
    assert!(s(&live[0], "@timestamp").ends_with("000000Z"), "{}", live[0]);

    // The same records, from auditd's log.
    let nobody_pid = format!(" pid={nobody} ");
    let log = host.log_since_start(|t| {
        t.contains(&nobody_pid) && t.contains(&format!("pid={root} ")) && t.contains("syscall=313")
    });
    drop(host);
    let file = dir.join("audit.log");
    std::fs::write(&file, &log).unwrap();
    let (replayed, stderr, code) = replay(&[&file], None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("monitor: replay summary:"), "{stderr}");
    monitor_tests::check_schema(&replayed);
    assert!(stderr.contains("malformed_lines=0"), "{stderr}");
    for ((what, pred), live) in expected.iter().zip(&live) {
        let found: Vec<&Value> = replayed.iter().filter(|a| pred(a)).collect();
        assert_eq!(found.len(), 1, "{what}: {found:?}");
        assert_eq!(core(found[0]), core(live), "{what}: live and replayed alerts differ");
    }
}

/// Fork a child that calls finit_module on `fd` (it cannot succeed: not a module, and no
/// module support here) and exits; returns its pid.
fn finit_module_child(fd: i32) -> u32 {
    let (pid, code) = in_child(|| {
        let rc = unsafe { libc::syscall(libc::SYS_finit_module, fd, c"".as_ptr(), 0) };
        i32::from(rc == 0)
    });
    assert_eq!(code, 0, "finit_module of a non-module cannot succeed");
    pid
}

#[test]
fn replay_reads_every_record_shape_and_reports_bad_lines() {
    let dir = scratch_dir("audit-shapes");
    let rules = write_file(
        &dir,
        "t.rules",
        "-a never,exclude -F msgtype=PROCTITLE\n\
         -a always,user -F msgtype=USER_CMD -F uid=1000 -k sudo-cmd\n\
         -w /etc/docker -p wa -k docker-config\n\
         -w /usr/bin/docker -p x -k docker-client\n\
         -a always,exit -F arch=b64 -S kill -F a1=9 -k kill9\n",
    );
    // Newest file first on the command line: the reader orders by time.
    let older = write_file(
        &dir,
        "audit.log.1",
        // An exec with a split, hex-encoded argument (enriched format, node name).
        "node=web1 type=SYSCALL msg=audit(1700000000.100:10): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=0 items=2 ppid=1 pid=100 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 comm=\"docker\" exe=\"/usr/bin/docker\" key=\"docker-client\"\x1dARCH=x86_64 SYSCALL=execve UID=\"u\"\n\
         node=web1 type=EXECVE msg=audit(1700000000.100:10): argc=3 a0=\"docker\" a1=\"run\" a2_len=8\n\
         node=web1 type=EXECVE msg=audit(1700000000.100:10): a2[0]=2D2D707269\n\
         node=web1 type=EXECVE msg=audit(1700000000.100:10): a2[1]=76\n\
         node=web1 type=CWD msg=audit(1700000000.100:10): cwd=\"/home/u\"\n\
         node=web1 type=PATH msg=audit(1700000000.100:10): item=0 name=\"/usr/bin/docker\" inode=5 dev=fe:00 mode=0100755 nametype=NORMAL\n\
         node=web1 type=PROCTITLE msg=audit(1700000000.100:10): proctitle=646F636B65720072756E\n\
         this line is not a record\n",
    );
    let newer = write_file(
        &dir,
        "audit.log",
        // A rename with relative names, interleaved with a kill, then a user message, an
        // unknown type and an i386 syscall.
        "type=SYSCALL msg=audit(1700000001.000:20): arch=c000003e syscall=82 success=yes exit=0 a0=1 a1=2 a2=0 a3=0 items=4 ppid=1 pid=200 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=2 comm=\"mv\" exe=\"/usr/bin/mv\" key=(null)\n\
         type=SYSCALL msg=audit(1700000001.000:21): arch=c000003e syscall=62 success=yes exit=0 a0=4d2 a1=9 a2=0 a3=0 items=0 ppid=1 pid=201 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=2 comm=\"kill\" exe=\"/usr/bin/kill\" key=\"kill9\"\n\
         type=CWD msg=audit(1700000001.000:20): cwd=\"/etc/docker\"\n\
         type=PATH msg=audit(1700000001.000:20): item=0 name=\"./\" inode=9 dev=fe:00 mode=040755 nametype=PARENT\n\
         type=PATH msg=audit(1700000001.000:20): item=1 name=\"./\" inode=9 dev=fe:00 mode=040755 nametype=PARENT\n\
         type=PATH msg=audit(1700000001.000:20): item=2 name=2E2F61206220 inode=11 dev=fe:00 mode=0100644 nametype=DELETE\n\
         type=PATH msg=audit(1700000001.000:20): item=3 name=\"daemon.json\" inode=11 dev=fe:00 mode=0100644 nametype=CREATE\n\
         type=PROCTITLE msg=audit(1700000001.000:20): proctitle=6D76\n\
         type=PROCTITLE msg=audit(1700000001.000:21): proctitle=6B696C6C\n\
         type=USER_CMD msg=audit(1700000002.000:22): pid=300 uid=1000 auid=1000 ses=1 msg='cwd=\"/\" cmd=6964202D75 exe=\"/usr/bin/sudo\" terminal=pts/0 res=success'\n\
         type=UNKNOWN[1999] msg=audit(1700000002.000:23): x=1\n\
         type=SYSCALL msg=audit(1700000002.000:24): arch=40000003 syscall=11 success=yes exit=0 pid=400 uid=0\n\
         type=SYSCALL msg=audit(1700000002.000:25): arch=c000003e syscall=62 success=yes exit=0 a0=4d2 a1=f a2=0 a3=0 pid=201 uid=0\n\
         type=SYSCALL msg=audit(bad:26): arch=c000003e\n",
    );
    let (alerts, stderr, code) = replay(&[&newer, &older], Some(&rules));
    assert_eq!(code, 8, "lines that are not records: part of the input was not read");
    let keys: Vec<&str> = alerts.iter().map(|a| s(a, "rule.id")).collect();
    monitor_tests::check_schema(&alerts);
    assert_eq!(keys, ["docker-client", "docker-config", "kill9", "sudo-cmd"], "{alerts:#?}");
    let exec = &alerts[0];
    assert_eq!(
        get(exec, "process.args"),
        &serde_json::json!(["docker", "run", "--priv"]),
        "{exec}"
    );
    assert_eq!(s(exec, "host.name"), "web1", "{exec}");
    assert_eq!(s(exec, "@timestamp"), "2023-11-14T22:13:20.100000000Z", "{exec}");
    let rename = &alerts[1];
    assert_eq!(s(rename, "event.action"), "rename", "{rename}");
    assert_eq!(s(rename, "file.path"), "/etc/docker/a b ", "{rename}");
    assert_eq!(s(rename, "monitor.file.new_path"), "/etc/docker/daemon.json", "{rename}");
    assert_eq!(s(&alerts[2], "monitor.syscall.name"), "kill", "{}", alerts[2]);
    assert_eq!(s(&alerts[2], "event.action"), "syscall", "{}", alerts[2]);
    let sudo = &alerts[3];
    assert_eq!(s(sudo, "event.action"), "user-message", "{sudo}");
    assert_eq!(s(sudo, "monitor.audit.message.type"), "USER_CMD", "{sudo}");
    assert_eq!(s(sudo, "process.executable"), "/usr/bin/sudo", "{sudo}");
    // Bad lines are reported with file and line, and counted; nothing stops the run.
    assert!(stderr.contains(&format!("{}:8: 1 line(s)", older.display())), "{stderr}");
    assert!(stderr.contains(&format!("{}:14: 1 line(s)", newer.display())), "{stderr}");
    assert!(stderr.contains("malformed_lines=2"), "{stderr}");
    assert!(stderr.contains("UNKNOWN[1999]=1"), "{stderr}");
    assert!(stderr.contains("other_arch_events=1"), "{stderr}");
    assert!(stderr.contains("excluded_records=3"), "the three PROCTITLE records: {stderr}");
}
