//! `monitor replay` as an incident responder uses it, against audit logs a real auditd
//! wrote in this test (the pack loaded with the real `auditctl -R`): the same log as a
//! file, as a directory of rotations (one gzip-compressed, one empty), through a pipe and
//! through a FIFO gives the same alerts; host, user and group names and audit keys come
//! from the log, never from this host (`provenance`); every filter narrows, and text
//! output is readable and safe on a terminal (`filters`); garbage, empty and partial
//! inputs say what and where, with their exit codes (`errors`).

use monitor_tests::audit::AuditedHost;
use monitor_tests::{
    connect_as, get, json_lines, monitor_bin, privileged, s, scratch_dir, setresuid_child,
    write_file,
};
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

mod errors;
mod filters;
mod provenance;

/// What a replay printed and said.
pub struct Replayed {
    pub code: i32,
    pub lines: Vec<Value>,
    pub stdout: String,
    pub stderr: String,
}

impl Replayed {
    /// The alert lines (`event.kind: "alert"`).
    pub fn alerts(&self) -> Vec<&Value> {
        self.lines.iter().filter(|a| s(a, "event.kind") == "alert").collect()
    }

    /// What identifies each alert ([`core`]), in order.
    pub fn cores(&self) -> Vec<String> {
        self.alerts().into_iter().map(core).collect()
    }
}

/// `monitor replay ARGS` with `stdin` on standard input (or none).
pub fn replay(args: &[&str], stdin: Option<&[u8]>) -> Replayed {
    replay_env(args, stdin, &[])
}

