//! The outputs against real components. Through the real `monitor run --output ...`: a
//! real rsyslogd, started here on its own socket with its own configuration (never the
//! host's logger), and a file output both receive every alert of a burst; a 30 000-alert
//! burst into a file rotated at 1 MiB leaves several files in which every line parses, and
//! alerts + counted losses = events; the real logrotate with the packaged example renames
//! a live file output and its postrotate SIGUSR1 reopens it, nothing lost.
//! Through the sinks' library API (`monitor::sink`): each RFC 5424 message field by field,
//! recovery after the logger restarts, and rotation boundaries at 30 000 lines.

#[path = "outputs/run.rs"]
mod run;

use monitor::sink::file::RotatingFile;
use monitor::sink::line::{LineSink, SinkError};
use monitor::sink::syslog::{Syslog, SyslogConfig};
use monitor_tests::scratch_dir;
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Every test here loads the machine with a burst, and a logger or a reader starved by a
/// neighbour's burst loses lines for reasons not under test: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// This binary's turn (see [`SERIAL`]).
fn turn() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// An alert-like line: sequence number, the fields the syslog sink reads, and strings that
/// need JSON escapes or are not ASCII, padded to a length that varies with `n`.
fn alert(n: u64) -> String {
    let actions = ["exec", "write", "connect", "docker-request", "setuid"];
    let severity = [0, 21, 47, 73, 99][n as usize % 5];
    json!({
        "@timestamp": "2026-12-06T10:00:00.000000000Z",
        "event": {"kind": "alert", "action": actions[n as usize % actions.len()], "severity": severity, "sequence": n},
        "process": {"args": ["sh", "-c", "echo \"quoted\" \\ back\u{1}slash", "café ✓"]},
        "file": {"path": format!("/etc/docker/{}", "x".repeat((n % 300) as usize))},
    })
    .to_string()
}

/// rsyslogd in the foreground with a private configuration: imuxsock on `dir/log.sock`
/// (RFC 5424 parser, no rate limit), every message's parsed fields to `dir/out.log`.
struct Rsyslogd {
    dir: PathBuf,
    child: Child,
}

impl Rsyslogd {
    fn start(dir: &Path) -> Rsyslogd {
        let conf = dir.join("rsyslog.conf");
        let sock = dir.join("log.sock");
        let _ = std::fs::remove_file(&sock);
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{dir}" maxMessageSize="64k")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{dir}/log.sock" UseSpecialParser="off" RateLimit.Interval="0")
template(name="fields" type="string" string="%pri%|%protocol-version%|%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\n")
if $app-name == "ready-probe" then {{
  action(type="omfile" file="{dir}/ready.log")
  stop
}}
action(type="omfile" file="{dir}/out.log" template="fields")
"#,
                dir = dir.display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new(RSYSLOGD);
        cmd.args(["-n", "-f"]).arg(&conf).arg("-i").arg(dir.join("rsyslogd.pid"));
        cmd.stdin(Stdio::null());
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("starting rsyslogd");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "rsyslogd made no socket at {}", sock.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        // Its socket exists before it reads it: ready once a probe message (kept out of
        // out.log) has come through.
        let ready = dir.join("ready.log");
        let _ = std::fs::remove_file(&ready);
        let probe = std::os::unix::net::UnixDatagram::unbound().unwrap();
        while std::fs::metadata(&ready).map_or(true, |m| m.len() == 0) {
            assert!(Instant::now() < deadline, "rsyslogd wrote no probe to {}", ready.display());
            let _ = probe.send_to(b"<14>1 - - ready-probe - - - ready", &sock);
            std::thread::sleep(Duration::from_millis(50));
        }
        Rsyslogd { dir: dir.to_path_buf(), child }
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("log.sock")
    }

    /// The lines rsyslogd wrote, once there are `n` of them (or the timeout).
    fn wait_lines(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(self.dir.join("out.log")).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(String::from).collect();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn have_rsyslogd() -> bool {
    if Path::new(RSYSLOGD).exists() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{RSYSLOGD} is missing: `cargo xtask setup --test-deps` installs rsyslog");
    }
    eprintln!("SKIPPED: {RSYSLOGD} is missing (cargo xtask setup --test-deps)");
    false
}

