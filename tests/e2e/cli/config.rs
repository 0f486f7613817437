//! The settings file (`--config`, default /etc/monitor/monitor.toml): `monitor config
//! check` and `show` as a user reads them, `monitor run` following the file (rules and
//! outputs) with a flag winning over its key, and a file with an unknown key or a bad value
//! stopping `monitor run` with `file:line:col` and exit 6 before anything starts.

use monitor_tests::{monitor_bin, privileged, s, scratch_dir, Monitor};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn monitor(args: &[&str]) -> Output {
    Command::new(monitor_bin()).args(args).output().expect("running monitor")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A scratch directory with a watched directory, a rules file for it and a settings file
/// (`body` after the rules key) beside them.
fn setup(name: &str, body: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = scratch_dir(name);
    let watched = dir.join("watched");
    std::fs::create_dir_all(&watched).unwrap();
    std::fs::write(dir.join("t.rules"), format!("-w {} -p wa -k cfg\n", watched.display()))
        .unwrap();
    let file = dir.join("monitor.toml");
    // Relative paths are the file's directory's.
    std::fs::write(&file, format!("rules = [\"t.rules\"]\n{body}")).unwrap();
    (dir, watched, file)
}

#[test]
fn config_check_and_show_say_what_monitor_run_would_use() {
    let (dir, _, file) = setup(
        "config-show",
        "heartbeat = 5\n\n[output]\ntargets = [\"file:alerts.json\", \"syslog\"]\nmax_size = \"2M\"\n",
    );
    let f = file.to_str().unwrap();
    let o = monitor(&["config", "check", "--config", f]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        format!("{f}: 1 rules in 1 file(s), 0 warning(s)\n{f}: valid, 4 key(s) set\n")
    );

    let o = monitor(&["config", "show", "--config", f, "--heartbeat", "9", "--audit-trail"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let shown = text(&o.stdout);
    for line in [
        format!("rules = [\"{}/t.rules\"]", dir.display()),
        "heartbeat = 9".into(),
        "audit_trail = true".into(),
        "source = \"ebpf\"".into(),
        "[aggregate]".into(),
        "window = 10".into(),
        format!("targets = [\"file:{}/alerts.json\", \"syslog\"]", dir.display()),
        "max_size = \"2M\"".into(),
        "max_files = 10".into(),
        "syslog_facility = \"authpriv\"".into(),
    ] {
        assert!(shown.lines().any(|l| l == line), "`{line}` not in:\n{shown}");
    }
    // What `show` prints is a settings file that checks.
    let again = dir.join("shown.toml");
    std::fs::write(&again, &shown).unwrap();
    let o = monitor(&["config", "check", "--config", again.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{shown}\n{}", text(&o.stderr));
}

#[test]
fn config_check_names_the_line_and_column_of_each_mistake() {
    for (name, body, at, says) in [
        (
            "config-key",
            "heartbeat = 5\n[output]\ncolour = \"red\"\n",
            "4:1",
            "unknown field `colour`",
        ),
        (
            "config-value",
            "heartbeat = 5\n[output]\ntargets = [\"stdout\", \"tcp:siem:514\"]\n",
            "4:22",
            "unknown output \"tcp:siem:514\"",
        ),
        ("config-type", "heartbeat = \"often\"\n", "2:13", "invalid type: string \"often\""),
    ] {
        let (_, _, file) = setup(name, body);
        let f = file.to_str().unwrap();
        let o = monitor(&["config", "check", "--config", f]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(6), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.starts_with(&format!("monitor: {f}:{at}: {says}")), "{err}");
        assert!(o.stdout.is_empty());
    }
    let o = monitor(&["config", "check", "--config", "/nonexistent/monitor.toml"]);
    assert_eq!(o.status.code(), Some(6));
    assert!(text(&o.stderr).contains("/nonexistent/monitor.toml: cannot read"), "{o:?}");
}

#[test]
fn an_invalid_settings_file_stops_monitor_run_before_anything_starts() {
    if !privileged() {
        return;
    }
    for (name, body, at) in [
        ("run-config-key", "hearbeat = 5\n", "2:1"),
        ("run-config-value", "[output]\nmax_size = \"lots\"\n", "3:12"),
    ] {
        let (_, _, file) = setup(name, body);
        let started = Instant::now();
        let o = monitor(&["run", "--config", file.to_str().unwrap()]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(6), "{err}");
        assert!(err.contains(&format!("{}:{at}: ", file.display())), "{err}");
        assert!(!err.contains("monitor running"), "nothing started: {err}");
        assert!(o.stdout.is_empty(), "no monitor-start record: {}", text(&o.stdout));
        assert!(started.elapsed() < Duration::from_secs(5), "refused before loading anything");
    }
    let o = monitor(&["run", "--config", "/nonexistent/monitor.toml"]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty());
    // A valid file whose output cannot be opened: a runtime error, before the sensors load.
    let (_, _, file) =
        setup("run-config-open", "[output]\ntargets = [\"file:/nonexistent-dir/a.json\"]\n");
    let o = monitor(&["run", "--config", file.to_str().unwrap()]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("monitor: opening an output: /nonexistent-dir/a.json: open: "), "{err}");
    assert!(!err.contains("monitor running") && o.stdout.is_empty(), "{err}");
}

/// Wait until `file` holds `what`.
fn wait_in(file: &Path, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !std::fs::read_to_string(file).unwrap_or_default().contains(what) {
        assert!(
            Instant::now() < deadline,
            "{what} not in {}:\n{}",
            file.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn monitor_run_follows_its_settings_file_and_a_flag_wins_over_a_key() {
    if !privileged() {
        return;
    }
    let (dir, watched, file) =
        setup("config-run", "heartbeat = 0\n[output]\ntargets = [\"file:alerts.json\"]\n");
    let alerts = dir.join("alerts.json");
    let log = dir.join("stderr");
    // The file's rules and output: alerts in the file, nothing on stdout.
    let mut cmd = Command::new(monitor_bin());
    cmd.args(["run", "--config"]).arg(&file).stdin(Stdio::null());
    cmd.stdout(Stdio::piped()).stderr(std::fs::File::create(&log).unwrap());
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    wait_in(&alerts, "\"monitor-start\"", &log);
    let first = watched.join("first");
    std::fs::write(&first, "x").unwrap();
    wait_in(&alerts, &format!("\"{}\"", first.display()), &log);
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(out.is_empty(), "stdout is not an output: {out:.200}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("settings read") && logged.contains("overridden_by_flags=[]"),
        "{logged}"
    );
    let start = std::fs::read_to_string(&alerts).unwrap();
    assert!(
        start.contains("\"monitor-start\"") && !start.contains("heartbeat_s"),
        "heartbeat = 0 honoured: {start:.400}"
    );

    // --output wins over output.targets: alerts on stdout, the file untouched; the rules
    // still come from the file.
    let before = std::fs::metadata(&alerts).unwrap().len();
    let m = Monitor::start_args(&[], &["--config", file.to_str().unwrap(), "--output", "stdout"]);
    let second = watched.join("second");
    std::fs::write(&second, "x").unwrap();
    let a = m.wait_for("the write", |a| s(a, "file.path") == second.to_str().unwrap());
    assert_eq!(s(&a.json, "rule.id"), "cfg");
    assert_eq!(m.stop(libc::SIGTERM), "exit status: 0");
    assert_eq!(std::fs::metadata(&alerts).unwrap().len(), before, "the file is not an output now");
    let logged = m.stderr().join("\n");
    assert!(logged.contains("overridden_by_flags=[\"output.targets\"]"), "{logged}");
}
