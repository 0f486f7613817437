//! The live pipeline end to end: one real `monitor run` with test rules watches a scratch
//! tree; each test makes real syscalls there and asserts the JSON alerts (or their absence).
//!
//! Absence is proved with a fence: after the activity that must stay silent, the test writes
//! a file under a watched fence directory and waits for that alert. Records leave the kernel
//! in order, so anything the silent activity had raised would have come first.

use monitor_tests::{
    exec_child, get, privileged, s, scratch_dir, setresuid_child, sh, timestamp_ns, ExecCall,
    Monitor,
};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

mod classes;

struct Live {
    root: PathBuf,
    rules: PathBuf,
    monitor: Monitor,
}

fn live() -> Option<&'static Live> {
    if !privileged() {
        return None;
    }
    static LIVE: OnceLock<Live> = OnceLock::new();
    Some(LIVE.get_or_init(|| {
        let root = scratch_dir("live");
        for d in ["watched/sub", "unwatched", "sockets", "other-sockets", "bin", "fence", "late"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        std::os::unix::fs::symlink(root.join("sockets"), root.join("sockets-link")).unwrap();
        fs::copy("/usr/bin/true", root.join("bin/watched-true")).unwrap();
        fs::copy("/usr/bin/true", root.join("bin/unwatched-true")).unwrap();
        std::os::unix::fs::symlink(root.join("bin/watched-true"), root.join("bin/link-true"))
            .unwrap();
        fs::write(root.join("watched/readme"), "read me").unwrap();
        let r = root.display();
        let rules = root.join("e2e.rules");
        fs::write(
            &rules,
            format!(
                "# end-to-end test rules\n\
                 -w {r}/watched -p wa -k e2e-dir\n\
                 -w {r}/sockets -p w -k e2e-sock\n\
                 -w {r}/bin/watched-true -p x -k e2e-exec\n\
                 -w {r}/fence -p w -k e2e-fence\n\
                 -a always,exit -F arch=b64 -S setuid,setreuid,setresuid -F euid=0 -k e2e-root\n\
                 -w {r}/late/sock -p w -k e2e-late\n\
                 -w {r}/late/file -p wa -k e2e-late-file\n\
                 -w {r}/late/newdir/file -p wa -k e2e-late-file\n"
            ),
        )
        .unwrap();
        let monitor = Monitor::start(&rules);
        Live { root, rules, monitor }
    }))
}

impl Live {
    /// The `rule.source` of the one rule whose line in the test rules contains `text`.
    fn source(&self, text: &str) -> String {
        let rules = fs::read_to_string(&self.rules).unwrap();
        let lines: Vec<usize> = rules
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains(text))
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(lines.len(), 1, "one rule line contains {text:?}: {lines:?}");
        format!("{}:{}", self.rules.display(), lines[0])
    }

    fn path(&self, rel: &str) -> String {
        self.root.join(rel).display().to_string()
    }

    /// A unix socket listening at `rel`, connected to once: its path and its listener (to
    /// keep while the test runs).
    fn listen_and_connect(&self, rel: &str) -> (String, UnixListener) {
        let sock = self.path(rel);
        let listener = UnixListener::bind(&sock).unwrap();
        UnixStream::connect(&sock).unwrap();
        (sock, listener)
    }

    /// Wait until everything done before this call has gone through the monitor.
    fn fence(&self) {
        self.monitor.fence(&self.root.join("fence"));
    }

    fn expect(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.monitor.wait_for(what, pred).json
    }
}

