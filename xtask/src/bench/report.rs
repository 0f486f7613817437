//! results.md and results.json from one bench run's [`Results`]: the same figures in both,
//! tables for people, JSON for tools (its shape is kept from run to run; new figures are
//! added beside the old).

use anyhow::Result;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::process::Command;

use super::passes::{median, paired_range, GENERATORS};
use super::workload::{count, EXEC_THREADS, WORKLOADS};
use super::{paced_exec, Results, MODES};
use crate::hook_share;

/// Indices into [`MODES`].
const BARE: usize = 0;
const HOOKS: usize = 1;
const MON: usize = 2;
const AUD: usize = 3;
const LAUREL: usize = 4;

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The workload tables (wall time and overhead; daemon CPU) and their JSON rows.
fn workloads(r: &Results, md: &mut String) -> Vec<Value> {
    let mut rows = Vec::new();
    md.push_str("| workload | events | bare (s) | monitor (s) | auditd (s) | auditd+laurel (s) | monitor overhead | auditd overhead | auditd+laurel overhead | monitor overhead, per rep | empty hooks overhead |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut cpu_md = String::from("\nDaemon CPU per workload (s; auditd's figures are auditd, its plugin and the kernel's kauditd thread, read once the daemon has gone quiet after the workload):\n\n| workload | monitor | auditd | auditd+laurel |\n|---|---:|---:|---:|\n");
    for (wi, w) in WORKLOADS.iter().enumerate() {
        let med: Vec<f64> =
            (0..MODES.len()).map(|mi| median(&mut r.wall[wi][mi].clone())).collect();
        let c: Vec<f64> = (0..MODES.len()).map(|mi| median(&mut r.cpu[wi][mi].clone())).collect();
        let over = |x: f64| (x / med[BARE] - 1.0) * 100.0;
        // The same ratio within each repetition (bare and monitor runs seconds apart): its
        // spread is the run-to-run noise any single figure above carries.
        let (lo, hi) = paired_range(&r.wall[wi][BARE], &r.wall[wi][MON]);
        let n = count(w, r.size);
        md.push_str(&format!(
            "| {w} | {n} | {:.3} | {:.3} | {:.3} | {:.3} | {:+.1} % | {:+.1} % | {:+.1} % | {lo:+.1} … {hi:+.1} % | {:+.1} % |\n",
            med[BARE],
            med[MON],
            med[AUD],
            med[LAUREL],
            over(med[MON]),
            over(med[AUD]),
            over(med[LAUREL]),
            over(med[HOOKS])
        ));
        cpu_md.push_str(&format!("| {w} | {:.3} | {:.3} | {:.3} |\n", c[MON], c[AUD], c[LAUREL]));
        rows.push(json!({
            "workload": w, "events": n,
            "wall_s": {"bare": med[BARE], "empty_hooks": med[HOOKS], "monitor": med[MON], "auditd": med[AUD], "auditd+laurel": med[LAUREL]},
            "overhead_pct": {"monitor": over(med[MON]), "auditd": over(med[AUD]), "auditd+laurel": over(med[LAUREL]), "empty_hooks": over(med[HOOKS])},
            "monitor_overhead_pct_per_rep": {"min": lo, "max": hi},
            "daemon_cpu_s": {"monitor": c[MON], "auditd": c[AUD], "auditd+laurel": c[LAUREL]},
            "samples": {"bare": r.wall[wi][BARE], "empty_hooks": r.wall[wi][HOOKS], "monitor": r.wall[wi][MON], "auditd": r.wall[wi][AUD], "auditd+laurel": r.wall[wi][LAUREL]},
        }));
    }
    md.push_str(&cpu_md);
    md.push_str(&format!(
        "\nEmpty hooks: `r0 = 0; exit` programs on the monitor's {} hook points (its start record's `hook_points`): the cost of being hooked at all, which no program logic can remove. auditd and auditd+laurel run the monitor's default pack as `monitor rules export --for-host` writes it, loaded with `auditctl -R`, kernel backlog 16384, dispatcher queue (q_depth) 99999.\n",
        r.points.len()
    ));
    rows
}

/// The kernel-side passes: time in the BPF programs, in-run hook cost.
fn kernel(r: &Results, md: &mut String, rows: &mut [Value]) {
    md.push_str("\nTime in the monitor's BPF programs (a separate pass with kernel.bpf_stats_enabled, median of the repetitions):\n\n| workload | program runs | µs per event | share of bare time |\n|---|---:|---:|---:|\n");
    for (wi, w) in WORKLOADS.iter().enumerate() {
        let (ns, runs) = r.in_kernel[wi];
        let bare = median(&mut r.wall[wi][BARE].clone());
        md.push_str(&format!(
            "| {w} | {runs} | {:.2} | {:.1} % |\n",
            ns as f64 / 1e3 / count(w, r.size) as f64,
            ns as f64 / 1e9 / bare * 100.0
        ));
        rows[wi]["bpf_programs"] = json!({"runs": runs, "ns": ns});
    }
    md.push_str(&format!(
        "\nIn-run hook cost (a separate pass, `perf record -g` of each workload, median of {} runs): the share of the workload's own CPU samples inside the kernel's tracepoint dispatch to BPF or a BPF program, and the overhead that share means against the rest of its work. Both come from one run, so this machine's drift between runs cancels; the monitor's own process is not in it.\n\n| workload | samples (monitor run) | empty hooks | monitor | monitor overhead, in-run |\n|---|---:|---:|---:|---:|\n",
        r.share_runs
    ));
    for (wi, w) in WORKLOADS.iter().enumerate() {
        let [hooks, mon] = r.shares[wi];
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
}

/// The paced exec scenario: medians over the rounds, per configuration.
fn exec_scenario(r: &Results, md: &mut String) -> Value {
    let configs = paced_exec::CONFIGS;
    let medians = |f: fn(&paced_exec::Run) -> f64| paced_exec::medians(&r.exec, f);
    let reached = medians(paced_exec::Run::reached);
    let daemon = medians(paced_exec::Run::daemon_pct);
    let host = medians(paced_exec::Run::host_pct);
    let work = medians(paced_exec::Run::work_pct);
    let mon = configs.iter().position(|c| *c == "monitor").unwrap_or(1);
    let monitor_runs = || r.exec.iter().map(|round| &round[mon]);
    let hooks_us = median(
        &mut monitor_runs().filter_map(paced_exec::Run::hooks_us_per_exec).collect::<Vec<_>>(),
    );
    let attributed =
        median(&mut monitor_runs().filter_map(paced_exec::Run::attributed_pct).collect::<Vec<_>>());
    let execs = medians(|x| x.execs as f64);
    let records = medians(|x| x.records.unwrap_or(0) as f64);
    let records: Vec<Option<f64>> =
        (0..configs.len()).map(|ci| r.exec[0][ci].records.map(|_| records[ci])).collect();
    md.push_str(&format!(
        "\nPaced exec: `/bin/true` at {}/s for {} s ({} threads), `-a always,exit -F arch=b64 -S execve -k exec` added on every side, median of {} rounds. CPU is counted from the run's start until the daemon wrote its last record, per second of the run, in % of one core; whole host from /proc/stat (the kernel's share of hooks and audit is charged to the exec'ing tasks, not to the daemon). /proc/stat counts timer ticks, and on this VM a run now and then reads tens of points off (a vCPU the hypervisor deschedules misses its ticks); \"workload + daemon\" is the same cost from the scheduler's per-task clocks: the generator and every exec it ran (getrusage of the reaped generator) plus the daemon.\n\n| configuration | execs/s reached | execs | records | daemon CPU | whole host CPU | added over base | workload + daemon CPU | added over base | daemon peak RSS |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        r.exec_rate,
        r.exec_seconds,
        EXEC_THREADS,
        r.exec.len()
    ));
    for (ci, c) in configs.iter().enumerate() {
        let rec = records[ci].map_or("—".to_string(), |n| format!("{n:.0}"));
        let (d, added, work_added) = if ci == 0 {
            ("—".to_string(), "—".to_string(), "—".to_string())
        } else {
            (
                format!("{:.1} %", daemon[ci]),
                format!("{:+.1} %", host[ci] - host[0]),
                format!("{:+.1} %", work[ci] - work[0]),
            )
        };
        let peak = r.exec.iter().filter_map(|round| round[ci].peak_rss_kib).max();
        md.push_str(&format!(
            "| {c} | {:.0} | {:.0} | {rec} | {d} | {:.1} % | {added} | {:.1} % | {work_added} | {} |\n",
            reached[ci],
            execs[ci],
            host[ci],
            work[ci],
            peak.map_or("—".to_string(), mib)
        ));
    }
    let laurel = configs.iter().position(|c| *c == "auditd+laurel").unwrap_or(3);
    // "1/N": the monitor's figure is the Nth part of auditd+laurel's.
    let ratio = |ours: f64, theirs: f64| match (ours, theirs) {
        (_, t) if t <= 0.0 => {
            "not comparable (auditd+laurel's is not above zero in this run)".to_string()
        }
        (o, _) if o <= 0.0 => "none".to_string(),
        (o, t) => format!("1/{:.1}", t / o),
    };
    md.push_str(&format!(
        "\nmonitor against auditd+laurel at {}/s: daemon CPU {} of it, whole-host CPU added over the base {} of it (workload + daemon CPU added: {} of it)\n",
        r.exec_rate,
        ratio(daemon[mon], daemon[laurel]),
        ratio(host[mon] - host[0], host[laurel] - host[0]),
        ratio(work[mon] - work[0], work[laurel] - work[0])
    ));
    md.push_str(&format!(
        "\nThe monitor's own cost summed from its parts (a lower bound: what being hooked at all costs is not in it): its BPF programs {hooks_us:.2} µs per exec (kernel.bpf_stats_enabled during its runs), with the daemon {attributed:.2} % of one core, {} of what auditd+laurel adds to the workload + daemon CPU.\n",
        ratio(attributed, work[laurel] - work[0])
    ));
    let by = |v: &dyn Fn(usize) -> Value, from: usize| -> Value {
        configs
            .iter()
            .enumerate()
            .skip(from)
            .map(|(ci, c)| (c.to_string(), v(ci)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    json!({
        "rate": r.exec_rate,
        "seconds": r.exec_seconds,
        "rounds": r.exec.len(),
        "execs": by(&|ci| json!(execs[ci]), 0),
        "reached": by(&|ci| json!(reached[ci]), 0),
        "records": by(&|ci| json!(records[ci]), 1),
        "cpu_pct": by(&|ci| json!(daemon[ci]), 1),
        "host_cpu_pct": by(&|ci| json!(host[ci]), 0),
        "work_cpu_pct": by(&|ci| json!(work[ci]), 0),
        "monitor_hooks_us_per_exec": hooks_us,
        "monitor_attributed_cpu_pct": attributed,
        "peak_rss_kib": by(&|ci| json!(r.exec.iter().filter_map(|round| round[ci].peak_rss_kib).max()), 1),
    })
}

/// Memory: peak resident by configuration, and where the monitor's is.
fn memory(r: &Results, md: &mut String) {
    let b = r.breakdown;
    md.push_str(&format!(
        "\nPeak resident memory (VmHWM, highest over the repetitions): monitor {}, auditd {}, auditd+laurel {} (both processes).\n",
        mib(r.peak_rss[0]),
        mib(r.peak_rss[1]),
        mib(r.peak_rss[2])
    ));
    md.push_str(&format!(
        "\nThe monitor's resident memory after the workloads (/proc/PID/smaps): ring buffer {} (mapped once, all of it resident), heap {}, binary {}, other {} (libraries, stacks); {} in all.\n\n| part | KiB |\n|---|---:|\n| ring buffer | {} |\n| heap | {} |\n| binary | {} |\n| other | {} |\n",
        mib(b.ring_buffer),
        mib(b.heap),
        mib(b.binary),
        mib(b.other),
        mib(b.total()),
        b.ring_buffer,
        b.heap,
        b.binary,
        b.other
    ));
}

pub fn write(r: &Results, out: &Path) -> Result<()> {
    let mut md = String::new();
    let mut rows = workloads(r, &mut md);
    let exec = exec_scenario(r, &mut md);
    memory(r, &mut md);
    kernel(r, &mut md, &mut rows);
    let (p50, p99) = r.latency;
    md.push_str(&format!(
        "\nsyscall→alert latency (paced watched writes): p50 {p50:.0} µs, p99 {p99:.0} µs\n"
    ));
    md.push_str(&format!(
        "events the monitor lost in the kernel over the workloads (bursts of {} events at full speed), per repetition: {:?}\n",
        r.size, r.workload_lost
    ));
    md.push_str(&format!("monitor peak RSS: {}\n", mib(r.peak_rss[0])));
    for x in &r.rates {
        md.push_str(&format!(
            "paced setuid transitions, target {}/s ({GENERATORS} threads): achieved {:.0}/s over {:.2} s, {} alerts, {} lost\n",
            x.target, x.achieved, x.seconds, x.alerts, x.lost
        ));
    }
    // The highest rate achieved in a run where nothing was lost and every event alerted.
    let sustained = r
        .rates
        .iter()
        .filter(|x| x.lost == 0 && x.alerts >= x.events)
        .map(|x| x.achieved)
        .reduce(f64::max);
    md.push_str(&format!(
        "highest achieved rate without a drop: {}\n",
        sustained.map(|x| format!("{x:.0}/s")).unwrap_or("none of those tried".into())
    ));
    let (replay_events, bytes_per_event, replay_per_s) = r.replay;
    md.push_str(&format!(
        "replay: {replay_events} captured events at {replay_per_s:.0} events/s (whole command, JSON to /dev/null, median of the repetitions); capture {bytes_per_event} bytes/event\n"
    ));
    let commit = crate::util::output(
        Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(crate::util::workspace_root()),
    )
    .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let date = crate::util::output(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let header = format!("# Benchmark results\n\n{date}, commit {commit}, {cores} cores, kernel {}, size {}, {} repetitions (medians)\n\n", kernel.trim(), r.size, r.reps);
    // The `monitor check` figure (`cargo xtask bench check`) is its own run: kept as it was.
    let (check, check_line) = crate::bench_check::carried_over(out);
    if let Some(line) = check_line {
        md.push_str(&format!("{line}\n"));
    }
    let report = format!("{header}{md}");
    println!("{report}");
    let mut result = json!({
        "date": date, "commit": commit, "cores": cores, "size": r.size, "reps": r.reps,
        "workloads": rows,
        "paced_exec": exec,
        "latency_us": {"p50": p50, "p99": p99},
        "peak_rss_kib": r.peak_rss[0],
        "peak_rss_kib_by_config": {"monitor": r.peak_rss[0], "auditd": r.peak_rss[1], "auditd+laurel": r.peak_rss[2]},
        "rss_breakdown_kib": r.breakdown.json(),
        "workload_lost": r.workload_lost,
        "paced_rates": r.rates.iter().map(|x| json!({"target": x.target, "achieved": x.achieved, "seconds": x.seconds, "alerts": x.alerts, "lost": x.lost})).collect::<Vec<_>>(),
        "max_rate_without_drop": sustained,
        "replay": {"events": replay_events, "events_per_s": replay_per_s, "capture_bytes_per_event": bytes_per_event},
    });
    if let Some(check) = check {
        result["check"] = check;
    }
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("results.json"), serde_json::to_string_pretty(&result)? + "\n")?;
    std::fs::File::create(out.join("results.md"))?.write_all(report.as_bytes())?;
    eprintln!("xtask: results in {}", out.display());
    Ok(())
}
