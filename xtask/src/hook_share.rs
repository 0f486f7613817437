//! The bench's in-run measure of what hooking costs a workload: the share of the workload's
//! own CPU samples (`perf record -g`, kernel and user) whose call stack passes through the
//! kernel's tracepoint dispatch to BPF or a BPF program.
//!
//! Wall-time ratios compare runs seconds apart, and this VM's speed drifts between runs by
//! more than the targets; here both halves of the ratio come from the same run, so the
//! drift cancels. What it leaves out: the monitor's own process (its CPU is reported
//! apart), cache effects on the workload's other code, and the slow syscall path that any
//! syscall tracepoint puts every task on (already taken here: kernel audit, once enabled,
//! keeps every task on it, bare runs included).

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// Frames of the hook path: the syscall tracepoints' BPF dispatch, the raw and BTF
/// tracepoints' one, and the programs themselves (JIT-ed, named `bpf_prog_<tag>_<name>`).
const HOOK_FRAMES: &[&str] =
    &["perf_syscall_enter", "perf_syscall_exit", "bpf_trace_run", "__bpf_trace_", "bpf_prog_"];

/// Sampling frequency: about 10 000 samples per second of workload CPU.
const FREQUENCY: &str = "10000";

/// Samples of one run, and how many of them were in the hook path.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Share {
    pub samples: u64,
    pub hooked: u64,
}

impl Share {
    /// The hook path's share of the workload's CPU time, in %.
    pub fn percent(&self) -> f64 {
        if self.samples == 0 {
            return 0.0;
        }
        self.hooked as f64 * 100.0 / self.samples as f64
    }

    /// The overhead that share means against the same work unhooked, in %: hooked time over
    /// the rest.
    pub fn overhead_percent(&self) -> f64 {
        let rest = self.samples.saturating_sub(self.hooked);
        if rest == 0 {
            return 0.0;
        }
        self.hooked as f64 * 100.0 / rest as f64
    }
}

/// Run `cmd` under `perf record` (its children too) and measure its [`Share`]. `data` is
/// perf's output file, removed afterwards.
pub fn measure(cmd: &Command, data: &Path) -> Result<Share> {
    let mut record = Command::new("perf");
    record
        .args(["record", "-q", "-g", "-F", FREQUENCY, "-o"])
        .arg(data)
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => record.env(k, v),
            None => record.env_remove(k),
        };
    }
    let st = record.status().context("running perf record (Debian package linux-perf)")?;
    if !st.success() {
        bail!("perf record of {:?} failed: {st}", cmd.get_program());
    }
    let out = Command::new("perf")
        .args(["script", "-F", "ip,sym", "-i"])
        .arg(data)
        .output()
        .context("running perf script")?;
    let _ = std::fs::remove_file(data);
    if !out.status.success() {
        bail!("perf script failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let share = parse(&String::from_utf8_lossy(&out.stdout));
    if share.samples == 0 {
        bail!("perf recorded no samples of {:?}", cmd.get_program());
    }
    Ok(share)
}

/// Count the samples of `perf script -F ip,sym` output (one call stack per sample, one frame
/// per line as `address symbol`, samples apart by a blank line) and those with a hook frame.
pub fn parse(script: &str) -> Share {
    let mut share = Share::default();
    // Between samples `None`; within one, whether a hook frame was seen so far.
    let mut sample: Option<bool> = None;
    for line in script.lines().map(str::trim).chain(std::iter::once("")) {
        if line.is_empty() {
            if let Some(hooked) = sample.take() {
                share.samples += 1;
                share.hooked += hooked as u64;
            }
            continue;
        }
        let symbol = line.split_once(char::is_whitespace).map_or("", |(_, s)| s.trim_start());
        let hook_frame = HOOK_FRAMES.iter().any(|f| symbol.starts_with(f));
        sample = Some(sample.unwrap_or(false) || hook_frame);
    }
    share
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_samples_with_a_hook_frame() {
        let script = "\
\tffffffff814c4b3e perf_syscall_exit
\tffffffff8142513c syscall_exit_work
\t           f9b17 __GI___unlink

\tffffffff81c78ec1 strncpy_from_user
\tffffffff81000130 entry_SYSCALL_64_after_hwframe

\tffffffffc002bcd4 bpf_prog_ecd43b658011b5b6_exit_file
\tffffffff814d0b80 trace_call_bpf
\n\n\tffffffff81900000 bpf_trace_run3
\tffffffff81900100 __traceiter_sched_process_exec
\t    7f0000001000 [unknown]
\tffffffff81800000 perf_syscall_exit_other";
        // The last frame names no hook frame exactly, but starts like one: it counts (the
        // sample is hooked through bpf_trace_run3 anyway).
        assert_eq!(parse(script), Share { samples: 4, hooked: 3 });
    }

    #[test]
    fn a_user_symbol_that_merely_contains_a_hook_name_does_not_count() {
        let script = "\t401000 my_perf_syscall_exit_wrapper\n\t401100 main\n";
        assert_eq!(parse(script), Share { samples: 1, hooked: 0 });
        assert_eq!(parse(""), Share::default());
    }

    #[test]
    fn overhead_is_hooked_time_over_the_rest() {
        let s = Share { samples: 1000, hooked: 50 };
        assert!((s.percent() - 5.0).abs() < 1e-9);
        assert!((s.overhead_percent() - 50.0 * 100.0 / 950.0).abs() < 1e-9);
        assert_eq!(Share { samples: 10, hooked: 10 }.overhead_percent(), 0.0);
    }
}