/// Fields every alert carries, checked against what we know of the caller.
fn check_common(a: &Value, key: &str, source: &str) {
    assert_eq!(s(a, "event.kind"), "alert", "{a}");
    assert_eq!(s(a, "rule.id"), key, "{a}");
    assert_eq!(s(a, "monitor.rule.source"), source, "{a}");
    assert!(get(a, "event.sequence").as_u64().is_some_and(|n| n > 0), "{a}");
    let ts = s(a, "@timestamp");
    assert!(ts.len() == 30 && ts.ends_with('Z') && &ts[10..11] == "T", "RFC 3339 with ns: {ts}");
    assert!(!s(a, "host.name").is_empty(), "{a}");
    assert_eq!(s(a, "host.name"), s(a, "observer.hostname"), "live: the host is the observer");
    assert!(get(a, "process.pid").as_u64().is_some(), "{a}");
    assert!(get(a, "process.parent.pid").as_u64().is_some(), "{a}");
    assert!(!s(a, "process.name").is_empty(), "{a}");
    assert_eq!(s(a, "user.id"), "0", "{a}");
    assert_eq!(s(a, "user.name"), "root", "{a}");
    assert_eq!(s(a, "user.effective.id"), "0", "{a}");
}

fn me() -> u64 {
    std::process::id() as u64
}

fn my_exe() -> String {
    fs::canonicalize("/proc/self/exe").unwrap().display().to_string()
}

#[test]
fn writes_renames_chmods_and_unlinks_under_a_watched_directory() {
    let Some(l) = live() else { return };
    let a = l.path("watched/abs-a");
    let b = l.path("watched/abs-b");
    fs::write(&a, "x").unwrap();
    fs::rename(&a, &b).unwrap();
    fs::set_permissions(&b, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&b, Some(0), Some(0)).unwrap();
    fs::remove_file(&b).unwrap();

    let src = l.source("-k e2e-dir");
    let w = l.expect("write abs-a", |x| s(x, "event.action") == "write" && s(x, "file.path") == a);
    check_common(&w, "e2e-dir", &src);
    assert_eq!(s(&w, "event.outcome"), "success");
    assert_eq!(get(&w, "process.pid").as_u64(), Some(me()));
    assert_eq!(s(&w, "process.executable"), my_exe());
    assert!(get(&w, "process.args").as_array().is_some_and(|v| !v.is_empty()), "{w}");
    assert!(s(&w, "file.inode").parse::<u64>().is_ok(), "{w}");

    let r =
        l.expect("rename abs-a", |x| s(x, "event.action") == "rename" && s(x, "file.path") == a);
    check_common(&r, "e2e-dir", &src);
    assert_eq!(s(&r, "monitor.file.new_path"), b);
    let c = l.expect("chmod abs-b", |x| s(x, "event.action") == "chmod" && s(x, "file.path") == b);
    check_common(&c, "e2e-dir", &src);
    let o = l.expect("chown abs-b", |x| s(x, "event.action") == "chown" && s(x, "file.path") == b);
    check_common(&o, "e2e-dir", &src);
    let u =
        l.expect("unlink abs-b", |x| s(x, "event.action") == "unlink" && s(x, "file.path") == b);
    check_common(&u, "e2e-dir", &src);
    assert_eq!(get(&u, "process.pid").as_u64(), Some(me()));

    // Sequence numbers grow in output order.
    let seq = |x: &Value| get(x, "event.sequence").as_u64().unwrap();
    assert!(seq(&w) < seq(&r) && seq(&r) < seq(&c) && seq(&c) < seq(&o) && seq(&o) < seq(&u));
}

#[test]
fn relative_paths_and_dotdot_reach_their_watch() {
    let Some(l) = live() else { return };
    let root = l.root.display();
    sh(&format!("cd {root}/watched/sub && echo x > ../rel-a && mv ../rel-a ../rel-b && chmod 600 ../rel-b && rm ../rel-b"));
    sh(&format!("cd {root} && echo x > watched/rel-c && rm watched/rel-c"));
    sh(&format!(
        "echo x > {root}/unwatched/../watched/dot-d && rm {root}/unwatched/../watched/./dot-d"
    ));
    let src = l.source("-k e2e-dir");
    for (action, name) in [
        ("write", "rel-a"),
        ("rename", "rel-a"),
        ("chmod", "rel-b"),
        ("unlink", "rel-b"),
        ("write", "rel-c"),
        ("unlink", "rel-c"),
        ("write", "dot-d"),
        ("unlink", "dot-d"),
    ] {
        let p = l.path(&format!("watched/{name}"));
        let a = l.expect(&format!("{action} {name}"), |x| {
            s(x, "event.action") == action && s(x, "file.path") == p
        });
        check_common(&a, "e2e-dir", &src);
        if action == "rename" {
            assert_eq!(s(&a, "monitor.file.new_path"), l.path("watched/rel-b"), "{a}");
        }
    }
}

