//! The paced exec scenario: `/bin/true` at a fixed rate for a fixed time with an exec rule on
//! every side (`-a always,exit -F arch=b64 -S execve -k exec` added to the default pack), per
//! configuration: nothing (the idle base), the monitor, auditd, auditd + laurel.
//!
//! Per run: the exec rate the generator reached, the records the configuration produced for
//! its execs (every exec accounted for), the daemon's CPU and the whole host's CPU
//! (/proc/stat): the kernel-side cost of hooks and audit is charged to the exec'ing tasks,
//! so the daemon's own CPU alone would flatter whoever does its work in the kernel. Both CPU
//! figures run from the generator's start until the daemon has written its last record (a
//! daemon that falls behind pays for catching up), and are given per second of the run, in
//! % of one core.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::audit::Audit;
use super::daemons::{self, Monitor};
use super::workload;

/// The rule every side gets for this scenario.
pub const EXEC_RULE: &str = "-a always,exit -F arch=b64 -S execve -k exec";
const KEY: &str = "exec";
/// The configurations, in the order they run.
pub const CONFIGS: &[&str] = &["base", "monitor", "auditd", "auditd+laurel"];
/// A daemon whose output has not grown for this long has written everything.
const QUIET: Duration = Duration::from_secs(1);
/// Longest wait for a daemon to catch up after the run.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// One run of one configuration.
#[derive(Clone, Copy, Debug, Default)]
pub struct Run {
    /// Execs done, and the seconds the generator took for them.
    pub execs: u64,
    pub seconds: f64,
    /// Records for the generator's execs (none for the base).
    pub records: Option<u64>,
    /// CPU seconds of the daemon (monitor; auditd, its plugins and kauditd).
    pub daemon_cpu_s: f64,
    /// Busy CPU seconds of the whole host.
    pub host_cpu_s: f64,
    /// Peak resident KiB of the daemon (auditd and its plugins summed), none for the base.
    pub peak_rss_kib: Option<u64>,
}

impl Run {
    pub fn reached(&self) -> f64 {
        self.execs as f64 / self.seconds
    }
    pub fn daemon_pct(&self) -> f64 {
        self.daemon_cpu_s / self.seconds * 100.0
    }
    pub fn host_pct(&self) -> f64 {
        self.host_cpu_s / self.seconds * 100.0
    }
}

/// Busy and total CPU seconds of the host so far, all cores (/proc/stat's `cpu` line; idle
/// and iowait are not busy).
pub fn host_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: f64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).unwrap_or(&0.0) + ticks.get(4).unwrap_or(&0.0);
    ((total - idle) / daemons::clock_ticks(), total / daemons::clock_ticks())
}

/// The daemon under test.
enum Daemon {
    None,
    /// The monitor, and its exec alerts counted by parent pid as they stream.
    Monitor {
        monitor: Monitor,
        by_parent: Arc<Mutex<HashMap<u64, u64>>>,
        seen: Arc<AtomicU64>,
    },
    Audit(Audit),
}

