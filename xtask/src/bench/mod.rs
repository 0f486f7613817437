//! `cargo xtask bench`: the monitor against a bare system, auditd, and auditd with laurel as
//! its plugin (the JSON pipeline users compare it with), on the same machine in the same run.
//!
//! Each workload is this binary re-executed with the hidden `bench-workload` command
//! ([`workload`]), a separate process of fixed size. Per repetition the modes run in turn —
//! bare, empty hooks, `monitor run` with the default pack, auditd with the same pack (the
//! monitor's `rules export --for-host`, loaded by `auditctl -R`), auditd + laurel — and every
//! workload runs in each; the report gives medians, overheads as ratios against bare, the CPU
//! each daemon spent, peak resident memory and where the monitor's is ([`memory`]).
//! Further passes: the paced exec scenario, every configuration with an exec rule
//! ([`paced_exec`]); the syscall→alert latency, the paced setuid rates with no drop, the time
//! in the monitor's BPF programs, the in-run hook cost against empty hooks, and replay
//! throughput ([`passes`]). [`report`] writes results.md and results.json.

mod audit;
mod daemons;
mod memory;
mod paced_exec;
mod passes;
mod report;
mod workload;

pub use workload::workload;

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use daemons::Monitor;
use workload::WORKLOADS;

/// Runs per workload and mode of the in-run hook cost pass (each is its own ratio).
const SHARE_RUNS: usize = 5;
/// The paced exec scenario's rate, and its length in seconds at full size and at a smoke
/// run's tiny sizes (below [`SMALL`]).
const EXEC_RATE: u64 = 1_000;
const EXEC_SECONDS: u64 = 20;
const EXEC_SECONDS_SMALL: u64 = 2;
/// Rounds of the paced exec scenario at most (each configuration runs once a round).
const EXEC_ROUNDS: usize = 5;
/// Sizes below this are smoke runs: every pass runs, briefly.
const SMALL: u64 = 1_000;

/// The modes of the timed workloads. "hooks": empty programs on the monitor's hook points,
/// the floor any tracepoint-based monitor pays (see null_hooks).
pub const MODES: &[&str] = &["bare", "hooks", "monitor", "auditd", "auditd+laurel"];

pub struct Options {
    pub size: u64,
    pub reps: usize,
    pub out: PathBuf,
    /// `monitor run --ring-buffer-size` for every monitor the bench starts (else its default).
    pub ring_buffer_size: Option<String>,
}

/// Everything one run measured; [`report`] turns it into results.md and results.json.
pub struct Results {
    pub size: u64,
    pub reps: usize,
    /// wall[workload][mode]: seconds per rep; cpu[workload][mode]: daemon CPU seconds per rep.
    pub wall: Vec<Vec<Vec<f64>>>,
    pub cpu: Vec<Vec<Vec<f64>>>,
    /// Peak resident KiB (VmHWM) by daemon: monitor, auditd, auditd+laurel (auditd and its
    /// plugin summed), the highest of the workload modes and the paced exec runs.
    pub peak_rss: [u64; 3],
    /// The monitor's resident memory by part when it was largest (end of a rep's workloads).
    pub breakdown: memory::Breakdown,
    /// Events the monitor counted lost in the kernel over each rep's workloads (each
    /// workload is a burst of `size` events at full speed).
    pub workload_lost: Vec<u64>,
    pub points: Vec<String>,
    pub latency: (f64, f64),
    pub rates: Vec<passes::PacedRun>,
    pub replay: (u64, u64, f64),
    pub in_kernel: Vec<(u64, u64)>,
    pub share_runs: usize,
    pub shares: Vec<[crate::hook_share::Share; 2]>,
    pub exec_rate: u64,
    pub exec_seconds: u64,
    /// exec[round][config], configs as in `paced_exec::CONFIGS`.
    pub exec: Vec<Vec<paced_exec::Run>>,
}

/// A daemon of the timed modes.
enum Daemon {
    Monitor(Monitor),
    Audit(audit::Audit),
}

impl Daemon {
    fn cpu_seconds(&self) -> f64 {
        match self {
            Daemon::Monitor(m) => daemons::cpu_seconds(m.pid()),
            Daemon::Audit(a) => a.cpu_seconds(),
        }
    }

    /// Wait until the daemon has finished what the workload caused (its CPU time stands
    /// still for 200 ms; 30 s at most), so that its CPU reading covers all of it.
    fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = self.cpu_seconds();
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let now = self.cpu_seconds();
            if now == last || Instant::now() > deadline {
                return;
            }
            last = now;
        }
    }
}

/// `cargo xtask bench paced-exec`: the paced exec scenario alone, `reps` rounds, each run
/// and the medians on stdout.
pub fn paced_only(reps: usize, ring_buffer_size: Option<String>) -> Result<()> {
    require_root()?;
    passes::ensure_no_tracing_programs()?;
    let laurel = crate::setup::ensure_laurel()?;
    let args = monitor_args(ring_buffer_size.as_ref());
    let exec = paced_exec::rounds(
        reps.max(1),
        EXEC_RATE,
        EXEC_SECONDS,
        &args,
        &laurel,
        |round, config, run| {
            println!(
            "round {} {config:>13}: reached {:.0}/s records {:?} daemon {:.2} % host {:.1} % workload+daemon {:.1} % programs {:?} µs/exec",
            round + 1,
            run.reached(),
            run.records,
            run.daemon_pct(),
            run.host_pct(),
            run.work_pct(),
            run.hooks_us_per_exec()
        );
        },
    )?;
    let daemon = paced_exec::medians(&exec, paced_exec::Run::daemon_pct);
    let host = paced_exec::medians(&exec, paced_exec::Run::host_pct);
    let work = paced_exec::medians(&exec, paced_exec::Run::work_pct);
    for (ci, config) in paced_exec::CONFIGS.iter().enumerate() {
        println!(
            "median {config:>13}: daemon {:.2} % host {:.1} % (added {:+.1}) workload+daemon {:.1} % (added {:+.1})",
            daemon[ci],
            host[ci],
            host[ci] - host[0],
            work[ci],
            work[ci] - work[0]
        );
    }
    Ok(())
}