/// The kernel drops a path syscall early when its strings certainly name nothing watched
/// (`string_surely_unwatched`); every way a string can still reach a watch must get past
/// that shortcut: `..` out of an unwatched working directory, a rename into or out of a
/// watched directory, a name relative to a descriptor of a watched directory, and a
/// relative name from the root directory.
#[test]
fn the_kernel_shortcut_never_hides_a_watched_name() {
    let Some(l) = live() else { return };
    let root = l.root.display();
    let rel_root = root.to_string().trim_start_matches('/').to_string();
    sh(&format!("cd {root}/unwatched && echo x > ../watched/short-a && rm ../watched/short-a"));
    sh(&format!(
        "echo x > {root}/unwatched/short-b && mv {root}/unwatched/short-b {root}/watched/short-b"
    ));
    sh(&format!(
        "mv {root}/watched/short-b {root}/unwatched/short-c && rm {root}/unwatched/short-c"
    ));
    sh(&format!("cd / && echo x > {rel_root}/watched/short-d && rm {rel_root}/watched/short-d"));
    fs::write(l.path("watched/short-e"), "x").unwrap();
    let dir = fs::File::open(l.path("watched")).unwrap();
    let name = std::ffi::CString::new("short-e").unwrap();
    use std::os::fd::AsRawFd;
    assert_eq!(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) }, 0);
    let src = l.source("-k e2e-dir");
    for (action, name, target) in [
        ("unlink", "watched/short-a", None),
        ("rename", "unwatched/short-b", Some("watched/short-b")),
        ("rename", "watched/short-b", Some("unwatched/short-c")),
        ("unlink", "watched/short-d", None),
        ("unlink", "watched/short-e", None),
    ] {
        let p = l.path(name);
        let a = l.expect(&format!("{action} {name}"), |x| {
            s(x, "event.action") == action && s(x, "file.path") == p
        });
        check_common(&a, "e2e-dir", &src);
        if let Some(t) = target {
            assert_eq!(s(&a, "monitor.file.new_path"), l.path(t), "{a}");
        }
    }
}

#[test]
fn connect_to_a_watched_socket_through_any_spelling() {
    let Some(l) = live() else { return };
    let (sock, _listener) = l.listen_and_connect("sockets/s1");
    let via_link = l.path("sockets-link/s1");
    UnixStream::connect(&via_link).unwrap();
    {
        let _cwd = CWD.lock().unwrap();
        let old = std::env::current_dir().unwrap();
        std::env::set_current_dir(l.root.join("sockets-link")).unwrap();
        let r = UnixStream::connect("s1");
        std::env::set_current_dir(old).unwrap();
        r.unwrap();
    }
    let src = l.source("-k e2e-sock");
    for requested in [sock.as_str(), via_link.as_str(), "s1"] {
        let a = l.expect(&format!("connect via {requested}"), |x| {
            s(x, "event.action") == "connect" && s(x, "destination.address") == requested
        });
        check_common(&a, "e2e-sock", &src);
        assert_eq!(s(&a, "file.path"), sock, "{a}");
        assert_eq!(s(&a, "file.type"), "socket", "{a}");
        assert_eq!(s(&a, "event.outcome"), "success", "{a}");
        assert_eq!(get(&a, "process.pid").as_u64(), Some(me()), "{a}");
    }
}

