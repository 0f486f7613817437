//! `monitor run --output ...` for real: the binary, real file writes under a watched
//! directory, the outputs read back. The monitor's readiness is its `monitor-start` record
//! in the file output (stdout is not an output here).

use super::{have_rsyslogd, Rsyslogd};
use monitor_tests::{die_with_parent, in_child, monitor_bin, privileged_turn, scratch_dir};
use serde_json::Value;
use std::ffi::CString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

/// One test's turn and its scratch directory, with `watched/` under a rules file that
/// watches it for writes.
struct Setup {
    _serial: MutexGuard<'static, ()>,
    dir: PathBuf,
    watched: PathBuf,
    rules: PathBuf,
}

/// The [`Setup`] of a privileged test (`None`: skip), in scratch directory `name`.
fn setup(name: &str) -> Option<Setup> {
    let serial = privileged_turn(&super::SERIAL)?;
    let dir = scratch_dir(name);
    let watched = dir.join("watched");
    std::fs::create_dir_all(&watched).unwrap();
    let rules = dir.join("burst.rules");
    std::fs::write(&rules, format!("-w {} -p wa -k burst\n", watched.display())).unwrap();
    Some(Setup { _serial: serial, dir, watched, rules })
}

/// `monitor run` arguments: `rules`, no heartbeat, every alert a line of its own (no
/// aggregation), an `--output` for each of `outputs`, then `extra`.
fn args(rules: &Path, outputs: &[&str], extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["--rules", &rules.display().to_string()]
        .into_iter()
        .chain(["--heartbeat", "0", "--aggregate-window", "0"])
        .map(String::from)
        .collect();
    for o in outputs {
        v.extend(["--output".to_string(), o.to_string()]);
    }
    v.extend(extra.iter().map(|e| e.to_string()));
    v
}

/// The `--output` naming a file.
fn file_output(path: &Path) -> String {
    format!("file:{}", path.display())
}

/// A running `monitor run` whose stdout and stderr go to files.
struct Running {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Running {
    /// Start `monitor run ARGS` and wait for the `monitor-start` record in `ready_file`.
    fn start(dir: &Path, args: &[String], ready_file: &Path) -> Running {
        let (stdout, stderr) = (dir.join("stdout"), dir.join("stderr"));
        let mut cmd = Command::new(monitor_bin());
        cmd.arg("run").args(args).env("RUST_LOG", "info").stdin(Stdio::null());
        cmd.stdout(std::fs::File::create(&stdout).unwrap());
        cmd.stderr(std::fs::File::create(&stderr).unwrap());
        die_with_parent(&mut cmd);
        let mut r = Running { child: cmd.spawn().expect("starting the monitor"), stdout, stderr };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let text = std::fs::read_to_string(ready_file).unwrap_or_default();
            if text.contains("\"monitor-start\"") {
                return r;
            }
            if let Some(status) = r.child.try_wait().unwrap() {
                panic!("monitor exited during start ({status}):\n{}", r.log());
            }
            assert!(Instant::now() < deadline, "not started:\n{}", r.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn signal(&self, sig: i32) {
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// SIGTERM, and the exit code; stdout must have stayed empty (not an output).
    fn stop(mut self) -> i32 {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(90);
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "the monitor did not stop:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = String::new();
        std::fs::File::open(&self.stdout).unwrap().read_to_string(&mut out).unwrap();
        assert!(out.is_empty(), "stdout is not an output here, yet: {out:.300}");
        status.code().unwrap_or(-1)
    }
}

/// Create `n` distinct files under `dir` from a child process (distinct alerts, none
/// aggregated); returns once it has exited.
fn create_files(dir: &Path, n: usize) {
    let names: Vec<CString> =
        (0..n).map(|i| CString::new(format!("{}/f{i}", dir.display())).unwrap()).collect();
    let (_, code) = in_child(|| {
        for name in &names {
            unsafe {
                let fd = libc::open(name.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o600);
                libc::close(fd);
            }
        }
        0
    });
    assert_eq!(code, 0);
}

/// Every line of `files` (oldest first), each parsed; panics on a line that is not JSON.
fn lines(files: &[PathBuf]) -> Vec<Value> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'), "{} ends inside a line", f.display());
        for l in text.lines() {
            out.push(
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", f.display())),
            );
        }
    }
    out
}

fn action(v: &Value) -> &str {
    v["event"]["action"].as_str().unwrap_or_default()
}

/// `event.sequence` runs 1..=n without a gap.
fn assert_gap_free(all: &[Value]) {
    let seq: Vec<u64> = all.iter().map(|v| v["event"]["sequence"].as_u64().unwrap()).collect();
    assert_eq!(seq, (1..=all.len() as u64).collect::<Vec<_>>(), "one gap-free sequence");
}

/// Alerts about files under `dir`.
fn alerts_under<'v>(all: &'v [Value], dir: &Path) -> Vec<&'v Value> {
    let prefix = format!("{}/", dir.display());
    all.iter()
        .filter(|v| {
            v["event"]["kind"] == "alert"
                && v["file"]["path"].as_str().is_some_and(|p| p.starts_with(&prefix))
        })
        .collect()
}

