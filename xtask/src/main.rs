//! `cargo xtask`: the project's own automation, so a fresh machine needs nothing by hand.
//!
//! * `setup`  installs what the build needs (nightly rust-src, bpf-linker) and, with
//!   `--test-deps`, what the tests need (auditd, docker.io, busybox-static, bpftool).
//! * `build`  builds `target/release/monitor` with the eBPF object embedded.
//! * `run`    setup + build + `monitor run` with the built-in rules.
//! * `dist`   the Debian package in target/dist/ (binary, rules, unit, man pages, completions).
//! * `test`   setup (with test deps) + the whole test suite, fuzz targets included (briefly).
//! * `fuzz`   run the fuzz targets for a given time and report executions.
//! * `bench`  the monitor against bare, auditd and auditd + laurel; results in docs/bench/
//!   (`bench check`: only the `monitor check` timing with 50 containers).

mod bench;
mod bench_check;
mod dist;
mod docker;
mod fuzz;
mod hook_share;
mod lint;
mod null_hooks;
mod setup;
mod util;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "Build, run and test the container-host monitor")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install the build toolchain (idempotent; fast when everything is present).
    Setup {
        /// Also install the packages the tests need (auditd, docker.io, busybox-static, bpftool).
        #[arg(long)]
        test_deps: bool,
    },
    /// Build target/release/monitor with the eBPF programs embedded (installs the eBPF
    /// toolchain first when it is missing).
    Build,
    /// Set up, build, and run the monitor with the built-in default rules (as root).
    Run {
        /// Extra arguments passed to `monitor run`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Benchmark the monitor against a bare system, auditd and auditd + laurel (needs root); writes
    /// results.md and results.json. `bench check` times only `monitor check` with 50
    /// containers and updates that figure alone.
    Bench {
        /// Only this part of the benchmark.
        #[arg(value_enum)]
        only: Option<BenchPart>,
        /// Events per workload (exec runs a tenth of it).
        #[arg(long, default_value_t = 20_000)]
        size: u64,
        /// Repetitions (the report gives medians). More than the minimum of 5: on the
        /// reference VM one run differs from the next by more than the targets.
        #[arg(long, default_value_t = 11)]
        reps: usize,
        /// Where results.md and results.json go.
        #[arg(long, default_value = "docs/bench")]
        out: std::path::PathBuf,
        /// `monitor run --ring-buffer-size` for every monitor the bench starts (default: the
        /// monitor's own default).
        #[arg(long, value_name = "BYTES")]
        ring_buffer_size: Option<String>,
    },
    /// (internal) one benchmark workload, run as its own process.
    #[command(hide = true)]
    BenchWorkload {
        name: String,
        n: u64,
        /// Events per second (the paced exec generator).
        #[arg(long)]
        rate: Option<u64>,
    },
    /// Run the fuzz targets (monitor/fuzz) and report how many inputs each survived.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        time: u64,
        /// Stop each target after this many executions (still bounded by --time).
        #[arg(long)]
        runs: Option<u64>,
        /// cargo-fuzz sanitizer: address (default) or none (faster, for long runs).
        #[arg(long, default_value = "address", value_parser = ["address", "none"])]
        sanitizer: String,
        /// Targets to run (default: all).
        targets: Vec<String>,
    },
    /// Build the Debian package into target/dist/ (installs cargo-deb when missing).
    Dist,
    /// Check formatting (rustfmt.toml) and run clippy with warnings denied, on the host
    /// crates and on the eBPF crate's own target.
    Lint,
    /// Set up (including test packages), build, and run the whole test suite.
    Test {
        /// Extra arguments passed to `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BenchPart {
    /// `monitor check --profile all --json` with 50 created containers (median of --reps runs).
    Check,
    /// Only the paced exec scenario (`/bin/true` at 1 000/s for 20 s under each of the four
    /// configurations, --reps rounds: about 90 s a round); prints each run and the medians,
    /// writes no report.
    PacedExec,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Setup { test_deps } => setup::setup(test_deps),
        Command::Build => {
            // The eBPF half needs nightly rust-src and bpf-linker: a bare `build` on a fresh
            // machine installs them rather than failing with rustup's hint.
            setup::setup(false)?;
            build()
        }
        Command::Run { args } => {
            setup::setup(false)?;
            build()?;
            let bin = util::workspace_root().join("target/release/monitor");
            let mut cmd = std::process::Command::new(bin);
            cmd.arg("run").args(args);
            util::run(&mut cmd)
        }
        Command::Test { args } => {
            setup::setup(true)?;
            // Formatting and clippy first: a lint failure costs seconds, not the e2e run.
            lint::lint()?;
            build()?;
            // tests/e2e/package.rs installs this package.
            dist::dist()?;
            let mut cmd = util::cargo();
            cmd.args(["test", "--release"]).args(args);
            util::run(&mut cmd)?;
            // Every parser of outside input survives a short fuzz run on each test run.
            fuzz::run(10, None, "address", &[])?;
            // The benchmark harness works end to end (tiny sizes; no thresholds here).
            let out = util::workspace_root().join("target/bench-smoke");
            bench::run(&bench::Options { size: 50, reps: 1, out, ring_buffer_size: None })
        }
        Command::Bench { only, size, reps, out, ring_buffer_size } => {
            setup::setup(true)?;
            build()?;
            let out = if out.is_absolute() { out } else { util::workspace_root().join(out) };
            match only {
                Some(BenchPart::Check) => bench_check::run(&out, reps),
                Some(BenchPart::PacedExec) => bench::paced_only(reps, ring_buffer_size),
                None => bench::run(&bench::Options { size, reps, out, ring_buffer_size }),
            }
        }
        Command::Dist => dist::dist().map(drop),
        Command::Lint => {
            setup::setup(false)?;
            setup::ensure_lint_tools()?;
            lint::lint()
        }
        Command::BenchWorkload { name, n, rate } => bench::workload(&name, n, rate),
        Command::Fuzz { time, runs, sanitizer, targets } => {
            setup::setup(false)?;
            setup::ensure_cargo_fuzz()?;
            fuzz::run(time, runs, &sanitizer, &targets)
        }
    }
}

pub(crate) fn build() -> Result<()> {
    let mut cmd = util::cargo();
    cmd.args(["build", "--release", "-p", "monitor"]);
    util::run(&mut cmd)
}