/// Close is not hooked: a send on a captured connection's descriptor number must still
/// reach the captured socket, or it is not reported.
#[test]
fn a_captured_descriptor_reused_for_a_file_is_not_captured() {
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd};
    let Some(l) = live() else { return };
    let sock = l.path("sockets/api");
    let _listener = UnixListener::bind(&sock).unwrap();
    let request =
        |what: &str| format!("GET /v1.41/containers/{what}/json HTTP/1.1\r\nHost: docker\r\n\r\n");
    let mut client = UnixStream::connect(&sock).unwrap();
    client.write_all(request("before-reuse").as_bytes()).unwrap();
    let a = l.expect("request on the captured connection", |a| {
        s(a, "event.action") == "docker-request"
            && s(a, "url.path").ends_with("/containers/before-reuse/json")
    });
    assert_eq!(get(&a, "process.pid").as_u64(), Some(me()), "{a}");
    // dup2 closes the connection and puts a file on its number in one step (no other
    // thread can take the number in between).
    let file = fs::File::create(l.path("unwatched/reused")).unwrap();
    let fd = client.as_raw_fd();
    assert_eq!(unsafe { libc::dup2(file.as_raw_fd(), fd) }, fd);
    std::mem::forget(client); // its descriptor is the file's now
    let mut reused = unsafe { fs::File::from_raw_fd(fd) };
    reused.write_all(request("after-reuse").as_bytes()).unwrap();
    drop(reused);
    l.fence();
    let leaked = l.monitor.matching(|a| s(a, "url.path").contains("after-reuse"));
    assert!(leaked.is_empty(), "a file write reported as a request: {leaked:?}");
}

/// Serialises tests that change the (process-wide) working directory.
static CWD: Mutex<()> = Mutex::new(());

#[test]
fn exec_of_a_watched_binary() {
    let Some(l) = live() else { return };
    let bin = l.path("bin/watched-true");
    assert!(Command::new(&bin).arg("e2e-direct").status().unwrap().success());
    assert!(Command::new(l.path("bin/link-true")).arg("e2e-link").status().unwrap().success());
    let src = l.source("-k e2e-exec");
    for arg in ["e2e-direct", "e2e-link"] {
        let a = l.expect(&format!("exec {arg}"), |x| {
            s(x, "event.action") == "exec"
                && get(x, "process.args").get(1).and_then(Value::as_str) == Some(arg)
        });
        check_common(&a, "e2e-exec", &src);
        assert_eq!(s(&a, "process.executable"), bin, "{a}");
        assert_eq!(s(&a, "file.path"), bin, "{a}");
        assert_eq!(get(&a, "process.parent.pid").as_u64(), Some(me()), "{a}");
        assert_eq!(s(&a, "process.parent.executable"), my_exe(), "{a}");
        assert_eq!(s(&a, "event.outcome"), "success", "{a}");
        assert_eq!(s(&a, "monitor.syscall.name"), "execve", "{a}");
    }
    // The kernel tells the calls apart from the task's registers, not from an entry stash:
    // an exec through a descriptor is an execveat, and a failed exec of the watched file
    // (the file untouched: argv unreadable) reports its path and error.
    let bin = bin.as_str();
    // The child's exec through `call` (its exit status `status`) alerts as `syscall`.
    let exec = |arg: &str, call: ExecCall, status: i32, syscall: &str| {
        let (pid, exited) = exec_child(bin, arg, call);
        assert_eq!(exited, status, "{call:?} of {bin}");
        let a = l.expect(&format!("{call:?}"), |x| {
            s(x, "event.action") == "exec" && get(x, "process.pid").as_u64() == Some(pid as u64)
        });
        check_common(&a, "e2e-exec", &src);
        assert_eq!(s(&a, "monitor.syscall.name"), syscall, "{a}");
        a
    };
    let a = exec("e2e-execveat", ExecCall::ExecveatFd, 0, "execveat");
    assert_eq!(s(&a, "process.executable"), bin, "{a}");
    assert_eq!(get(&a, "process.args").get(1).and_then(Value::as_str), Some("e2e-execveat"), "{a}");
    // The exec with a bad argv returned (127).
    let a = exec("e2e-efault", ExecCall::ExecveBadArgv, 127, "execve");
    assert_eq!(s(&a, "event.outcome"), "failure", "{a}");
    assert_eq!(get(&a, "monitor.syscall.return").as_i64(), Some(-14), "EFAULT: {a}");
    assert_eq!(s(&a, "file.path"), bin, "{a}");
    assert_eq!(get(&a, "monitor.syscall.args").get(1).and_then(Value::as_str), Some("0x8"), "{a}");
}

