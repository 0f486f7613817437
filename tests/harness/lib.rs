//! Harness for the end-to-end tests: run the real `monitor` binary with test rules, collect
//! the JSON alerts it prints, and let a test wait for the alerts its syscalls must raise.
//!
//! The tests need root (they load eBPF programs). Without root they are skipped with a
//! message, except under `CI=true`, where a skip is a failure.

pub mod audit;
pub mod docker;
pub mod ecs;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a test waits for an alert that must come.
pub const ALERT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopping monitor may take to drain and exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(90);
/// How long `monitor run` may take to load and attach everything.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Whether privileged tests can run. Panics under `CI=true` when they cannot.
pub fn privileged() -> bool {
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("end-to-end tests need root; with CI=true they must run, not skip");
    }
    eprintln!("SKIPPED: end-to-end tests need root");
    false
}

/// Whether privileged tests can run ([`privileged`]), and then `lock` held for the test: tests
/// that change what their neighbours observe (the host's settings, Docker's containers, the
/// machine's load) take turns. `None`: skip.
pub fn privileged_turn(lock: &'static Mutex<()>) -> Option<MutexGuard<'static, ()>> {
    privileged().then(|| lock.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The monitor binary under test: `$MONITOR_BIN`, or the workspace's release build.
pub fn monitor_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MONITOR_BIN") {
        return p.into();
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/monitor");
    assert!(
        p.exists(),
        "{} is missing: run `cargo xtask build` first (`cargo xtask test` does)",
        p.display()
    );
    p
}

/// One alert line, with when the harness read it.
#[derive(Clone, Debug)]
pub struct Alert {
    pub json: Value,
    pub received: Instant,
    /// Wall-clock time the line was read, to compare with `@timestamp`.
    pub received_wall: std::time::SystemTime,
}

#[derive(Default)]
struct Output {
    alerts: Vec<Alert>,
    /// Lines on stdout that were not one JSON object (must never happen).
    garbage: Vec<String>,
    stderr: Vec<String>,
    ready: bool,
    exit: Option<String>,
}

/// A running `monitor run`.
pub struct Monitor {
    out: Arc<(Mutex<Output>, Condvar)>,
    pid: u32,
    paused: Arc<std::sync::atomic::AtomicBool>,
}

impl Monitor {
    /// Start `monitor run --rules RULES` and wait for its `monitor-start` record (printed
    /// once its hooks are attached).
    pub fn start(rules: &Path) -> Monitor {
        Monitor::start_with(&[rules])
    }

    /// Start `monitor run` with several `--rules` paths.
    pub fn start_with(rules: &[&Path]) -> Monitor {
        Monitor::start_args(rules, &[])
    }

    /// Start `monitor run` with `--rules` paths and further arguments.
    pub fn start_args(rules: &[&Path], extra: &[&str]) -> Monitor {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let out: Arc<(Mutex<Output>, Condvar)> = Arc::default();
        let (pid_tx, pid_rx) = std::sync::mpsc::channel();
        let rules: Vec<PathBuf> = rules.iter().map(|r| r.to_path_buf()).collect();
        let shared = out.clone();
        let paused: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let pause_flag = paused.clone();
        // The child is spawned from a thread that lives as long as the child: the parent-death
        // signal below fires when the spawning *thread* ends, and test threads end early.
        std::thread::spawn(move || {
            let mut cmd = Command::new(monitor_bin());
            cmd.arg("run");
            for r in &rules {
                cmd.arg("--rules").arg(r);
            }
            cmd.args(&extra);
            cmd.env("RUST_LOG", "info");
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
            die_with_parent(&mut cmd);
            let mut child = cmd.spawn().expect("spawning the monitor");
            pid_tx.send(child.id()).unwrap();
            let stdout = child.stdout.take().unwrap();
            let stderr = child.stderr.take().unwrap();
            let s = shared.clone();
            let out_reader = std::thread::spawn(move || read_stdout(stdout, s, pause_flag));
            let s = shared.clone();
            let err_reader = std::thread::spawn(move || read_stderr(stderr, s));
            let status = child.wait().expect("waiting for the monitor");
            // Everything it printed is collected before its exit is announced.
            let _ = out_reader.join();
            let _ = err_reader.join();
            let (lock, cond) = &*shared;
            lock.lock().unwrap_or_else(|e| e.into_inner()).exit = Some(status.to_string());
            cond.notify_all();
        });
        let pid = pid_rx.recv().expect("monitor spawned");
        let m = Monitor { out, pid, paused };
        m.wait_ready();
        m
    }

    fn wait_ready(&self) {
        let (lock, cond) = &*self.out;
        let deadline = Instant::now() + START_TIMEOUT;
        let mut out = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !out.ready {
            if let Some(exit) = &out.exit {
                panic!("monitor exited during start ({exit}):\n{}", out.stderr.join("\n"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "monitor not ready after {START_TIMEOUT:?}:\n{}",
                out.stderr.join("\n")
            );
            out = cond.wait_timeout(out, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Wait until everything done before this call has gone through the monitor: write a
    /// new file under `dir` (which a rule watches for writes) and wait for its alert.
    /// Records leave the kernel in order, so anything earlier would have come first.
    pub fn fence(&self, dir: &Path) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let f = dir.join(format!("fence-{n}")).display().to_string();
        std::fs::write(&f, "").unwrap();
        self.wait_for(&format!("fence {f}"), |a| s(a, "file.path") == f);
    }

    /// Stop (or resume) reading the monitor's stdout: its pipe fills and its writes block,
    /// as with a stalled SIEM.
    pub fn pause_reading(&self, paused: bool) {
        self.paused.store(paused, std::sync::atomic::Ordering::SeqCst);
    }

    /// Send `signal` and wait for the monitor to exit; returns how it exited. It drains its
    /// ring buffer first, which takes time in proportion to the backlog (up to the ring buffer's size).
    pub fn stop(&self, signal: i32) -> String {
        unsafe { libc::kill(self.pid as i32, signal) };
        let (lock, cond) = &*self.out;
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut out = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(exit) = &out.exit {
                return exit.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "monitor still running {ALERT_TIMEOUT:?} after signal {signal}"
            );
            out = cond.wait_timeout(out, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// The first alert (in output order) that satisfies `pred`, waiting up to `timeout`.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Alert {
        let (lock, cond) = &*self.out;
        let deadline = Instant::now() + ALERT_TIMEOUT;
        let mut out = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            assert!(out.garbage.is_empty(), "non-JSON lines on stdout: {:?}", out.garbage);
            if let Some(a) = out.alerts.iter().find(|a| pred(&a.json)) {
                return a.clone();
            }
            if let Some(exit) = &out.exit {
                panic!(
                    "monitor exited ({exit}) while waiting for {what}:\n{}",
                    out.stderr.join("\n")
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let seen: Vec<String> = out.alerts.iter().map(|a| summary(&a.json)).collect();
                panic!(
                    "no alert for {what} within {ALERT_TIMEOUT:?}; alerts seen:\n{}",
                    seen.join("\n")
                );
            }
            out = cond.wait_timeout(out, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Every alert so far that satisfies `pred`, with its reception times.
    pub fn matching_alerts(&self, pred: impl Fn(&Value) -> bool) -> Vec<Alert> {
        let out = self.out.0.lock().unwrap_or_else(|e| e.into_inner());
        out.alerts.iter().filter(|a| pred(&a.json)).cloned().collect()
    }

    /// Every alert so far that satisfies `pred`.
    pub fn matching(&self, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let out = self.out.0.lock().unwrap_or_else(|e| e.into_inner());
        out.alerts.iter().filter(|a| pred(&a.json)).map(|a| a.json.clone()).collect()
    }

    /// Every alert so far.
    pub fn all(&self) -> Vec<Value> {
        self.matching(|_| true)
    }

    /// Everything the monitor logged so far.
    pub fn stderr(&self) -> Vec<String> {
        self.out.0.lock().unwrap_or_else(|e| e.into_inner()).stderr.clone()
    }
}

impl Drop for Monitor {
    /// A monitor a test started is stopped when the test is done with it.
    fn drop(&mut self) {
        let exited = self.out.0.lock().unwrap_or_else(|e| e.into_inner()).exit.is_some();
        if !exited {
            unsafe { libc::kill(self.pid as i32, libc::SIGTERM) };
        }
    }
}

fn read_stdout(
    stdout: impl std::io::Read,
    out: Arc<(Mutex<Output>, Condvar)>,
    paused: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut lines = BufReader::new(stdout).lines();
    loop {
        while paused.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let Some(line) = lines.next() else { break };
        let Ok(line) = line else { break };
        let received = Instant::now();
        let received_wall = std::time::SystemTime::now();
        let (lock, cond) = &*out;
        let mut o = lock.lock().unwrap_or_else(|e| e.into_inner());
        match serde_json::from_str::<Value>(&line) {
            Ok(json) if json.is_object() => {
                // Ready: the monitor prints its start record once every source is armed.
                if json["event"]["action"] == "monitor-start" {
                    o.ready = true;
                }
                o.alerts.push(Alert { json, received, received_wall })
            }
            _ => o.garbage.push(line),
        }
        cond.notify_all();
    }
}

fn read_stderr(stderr: impl std::io::Read, out: Arc<(Mutex<Output>, Condvar)>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        let (lock, cond) = &*out;
        let mut o = lock.lock().unwrap_or_else(|e| e.into_inner());
        o.stderr.push(line);
        cond.notify_all();
    }
}

/// The child started by `cmd` gets SIGTERM when the test process goes away, however it ends.
pub fn die_with_parent(cmd: &mut Command) {
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
}

/// `@timestamp` as ns since the epoch, when it is RFC 3339 UTC with nanoseconds
/// (`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, the alert schema's form) and nothing else.
pub fn timestamp_ns(ts: &str) -> Option<i128> {
    use time::format_description::well_known::Rfc3339;
    if ts.len() != 30 || !ts.ends_with('Z') {
        return None;
    }
    Some(time::OffsetDateTime::parse(ts, &Rfc3339).ok()?.unix_timestamp_nanos())
}

/// Every line of `text` as JSON; panics at a line that is not.
pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Write `content` to `dir/name`; returns the path.
pub fn write_file(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

/// One line per alert for failure messages.
pub fn summary(a: &Value) -> String {
    format!(
        "{} {} key={} path={} pid={} exe={}",
        a["event"]["sequence"],
        a["event"]["action"],
        a["rule"]["id"],
        a["file"]["path"],
        a["process"]["pid"],
        a["process"]["executable"]
    )
}

/// `a[path]` for a dotted path such as `process.parent.pid` (numbers index arrays).
pub fn get<'v>(a: &'v Value, dotted: &str) -> &'v Value {
    dotted.split('.').fold(a, |v, k| match (v, k.parse::<usize>()) {
        (Value::Array(items), Ok(i)) => items.get(i).unwrap_or(&Value::Null),
        _ => &v[k],
    })
}

/// Alert field as a string ("" when absent or not a string).
pub fn s<'v>(a: &'v Value, dotted: &str) -> &'v str {
    get(a, dotted).as_str().unwrap_or("")
}

/// A fresh directory for one test binary, removed when the process exits.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("monitor-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A symlink-free spelling: the kernel reports canonical paths.
    let dir = std::fs::canonicalize(&dir).unwrap();
    SCRATCH.lock().unwrap_or_else(|e| e.into_inner()).push(dir.clone());
    extern "C" fn cleanup() {
        if let Ok(dirs) = SCRATCH.lock() {
            for d in dirs.iter() {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| unsafe {
        libc::atexit(cleanup);
    });
    dir
}

static SCRATCH: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Run `sh -c SCRIPT` and require success.
pub fn sh(script: &str) {
    let status = Command::new("sh").arg("-c").arg(script).status().expect("running sh");
    assert!(status.success(), "`{script}` failed: {status}");
}

/// Check the lines of one run (alerts, audit-trail events, records): each is valid ECS and
/// follows the monitor's field table (see [`ecs::check`]), and `event.sequence` numbers
/// them 1..n without gaps.
pub fn check_schema(lines: &[Value]) {
    assert!(!lines.is_empty());
    // One numbering for alerts and records, no gaps.
    let mut seqs: Vec<u64> =
        lines.iter().filter_map(|a| get(a, "event.sequence").as_u64()).collect();
    seqs.sort();
    assert_eq!(
        seqs,
        (1..=lines.len() as u64).collect::<Vec<_>>(),
        "event.sequence must be 1..n without gaps"
    );
    check_lines(lines);
}

/// Check each line as [`ecs::check`] does; panics with every problem of the first bad line.
pub fn check_lines(lines: &[Value]) {
    for line in lines {
        let problems = ecs::check(line);
        assert!(problems.is_empty(), "{problems:#?}\nin {line}");
    }
}

/// Fork a child that runs `body` and exits with what it returns; returns the child's pid and
/// exit status once it has ended. `body` makes raw syscalls only: the test process has
/// threads, and between fork and exit nothing else is sound (no allocation, no locks).
pub fn in_child(body: impl FnOnce() -> i32) -> (u32, i32) {
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = body();
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "child {pid} did not exit: {status:#x}");
    (pid as u32, libc::WEXITSTATUS(status))
}

/// Fork a child that runs `steps` (raw setresuid calls) and exits; returns its pid.
pub fn setresuid_child(steps: &[(u32, u32, u32)]) -> u32 {
    let (pid, code) = in_child(|| {
        let failed = steps
            .iter()
            .any(|(r, e, s)| unsafe { libc::syscall(libc::SYS_setresuid, *r, *e, *s) } != 0);
        i32::from(failed)
    });
    assert_eq!(code, 0, "setresuid child failed");
    pid
}

/// How [`exec_child`] runs a program.
#[derive(Clone, Copy, Debug)]
pub enum ExecCall {
    /// `execve(path, argv, envp)`.
    Execve,
    /// `execveat(fd of path, "", argv, envp, AT_EMPTY_PATH)`.
    ExecveatFd,
    /// `execve(path, <unreadable argv>, envp)`: fails with EFAULT, the file untouched.
    ExecveBadArgv,
}

/// Fork a child that runs `path` with argv `[path, arg]` through `call`; returns its pid
/// and its exit status once it has ended (127 when the exec returned).
pub fn exec_child(path: &str, arg: &str, call: ExecCall) -> (u32, i32) {
    use std::ffi::CString;
    let path_c = CString::new(path).unwrap();
    let arg_c = CString::new(arg).unwrap();
    let argv = [path_c.as_ptr(), arg_c.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    in_child(|| unsafe {
        match call {
            ExecCall::Execve => {
                libc::syscall(libc::SYS_execve, path_c.as_ptr(), argv.as_ptr(), envp.as_ptr());
            }
            ExecCall::ExecveatFd => {
                let fd = libc::open(path_c.as_ptr(), libc::O_RDONLY);
                libc::syscall(
                    libc::SYS_execveat,
                    fd,
                    c"".as_ptr(),
                    argv.as_ptr(),
                    envp.as_ptr(),
                    libc::AT_EMPTY_PATH,
                );
            }
            ExecCall::ExecveBadArgv => {
                libc::syscall(
                    libc::SYS_execve,
                    path_c.as_ptr(),
                    8usize as *const libc::c_char,
                    envp.as_ptr(),
                );
            }
        }
        127
    })
}

/// Fork a child that becomes uid/gid `id` and connects to the unix socket `path` (the
/// outcome does not matter); returns its pid once it has exited.
pub fn connect_as(id: u32, path: &str) -> u32 {
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as u16;
    assert!(path.len() < addr.sun_path.len());
    for (i, b) in path.bytes().enumerate() {
        addr.sun_path[i] = b as libc::c_char;
    }
    in_child(|| unsafe {
        libc::syscall(libc::SYS_setresgid, id, id, id);
        libc::syscall(libc::SYS_setresuid, id, id, id);
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
        libc::connect(
            fd,
            &addr as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_un>() as u32,
        );
        0
    })
    .0
}
