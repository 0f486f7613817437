//! Nothing lost, nothing broken: a stalled reader, many writers at once, records about the
//! monitor itself, a closed stdout, and hostile strings. Each test runs its own monitor.

use monitor_tests::{get, in_child, privileged_turn, s, scratch_dir, Monitor};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A scratch tree with `watched/` and a rules file watching it for writes.
fn watched_tree(name: &str) -> (PathBuf, PathBuf) {
    let root = scratch_dir(name);
    std::fs::create_dir_all(root.join("watched")).unwrap();
    let rules = root.join("faults.rules");
    std::fs::write(&rules, format!("-w {}/watched -p wa -k faults\n", root.display())).unwrap();
    (root, rules)
}

/// [`watched_tree`] and a monitor of its rules, with a heartbeat every `heartbeat` seconds
/// (0: none): the scratch root, the rules file, the monitor.
fn watching(name: &str, heartbeat: &str) -> (PathBuf, PathBuf, Monitor) {
    let (root, rules) = watched_tree(name);
    let m = Monitor::start_args(&[&rules], &["--heartbeat", heartbeat]);
    (root, rules, m)
}

/// These tests load the machine (a stress run, stalled readers): one at a time, so that each
/// one's timing is its own.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn records(m: &Monitor, action: &str) -> Vec<Value> {
    m.matching(|a| s(a, "event.dataset") == "monitor.status" && s(a, "event.action") == action)
}

#[test]
fn every_event_of_a_stress_run_is_alerted_or_counted_lost() {
    let Some(_serial) = privileged_turn(&SERIAL) else { return };
    let (root, _, m) = watching("stress", "0");
    // A stalled reader: the pipe fills, the monitor's writes block, the kernel ring fills.
    m.pause_reading(true);
    const PROCS: usize = 8;
    const FILES: usize = 12_000;
    let names: Vec<Vec<std::ffi::CString>> = (0..PROCS)
        .map(|p| {
            (0..FILES)
                .map(|i| {
                    std::ffi::CString::new(format!("{}/watched/{p}-{i}", root.display())).unwrap()
                })
                .collect()
        })
        .collect();
    let mut children = Vec::new();
    for mine in &names {
        // Only raw syscalls between fork and _exit (the test process has threads).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            for n in mine {
                let fd = unsafe { libc::open(n.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o600) };
                if fd >= 0 {
                    unsafe { libc::close(fd) };
                }
            }
            unsafe { libc::_exit(0) };
        }
        children.push(pid);
    }
    for pid in children {
        let mut st = 0;
        unsafe { libc::waitpid(pid, &mut st, 0) };
    }
    let generated = (PROCS * FILES) as u64;
    m.pause_reading(false);
    // Everything before the stop is drained and accounted for in the stop record.
    let exit = m.stop(libc::SIGTERM);
    assert_eq!(exit, "exit status: 0");
    let prefix = format!("{}/watched/", root.display());
    let alerted = m
        .matching(|a| s(a, "event.kind") == "alert" && s(a, "file.path").starts_with(&prefix))
        .len() as u64;
    let stop = records(&m, "monitor-stop");
    assert_eq!(stop.len(), 1);
    let lost_total = get(&stop[0], "monitor.lost").as_u64().unwrap();
    let lost_reported: u64 =
        records(&m, "events-lost").iter().map(|r| get(r, "monitor.lost").as_u64().unwrap()).sum();
    assert!(alerted <= generated);
    // Lost events may include others than ours (their exits, say), never fewer than ours.
    assert!(
        generated - alerted <= lost_total,
        "{generated} generated, {alerted} alerted, {lost_total} lost"
    );
    assert_eq!(lost_reported, lost_total, "every loss is explained by an events-lost record");
    eprintln!("stress: {generated} events generated, {alerted} alerted, {lost_total} counted lost ({lost_reported} reported while running)");
    monitor_tests::check_schema(&m.all());
}