/// `process.entity_id` joins a process's lines: a shell started by this process writes a
/// watched file and then execs the watched binary (the same process, a new image); both
/// alerts carry the shell's id, and name this process's id as the parent's, which is the id
/// of this process's own alerts.
#[test]
fn entity_ids_join_a_process_its_exec_and_its_parent() {
    let Some(l) = live() else { return };
    let mine = l.path("watched/entity-mine");
    fs::write(&mine, "x").unwrap();
    let shells = l.path("watched/entity-shell");
    let script = format!("echo x > {shells} && exec {} e2e-entity", l.path("bin/watched-true"));
    assert!(Command::new("sh").arg("-c").arg(&script).status().unwrap().success());
    let me_alert = l.expect("this process's write", |x| s(x, "file.path") == mine);
    let write = l.expect("the shell's write", |x| s(x, "file.path") == shells);
    let exec = l.expect("the shell's exec", |x| {
        s(x, "event.action") == "exec"
            && get(x, "process.args").get(1).and_then(Value::as_str) == Some("e2e-entity")
    });
    let me_id = s(&me_alert, "process.entity_id");
    let shell_id = s(&write, "process.entity_id");
    assert_eq!(me_id.len(), 32, "{me_alert}");
    assert_eq!(shell_id.len(), 32, "{write}");
    assert_ne!(me_id, shell_id);
    assert_eq!(get(&write, "process.pid"), get(&exec, "process.pid"), "one process");
    assert_eq!(s(&exec, "process.entity_id"), shell_id, "an exec keeps the process's id: {exec}");
    for a in [&write, &exec] {
        assert_eq!(s(a, "process.parent.entity_id"), me_id, "{a}");
        assert_eq!(s(a, "monitor.process.ancestors.0.entity_id"), me_id, "{a}");
        assert_eq!(s(a, "process.start"), s(&write, "process.start"), "{a}");
    }
    assert!(!s(&exec, "process.start").is_empty(), "{exec}");
}

#[test]
fn setresuid_back_to_root_is_reported() {
    let Some(l) = live() else { return };
    // Drop to nobody keeping saved uid 0, then take root back: uid 65534 -> 0.
    let pid = setresuid_child(&[(65534, 65534, 0), (0, 0, 0)]);
    let a = l.expect("setresuid to 0", |x| {
        s(x, "event.action") == "setuid" && get(x, "process.pid").as_u64() == Some(pid as u64)
    });
    check_common(&a, "e2e-root", &l.source("-k e2e-root"));
    assert_eq!(s(&a, "monitor.syscall.name"), "setresuid", "{a}");
    assert_eq!(get(&a, "monitor.setid.before.uid").as_u64(), Some(65534), "{a}");
    assert_eq!(get(&a, "monitor.setid.before.euid").as_u64(), Some(65534), "{a}");
    assert_eq!(get(&a, "monitor.setid.after.uid").as_u64(), Some(0), "{a}");
    assert_eq!(get(&a, "monitor.setid.became_root").as_bool(), Some(true), "{a}");
    assert_eq!(get(&a, "process.parent.pid").as_u64(), Some(me()), "{a}");
    // Only the transition is reported, not the drop before it.
    l.fence();
    let from_child = l.monitor.matching(|x| get(x, "process.pid").as_u64() == Some(pid as u64));
    assert_eq!(from_child.len(), 1, "{from_child:?}");
}

