//! `cargo xtask bench`: the monitor against a bare system and against auditd, on the same
//! machine in the same run.
//!
//! Each workload is this binary re-executed with the hidden `bench-workload` command, so it
//! is a separate process of fixed size. Per repetition the modes run in turn — bare, `monitor
//! run` with the default pack, auditd with the same pack loaded by `auditctl -R` — and every
//! workload runs in each; the report gives medians, overheads as ratios against bare, the CPU
//! the monitor or auditd spent, the monitor's peak RSS, the syscall→alert latency and the
//! highest event rate the generators achieved (against a paced target) with no drop.
//! Two further passes look inside the kernel: the time in the monitor's BPF programs
//! (kernel.bpf_stats_enabled), and the share of each workload's CPU samples spent in the
//! hook path, empty hooks against the monitor ([`hook_share`]), a ratio within one run.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::hook_share;

/// Runs per workload and mode of the in-run hook cost pass (each is its own ratio).
const SHARE_RUNS: usize = 5;

pub const WORKLOADS: &[&str] = &["exec", "files-unwatched", "files-watched", "connect-watched", "connect-unwatched", "setuid", "mixed"];

/// Watched by the default pack (CIS 1.1.6, key docker-config).
const WATCHED_DIR: &str = "/etc/docker/monitor-bench";
const UNWATCHED_DIR: &str = "/var/tmp/monitor-bench";
const DOCKER_SOCK: &str = "/run/docker.sock";

pub struct Options {
    pub size: u64,
    pub reps: usize,
    pub out: PathBuf,
}

fn root() -> PathBuf {
    crate::util::workspace_root()
}

fn monitor_bin() -> PathBuf {
    root().join("target/release/monitor")
}

/// Run one workload in this process (the hidden `bench-workload` command).
pub fn workload(name: &str, n: u64) -> Result<()> {
    use std::os::unix::net::{UnixListener, UnixStream};
    std::fs::create_dir_all(WATCHED_DIR)?;
    std::fs::create_dir_all(UNWATCHED_DIR)?;
    let files = |dir: &str, n: u64| -> Result<()> {
        for i in 0..n {
            let a = format!("{dir}/f{i}");
            let b = format!("{dir}/g{i}");
            std::fs::write(&a, b"x")?;
            std::fs::rename(&a, &b)?;
            std::fs::remove_file(&b)?;
        }
        Ok(())
    };
    let connects = |path: &str, n: u64| -> Result<()> {
        for _ in 0..n {
            drop(UnixStream::connect(path).with_context(|| format!("connect {path}"))?);
        }
        Ok(())
    };
    let execs = |n: u64| -> Result<()> {
        for _ in 0..n {
            Command::new("/bin/true").status()?;
        }
        Ok(())
    };
    let setuids = |n: u64| (0..n).for_each(|_| setuid_round_trip());
    match name {
        "exec" => execs(n)?,
        "files-unwatched" => files(UNWATCHED_DIR, n)?,
        "files-watched" => files(WATCHED_DIR, n)?,
        "connect-watched" => connects(DOCKER_SOCK, n)?,
        "connect-unwatched" => {
            let path = format!("{UNWATCHED_DIR}/bench.sock");
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path)?;
            std::thread::spawn(move || for c in listener.incoming() { drop(c) });
            connects(&path, n)?;
        }
        "setuid" => setuids(n),
        "mixed" => {
            execs(n / 10)?;
            files(UNWATCHED_DIR, n / 3)?;
            files(WATCHED_DIR, n / 10)?;
            connects(DOCKER_SOCK, n / 10)?;
            setuids(n / 10);
        }
        other => bail!("unknown workload {other}"),
    }
    Ok(())
}

/// To nobody and back to root: one matching event (setuid-root), no filesystem in the
/// way. Raw syscalls change only the calling thread's ids.
fn setuid_round_trip() {
    unsafe {
        libc::syscall(libc::SYS_setresuid, 65534, 65534, 0);
        libc::syscall(libc::SYS_setresuid, 0, 0, 0);
    }
}

/// Size of each workload relative to `size` (execs are slow, syscalls fast).
fn count(workload: &str, size: u64) -> u64 {
    match workload {
        "exec" => size / 10,
        "setuid" | "connect-unwatched" | "connect-watched" => size * 2,
        _ => size,
    }
    .max(1)
}