#[test]
fn start_heartbeat_and_stop_records_frame_the_output() {
    let Some(_serial) = privileged_turn(&SERIAL) else { return };
    let (root, _, m) = watching("records", "1");
    let f = root.join("watched/one").display().to_string();
    std::fs::write(&f, "x").unwrap();
    m.wait_for("the write", |a| s(a, "file.path") == f);
    m.wait_for("a heartbeat", |a| s(a, "event.action") == "heartbeat");
    assert_eq!(m.stop(libc::SIGINT), "exit status: 0");
    let all = m.all();
    let first = &all[0];
    assert_eq!(s(first, "event.action"), "monitor-start", "{first}");
    assert_eq!(get(first, "event.sequence").as_u64(), Some(1));
    assert_eq!(s(first, "monitor.start.rules.hash").len(), 16, "{first}");
    assert!(get(first, "monitor.start.hooks").as_u64().unwrap() > 50, "{first}");
    let points = get(first, "monitor.start.hook_points").as_array().unwrap().clone();
    assert_eq!(points.len() as u64, get(first, "monitor.start.hooks").as_u64().unwrap(), "{first}");
    for p in ["syscalls:sys_exit_openat", "syscalls:sys_exit_connect", "raw_tp:sched_process_exec"]
    {
        assert!(points.iter().any(|x| x == p), "{p} not in {first}");
    }
    let last = all.last().unwrap();
    assert_eq!(s(last, "event.action"), "monitor-stop", "{last}");
    assert_eq!(s(last, "event.reason"), "SIGINT");
    assert!(get(last, "monitor.alerts").as_u64().unwrap() >= 1);
    let hb = records(&m, "heartbeat");
    assert!(get(&hb[0], "monitor.events").as_u64().is_some(), "{}", hb[0]);
    monitor_tests::check_schema(&all);
}

#[test]
fn a_closed_stdout_stops_the_monitor_cleanly() {
    let Some(_serial) = privileged_turn(&SERIAL) else { return };
    let (root, rules) = watched_tree("closed");
    let mut child = Command::new(monitor_tests::monitor_bin())
        .args(["run", "--heartbeat", "0", "--rules"])
        .arg(&rules)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the start record, then hang up.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("monitor-start"), "{line}");
    drop(out);
    // The next line it writes finds the pipe closed.
    for i in 0..3 {
        std::fs::write(root.join(format!("watched/after-close-{i}")), "x").unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(std::time::Instant::now() < deadline, "monitor still running after stdout closed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status}: {err}");
    assert!(err.contains("stdout closed"), "{err}");
}

#[test]
fn hostile_names_stay_one_line_and_are_recovered_exactly() {
    let Some(_serial) = privileged_turn(&SERIAL) else { return };
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let (root, _, m) = watching("hostile", "0");
    let names: Vec<&[u8]> = vec![
        b"new\nline",
        b"quote\"and\\backslash",
        b"ctl\x01\x1b[31m",
        b"bad-utf8-\xff\xfe-100%",
        b"valid-%41-percent",
    ];
    for n in &names {
        let mut p = root.join("watched").into_os_string().into_vec();
        p.push(b'/');
        p.extend_from_slice(n);
        std::fs::write(std::ffi::OsStr::from_bytes(&p), "x").unwrap();
    }
    let prefix = format!("{}/watched/", root.display());
    for n in &names {
        let a = m
            .wait_for(&format!("{:?}", String::from_utf8_lossy(n)), |a| {
                s(a, "event.action") == "write"
                    && recovered(a, "file.path").strip_prefix(prefix.as_bytes()) == Some(*n)
            })
            .json;
        let encoded = get(&a, "monitor.encoding.percent").as_array().cloned().unwrap_or_default();
        assert_eq!(
            encoded.iter().any(|f| f == "file.path"),
            std::str::from_utf8(n).is_err(),
            "{a}"
        );
    }
    // Every line parsed as one JSON object (the harness rejects anything else).
    assert!(m.all().len() > names.len());
}