/// The stop record's kernel losses and the named output's (lines, lost).
fn stop_counts(all: &[Value], output: &str) -> (u64, (u64, u64)) {
    let stop = all.iter().rev().find(|v| action(v) == "monitor-stop").expect("a stop record");
    let outputs = stop["monitor"]["outputs"].as_array().expect("outputs in the stop record");
    let o = outputs
        .iter()
        .find(|o| o["name"] == output)
        .unwrap_or_else(|| panic!("{output} in {stop}"));
    (
        stop["monitor"]["lost"].as_u64().unwrap(),
        (o["lines"].as_u64().unwrap(), o["lost"].as_u64().unwrap()),
    )
}

#[test]
fn a_real_rsyslogd_and_a_file_output_each_receive_every_alert_of_a_burst() {
    if !have_rsyslogd() {
        return;
    }
    let Some(t) = setup("outputs-run-syslog") else { return };
    let logger_dir = t.dir.join("rsyslog");
    std::fs::create_dir_all(&logger_dir).unwrap();
    let logger = Rsyslogd::start(&logger_dir);
    let file = t.dir.join("alerts.json");
    let syslog_name = format!("syslog:unix:{}", logger.socket().display());
    let m =
        Running::start(&t.dir, &args(&t.rules, &[&file_output(&file), &syslog_name], &[]), &file);
    const N: usize = 3000;
    create_files(&t.watched, N);
    let monitor_log = m.stderr.clone();
    // Everything the kernel handed over is written before the stop record.
    assert_eq!(m.stop(), 0);
    let all = lines(std::slice::from_ref(&file));
    assert_gap_free(&all);
    let alerts = alerts_under(&all, &t.watched);
    let (kernel_lost, (_, file_lost)) = stop_counts(&all, &file_output(&file));
    let (_, (syslog_lines, syslog_lost)) = stop_counts(&all, &syslog_name);
    eprintln!("{N} files: {} alerts, {kernel_lost} lost in the kernel", alerts.len());
    assert!(
        alerts.len() <= N && alerts.len() as u64 + kernel_lost >= N as u64,
        "alerts + losses = events"
    );
    assert_eq!(
        (file_lost, syslog_lost),
        (0, 0),
        "no output lost a line; the monitor said:\n{}",
        std::fs::read_to_string(&monitor_log).unwrap_or_default()
    );
    // rsyslogd has every line the file has (the stop record written after the counts).
    let got = logger.wait_lines(all.len());
    assert_eq!(got.len(), all.len(), "rsyslogd wrote {} of {} lines", got.len(), all.len());
    assert_eq!(syslog_lines as usize, all.len() - 1, "the stop record counts the lines before it");
    for (line, want) in got.iter().zip(&all) {
        let f: Vec<&str> = line.splitn(8, '|').collect();
        assert_eq!(f[1], "1", "parsed as RFC 5424: {line}");
        assert_eq!((f[3], f[5]), ("monitor", action(want)), "{line}");
        let msg: Value = serde_json::from_str(f[7]).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(&msg, want, "the same JSON as the file's line");
    }
    logger.stop();
}