#[test]
fn rsyslogd_receives_every_alert_of_a_burst_as_rfc5424_with_the_json_intact() {
    if !have_rsyslogd() {
        return;
    }
    let _turn = turn();
    let dir = scratch_dir("outputs-syslog");
    let logger = Rsyslogd::start(&dir);
    let mut sink = Syslog::open(SyslogConfig {
        hostname: "test-host".into(),
        ..SyslogConfig::new(logger.socket())
    })
    .unwrap();
    const N: u64 = 5000;
    let sent: Vec<String> = (0..N).map(alert).collect();
    for line in &sent {
        sink.write_line(line.as_bytes()).unwrap_or_else(|e| panic!("sending: {e}"));
    }
    assert_eq!(sink.stats().lines, N);
    assert_eq!(sink.stats().lost, 0);

    let got = logger.wait_lines(N as usize);
    assert_eq!(got.len(), N as usize, "rsyslogd wrote {} of {N} messages", got.len());
    let pid = std::process::id().to_string();
    for (line, want) in got.iter().zip(&sent) {
        let f: Vec<&str> = line.splitn(8, '|').collect();
        let alert: Value = serde_json::from_str(want).unwrap();
        // authpriv (10) * 8 + the severity for event.severity 99/73/47/else.
        let severity = match alert["event"]["severity"].as_u64() {
            Some(99) => 2,
            Some(73) => 3,
            Some(47) => 4,
            _ => 5,
        };
        assert_eq!(f[0], (80 + severity).to_string(), "PRI of {line}");
        assert_eq!(f[1], "1", "parsed as RFC 5424: {line}");
        assert_eq!(
            &f[2..7],
            ["test-host", "monitor", &pid, alert["event"]["action"].as_str().unwrap(), "-"],
            "{line}"
        );
        assert_eq!(f[7], want.as_str(), "the JSON arrives byte for byte");
        let parsed: Value = serde_json::from_str(f[7]).unwrap();
        assert_eq!(parsed, alert);
    }

    // The logger goes away: lines are lost and counted as such, never waited for; once it
    // is back, the sink reconnects by itself after its retry delay.
    logger.stop();
    let e = sink.write_line(alert(N).as_bytes()).unwrap_err();
    assert!(matches!(e, SinkError::Unavailable { .. }), "{e:?}");
    let logger = Rsyslogd::start(&dir);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut extra = N + 1;
    loop {
        match sink.write_line(alert(extra).as_bytes()) {
            Ok(()) => break,
            Err(SinkError::Unavailable { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("not back after restart: {e}"),
        }
        extra += 1;
    }
    let got = logger.wait_lines(N as usize + 1);
    assert!(got.last().unwrap().ends_with(&alert(extra)), "{:?}", got.last());
    assert_eq!(sink.stats().lines, N + 1);
    assert_eq!(sink.stats().lost, extra - N, "every line before the reconnect is counted lost");
    logger.stop();
}

#[test]
fn a_30000_line_burst_rotates_at_1_mib_without_splitting_or_losing_a_line() {
    let _turn = turn();
    let dir = scratch_dir("outputs-file");
    let path = dir.join("alerts.json");
    const N: u64 = 30_000;
    const MAX: u64 = 1 << 20;
    let mut sink = RotatingFile::open(&path, MAX, 20).unwrap();
    let mut bytes = 0;
    for n in 0..N {
        let line = alert(n);
        bytes += line.len() as u64 + 1;
        sink.write_line(line.as_bytes()).unwrap();
    }
    sink.sync().unwrap();
    let stats = sink.stats();
    assert_eq!((stats.lines, stats.lost, stats.bytes), (N, 0, bytes));
    // Oldest first: PATH.k ... PATH.1, then PATH.
    let mut files: Vec<PathBuf> =
        (1..=20).rev().map(|k| sink.rotated_path(k)).filter(|p| p.exists()).collect();
    files.push(path.clone());
    assert!(files.len() >= 2, "{bytes} bytes at 1 MiB a file: {files:?}");
    assert_eq!(stats.rotations as usize, files.len() - 1);
    let mut next = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.len() as u64 <= MAX, "{} is {} bytes", f.display(), text.len());
        assert!(text.ends_with('\n'), "{} ends with a whole line", f.display());
        for line in text.lines() {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: {e}: {line}", f.display()));
            assert_eq!(v["event"]["sequence"], next, "in order, none missing");
            next += 1;
        }
    }
    assert_eq!(next, N);
}