/// A string field's exact bytes: percent-decoded when the alert lists it as encoded.
fn recovered(a: &Value, field: &str) -> Vec<u8> {
    let v = s(a, field);
    let encoded =
        get(a, "monitor.encoding.percent").as_array().is_some_and(|l| l.iter().any(|f| f == field));
    if !encoded {
        return v.as_bytes().to_vec();
    }
    percent_encoding::percent_decode_str(v).collect()
}

#[test]
fn reaching_for_the_monitor_is_reported() {
    let Some(_serial) = privileged_turn(&SERIAL) else { return };
    let (_root, rules, m) = watching("tamper", "0");
    let pid = m.pid() as i32;
    let tamper = |what: &str, pred: &dyn Fn(&Value) -> bool| {
        m.wait_for(what, |a| s(a, "rule.id") == "monitor-tamper" && pred(a)).json
    };
    // A harmless signal from its parent (this process) is nothing to report; a stop from a
    // stranger is tampering.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let stranger = signal_from_child(pid, libc::SIGSTOP);
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let a = tamper("SIGSTOP from a stranger", &|a| s(a, "event.action") == "signal");
    assert_eq!(get(&a, "monitor.tamper.signal").as_i64(), Some(libc::SIGSTOP as i64), "{a}");
    assert_eq!(get(&a, "process.pid").as_u64(), Some(stranger as u64), "{a}");
    assert_eq!(s(&a, "monitor.rule.source"), "builtin:self-defence");
    // ptrace without attaching (fails, but was attempted) and a read of its memory.
    unsafe { libc::ptrace(libc::PTRACE_PEEKDATA, pid, 0usize, 0usize) };
    tamper("ptrace", &|a| s(a, "event.action") == "ptrace");
    let mut buf = [0u8; 1];
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: 1 };
    let remote = libc::iovec { iov_base: 0x1000 as *mut _, iov_len: 1 };
    unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    tamper("process_vm_readv", &|a| s(a, "event.action") == "process-vm");
    // Its rule file changed.
    let mut text = std::fs::read_to_string(&rules).unwrap();
    text.push_str("# edited\n");
    std::fs::write(&rules, text).unwrap();
    let path = rules.display().to_string();
    tamper("rules file write", &|a| s(a, "file.path") == path);
    // Audit rules and BPF links being removed (both calls fail harmlessly here).
    let _ =
        std::process::Command::new("auditctl").args(["-W", "/nonexistent-monitor-e2e"]).output();
    tamper("auditctl -W", &|a| {
        s(a, "event.action") == "exec" && s(a, "monitor.tamper.detail").starts_with("auditctl -W")
    });
    let _ = std::process::Command::new("bpftool").args(["link", "detach", "id", "999999"]).output();
    tamper("bpftool detach", &|a| {
        s(a, "event.action") == "exec"
            && s(a, "monitor.tamper.detail").starts_with("bpftool link detach")
    });
    // Reading its audit rules is not tampering.
    let _ = std::process::Command::new("auditctl").arg("-l").output();
    let fence = _root.join("watched/fence").display().to_string();
    std::fs::write(&fence, "x").unwrap();
    m.wait_for("fence", |a| s(a, "file.path") == fence);
    assert!(m.matching(|a| s(a, "monitor.tamper.detail").starts_with("auditctl -l")).is_empty());
    let signals: Vec<Value> = m.matching(|a| s(a, "event.action") == "signal");
    assert_eq!(
        signals.len(),
        1,
        "only the stranger's SIGSTOP is reported (not the parent's SIGCONTs): {signals:?}"
    );
    monitor_tests::check_schema(&m.all());
}

/// Fork a child that sends `sig` to `pid` and exits; returns the child's pid.
fn signal_from_child(pid: i32, sig: i32) -> u32 {
    in_child(|| unsafe { libc::kill(pid, sig) }).0
}

