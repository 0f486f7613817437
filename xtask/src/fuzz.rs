//! `cargo xtask fuzz`: run each fuzz target of monitor/fuzz for a bounded time (and, with
//! `--runs`, a number of executions) with cargo-fuzz (nightly, AddressSanitizer) and report
//! the executions it survived.

use anyhow::{bail, Context, Result};
use std::process::{Command, Stdio};

const TARGETS: &[&str] =
    &["rules_parser", "event_decoder", "http_stream", "btf_parser", "capture_reader", "audit_log"];

/// `seconds` bounds each target; `runs`, when given, stops it earlier after that many inputs.
/// `sanitizer`: cargo-fuzz's `-s` (address by default; `none` runs several times faster and
/// still catches panics, for long runs over safe-Rust parsers).
pub fn run(seconds: u64, runs: Option<u64>, sanitizer: &str, only: &[String]) -> Result<()> {
    let dir = crate::util::workspace_root().join("monitor/fuzz");
    let targets: Vec<&str> = if only.is_empty() {
        TARGETS.to_vec()
    } else {
        for t in only {
            if !TARGETS.contains(&t.as_str()) {
                bail!("unknown fuzz target {t} (known: {})", TARGETS.join(", "));
            }
        }
        only.iter().map(String::as_str).collect()
    };
    let mut report = Vec::new();
    for t in targets {
        match runs {
            Some(n) => eprintln!("xtask: fuzzing {t} for {n} executions (at most {seconds} s)"),
            None => eprintln!("xtask: fuzzing {t} for {seconds} s"),
        }
        let started = std::time::Instant::now();
        // New inputs go to corpus/<t> (not committed); seeds/<t> (committed) starts it.
        let corpus = dir.join("corpus").join(t);
        std::fs::create_dir_all(&corpus)?;
        let seeds = dir.join("seeds").join(t);
        let mut args: Vec<std::ffi::OsString> =
            ["+nightly", "fuzz", "run", "-s", sanitizer, t].map(Into::into).to_vec();
        args.push(corpus.into());
        if seeds.is_dir() {
            args.push(seeds.into());
        }
        args.extend([
            "--".into(),
            format!("-max_total_time={seconds}").into(),
            "-print_final_stats=1".into(),
        ]);
        if let Some(n) = runs {
            args.push(format!("-runs={n}").into());
        }
        let out = Command::new("cargo")
            .args(&args)
            .current_dir(&dir)
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("running cargo fuzz for {t} (is cargo-fuzz installed? `cargo xtask setup --test-deps`)"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            eprintln!("{log}");
            bail!("fuzz target {t} failed: {}", out.status);
        }
        // libFuzzer's final stats: "stat::number_of_executed_units: N".
        let executed = log
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .map(|n| n.trim().to_string())
            .unwrap_or_else(|| "?".into());
        let elapsed = started.elapsed().as_secs();
        report.push(format!(
            "{t}: {executed} executions in {elapsed} s (sanitizer {sanitizer}), no crash"
        ));
    }
    for line in report {
        eprintln!("xtask: fuzz {line}");
    }
    Ok(())
}
