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
use std::path::Path;
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
    /// CPU seconds of the generator and every exec it ran (their kernel time includes the
    /// hooks' and audit's share) plus the daemon's: the same cost as the whole host's,
    /// from the scheduler's per-task clocks instead of /proc/stat's ticks, without the
    /// rest of the host's activity.
    pub work_cpu_s: f64,
    /// Seconds the monitor's BPF programs ran over the same span as the CPU figures, fired
    /// by whichever task (the execs, nearly all of it; the bench's polling and the daemon
    /// too); kernel.bpf_stats_enabled on for its runs, none for the other configurations.
    pub hooks_cpu_s: Option<f64>,
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
    pub fn work_pct(&self) -> f64 {
        self.work_cpu_s / self.seconds * 100.0
    }
    /// The daemon's CPU and its programs' together (the monitor's runs only): a lower bound
    /// of its cost, without what being hooked at all costs (the bench's empty-hooks mode).
    pub fn attributed_pct(&self) -> Option<f64> {
        Some((self.daemon_cpu_s + self.hooks_cpu_s?) / self.seconds * 100.0)
    }
    /// Microseconds in the monitor's programs per exec.
    pub fn hooks_us_per_exec(&self) -> Option<f64> {
        Some(self.hooks_cpu_s? * 1e6 / self.execs.max(1) as f64)
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

/// User and system CPU seconds of this process's children that have been waited for
/// (getrusage(2) RUSAGE_CHILDREN: a reaped child counts with everything it reaped).
fn children_cpu() -> f64 {
    // SAFETY: getrusage writes one `rusage` into the zeroed value it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The daemon under test.
enum Daemon {
    None,
    /// The monitor, writing its alerts to a file that is counted after the run (as auditd's
    /// log and laurel's are: the bench reading a pipe as it fills would charge its own
    /// parsing and wakeups to the host CPU of this configuration).
    Monitor {
        monitor: Monitor,
        output: std::path::PathBuf,
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
                let output = std::env::temp_dir().join("monitor-bench-exec.ndjson");
                let _ = std::fs::remove_file(&output);
                let mut args: Vec<String> = vec![
                    "--rules".into(),
                    pack_dir.display().to_string(),
                    "--rules".into(),
                    rules.display().to_string(),
                    "--output".into(),
                    format!("file:{}", output.display()),
                    // One file per run, counted afterwards: no rotation in between.
                    "--output-max-size".into(),
                    "0".into(),
                ];
                args.extend(monitor_args.iter().cloned());
                Daemon::Monitor { monitor: Monitor::start(&args, false)?, output }
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
            Daemon::Monitor { output, .. } => std::fs::metadata(output).map_or(0, |m| m.len()),
            Daemon::Audit(a) => a.output_len(),
        }
    }

    fn records(&self, parent: u32) -> Result<Option<u64>> {
        Ok(match self {
            Daemon::None => None,
            Daemon::Monitor { output, .. } => {
                let text = std::fs::read_to_string(output)
                    .with_context(|| format!("reading {}", output.display()))?;
                Some(monitor_exec_records(&text, parent))
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
            Daemon::Monitor { monitor, output } => {
                monitor.stop()?;
                let _ = std::fs::remove_file(output);
                Ok(())
            }
            Daemon::None | Daemon::Audit(_) => Ok(()),
        }
    }
}

/// `rounds` rounds of every configuration in turn (`rate` execs a second for `seconds`), as
/// `exec[round][config]` (configurations in [`CONFIGS`] order); `each` sees every run as it
/// ends.
pub fn rounds(
    rounds: usize,
    rate: u64,
    seconds: u64,
    monitor_args: &[String],
    laurel: &Path,
    mut each: impl FnMut(usize, &str, &Run),
) -> Result<Vec<Vec<Run>>> {
    let mut exec = Vec::new();
    for round in 0..rounds {
        let mut runs = Vec::new();
        for config in CONFIGS {
            eprintln!(
                "xtask: paced exec round {}/{rounds}: {config}, {rate}/s for {seconds} s",
                round + 1
            );
            let r = run(config, rate, seconds, monitor_args, laurel)?;
            each(round, config, &r);
            runs.push(r);
        }
        exec.push(runs);
    }
    Ok(exec)
}

/// Per configuration, the median of `f` over the rounds of `exec` (as [`rounds`] returns).
pub fn medians(exec: &[Vec<Run>], f: impl Fn(&Run) -> f64) -> Vec<f64> {
    (0..CONFIGS.len())
        .map(|ci| {
            super::passes::median(&mut exec.iter().map(|round| f(&round[ci])).collect::<Vec<_>>())
        })
        .collect()
}

/// One run of `config`: `rate` execs a second for `seconds`.
pub fn run(
    config: &str,
    rate: u64,
    seconds: u64,
    monitor_args: &[String],
    laurel: &Path,
) -> Result<Run> {
    let stats = matches!(config, "monitor").then(super::passes::BpfStats::enable).transpose()?;
    let daemon = Daemon::start(config, monitor_args, laurel)?;
    let result = measure(&daemon, rate, seconds, stats.is_some());
    daemon.stop()?;
    drop(stats);
    result
}

fn measure(daemon: &Daemon, rate: u64, seconds: u64, hooks: bool) -> Result<Run> {
    let program_ns = || -> Result<Option<u64>> {
        Ok(if hooks { Some(super::passes::bpf_program_time()?.0) } else { None })
    };
    let programs0 = program_ns()?;
    let mut cmd = workload::command(workload::PACED_EXEC, rate * seconds)?;
    cmd.args(["--rate", &rate.to_string()]).stdout(std::process::Stdio::piped());
    let (host0, cpu0, children0) = (host_cpu().0, daemon.cpu_seconds(), children_cpu());
    let child = cmd.spawn().context("starting the exec generator")?;
    let parent = child.id();
    let out = child.wait_with_output()?;
    // The generator is the only child reaped meanwhile (the daemon is reaped at its stop).
    let generator_cpu = children_cpu() - children0;
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
    let programs = program_ns()?;
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
        work_cpu_s: generator_cpu + (last.2 - cpu0),
        hooks_cpu_s: programs.zip(programs0).map(|(b, a)| b.saturating_sub(a) as f64 / 1e9),
        peak_rss_kib: daemon.peak_rss_kib(),
    })
}

/// Events with rule key [`KEY`] of children of `parent` in the monitor's output (an
/// `alerts-suppressed` record counts the events it stands for).
fn monitor_exec_records(output: &str, parent: u32) -> u64 {
    output
        .lines()
        .filter(|l| l.contains(KEY))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["process"]["parent"]["pid"].as_u64() == Some(parent as u64))
        .map(|v| daemons::events_in(&v, |r| daemons::rule_key(r) == Some(KEY)))
        .sum()
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

    #[test]
    fn monitor_exec_records_count_the_key_and_parent_with_suppressed_counts() {
        let output = r#"{"event":{"kind":"alert"},"rule":{"id":"exec"},"process":{"pid":43,"parent":{"pid":42}}}
{"event":{"kind":"alert"},"rule":{"id":"exec"},"process":{"pid":44,"parent":{"pid":420}}}
{"event":{"kind":"alert"},"rule":{"id":"docker-exec"},"process":{"pid":45,"parent":{"pid":42}}}
{"event":{"kind":"event","action":"alerts-suppressed"},"monitor":{"suppressed":{"count":7,"about":{"rule":{"key":"exec"}}}},"process":{"pid":46,"parent":{"pid":42}}}
not json "exec" 42
"#;
        assert_eq!(monitor_exec_records(output, 42), 8);
        assert_eq!(monitor_exec_records(output, 420), 1);
        assert_eq!(monitor_exec_records(output, 7), 0);
    }
}