impl Daemon {
    fn start(config: &str, monitor_args: &[String], laurel: &Path) -> Result<Daemon> {
        let pack = || -> Result<String> {
            Ok(format!("{}\n{EXEC_RULE}\n", super::audit::exported_pack()?))
        };
        Ok(match config {
            "base" => Daemon::None,
            "monitor" => {
                let rules = std::env::temp_dir().join("monitor-bench-exec.rules");
                std::fs::write(&rules, format!("{EXEC_RULE}\n"))?;
                let pack_dir = crate::util::workspace_root().join("rules");
                let mut args: Vec<String> = vec![
                    "--rules".into(),
                    pack_dir.display().to_string(),
                    "--rules".into(),
                    rules.display().to_string(),
                ];
                args.extend(monitor_args.iter().cloned());
                let mut monitor = Monitor::start(&args, true)?;
                let stdout = monitor.child.stdout.take().context("the monitor's stdout")?;
                let by_parent: Arc<Mutex<HashMap<u64, u64>>> = Default::default();
                let seen = Arc::new(AtomicU64::new(0));
                let (counts, total) = (by_parent.clone(), seen.clone());
                std::thread::spawn(move || {
                    for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                        if !line.contains(KEY) {
                            continue;
                        }
                        let Ok(v) = serde_json::from_str::<Value>(&line) else {
                            continue;
                        };
                        let n = daemons::events_in(&v, |r| daemons::rule_key(r) == Some(KEY));
                        if n > 0 {
                            let parent = v["process"]["parent"]["pid"].as_u64().unwrap_or(0);
                            *counts.lock().unwrap().entry(parent).or_default() += n;
                            total.fetch_add(n, Ordering::Relaxed);
                        }
                    }
                });
                Daemon::Monitor { monitor, by_parent, seen }
            }
            "auditd" => Daemon::Audit(Audit::start(&pack()?, None)?),
            "auditd+laurel" => Daemon::Audit(Audit::start(&pack()?, Some(laurel))?),
            other => bail!("unknown configuration {other}"),
        })
    }

    fn cpu_seconds(&self) -> f64 {
        match self {
            Daemon::None => 0.0,
            Daemon::Monitor { monitor, .. } => daemons::cpu_seconds(monitor.pid()),
            Daemon::Audit(a) => a.cpu_seconds(),
        }
    }

    /// A figure that grows while the daemon still writes records.
    fn progress(&self) -> u64 {
        match self {
            Daemon::None => 0,
            Daemon::Monitor { seen, .. } => seen.load(Ordering::Relaxed),
            Daemon::Audit(a) => a.output_len(),
        }
    }

    fn records(&self, parent: u32) -> Result<Option<u64>> {
        Ok(match self {
            Daemon::None => None,
            Daemon::Monitor { by_parent, .. } => {
                Some(by_parent.lock().unwrap().get(&(parent as u64)).copied().unwrap_or(0))
            }
            Daemon::Audit(a) => Some(a.exec_records(KEY, parent)?),
        })
    }

    fn peak_rss_kib(&self) -> Option<u64> {
        match self {
            Daemon::None => None,
            Daemon::Monitor { monitor, .. } => daemons::peak_rss_kib(monitor.pid()),
            Daemon::Audit(a) => Some(a.peak_rss_kib()),
        }
    }

    fn stop(self) -> Result<()> {
        match self {
            Daemon::Monitor { monitor, .. } => monitor.stop().map(drop),
            Daemon::None | Daemon::Audit(_) => Ok(()),
        }
    }
}

/// One run of `config`: `rate` execs a second for `seconds`.
pub fn run(
    config: &str,
    rate: u64,
    seconds: u64,
    monitor_args: &[String],
    laurel: &Path,
) -> Result<Run> {
    let daemon = Daemon::start(config, monitor_args, laurel)?;
    let result = measure(&daemon, rate, seconds);
    daemon.stop()?;
    result
}

fn measure(daemon: &Daemon, rate: u64, seconds: u64) -> Result<Run> {
    let mut cmd = workload::command(workload::PACED_EXEC, rate * seconds)?;
    cmd.args(["--rate", &rate.to_string()]).stdout(std::process::Stdio::piped());
    let (host0, cpu0) = (host_cpu().0, daemon.cpu_seconds());
    let child = cmd.spawn().context("starting the exec generator")?;
    let parent = child.id();
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("the exec generator failed: {}", out.status);
    }
    let report = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        report
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse::<f64>().ok())
    };
    let (execs, took) = (
        field("events").context("the generator's events")?,
        field("seconds").context("the generator's seconds")?,
    );
    // Until the daemon's output stops growing: the readings at its last change.
    let mut last = (daemon.progress(), host_cpu().0, daemon.cpu_seconds());
    let (mut changed, waited) = (Instant::now(), Instant::now());
    while changed.elapsed() < QUIET
        && waited.elapsed() < DRAIN_LIMIT
        && !matches!(daemon, Daemon::None)
    {
        std::thread::sleep(Duration::from_millis(100));
        let now = daemon.progress();
        if now != last.0 {
            last = (now, host_cpu().0, daemon.cpu_seconds());
            changed = Instant::now();
        }
    }
    let records = daemon.records(parent)?;
    if records == Some(0) && execs > 0.0 {
        // Every configuration records every exec: none counted means the bench no longer
        // reads what the daemon writes.
        bail!("paced exec: {execs} execs and no record of them counted");
    }
    Ok(Run {
        execs: execs as u64,
        seconds: took,
        records,
        daemon_cpu_s: last.2 - cpu0,
        host_cpu_s: last.1 - host0,
        peak_rss_kib: daemon.peak_rss_kib(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_cpu_moves_forward_and_busy_stays_below_total() {
        let (busy0, total0) = host_cpu();
        let spin = Instant::now();
        while spin.elapsed() < Duration::from_millis(100) {}
        let (busy1, total1) = host_cpu();
        assert!(total1 > total0 && busy1 > busy0, "{busy0} {total0} -> {busy1} {total1}");
        assert!(busy1 <= total1);
    }
}