fn require_root() -> Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        bail!("the benchmarks need root (they load the monitor and auditd)");
    }
    Ok(())
}

/// What every monitor the bench starts is given (`--ring-buffer-size`).
fn monitor_args(ring_buffer_size: Option<&String>) -> Vec<String> {
    ring_buffer_size
        .iter()
        .flat_map(|s| ["--ring-buffer-size".to_string(), s.to_string()])
        .collect()
}

pub fn run(opts: &Options) -> Result<()> {
    require_root()?;
    crate::docker::ensure_dockerd()?;
    passes::ensure_no_tracing_programs()?;
    let laurel = crate::setup::ensure_laurel()?;
    let args = monitor_args(opts.ring_buffer_size.as_ref());
    let points = passes::hook_points(&args)?;
    let pack = audit::exported_pack()?;
    let small = opts.size < SMALL;
    let mut wall: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); MODES.len()]; WORKLOADS.len()];
    let mut cpu: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); MODES.len()]; WORKLOADS.len()];
    let mut peak_rss = [0u64; 3];
    let mut breakdown = memory::Breakdown::default();
    let mut workload_lost = Vec::new();
    for rep in 0..opts.reps {
        for (mi, mode) in MODES.iter().enumerate() {
            eprintln!("xtask: bench rep {}/{} mode {mode}", rep + 1, opts.reps);
            let _hooks = if *mode == "hooks" { Some(passes::empty_hooks(&points)?) } else { None };
            let daemon = match *mode {
                "monitor" => Some(Daemon::Monitor(Monitor::start(&args, false)?)),
                "auditd" => Some(Daemon::Audit(audit::Audit::start(&pack, None)?)),
                "auditd+laurel" => Some(Daemon::Audit(audit::Audit::start(&pack, Some(&laurel))?)),
                _ => None,
            };
            for (wi, w) in WORKLOADS.iter().enumerate() {
                let before = daemon.as_ref().map_or(0.0, Daemon::cpu_seconds);
                let took = workload::run(w, workload::count(w, opts.size))?;
                if let Some(d) = &daemon {
                    d.settle();
                }
                let after = daemon.as_ref().map_or(0.0, Daemon::cpu_seconds);
                wall[wi][mi].push(took.as_secs_f64());
                cpu[wi][mi].push(after - before);
            }
            match daemon {
                Some(Daemon::Monitor(m)) => {
                    peak_rss[0] = peak_rss[0].max(daemons::peak_rss_kib(m.pid()).unwrap_or(0));
                    if let Some(b) = memory::Breakdown::of(m.pid(), &daemons::monitor_bin()) {
                        if b.total() > breakdown.total() {
                            breakdown = b;
                        }
                    }
                    let lost = m.stop()?;
                    workload_lost.push(lost.context("the monitor's stop line (lost=)")?);
                }
                Some(Daemon::Audit(a)) => {
                    let i = if *mode == "auditd" { 1 } else { 2 };
                    peak_rss[i] = peak_rss[i].max(a.peak_rss_kib());
                }
                None => {}
            }
        }
    }
    let (exec_seconds, rounds) =
        (if small { EXEC_SECONDS_SMALL } else { EXEC_SECONDS }, opts.reps.clamp(1, EXEC_ROUNDS));
    let exec = paced_exec::rounds(rounds, EXEC_RATE, exec_seconds, &args, &laurel, |_, _, _| {})?;
    // The daemons' peaks under the exec load count too (auditd+laurel's is highest there).
    for runs in &exec {
        for (config, run) in paced_exec::CONFIGS.iter().zip(runs) {
            if let Some(i) = ["monitor", "auditd", "auditd+laurel"].iter().position(|c| c == config)
            {
                peak_rss[i] = peak_rss[i].max(run.peak_rss_kib.unwrap_or(0));
            }
        }
    }
    let latency = passes::latency(&args, if small { 50 } else { 1000 })?;
    let targets: Vec<u64> =
        if small { vec![1_000] } else { vec![25_000, 50_000, 100_000, 200_000, 400_000] };
    let rates = passes::max_rate(&args, &targets)?;
    let replay = passes::replay_rate(&args, opts.size, opts.reps)?;
    let in_kernel = passes::kernel_time(&args, opts.size, opts.reps)?;
    let share_runs = opts.reps.clamp(1, SHARE_RUNS);
    let shares = passes::hook_shares(&args, opts.size, share_runs, &points)?;
    workload::clean();
    let results = Results {
        size: opts.size,
        reps: opts.reps,
        wall,
        cpu,
        peak_rss,
        breakdown,
        workload_lost,
        points,
        latency,
        rates,
        replay,
        in_kernel,
        share_runs,
        shares,
        exec_rate: EXEC_RATE,
        exec_seconds,
        exec,
    };
    report::write(&results, &opts.out)
}