/// Stopping the monitor the normal way is no attack: a SIGTERM from its parent gives a
/// `monitor-stop` record naming who asked and no tamper alert; a SIGTERM from another
/// process stops it as cleanly, with an alert of its own (medium) besides the record.
#[test]
fn an_orderly_stop_is_a_record_and_a_strangers_stop_is_reported() {
    let Some(_serial) = privileged_turn(&SERIAL) else { return };
    let me = std::process::id() as u64;
    for by_parent in [true, false] {
        let (_, _, m) = watching(if by_parent { "stop-parent" } else { "stop-stranger" }, "0");
        let exit = if by_parent {
            m.stop(libc::SIGTERM)
        } else {
            let stranger = signal_from_child(m.pid() as i32, libc::SIGTERM);
            let exit = m.stop(0); // signal 0: only waits for the exit
            let a = m
                .wait_for("the stranger's stop request", |a| {
                    s(a, "rule.id") == "monitor-stop-unexpected"
                })
                .json;
            assert_eq!(get(&a, "process.pid").as_u64(), Some(stranger as u64), "{a}");
            assert_eq!(
                get(&a, "monitor.tamper.signal").as_i64(),
                Some(libc::SIGTERM as i64),
                "{a}"
            );
            exit
        };
        assert_eq!(exit, "exit status: 0");
        let stop = records(&m, "monitor-stop");
        assert_eq!(stop.len(), 1);
        let by = get(&stop[0], "monitor.requested_by");
        assert_eq!(s(&stop[0], "event.reason"), "SIGTERM", "{}", stop[0]);
        if by_parent {
            assert_eq!(
                (by["relation"].as_str(), by["pid"].as_u64()),
                (Some("parent"), Some(me)),
                "{}",
                stop[0]
            );
            assert!(by["executable"].as_str().is_some_and(|e| e.contains("faults")), "{}", stop[0]);
        } else {
            assert_eq!(by["relation"].as_str(), Some("other"), "{}", stop[0]);
        }
        assert!(
            m.matching(|a| s(a, "rule.id") == "monitor-tamper").is_empty(),
            "an orderly stop is no tampering"
        );
    }
}

#[test]
fn sighup_swaps_in_valid_rules_and_keeps_the_old_ones_on_error() {
    let Some(_serial) = privileged_turn(&SERIAL) else { return };
    let (root, rules, m) = watching("reload", "0");
    std::fs::create_dir_all(root.join("second")).unwrap();
    let write = |dir: &str, name: &str| {
        let f = root.join(dir).join(name).display().to_string();
        std::fs::write(&f, "x").unwrap();
        f
    };
    let f = write("watched", "before");
    m.wait_for("write under the first watch", |a| s(a, "file.path") == f);
    // New rules: the second directory instead of the first.
    std::fs::write(&rules, format!("-w {}/second -p wa -k reloaded\n", root.display())).unwrap();
    unsafe { libc::kill(m.pid() as i32, libc::SIGHUP) };
    let r = m.wait_for("rules-reloaded", |a| s(a, "event.action") == "rules-reloaded").json;
    assert_eq!(get(&r, "monitor.rules.hash").as_str().map(str::len), Some(16), "{r}");
    let f = write("second", "after");
    let a = m.wait_for("write under the new watch", |a| s(a, "file.path") == f).json;
    assert_eq!(s(&a, "rule.id"), "reloaded");
    let old = write("watched", "after");
    // A syntax error: the reload is refused and the rules in force stay.
    std::fs::write(&rules, "-w /tmp -p wa -k ok\n-a always,exit -S nosuchcall\n").unwrap();
    unsafe { libc::kill(m.pid() as i32, libc::SIGHUP) };
    let r =
        m.wait_for("rules-reload-failed", |a| s(a, "event.action") == "rules-reload-failed").json;
    assert!(
        get(&r, "monitor.errors").to_string().contains(&format!("{}:2:", rules.display())),
        "{r}"
    );
    let f = write("second", "still");
    m.wait_for("the reloaded rules still apply", |a| {
        s(a, "file.path") == f && s(a, "rule.id") == "reloaded"
    });
    assert!(m.matching(|a| s(a, "file.path") == old).is_empty(), "the first watch is gone");
    monitor_tests::check_schema(&m.all());
}