#[test]
fn a_30000_alert_burst_into_a_file_rotated_at_1_mib_is_complete_and_parses() {
    let Some(t) = setup("outputs-run-file") else { return };
    let file = t.dir.join("alerts.json");
    let rotation = ["--output-max-size", "1M", "--output-max-files", "500"];
    let m = Running::start(&t.dir, &args(&t.rules, &[&file_output(&file)], &rotation), &file);
    const N: usize = 30_000;
    let started = Instant::now();
    create_files(&t.watched, N);
    eprintln!("{N} files created in {:?}", started.elapsed());
    assert_eq!(m.stop(), 0);
    // Oldest first: PATH.k ... PATH.1, then PATH.
    let numbered = |k: usize| PathBuf::from(format!("{}.{k}", file.display()));
    let mut files: Vec<PathBuf> = (1..=500).rev().map(numbered).filter(|p| p.exists()).collect();
    files.push(file.clone());
    assert!(files.len() >= 2, "1 MiB rotation leaves several files: {files:?}");
    assert!(!numbered(500).exists(), "no rotated file was dropped");
    for f in &files {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len <= 1 << 20, "{} is {len} bytes", f.display());
    }
    let all = lines(&files);
    assert_gap_free(&all);
    assert_eq!(action(&all[0]), "monitor-start");
    let alerts = alerts_under(&all, &t.watched);
    let (kernel_lost, (lines_written, file_lost)) = stop_counts(&all, &file_output(&file));
    eprintln!(
        "{} files, {} lines, {} alerts, {kernel_lost} lost in the kernel, {file_lost} by the file",
        files.len(),
        all.len(),
        alerts.len()
    );
    assert_eq!(file_lost, 0);
    assert_eq!(lines_written as usize, all.len() - 1, "the stop record counts the lines before it");
    let rotations = all.last().unwrap()["monitor"]["outputs"][0]["rotations"].as_u64().unwrap();
    assert_eq!(rotations as usize, files.len() - 1);
    assert!(alerts.len() <= N, "{} alerts for {N} events", alerts.len());
    assert!(
        alerts.len() as u64 + kernel_lost >= N as u64,
        "alerts + counted losses = events: {} + {kernel_lost} < {N}",
        alerts.len()
    );
    let paths: std::collections::HashSet<&str> =
        alerts.iter().map(|a| a["file"]["path"].as_str().unwrap()).collect();
    assert_eq!(paths.len(), alerts.len(), "each file once");
}

#[test]
fn the_packaged_logrotate_example_rotates_a_live_file_output_and_sigusr1_reopens_it() {
    let Some(t) = setup("outputs-run-reopen") else { return };
    let (dir, w) = (&t.dir, &t.watched);
    let file = dir.join("alerts.json");
    // The monitor's own rotation off, as the example says.
    let no_rotation = ["--output-max-size", "0"];
    let m = Running::start(dir, &args(&t.rules, &[&file_output(&file)], &no_rotation), &file);
    let wait_for = |f: &Path, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(f).unwrap_or_default().contains(what) {
            assert!(Instant::now() < deadline, "{what} not in {}:\n{}", f.display(), m.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    std::fs::write(w.join("before"), "x").unwrap();
    wait_for(&file, "/before\"");

    // The shipped example with this file's path, and its postrotate signalling this
    // monitor (`systemctl kill` needs systemd as PID 1; the signal is the same).
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/logrotate"),
    )
    .unwrap();
    let systemctl = "systemctl kill --kill-whom=main --signal=USR1 monitor.service";
    assert!(example.contains(systemctl) && example.contains("/var/log/monitor/alerts.json {"));
    let conf = dir.join("logrotate.conf");
    std::fs::write(
        &conf,
        example
            .replace("/var/log/monitor/alerts.json", file.to_str().unwrap())
            .replace(systemctl, &format!("kill -USR1 {}", m.child.id())),
    )
    .unwrap();
    let out = Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(dir.join("logrotate.state"))
        .arg(&conf)
        .output()
        .expect("logrotate (cargo xtask setup --test-deps)");
    assert!(out.status.success(), "logrotate: {out:?}");
    // dateext: alerts.json-YYYYMMDD, not compressed yet (delaycompress).
    let rotated: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("alerts.json-"))
        .collect();
    assert_eq!(rotated.len(), 1, "{rotated:?}");
    wait_for(&file, "outputs-reopened");
    std::fs::write(w.join("after"), "x").unwrap();
    wait_for(&file, "/after\"");
    assert_eq!(m.stop(), 0);
    let old = lines(&rotated);
    let new = lines(std::slice::from_ref(&file));
    assert_eq!(action(&new[0]), "outputs-reopened", "the new file starts with the reopen");
    assert_eq!(new[0]["monitor"]["requested_by"]["relation"], "other", "{}", new[0]);
    let paths = |v: &[Value]| -> Vec<String> {
        v.iter().filter_map(|a| a["file"]["path"].as_str().map(String::from)).collect()
    };
    assert!(paths(&old).iter().any(|p| p.ends_with("/before")), "{old:?}");
    assert!(paths(&new).iter().any(|p| p.ends_with("/after")), "{new:?}");
    assert!(!paths(&old).iter().any(|p| p.ends_with("/after")));
    let mut both = old;
    both.extend(new);
    assert_gap_free(&both);
}

