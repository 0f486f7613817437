//! The monitor as the bench runs it, and what the bench reads about any daemon's process:
//! CPU time, resident memory, children.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub fn monitor_bin() -> PathBuf {
    crate::util::workspace_root().join("target/release/monitor")
}

/// A running monitor (stdout to /dev/null, or piped).
pub struct Monitor {
    pub child: Child,
    /// The `lost=` of the monitor's stop line on stderr, once it has stopped.
    stop_line: std::thread::JoinHandle<Option<u64>>,
}

impl Monitor {
    /// `monitor run --heartbeat 0` with `args` added (the bench's `--ring-buffer-size`, extra
    /// rules).
    pub fn start(args: &[String], piped: bool) -> Result<Monitor> {
        let mut cmd = Command::new(monitor_bin());
        cmd.args(["run", "--heartbeat", "0"]).args(args).stderr(Stdio::piped());
        cmd.stdout(if piped { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().context("starting the monitor (cargo xtask build first)")?;
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let mut log = Vec::new();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("monitor running") => break,
                Some(Ok(l)) => log.push(l),
                _ => {
                    let _ = child.wait();
                    bail!("the monitor exited during start: {}", log.join("\n"));
                }
            }
        }
        // Keep draining its log so that it never blocks on stderr, and keep what its stop
        // line says was lost in the kernel.
        let stop_line = std::thread::spawn(move || {
            lines.map_while(Result::ok).filter(|l| l.contains("monitor stopped")).find_map(|l| {
                l.split_whitespace().find_map(|w| w.strip_prefix("lost=")?.parse().ok())
            })
        });
        Ok(Monitor { child, stop_line })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stop the monitor (SIGTERM); the events it counted lost in the kernel over its run,
    /// from its stop line (none when it had stopped on its own, its only output closed).
    pub fn stop(mut self) -> Result<Option<u64>> {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait()?;
        Ok(self.stop_line.join().ok().flatten())
    }
}

/// The `alerts-suppressed` count of a record, when it is one: how many alerts identical to
/// the one it describes the monitor left out (rate-based aggregation), each an event that
/// matched. `None` for any other record.
pub fn suppressed_count(record: &Value) -> Option<u64> {
    (record["event"]["action"] == "alerts-suppressed")
        .then(|| record["monitor"]["suppressed"]["count"].as_u64().unwrap_or(0))
}

/// The rule key a line of the monitor is about (docs/alert-schema.md): an alert's `rule.id`,
/// an `alerts-suppressed` record's `monitor.suppressed.about.rule.key`.
pub fn rule_key(record: &Value) -> Option<&str> {
    match suppressed_count(record) {
        Some(_) => record["monitor"]["suppressed"]["about"]["rule"]["key"].as_str(),
        None => record["rule"]["id"].as_str(),
    }
}

/// How many matching events one output line of the monitor stands for: 1 for an alert that
/// `wanted` accepts, an `alerts-suppressed` record's count when `wanted` accepts it (it
/// carries the fields of the alert it aggregates), else 0.
pub fn events_in(record: &Value, wanted: impl Fn(&Value) -> bool) -> u64 {
    match suppressed_count(record) {
        Some(n) if wanted(record) => n,
        Some(_) => 0,
        None => (record["event"]["kind"] == "alert" && wanted(record)) as u64,
    }
}

/// user+sys CPU seconds of a process so far (0 when it is gone).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the comm's closing parenthesis: utime is the 14th field overall.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / clock_ticks()
}

pub fn clock_ticks() -> f64 {
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

/// A `kB` line of /proc/PID/status (`VmHWM`, `VmRSS`).
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The highest resident memory of a process so far.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM")
}

/// The pids whose parent is `pid` (auditd's plugins).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            rest.split_whitespace().nth(1).and_then(|pp| pp.parse::<u32>().ok()) == Some(pid)
        })
        .collect()
}

/// The kernel thread that hands audit records to auditd (`kauditd`), if running.
pub fn kauditd() -> Option<u32> {
    let dir = std::fs::read_dir("/proc").ok()?;
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()).find(|p| {
        std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "kauditd")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn suppressed_alerts_count_as_the_events_they_stand_for() {
        let exec = |r: &Value| rule_key(r) == Some("exec");
        // Abridged from the monitor's lines (docs/alert-schema.md).
        let alert = json!({"event": {"kind": "alert", "action": "exec"}, "rule": {"id": "exec", "name": "exec"}});
        let other =
            json!({"event": {"kind": "alert", "action": "write"}, "rule": {"id": "docker-config"}});
        let suppressed = json!({"event": {"kind": "metric", "action": "alerts-suppressed"}, "monitor": {"suppressed": {"count": 41, "of_sequence": 7, "about": {"rule": {"key": "exec", "source": "x.rules:1"}, "process": {"pid": 9}, "action": "exec"}}}});
        let stop =
            json!({"event": {"kind": "metric", "action": "monitor-stop"}, "monitor": {"lost": 0}});
        assert_eq!(events_in(&alert, exec), 1);
        assert_eq!(events_in(&other, exec), 0);
        assert_eq!(events_in(&suppressed, exec), 41);
        assert_eq!(events_in(&suppressed, |_| false), 0);
        assert_eq!(events_in(&stop, |_| true), 0);
        assert_eq!(suppressed_count(&alert), None);
    }

    #[test]
    fn a_process_reads_its_own_cpu_memory_and_children() {
        let me = std::process::id();
        assert!(peak_rss_kib(me).is_some_and(|k| k > 0));
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        assert!(children(me).contains(&child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
        let spin = std::time::Instant::now();
        while spin.elapsed().as_millis() < 50 {}
        assert!(cpu_seconds(me) > 0.0);
        assert_eq!(cpu_seconds(u32::MAX), 0.0);
    }
}
