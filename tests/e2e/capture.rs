//! Capture and replay: a live run records, `monitor replay` gives the very same lines with the
//! same rules (but for `event.created`, when each line was made), other alerts with other
//! rules, in the same schema, and reads a cut-off capture up to its last whole record.

use monitor_tests::docker::{ensure, IMAGE};
use monitor_tests::{monitor_bin, privileged, s, scratch_dir, Monitor};
use serde_json::Value;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// A line without `event.created` (when it was made: a replay makes it again).
fn made(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(e) = v.get_mut("event").and_then(Value::as_object_mut) {
        e.remove("created");
    }
    v
}

/// `monitor replay FILE --rules ...`: (lines, stderr, exit code).
fn replay(file: &Path, rules: &[&Path]) -> (Vec<Value>, String, i32) {
    let mut cmd = Command::new(monitor_bin());
    cmd.arg("replay").arg(file);
    for r in rules {
        cmd.arg("--rules").arg(r);
    }
    let out = cmd.output().unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, String::from_utf8_lossy(&out.stderr).into_owned(), out.status.code().unwrap_or(-1))
}

#[test]
fn a_replay_with_the_same_rules_prints_exactly_what_the_live_run_printed() {
    if !privileged() {
        return;
    }
    ensure();
    let root = scratch_dir("capture");
    for d in ["watched/sub", "bin", "sock"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/watched-busybox")).unwrap();
    let r = root.display();
    let rules = root.join("capture.rules");
    std::fs::write(
        &rules,
        format!(
            "-w {r}/watched -p wa -k cap-dir\n-w {r}/bin/watched-busybox -p x -k cap-exec\n-w {r}/sock -p w -k cap-sock\n\
             -a always,exit -F arch=b64 -S setresuid -F euid=0 -k cap-root\n"
        ),
    )
    .unwrap();
    let file = root.join("run.cap");
    let m =
        Monitor::start_args(&[&rules], &["--heartbeat", "1", "--capture", file.to_str().unwrap()]);
    // A bit of everything: files (relative and `..` too), exec on the host and in a
    // container, a socket, a uid 65534 -> 0 transition.
    Command::new("sh")
        .arg("-c")
        .arg(format!("cd {r}/watched/sub && echo x > ../a && mv ../a ../b && rm ../b"))
        .status()
        .unwrap();
    // busybox picks the applet by argv[0].
    assert!(Command::new(root.join("bin/watched-busybox"))
        .arg0("busybox")
        .arg("true")
        .status()
        .unwrap()
        .success());
    let bin = format!("{r}/bin/watched-busybox:/busybox:ro");
    assert!(Command::new("docker")
        .args(["run", "--rm", "--network", "none", "-v", &bin, IMAGE, "/busybox", "true"])
        .status()
        .unwrap()
        .success());
    let sock = root.join("sock/s");
    let _l = UnixListener::bind(&sock).unwrap();
    UnixStream::connect(&sock).unwrap();
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            libc::syscall(libc::SYS_setresuid, 65534, 65534, 0);
            libc::syscall(libc::SYS_setresuid, 0, 0, 0);
            libc::_exit(0);
        }
    }
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    m.wait_for("the container exec", |a| {
        s(a, "rule.id") == "cap-exec" && a.get("container").is_some()
    });
    m.wait_for("the setuid", |a| s(a, "rule.id") == "cap-root");
    m.wait_for("a heartbeat", |a| s(a, "event.action") == "heartbeat");
    assert_eq!(m.stop(libc::SIGTERM), "exit status: 0");
    let live = m.all();
    // Seven alerts: the files (write, rename, unlink), two execs, the socket, the setuid.
    // The stop by this process (the monitor's parent) is an orderly one: no alert.
    assert!(live.iter().filter(|a| s(a, "event.kind") == "alert").count() >= 7, "{live:#?}");
    assert!(m.stderr().iter().any(|l| l.contains("capture written")), "{:?}", m.stderr());

    // Same rules: line for line the same.
    let (replayed, err, code) = replay(&file, &[&rules]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(replayed.len(), live.len(), "{err}");
    for (l, r) in live.iter().zip(&replayed) {
        assert_eq!(made(l), made(r));
    }
    assert!(err.contains("monitor: replay summary:"), "{err}");
    monitor_tests::check_schema(&live);
    monitor_tests::check_schema(&replayed);
    // Process ids are made again from the recorded start times (equal lines above).
    let exec = replayed.iter().find(|a| s(a, "rule.id") == "cap-exec").unwrap();
    assert_eq!(s(exec, "process.entity_id").len(), 32, "{exec}");

    // Other rules decide: only the exec watch.
    let other = root.join("other.rules");
    std::fs::write(&other, format!("-w {r}/bin/watched-busybox -p x -k other-exec\n")).unwrap();
    let (replayed, err, code) = replay(&file, &[&other]);
    assert_eq!(code, 0, "{err}");
    let alerts: Vec<&Value> = replayed.iter().filter(|a| s(a, "event.kind") == "alert").collect();
    assert!(
        alerts.len() >= 2
            && alerts
                .iter()
                .all(|a| s(a, "rule.id") == "other-exec" || s(a, "rule.id") == "monitor-tamper"),
        "{alerts:#?}"
    );
    assert!(
        alerts.iter().any(|a| a.get("container").is_some()),
        "container context comes from the capture"
    );
    monitor_tests::check_schema(&replayed);

    // Cut off mid-record: everything before is replayed, the cut is reported, and the exit
    // code says part of the input was not read.
    let data = std::fs::read(&file).unwrap();
    let cut = root.join("cut.cap");
    std::fs::write(&cut, &data[..data.len() - 7]).unwrap();
    let (replayed, err, code) = replay(&cut, &[&rules]);
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("cut off"), "{err}");
    assert!(!replayed.is_empty() && replayed.len() <= live.len());
    let n = replayed.len() - 1;
    assert_eq!(
        replayed[..n].iter().map(made).collect::<Vec<_>>(),
        live[..n].iter().map(made).collect::<Vec<_>>()
    );
    // Compressed (as a responder receives it), on standard input: the same lines.
    let gz = root.join("run.cap.gz");
    monitor_tests::sh(&format!("gzip -c {} > {}", file.display(), gz.display()));
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} replay --rules {} - < {}",
            monitor_bin().display(),
            rules.display(),
            gz.display()
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let piped: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        piped.iter().map(made).collect::<Vec<_>>(),
        live.iter().map(made).collect::<Vec<_>>(),
        "a gzip-compressed capture on stdin"
    );
    // Not a capture at all: said what it is instead.
    let (_, err, code) = replay(&rules, &[&rules]);
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("not recognised (it starts with \"-w "), "{err}");
}