#[test]
fn a_replay_writes_the_same_lines_to_a_file_output_as_to_stdout() {
    let Some(t) = setup("outputs-replay") else { return };
    let (live, capture) = (t.dir.join("live.json"), t.dir.join("capture.bin"));
    let capturing = ["--capture", capture.to_str().unwrap()];
    let m = Running::start(&t.dir, &args(&t.rules, &[&file_output(&live)], &capturing), &live);
    create_files(&t.watched, 300);
    assert_eq!(m.stop(), 0);
    let replayed = t.dir.join("replayed.json");
    let o = Command::new(monitor_bin())
        .arg("replay")
        .arg(&capture)
        .arg("--rules")
        .arg(&t.rules)
        .args(["--aggregate-window", "0", "--output", "stdout", "--output"])
        .arg(file_output(&replayed))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let in_file = std::fs::read_to_string(&replayed).unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), in_file, "both outputs got every line");
    let file_alerts = alerts_under(&lines(std::slice::from_ref(&replayed)), &t.watched).len();
    let live_lines = lines(std::slice::from_ref(&live));
    let live_alerts = alerts_under(&live_lines, &t.watched).len();
    assert_eq!(file_alerts, live_alerts, "the live run's alerts again");
    assert!(file_alerts >= 300);
}

#[test]
fn an_output_that_fails_is_counted_and_reported_in_band_on_the_others() {
    let Some(t) = setup("outputs-failing") else { return };
    let good = t.dir.join("alerts.json");
    // /dev/full opens and refuses every write (ENOSPC): a full disk.
    let outputs = ["file:/dev/full", &file_output(&good)];
    let m = Running::start(&t.dir, &args(&t.rules, &outputs, &[]), &good);
    create_files(&t.watched, 200);
    // The loss is reported within a second, on the output that works.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&good).unwrap().contains("\"output-lost\"") {
        assert!(Instant::now() < deadline, "no output-lost record:\n{}", m.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(m.log().contains("line lost"), "logged on stderr:\n{}", m.log());
    assert_eq!(m.stop(), 0);
    let all = lines(std::slice::from_ref(&good));
    assert_gap_free(&all);
    assert_eq!(alerts_under(&all, &t.watched).len(), 200, "the other output has every alert");
    let reports: Vec<&Value> = all.iter().filter(|v| action(v) == "output-lost").collect();
    let mut total = 0;
    for r in &reports {
        let o = &r["monitor"]["output"];
        assert_eq!(o["name"], "file:/dev/full", "{r}");
        total += o["lost"].as_u64().unwrap();
        assert_eq!(o["lost_total"].as_u64(), Some(total), "{r}");
        assert!(r["event"]["start"].is_string(), "{r}");
    }
    let (_, (lines_full, lost_full)) = stop_counts(&all, "file:/dev/full");
    assert_eq!(lines_full, 0);
    assert_eq!(lost_full as usize, all.len() - 1, "every line before the stop record, counted");
    // All but the last report's own line, lost after it was counted.
    assert_eq!(total + 1, lost_full, "every loss reported before the stop record");
}