pub fn replay_env(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Replayed {
    let mut cmd = Command::new(monitor_bin());
    cmd.arg("replay").args(args).envs(env.iter().copied());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running monitor replay");
    if let Some(bytes) = stdin {
        let mut input = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        // A writer of its own: a large input would fill the pipe while stdout waits.
        std::thread::spawn(move || {
            let _ = input.write_all(&bytes);
        });
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).expect("stdout is UTF-8");
    let lines = if args.contains(&"text") { Vec::new() } else { json_lines(&stdout) };
    Replayed {
        code: out.status.code().unwrap_or(-1),
        lines,
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What identifies an alert across inputs.
pub fn core(a: &Value) -> String {
    format!(
        "{} {} {} {} {} {}",
        s(a, "@timestamp"),
        s(a, "rule.id"),
        s(a, "event.action"),
        get(a, "process.pid"),
        get(a, "file.path"),
        get(a, "user.id")
    )
}

/// The log auditd wrote for this test's workload, and what the workload was.
pub struct RealLog {
    pub dir: PathBuf,
    /// auditd's log as written (enriched format, no node=).
    pub log: PathBuf,
    /// A user and group (same name, same id) that existed while auditd logged and are
    /// gone from this host now.
    pub user: String,
    pub uid: u32,
    /// `sh -c` writing two files under /etc/docker, one by a child, then removing them.
    pub script_pid: u32,
    /// The tag in this run's file names.
    pub tag: String,
    /// A file name with terminal escape sequences in it, written and removed.
    pub evil: String,
    /// A connect to the Docker socket by `uid`, and a setresuid back to root.
    pub connect_pid: u32,
    pub setuid_pid: u32,
}

/// The real log, made once per test binary (`None`: not privileged, skip).
pub fn real_log() -> Option<&'static RealLog> {
    static LOG: OnceLock<RealLog> = OnceLock::new();
    privileged().then(|| LOG.get_or_init(make_real_log))
}

fn run(script: &str) -> u32 {
    let mut child = Command::new("sh").arg("-c").arg(script).spawn().unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success(), "{script}");
    pid
}

/// An id free as both a uid and a gid here.
fn free_id() -> u32 {
    let taken = |file: &str, id: u32| {
        std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .any(|l| l.split(':').nth(2) == Some(id.to_string().as_str()))
    };
    (42_000..43_000).find(|id| !taken("/etc/passwd", *id) && !taken("/etc/group", *id)).unwrap()
}

fn make_real_log() -> RealLog {
    monitor_tests::docker::ensure(); // the socket the connect names
    let dir = scratch_dir("replay-real");
    let host = AuditedHost::with_pack(&dir);
    let tag = format!("ir-{}", std::process::id());
    let uid = free_id();
    let user = format!("mon-ir-{}", std::process::id() % 100_000);
    monitor_tests::sh(&format!(
        "groupadd -g {uid} {user} && useradd -M -N -u {uid} -g {uid} -s /usr/sbin/nologin {user}"
    ));
    // Every audited call is made by a process started now (see audit.rs).
    let script_pid = run(&format!(
        "echo x > /etc/docker/{tag}-a; sh -c 'echo y > /etc/docker/{tag}-b'; \
         rm -f /etc/docker/{tag}-a /etc/docker/{tag}-b"
    ));
    let evil = format!("/etc/docker/{tag}-\x1b]0;pwned\x07\x1b[2J");
    run(&format!("printf x > '{evil}' && rm -f '{evil}'"));
    let connect_pid = connect_as(uid, "/run/docker.sock");
    let setuid_pid = setresuid_child(&[(65534, 65534, 0), (0, 0, 0)]);
    // Last: once its records are in the log, everything before them is.
    run(&format!("echo z > /etc/docker/{tag}-end && rm /etc/docker/{tag}-end"));
    let end = format!("{tag}-end\"");
    let text = host.log_since_start(|t| {
        t.lines().any(|l| l.contains(&end) && l.contains("nametype=DELETE"))
            && t.contains(&format!(" pid={connect_pid} "))
    });
    drop(host);
    // Gone from this host: only the log knows the names now.
    monitor_tests::sh(&format!("userdel {user}; groupdel {user} 2>/dev/null; true"));
    let log = dir.join("audit.log");
    std::fs::write(&log, &text).unwrap();
    RealLog { dir, log, user, uid, script_pid, tag, evil, connect_pid, setuid_pid }
}

impl RealLog {
    pub fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    pub fn path(&self) -> &str {
        self.log.to_str().unwrap()
    }
}

/// `gzip -c` of `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut input = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// The summary line's `name=value` for `name`.
pub fn summary_value(stderr: &str, name: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("monitor: replay summary:"))
        .unwrap_or_else(|| panic!("no summary line: {stderr}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
        .parse()
        .unwrap()
}

#[test]
fn a_file_a_directory_of_rotations_a_pipe_and_a_fifo_give_the_same_alerts() {
    let Some(real) = real_log() else { return };
    let plain = replay(&[real.path()], None);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    let alerts = plain.cores();
    let ours = |key: &str| plain.alerts().into_iter().filter(|a| s(a, "rule.id") == key).count();
    assert!(ours("docker-config") >= 4, "writes and unlinks: {alerts:#?}");
    assert_eq!(ours("docker-socket-nonroot"), 1, "{alerts:#?}");
    assert!(ours("setuid-root") >= 1, "{alerts:#?}");
    // The summary counts what was read and printed.
    let text = real.text();
    assert_eq!(summary_value(&plain.stderr, "lines"), text.lines().count() as u64);
    assert_eq!(summary_value(&plain.stderr, "alerts"), alerts.len() as u64);
    assert_eq!(summary_value(&plain.stderr, "malformed_lines"), 0);
    assert!(
        summary_value(&plain.stderr, "records") > 0 && summary_value(&plain.stderr, "events") > 0
    );

    // Rotated: the older half gzip-compressed as audit.log.1.gz, the newer half as
    // audit.log, an empty audit.log.2 (rotations are named in any order: time decides).
    let rotated = real.dir.join("rotated");
    std::fs::create_dir_all(&rotated).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let (older, newer) = lines.split_at(lines.len() / 2);
    std::fs::write(rotated.join("audit.log.1.gz"), gzip(older.concat().as_bytes())).unwrap();
    std::fs::write(rotated.join("audit.log"), newer.concat()).unwrap();
    std::fs::write(rotated.join("audit.log.2"), "").unwrap();
    let dir = replay(&[rotated.to_str().unwrap()], None);
    assert_eq!(dir.code, 0, "{}", dir.stderr);
    assert_eq!(dir.cores(), alerts, "directory");
    assert_eq!(summary_value(&dir.stderr, "inputs"), 2, "{}", dir.stderr);
    assert_eq!(summary_value(&dir.stderr, "empty_inputs"), 1, "{}", dir.stderr);
    // The same files named newest first.
    let named = replay(
        &[
            rotated.join("audit.log").to_str().unwrap(),
            rotated.join("audit.log.1.gz").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(named.cores(), alerts, "named");

    // Standard input: `-`, and /dev/stdin as a path (a pipe read once).
    for name in ["-", "/dev/stdin"] {
        let piped = replay(&[name], Some(text.as_bytes()));
        assert_eq!(piped.code, 0, "{name}: {}", piped.stderr);
        assert_eq!(piped.cores(), alerts, "{name}");
    }
    // Compressed on standard input too.
    let gz = replay(&["-"], Some(&gzip(text.as_bytes())));
    assert_eq!(gz.cores(), alerts, "gzip on stdin");

    // A FIFO, written while the replay reads it.
    let fifo = real.dir.join("audit.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let (f, bytes) = (fifo.clone(), text.clone().into_bytes());
    let writer = std::thread::spawn(move || {
        let mut w = std::fs::OpenOptions::new().write(true).open(f).unwrap();
        for chunk in bytes.chunks(1000) {
            w.write_all(chunk).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    });
    let through = replay(&[fifo.to_str().unwrap()], None);
    writer.join().unwrap();
    assert_eq!(through.code, 0, "{}", through.stderr);
    assert_eq!(through.cores(), alerts, "FIFO");
}

/// Lines that are not records, inside a real log: reported once for the file, with the
/// first line and the line numbers, and the exit code says part was not read.
#[test]
fn partial_garbage_is_counted_reported_once_per_file_and_exit_8() {
    let Some(real) = real_log() else { return };
    let clean = replay(&[real.path()], None);
    let mut lines: Vec<String> = real.text().lines().map(str::to_string).collect();
    for at in [4, 9, 14] {
        lines.insert(at, format!("garbage {at} \x1b[31m not a record"));
    }
    let dirty = write_file(&real.dir, "dirty.log", (lines.join("\n") + "\n").as_bytes());
    let out = replay(&[dirty.to_str().unwrap()], None);
    assert_eq!(out.code, 8, "{}", out.stderr);
    let core_of = |r: &Replayed| r.cores();
    assert_eq!(core_of(&out), core_of(&clean), "everything readable is replayed");
    let reports: Vec<&str> =
        out.stderr.lines().filter(|l| l.contains("not audit records")).collect();
    assert_eq!(reports.len(), 1, "one report per file, not one per line: {}", out.stderr);
    assert!(
        reports[0].contains(&format!("{}:5: 3 line(s)", dirty.display()))
            && reports[0].contains("lines 5, 10, 15"),
        "{}",
        reports[0]
    );
    assert!(!out.stderr.contains('\x1b'), "the bad lines are not echoed: {}", out.stderr);
    assert_eq!(summary_value(&out.stderr, "malformed_lines"), 3);
}

pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}
