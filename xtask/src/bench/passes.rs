//! The bench's passes beside the timed workloads: syscall→alert latency, the paced setuid
//! rates (loss), the time inside the BPF programs (kernel.bpf_stats_enabled), the in-run hook
//! cost against empty hooks ([`hook_share`]), and replay throughput.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::daemons::{self, monitor_bin, Monitor};
use super::workload;
use crate::hook_share;

/// Lowest and highest per-repetition overhead (%) of `with` against `bare`, paired by rep.
pub fn paired_range(bare: &[f64], with: &[f64]) -> (f64, f64) {
    bare.iter()
        .zip(with)
        .map(|(b, w)| (w / b - 1.0) * 100.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| (lo.min(r), hi.max(r)))
}

pub fn median<T: PartialOrd + Copy>(v: &mut [T]) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// p50/p99 of the delay from a watched write to its alert line, on a paced writer.
pub fn latency(args: &[String], events: u64) -> Result<(f64, f64)> {
    let mut m = Monitor::start(args, true)?;
    let stdout = m.child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lat = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let got = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as i128;
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if v["file"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with(&format!("{}/lat", workload::WATCHED_DIR)))
            {
                if let Some(sent) = v["@timestamp"].as_str().and_then(parse_rfc3339_ns) {
                    lat.push((got - sent) as f64 / 1e3);
                }
            }
        }
        lat
    });
    std::fs::create_dir_all(workload::WATCHED_DIR)?;
    for i in 0..events {
        std::fs::write(format!("{}/lat{i}", workload::WATCHED_DIR), b"x")?;
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(300));
    m.stop()?;
    let mut lat = reader.join().unwrap();
    if lat.is_empty() {
        bail!("no latency samples");
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok((lat[lat.len() / 2], lat[(lat.len() - 1) * 99 / 100]))
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` as ns since the epoch.
fn parse_rfc3339_ns(ts: &str) -> Option<i128> {
    let num = |r: std::ops::Range<usize>| ts.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss, ns) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..29)?);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss) as i128 * 1_000_000_000 + ns as i128)
}

/// One paced run of matching events: what was asked, what the generators achieved, and
/// what the monitor reported.
pub struct PacedRun {
    pub target: u64,
    /// Matching events generated.
    pub events: u64,
    /// Matching events per second actually generated (events / time the generators took).
    pub achieved: f64,
    pub seconds: f64,
    pub alerts: u64,
    pub lost: u64,
}

/// Generator threads: one cannot make 100k setuid transitions a second once each call
/// pair is hooked (about 9 µs a pair here), so two share the target rate.
pub const GENERATORS: u64 = 2;

/// Matching events at each `target` rate for about 2 s, and whether the monitor lost any
/// (its events-lost count at stop). The rate reported is the one achieved, which falls
/// short of the target when the generators cannot keep up.
pub fn max_rate(args: &[String], targets: &[u64]) -> Result<Vec<PacedRun>> {
    let mut out = Vec::new();
    for &target in targets {
        let mut m = Monitor::start(args, true)?;
        let stdout = m.child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let (mut alerts, mut lost) = (0u64, 0u64);
            // Alerts counted by substring: parsing every line here (a debug build) would make
            // this reader, not the monitor, the bottleneck the rate test finds. Aggregated
            // alerts (`alerts-suppressed`, rare) are parsed for their count.
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                // An alerts-suppressed record names the action it counts (`about.action`):
                // it is looked for first.
                if line.contains(r#""action":"alerts-suppressed""#) {
                    let Ok(v) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    alerts +=
                        daemons::events_in(&v, |r| daemons::rule_key(r) == Some("setuid-root"));
                } else if line.contains(r#""action":"setuid""#) {
                    alerts += 1;
                } else if line.contains(r#""action":"monitor-stop""#) {
                    let Ok(v) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    lost = v["monitor"]["lost"].as_u64().unwrap_or(0);
                }
            }
            (alerts, lost)
        });
        // Each thread changes only its own ids: the threads do not interact.
        let per_thread = target * 2 / GENERATORS;
        // Wait until event `i` of a thread is due.
        let pace = move |begun: Instant, i: u64| {
            let due = Duration::from_secs_f64(i as f64 * GENERATORS as f64 / target as f64);
            if let Some(wait) = due.checked_sub(begun.elapsed()) {
                std::thread::sleep(wait);
            }
        };
        let start = Instant::now();
        let generators: Vec<_> = (0..GENERATORS)
            .map(|_| {
                std::thread::spawn(move || {
                    let begun = Instant::now();
                    for i in 0..per_thread {
                        workload::setuid_round_trip();
                        if i % 100 == 0 {
                            pace(begun, i);
                        }
                    }
                    // Not done before the schedule is: the achieved rate stays at most the target.
                    pace(begun, per_thread);
                })
            })
            .collect();
        for g in generators {
            g.join().map_err(|_| anyhow::anyhow!("a setuid generator panicked"))?;
        }
        let seconds = start.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(500));
        m.stop()?;
        let (alerts, lost) = reader.join().unwrap();
        let events = per_thread * GENERATORS;
        // Each round trip is one transition to root: alerted, or counted lost (the lost
        // count may hold other processes' events too). Fewer means the bench misread the
        // monitor's lines, or the monitor lost events silently.
        if alerts + lost < events {
            bail!(
                "paced setuid at {target}/s: {events} transitions, {alerts} alerts + {lost} lost"
            );
        }
        out.push(PacedRun {
            target,
            events,
            achieved: events as f64 / seconds,
            seconds,
            alerts,
            lost,
        });
    }
    Ok(out)
}

/// The monitor's hook points, from its start record (`monitor.start.hook_points`).
pub fn hook_points(args: &[String]) -> Result<Vec<String>> {
    let mut monitor = Monitor::start(args, true)?;
    let stdout = monitor.child.stdout.take().context("the monitor's stdout")?;
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).context("reading the monitor's start record")?;
    monitor.stop()?;
    let record: serde_json::Value =
        serde_json::from_str(&first).context("parsing the monitor's start record")?;
    let points: Vec<String> = record["monitor"]["start"]["hook_points"]
        .as_array()
        .context("no monitor.start.hook_points in the start record")?
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    if points.is_empty() {
        bail!("the monitor reported no hook points");
    }
    Ok(points)
}

/// The BPF programs loaded now of the types that hook syscalls and scheduler events.
fn tracing_programs() -> Result<Vec<serde_json::Value>> {
    let out = crate::util::output(Command::new("bpftool").args(["prog", "show", "--json"]))?;
    let progs: Vec<serde_json::Value> =
        serde_json::from_str(&out).context("bpftool prog show --json")?;
    Ok(progs
        .into_iter()
        .filter(|p| {
            matches!(
                p["type"].as_str(),
                Some("tracepoint" | "tracing" | "raw_tracepoint" | "kprobe" | "perf_event")
            )
        })
        .collect())
}

/// Refuse to start while another monitor (or any tracing program) is loaded: the bare runs
/// would not be bare, and the BPF time pass would count its programs too.
pub fn ensure_no_tracing_programs() -> Result<()> {
    let names: Vec<String> = tracing_programs()?
        .iter()
        .map(|p| format!("{} (id {})", p["name"].as_str().unwrap_or("?"), p["id"]))
        .collect();
    if !names.is_empty() {
        bail!(
            "{} tracing BPF programs are already loaded (a monitor still running?): {}; stop them first, or the bare runs are not bare",
            names.len(),
            names.join(", ")
        );
    }
    Ok(())
}

/// Time the kernel spent in BPF programs of type tracepoint/tracing (the monitor's), in ns,
/// and how many times they ran: `bpftool prog show` with kernel.bpf_stats_enabled on.
pub(super) fn bpf_program_time() -> Result<(u64, u64)> {
    let mut total = (0, 0);
    for p in tracing_programs()? {
        total.0 += p["run_time_ns"].as_u64().unwrap_or(0);
        total.1 += p["run_cnt"].as_u64().unwrap_or(0);
    }
    Ok(total)
}

/// A separate pass (its clock reads would skew the timed runs): each workload under the
/// monitor with BPF run-time statistics on, `reps` times over (this VM's speed drifts by a
/// fifth between minutes, so one reading per workload is not enough). Per workload: the
/// median (ns in programs, runs).
pub fn kernel_time(args: &[String], size: u64, reps: usize) -> Result<Vec<(u64, u64)>> {
    let _stats = BpfStats::enable()?;
    {
        let monitor = Monitor::start(args, false)?;
        // bpftool's own syscalls (one run between two readings) pass through the programs
        // too: measured with no workload, and taken off every reading.
        let (a, b) = (bpf_program_time()?, bpf_program_time()?);
        let reading = (b.0 - a.0, b.1 - a.1);
        let mut samples: Vec<Vec<(u64, u64)>> = vec![Vec::new(); workload::WORKLOADS.len()];
        for _ in 0..reps.max(1) {
            for (wi, w) in workload::WORKLOADS.iter().enumerate() {
                let before = bpf_program_time()?;
                workload::run(w, workload::count(w, size))?;
                let after = bpf_program_time()?;
                samples[wi].push((
                    (after.0 - before.0).saturating_sub(reading.0),
                    (after.1 - before.1).saturating_sub(reading.1),
                ));
            }
        }
        monitor.stop()?;
        Ok(samples.iter_mut().map(|v| median(v)).collect())
    }
}

/// kernel.bpf_stats_enabled on while it lives, as it was after (on every path out). Its
/// two clock reads per program run cost about 40 ns.
pub(super) struct BpfStats(String);

impl BpfStats {
    const PATH: &str = "/proc/sys/kernel/bpf_stats_enabled";
    pub(super) fn enable() -> Result<BpfStats> {
        let was = std::fs::read_to_string(Self::PATH).unwrap_or_else(|_| "0".into());
        std::fs::write(Self::PATH, "1").context("enabling kernel.bpf_stats_enabled")?;
        Ok(BpfStats(was.trim().to_string()))
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::PATH, &self.0);
    }
}

/// Empty programs on the monitor's hook `points`, checked to be the only tracing programs
/// loaded: each hook point then runs one (empty) program.
pub fn empty_hooks(points: &[String]) -> Result<crate::null_hooks::NullHooks> {
    // A monitor stopped just before may still be listed for a moment: the kernel frees a
    // program after its last reference goes, not when the process exits.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !tracing_programs()?.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let hooks = crate::null_hooks::NullHooks::attach(points)?;
    let loaded = tracing_programs()?.len();
    if loaded != hooks.attached {
        bail!("{} empty hooks attached but {loaded} tracing programs loaded", hooks.attached);
    }
    Ok(hooks)
}

/// The in-run hook cost (`hook_share`): each workload under perf, `runs` times, with the
/// empty hooks and then with the monitor. Per workload: the median run of each.
pub fn hook_shares(
    args: &[String],
    size: u64,
    runs: usize,
    points: &[String],
) -> Result<Vec<[hook_share::Share; 2]>> {
    let data = std::env::temp_dir().join("monitor-bench.perf.data");
    let mut out = vec![[hook_share::Share::default(); 2]; workload::WORKLOADS.len()];
    for (mode, with_monitor) in [false, true].into_iter().enumerate() {
        let hooks = if with_monitor { None } else { Some(empty_hooks(points)?) };
        let monitor = if with_monitor { Some(Monitor::start(args, false)?) } else { None };
        for (wi, w) in workload::WORKLOADS.iter().enumerate() {
            let mut shares = Vec::new();
            for _ in 0..runs.max(1) {
                shares.push(hook_share::measure(
                    &workload::command(w, workload::count(w, size))?,
                    &data,
                )?);
            }
            shares.sort_by(|a, b| a.percent().total_cmp(&b.percent()));
            out[wi][mode] = shares[shares.len() / 2];
        }
        drop(hooks);
        if let Some(m) = monitor {
            m.stop()?;
        }
    }
    Ok(out)
}

/// Replay throughput: capture a watched-file storm, replay it to /dev/null, events/s.
pub fn replay_rate(args: &[String], size: u64, reps: usize) -> Result<(u64, u64, f64)> {
    let cap = std::env::temp_dir().join("monitor-bench.cap");
    let mut cmd = Command::new(monitor_bin());
    cmd.args(["run", "--heartbeat", "0", "--capture"])
        .arg(&cap)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for l in lines.by_ref() {
        if l?.contains("monitor running") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    workload::run("files-watched", size)?;
    std::thread::sleep(Duration::from_millis(500));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait()?;
    let bytes = std::fs::metadata(&cap)?.len();
    // The same capture replayed `reps` times: one run lasts well under a second, and this
    // machine's speed drifts between runs.
    let mut events = 0;
    let mut rates = Vec::new();
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        let out = Command::new(monitor_bin())
            .arg("replay")
            .arg(&cap)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()?;
        let secs = start.elapsed().as_secs_f64();
        let err = String::from_utf8_lossy(&out.stderr);
        events = err
            .split_whitespace()
            .find_map(|w| w.strip_prefix("events="))
            .and_then(|n| n.parse().ok())
            .context("replay did not report its events")?;
        rates.push(events as f64 / secs);
    }
    let _ = std::fs::remove_file(&cap);
    Ok((events, bytes / events.max(1), median(&mut rates)))
}