/// Wall time of one workload run.
fn run_workload(name: &str, n: u64) -> Result<Duration> {
    let mut cmd = workload_command(name, n)?;
    let start = Instant::now();
    let st = cmd.status()?;
    let took = start.elapsed();
    if !st.success() {
        bail!("workload {name} failed: {st}");
    }
    Ok(took)
}

/// user+sys CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the comm's closing parenthesis: utime is the 14th field overall.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A running monitor (stdout to /dev/null, or piped).
struct Monitor {
    child: Child,
}

impl Monitor {
    fn start(piped: bool) -> Result<Monitor> {
        let mut cmd = Command::new(monitor_bin());
        cmd.args(["run", "--heartbeat", "0"]).stderr(Stdio::piped());
        cmd.stdout(if piped { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().context("starting the monitor (cargo xtask build first)")?;
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("monitor running") => break,
                Some(Ok(_)) => continue,
                _ => bail!("the monitor exited during start"),
            }
        }
        // Keep draining its log so that it never blocks on stderr.
        std::thread::spawn(move || for _ in lines {});
        Ok(Monitor { child })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(mut self) -> Result<()> {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait()?;
        Ok(())
    }
}

/// auditd in the foreground with the default pack loaded; the audit state is restored on drop.
struct Auditd {
    child: Child,
    saved_rules: String,
    saved_enabled: String,
    /// The host's backlog_limit and backlog_wait_time, put back afterwards.
    saved_backlog: (Option<String>, Option<String>),
}

/// Debian's shipped audit.rules: `-b 8192`, `--backlog_wait_time 60000`.
const AUDITD_BACKLOG: &str = "8192";
const AUDITD_BACKLOG_WAIT: &str = "60000";

impl Auditd {
    fn start() -> Result<Auditd> {
        let listed = crate::util::output(Command::new("auditctl").arg("-l"))?;
        let status = crate::util::output(Command::new("auditctl").arg("-s"))?;
        let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')).map(|v| v.trim().to_string());
        let saved_enabled = field("enabled").unwrap_or_else(|| "0".into());
        let saved_backlog = (field("backlog_limit"), field("backlog_wait_time"));
        // Off while the rules change (no records for a backlog nobody drains yet).
        let _ = Command::new("auditctl").args(["-e", "0"]).output();
        let _ = Command::new("auditctl").arg("-D").output();
        // The backlog Debian's auditd ships with (/etc/audit/rules.d/audit.rules), not the
        // kernel's 64: with 64, bursts make the audited processes wait for room, and auditd
        // would be measured as no one runs it.
        let _ = Command::new("auditctl").args(["-b", AUDITD_BACKLOG, "--backlog_wait_time", AUDITD_BACKLOG_WAIT]).output();
        for d in ["/var/lib/docker", "/run/containerd"] {
            std::fs::create_dir_all(d)?;
        }
        let mut loaded = 0;
        let mut files: Vec<_> = std::fs::read_dir(root().join("rules"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "rules"))
            .collect();
        files.sort();
        for f in files {
            // One rule at a time: auditctl refuses watches whose parent directory is missing
            // here (/etc/sysconfig on Debian) and -R would stop at the first.
            let text = std::fs::read_to_string(&f)?;
            let is_rule = |l: &&str| ["-w ", "-a ", "-A "].iter().any(|p| l.starts_with(p));
            for line in text.lines().map(str::trim).filter(is_rule) {
                if crate::util::succeeds(Command::new("auditctl").args(line.split_whitespace())) {
                    loaded += 1;
                }
            }
        }
        eprintln!("xtask: auditd mode: {loaded} rules loaded into the kernel");
        std::fs::create_dir_all("/var/log/audit")?;
        let child = Command::new("auditd").args(["-n", "-s", "enable"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().context("starting auditd")?;
        std::thread::sleep(Duration::from_millis(500));
        let _ = Command::new("auditctl").args(["-e", "1"]).output();
        Ok(Auditd { child, saved_rules: listed, saved_enabled, saved_backlog })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Auditd {
    fn drop(&mut self) {
        let _ = Command::new("auditctl").args(["-e", "0"]).output();
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let _ = Command::new("auditctl").arg("-D").output();
        if self.saved_rules.lines().any(|l| l.starts_with('-')) {
            let f = std::env::temp_dir().join("monitor-bench-saved.rules");
            if std::fs::write(&f, &self.saved_rules).is_ok() {
                let _ = Command::new("auditctl").arg("-R").arg(&f).output();
            }
        }
        if let (Some(limit), Some(wait)) = &self.saved_backlog {
            let _ = Command::new("auditctl").args(["-b", limit, "--backlog_wait_time", wait]).output();
        }
        let _ = Command::new("auditctl").args(["-e", &self.saved_enabled]).output();
    }
}

/// Lowest and highest per-repetition overhead (%) of `with` against `bare`, paired by rep.
fn paired_range(bare: &[f64], with: &[f64]) -> (f64, f64) {
    bare.iter()
        .zip(with)
        .map(|(b, w)| (w / b - 1.0) * 100.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| (lo.min(r), hi.max(r)))
}

fn median<T: PartialOrd + Copy>(v: &mut [T]) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// p50/p99 of the delay from a watched write to its alert line, on a paced writer.
fn latency(events: u64) -> Result<(f64, f64)> {
    let mut m = Monitor::start(true)?;
    let stdout = m.child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lat = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let got = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i128;
            let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
            if v["file"]["path"].as_str().is_some_and(|p| p.starts_with(&format!("{WATCHED_DIR}/lat"))) {
                if let Some(sent) = v["@timestamp"].as_str().and_then(parse_rfc3339_ns) {
                    lat.push((got - sent) as f64 / 1e3);
                }
            }
        }
        lat
    });
    std::fs::create_dir_all(WATCHED_DIR)?;
    for i in 0..events {
        std::fs::write(format!("{WATCHED_DIR}/lat{i}"), b"x")?;
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
struct PacedRun {
    target: u64,
    /// Matching events generated.
    events: u64,
    /// Matching events per second actually generated (events / time the generators took).
    achieved: f64,
    seconds: f64,
    alerts: u64,
    lost: u64,
}

/// Generator threads: one cannot make 100k setuid transitions a second once each call
/// pair is hooked (about 9 µs a pair here), so two share the target rate.
const GENERATORS: u64 = 2;

/// Matching events at each `target` rate for about 2 s, and whether the monitor lost any
/// (its events-lost count at stop). The rate reported is the one achieved, which falls
/// short of the target when the generators cannot keep up.
fn max_rate(targets: &[u64]) -> Result<Vec<PacedRun>> {
    let mut out = Vec::new();
    for &target in targets {
        let mut m = Monitor::start(true)?;
        let stdout = m.child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let (mut alerts, mut lost) = (0u64, 0u64);
            // Counted by substring: parsing every line here (a debug build) would make this
            // reader, not the monitor, the bottleneck the rate test finds.
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if line.contains(r#""action":"setuid""#) {
                    alerts += 1;
                } else if line.contains(r#""action":"monitor-stop""#) {
                    let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
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
                        setuid_round_trip();
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
        out.push(PacedRun { target, events, achieved: events as f64 / seconds, seconds, alerts, lost });
    }
    Ok(out)
}

/// The monitor's hook points, from its start record (`monitor.start.hook_points`).
fn hook_points() -> Result<Vec<String>> {
    let mut monitor = Monitor::start(true)?;
    let stdout = monitor.child.stdout.take().context("the monitor's stdout")?;
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).context("reading the monitor's start record")?;
    monitor.stop()?;
    let record: serde_json::Value = serde_json::from_str(&first).context("parsing the monitor's start record")?;
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
    let progs: Vec<serde_json::Value> = serde_json::from_str(&out).context("bpftool prog show --json")?;
    Ok(progs
        .into_iter()
        .filter(|p| matches!(p["type"].as_str(), Some("tracepoint" | "tracing" | "raw_tracepoint" | "kprobe" | "perf_event")))
        .collect())
}

/// Refuse to start while another monitor (or any tracing program) is loaded: the bare runs
/// would not be bare, and the BPF time pass would count its programs too.
fn ensure_no_tracing_programs() -> Result<()> {
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
fn bpf_program_time() -> Result<(u64, u64)> {
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
fn kernel_time(size: u64, reps: usize) -> Result<Vec<(u64, u64)>> {
    let was = std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").unwrap_or_else(|_| "0".into());
    std::fs::write("/proc/sys/kernel/bpf_stats_enabled", "1").context("enabling kernel.bpf_stats_enabled")?;
    let result = (|| {
        let monitor = Monitor::start(false)?;
        // bpftool's own syscalls (one run between two readings) pass through the programs
        // too: measured with no workload, and taken off every reading.
        let (a, b) = (bpf_program_time()?, bpf_program_time()?);
        let reading = (b.0 - a.0, b.1 - a.1);
        let mut samples: Vec<Vec<(u64, u64)>> = vec![Vec::new(); WORKLOADS.len()];
        for _ in 0..reps.max(1) {
            for (wi, w) in WORKLOADS.iter().enumerate() {
                let before = bpf_program_time()?;
                run_workload(w, count(w, size))?;
                let after = bpf_program_time()?;
                samples[wi].push(((after.0 - before.0).saturating_sub(reading.0), (after.1 - before.1).saturating_sub(reading.1)));
            }
        }
        monitor.stop()?;
        Ok(samples.iter_mut().map(|v| median(v)).collect())
    })();
    let _ = std::fs::write("/proc/sys/kernel/bpf_stats_enabled", was.trim());
    result
}

/// The command of one workload run (this binary's hidden `bench-workload`).
fn workload_command(name: &str, n: u64) -> Result<Command> {
    let mut cmd = Command::new(std::env::current_exe()?);
    // Without the library path cargo adds for its own runs: the dynamic loader would look
    // for libc in each of those directories on every exec of the storm (dozens of failed
    // opens per exec that a normal host does not make).
    cmd.args(["bench-workload", name, &n.to_string()]).env_remove("LD_LIBRARY_PATH");
    Ok(cmd)
}

/// Empty programs on the monitor's hook `points`, checked to be the only tracing programs
/// loaded: each hook point then runs one (empty) program.
fn empty_hooks(points: &[String]) -> Result<crate::null_hooks::NullHooks> {
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
fn hook_shares(size: u64, runs: usize, points: &[String]) -> Result<Vec<[hook_share::Share; 2]>> {
    let data = std::env::temp_dir().join("monitor-bench.perf.data");
    let mut out = vec![[hook_share::Share::default(); 2]; WORKLOADS.len()];
    for (mode, with_monitor) in [false, true].into_iter().enumerate() {
        let hooks = if with_monitor { None } else { Some(empty_hooks(points)?) };
        let monitor = if with_monitor { Some(Monitor::start(false)?) } else { None };
        for (wi, w) in WORKLOADS.iter().enumerate() {
            let mut shares = Vec::new();
            for _ in 0..runs.max(1) {
                shares.push(hook_share::measure(&workload_command(w, count(w, size))?, &data)?);
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
fn replay_rate(size: u64, reps: usize) -> Result<(u64, u64, f64)> {
    let cap = std::env::temp_dir().join("monitor-bench.cap");
    let mut cmd = Command::new(monitor_bin());
    cmd.args(["run", "--heartbeat", "0", "--capture"]).arg(&cap).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for l in lines.by_ref() {
        if l?.contains("monitor running") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    run_workload("files-watched", size)?;
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
        let out = Command::new(monitor_bin()).arg("replay").arg(&cap).stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
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

pub fn run(opts: &Options) -> Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        bail!("the benchmarks need root (they load the monitor and auditd)");
    }
    crate::docker::ensure_dockerd()?;
    ensure_no_tracing_programs()?;
    let points = hook_points()?;
    // "hooks": empty programs on the monitor's hook points, the floor any tracepoint-based
    // monitor pays (see null_hooks).
    let modes = ["bare", "hooks", "monitor", "auditd"];
    // samples[workload][mode] = wall seconds per rep; cpu[workload][mode] = daemon CPU seconds.
    let mut wall: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); modes.len()]; WORKLOADS.len()];
    let mut cpu: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); modes.len()]; WORKLOADS.len()];
    let mut peak_rss = 0u64;
    for rep in 0..opts.reps {
        for (mi, mode) in modes.iter().enumerate() {
            eprintln!("xtask: bench rep {}/{} mode {mode}", rep + 1, opts.reps);
            let monitor = if *mode == "monitor" { Some(Monitor::start(false)?) } else { None };
            let _hooks = if *mode == "hooks" { Some(empty_hooks(&points)?) } else { None };
            let auditd = if *mode == "auditd" { Some(Auditd::start()?) } else { None };
            let daemon = monitor.as_ref().map(|m| m.pid()).or(auditd.as_ref().map(|a| a.pid()));
            for (wi, w) in WORKLOADS.iter().enumerate() {
                let before = daemon.map(cpu_seconds).unwrap_or(0.0);
                let took = run_workload(w, count(w, opts.size))?;
                // Let the daemon finish what the workload caused before reading its CPU.
                if daemon.is_some() {
                    std::thread::sleep(Duration::from_millis(200));
                }
                let after = daemon.map(cpu_seconds).unwrap_or(0.0);
                wall[wi][mi].push(took.as_secs_f64());
                cpu[wi][mi].push(after - before);
            }
            if let Some(m) = monitor {
                peak_rss = peak_rss.max(peak_rss_kib(m.pid()).unwrap_or(0));
                m.stop()?;
            }
            drop(auditd);
        }
    }
    let (p50, p99) = latency(if opts.size < 1000 { 50 } else { 1000 })?;
    let rates: Vec<u64> = if opts.size < 1000 { vec![1_000] } else { vec![25_000, 50_000, 100_000, 200_000, 400_000] };
    let rate_results = max_rate(&rates)?;
    // The highest rate achieved in a run where nothing was lost and every event alerted.
    let sustained = rate_results.iter().filter(|r| r.lost == 0 && r.alerts >= r.events).map(|r| r.achieved).reduce(f64::max);
    let (replay_events, bytes_per_event, replay_per_s) = replay_rate(opts.size, opts.reps)?;
    let in_kernel = kernel_time(opts.size, opts.reps)?;
    let share_runs = opts.reps.clamp(1, SHARE_RUNS);
    let shares = hook_shares(opts.size, share_runs, &points)?;
    let _ = std::fs::remove_dir_all(WATCHED_DIR);
    let _ = std::fs::remove_dir_all(UNWATCHED_DIR);

    let mut rows = Vec::new();
    let mut md = String::new();
    md.push_str("| workload | events | bare (s) | monitor (s) | auditd (s) | monitor overhead | auditd overhead | monitor overhead, per rep | empty hooks overhead | monitor CPU (s) | auditd CPU (s) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let (bare, hooks, mon, aud) = (0, 1, 2, 3);
    for (wi, w) in WORKLOADS.iter().enumerate() {
        let med: Vec<f64> = (0..modes.len()).map(|mi| median(&mut wall[wi][mi].clone())).collect();
        let c: Vec<f64> = (0..modes.len()).map(|mi| median(&mut cpu[wi][mi].clone())).collect();
        let over = |x: f64| (x / med[bare] - 1.0) * 100.0;
        // The same ratio within each repetition (bare and monitor runs seconds apart): its
        // spread is the run-to-run noise any single figure above carries.
        let (lo, hi) = paired_range(&wall[wi][bare], &wall[wi][mon]);
        md.push_str(&format!(
            "| {w} | {} | {:.3} | {:.3} | {:.3} | {:+.1} % | {:+.1} % | {lo:+.1} … {hi:+.1} % | {:+.1} % | {:.3} | {:.3} |\n",
            count(w, opts.size), med[bare], med[mon], med[aud], over(med[mon]), over(med[aud]), over(med[hooks]), c[mon], c[aud]
        ));
        rows.push(json!({
            "workload": w, "events": count(w, opts.size),
            "wall_s": {"bare": med[bare], "empty_hooks": med[hooks], "monitor": med[mon], "auditd": med[aud]},
            "overhead_pct": {"monitor": over(med[mon]), "auditd": over(med[aud]), "empty_hooks": over(med[hooks])},
            "monitor_overhead_pct_per_rep": {"min": lo, "max": hi},
            "daemon_cpu_s": {"monitor": c[mon], "auditd": c[aud]},
            "samples": {"bare": wall[wi][bare], "empty_hooks": wall[wi][hooks], "monitor": wall[wi][mon], "auditd": wall[wi][aud]},
        }));
    }
    md.push_str(&format!(
        "\nEmpty hooks: `r0 = 0; exit` programs on the monitor's {} hook points (its start record's `hook_points`): the cost of being hooked at all, which no program logic can remove.\n",
        points.len()
    ));
    md.push_str("\nTime in the monitor's BPF programs (a separate pass with kernel.bpf_stats_enabled, median of the repetitions):\n\n| workload | program runs | µs per event | share of bare time |\n|---|---:|---:|---:|\n");
    for (wi, w) in WORKLOADS.iter().enumerate() {
        let (ns, runs) = in_kernel[wi];
        let bare = median(&mut wall[wi][0].clone());
        md.push_str(&format!(
            "| {w} | {runs} | {:.2} | {:.1} % |\n",
            ns as f64 / 1e3 / count(w, opts.size) as f64,
            ns as f64 / 1e9 / bare * 100.0
        ));
        rows[wi]["bpf_programs"] = json!({"runs": runs, "ns": ns});
    }
    md.push_str(&format!(
        "\nIn-run hook cost (a separate pass, `perf record -g` of each workload, median of {} runs): the share of the workload's own CPU samples inside the kernel's tracepoint dispatch to BPF or a BPF program, and the overhead that share means against the rest of its work. Both come from one run, so this machine's drift between runs cancels; the monitor's own process is not in it.\n\n| workload | samples (monitor run) | empty hooks | monitor | monitor overhead, in-run |\n|---|---:|---:|---:|---:|\n",
        share_runs
    ));
    for (wi, w) in WORKLOADS.iter().enumerate() {
        let [hooks, mon] = shares[wi];
        md.push_str(&format!(
            "| {w} | {} | {:.2} % | {:.2} % | {:+.2} % |\n",
            mon.samples,
            hooks.percent(),
            mon.percent(),
            mon.overhead_percent()
        ));
        let share = |s: hook_share::Share| json!({"samples": s.samples, "hooked": s.hooked, "percent": s.percent(), "overhead_pct": s.overhead_percent()});
        rows[wi]["hook_share"] = json!({"empty_hooks": share(hooks), "monitor": share(mon)});
    }
    md.push_str(&format!("\nsyscall→alert latency (paced watched writes): p50 {p50:.0} µs, p99 {p99:.0} µs\n"));
    md.push_str(&format!("monitor peak RSS: {:.1} MiB\n", peak_rss as f64 / 1024.0));
    for r in &rate_results {
        md.push_str(&format!(
            "paced setuid transitions, target {}/s ({GENERATORS} threads): achieved {:.0}/s over {:.2} s, {} alerts, {} lost\n",
            r.target, r.achieved, r.seconds, r.alerts, r.lost
        ));
    }
    md.push_str(&format!("highest achieved rate without a drop: {}\n", sustained.map(|r| format!("{r:.0}/s")).unwrap_or("none of those tried".into())));
    md.push_str(&format!(
        "replay: {replay_events} captured events at {replay_per_s:.0} events/s (whole command, JSON to /dev/null, median of the repetitions); capture {bytes_per_event} bytes/event\n"
    ));
    let commit = crate::util::output(Command::new("git").args(["rev-parse", "--short", "HEAD"]).current_dir(root())).unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let date = crate::util::output(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])).unwrap_or_default();
    let header = format!("# Benchmark results\n\n{date}, commit {commit}, {cores} cores, kernel {}, size {}, {} repetitions (medians)\n\n", std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(), opts.size, opts.reps);
    // The `monitor check` figure (`cargo xtask bench check`) is its own run: kept as it was.
    let (check, check_line) = crate::bench_check::carried_over(&opts.out);
    if let Some(line) = check_line {
        md.push_str(&format!("{line}\n"));
    }
    let report = format!("{header}{md}");
    println!("{report}");
    let mut result = json!({
        "date": date, "commit": commit, "cores": cores, "size": opts.size, "reps": opts.reps,
        "workloads": rows,
        "latency_us": {"p50": p50, "p99": p99},
        "peak_rss_kib": peak_rss,
        "paced_rates": rate_results.iter().map(|r| json!({"target": r.target, "achieved": r.achieved, "seconds": r.seconds, "alerts": r.alerts, "lost": r.lost})).collect::<Vec<_>>(),
        "max_rate_without_drop": sustained,
        "replay": {"events": replay_events, "events_per_s": replay_per_s, "capture_bytes_per_event": bytes_per_event},
    });
    if let Some(check) = check {
        result["check"] = check;
    }
    std::fs::create_dir_all(&opts.out)?;
    std::fs::write(opts.out.join("results.json"), serde_json::to_string_pretty(&result)? + "\n")?;
    let mut f = std::fs::File::create(opts.out.join("results.md"))?;
    f.write_all(report.as_bytes())?;
    eprintln!("xtask: results in {}", opts.out.display());
    Ok(())
}