#[test]
fn the_same_activity_elsewhere_is_silent() {
    let Some(l) = live() else { return };
    let root = l.root.display();
    // Files in an unwatched directory, relative and absolute.
    let u = l.path("unwatched/neg-a");
    fs::write(&u, "x").unwrap();
    fs::rename(&u, l.path("unwatched/neg-b")).unwrap();
    fs::set_permissions(l.path("unwatched/neg-b"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_file(l.path("unwatched/neg-b")).unwrap();
    sh(&format!(
        "cd {root}/unwatched && echo x > neg-c && mv neg-c ../unwatched/neg-d && rm neg-d"
    ));
    // A read of a file under a watch without `r`.
    fs::read(l.path("watched/readme")).unwrap();
    // A unix socket elsewhere.
    let other = l.path("other-sockets/neg-s");
    let _listener = UnixListener::bind(&other).unwrap();
    UnixStream::connect(&other).unwrap();
    // An unwatched copy of the watched binary.
    assert!(Command::new(l.path("bin/unwatched-true")).arg("e2e-neg").status().unwrap().success());
    // Privilege drops that never reach root.
    let child = setresuid_child(&[(65534, 65534, 65534)]);

    l.fence();
    let noise = l.monitor.matching(|x| {
        // Renames between the two directories are watched (see the shortcut test).
        let crosses = s(x, "file.path").contains("short-")
            || s(x, "monitor.file.new_path").contains("short-");
        !crosses && s(x, "file.path").contains("/unwatched/")
            || s(x, "file.path").contains("neg-")
            || s(x, "file.path").ends_with("/readme")
            || s(x, "destination.address").contains("other-sockets")
            || get(x, "process.args").get(1).and_then(Value::as_str) == Some("e2e-neg")
            || get(x, "process.pid").as_u64() == Some(child as u64)
    });
    assert!(noise.is_empty(), "alerts for unwatched activity: {noise:#?}");
}

#[test]
fn every_alert_line_follows_the_documented_schema() {
    let Some(l) = live() else { return };
    // Make sure there is something to check.
    fs::write(l.path("watched/schema"), "x").unwrap();
    l.fence();
    monitor_tests::check_schema(&l.monitor.all());
}

/// A burst of watched writes: every one is reported, in order, and the delay between the
/// syscall (`@timestamp`, kernel clock) and the line reaching a reader is printed. The figure
/// is an observation for the record, not a pass/fail threshold.
#[test]
fn a_burst_of_writes_is_reported_completely_and_in_order() {
    let Some(l) = live() else { return };
    const N: usize = 500;
    fs::create_dir_all(l.path("watched/burst")).unwrap();
    for i in 0..N {
        fs::write(l.path(&format!("watched/burst/{i}")), "x").unwrap();
    }
    let last = l.path(&format!("watched/burst/{}", N - 1));
    l.monitor.wait_for("last write of the burst", |x| s(x, "file.path") == last);
    let prefix = l.path("watched/burst/");
    let alerts = l.monitor.matching_alerts(|x| {
        s(x, "event.action") == "write" && s(x, "file.path").starts_with(&prefix)
    });
    let names: Vec<usize> =
        alerts.iter().map(|a| s(&a.json, "file.path")[prefix.len()..].parse().unwrap()).collect();
    assert_eq!(names, (0..N).collect::<Vec<_>>(), "every write once, in order");
    let lat_us: Vec<i128> = alerts.iter().map(latency_us).collect();
    report_latency(&format!("burst of {N} writes"), lat_us);

    // Isolated writes, 20 ms apart: the latency of one event on an idle pipeline.
    let mut single = Vec::new();
    for i in 0..20 {
        let f = l.path(&format!("watched/burst/single-{i}"));
        fs::write(&f, "x").unwrap();
        let a = l.monitor.wait_for("isolated write", |x| s(x, "file.path") == f);
        single.push(latency_us(&a));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    report_latency("isolated writes", single);
}

/// Microseconds from the syscall (`@timestamp`) to the line being read.
fn latency_us(a: &monitor_tests::Alert) -> i128 {
    let sent = timestamp_ns(s(&a.json, "@timestamp")).unwrap();
    let got = a.received_wall.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i128;
    (got - sent) / 1000
}

fn report_latency(what: &str, mut us: Vec<i128>) {
    us.sort();
    let pct = |p: usize| us[(us.len() - 1) * p / 100];
    eprintln!(
        "alert latency, {what} (syscall to line read): p50 {} us, p99 {} us, max {} us",
        pct(50),
        pct(99),
        pct(100)
    );
}
