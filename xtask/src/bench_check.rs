//! `cargo xtask bench check`: how long `monitor check --profile all --json` takes with 50
//! containers in Docker's state (created, not started: a container is read from its state
//! files whatever its state, and created ones keep the machine light). The median of the
//! runs goes into results.json (its `check` member) and results.md (the `monitor check:`
//! line); the other benchmark figures are left as they are, and a full `cargo xtask bench`
//! carries this figure over.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const CONTAINERS: usize = 50;
const PREFIX: &str = "monitor-bench-check-";
const IMAGE: &str = "local/monitor-bench:1";
/// The results.md line this benchmark owns.
const LINE: &str = "monitor check:";

/// A busybox image imported from Debian's static busybox (no registry is reachable).
fn ensure_image() -> Result<()> {
    if crate::util::succeeds(Command::new("docker").args(["image", "inspect", IMAGE])) {
        return Ok(());
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("busybox is missing: `cargo xtask setup --test-deps` installs busybox-static")?;
    let dir = std::env::temp_dir().join(format!("monitor-bench-image-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin"))?;
    std::fs::copy(busybox, dir.join("bin/busybox"))?;
    std::os::unix::fs::symlink("busybox", dir.join("bin/sleep"))?;
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh"))?;
    let script =
        format!("tar -C {} -c --owner=0 --group=0 . | docker import - {IMAGE}", dir.display());
    let ok = crate::util::succeeds(Command::new("sh").arg("-c").arg(&script));
    let _ = std::fs::remove_dir_all(&dir);
    if !ok {
        bail!("importing {IMAGE} failed");
    }
    Ok(())
}

/// The benchmark's containers, removed when dropped.
struct Containers(Vec<String>);

impl Containers {
    fn create(n: usize) -> Result<Containers> {
        remove_leftovers();
        let mut c = Containers(Vec::new());
        for i in 0..n {
            let name = format!("{PREFIX}{i}");
            crate::util::output(Command::new("docker").args([
                "create",
                "--network",
                "none",
                "--name",
                &name,
                IMAGE,
                "sleep",
                "600",
            ]))?;
            c.0.push(name);
        }
        Ok(c)
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&self.0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Containers a killed earlier run left behind.
fn remove_leftovers() {
    let names = crate::util::output(Command::new("docker").args([
        "ps",
        "-aq",
        "--filter",
        &format!("name=^{PREFIX}"),
    ]))
    .unwrap_or_default();
    let ids: Vec<&str> = names.split_whitespace().collect();
    if !ids.is_empty() {
        let _ = Command::new("docker").args(["rm", "-f"]).args(&ids).stdout(Stdio::null()).status();
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Time the check and write the figure into `out`.
pub fn run(out: &Path, reps: usize) -> Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        bail!("the check benchmark needs root (it reads Docker's state files)");
    }
    crate::docker::ensure_dockerd()?;
    ensure_image()?;
    let containers = Containers::create(CONTAINERS)?;
    let in_docker =
        crate::util::output(Command::new("docker").args(["ps", "-aq"]))?.lines().count();
    let bin = crate::util::workspace_root().join("target/release/monitor");
    let once = || -> Result<(f64, usize)> {
        let started = Instant::now();
        let o = Command::new(&bin)
            .args(["check", "--profile", "all", "--json"])
            .stderr(Stdio::null())
            .output()
            .with_context(|| format!("running {}", bin.display()))?;
        let secs = started.elapsed().as_secs_f64();
        // Its exit code is the host's posture (10-14 when something fails), not an error.
        if !matches!(o.status.code(), Some(0 | 9..=14)) {
            bail!("monitor check failed: {}", o.status);
        }
        Ok((secs, o.stdout.iter().filter(|&&b| b == b'\n').count()))
    };
    once()?; // warm the page cache
    let mut samples = Vec::new();
    let mut findings = 0;
    for _ in 0..reps.max(1) {
        let (s, n) = once()?;
        samples.push(s);
        findings = n;
    }
    drop(containers);
    let mut sorted = samples.clone();
    let med = median(&mut sorted);
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    let commit = crate::util::output(
        Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(crate::util::workspace_root()),
    )
    .unwrap_or_default();
    let date = crate::util::output(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]))
        .unwrap_or_default();
    let member = json!({
        "date": date, "commit": commit, "command": "monitor check --profile all --json",
        "containers": in_docker, "created_for_the_run": CONTAINERS, "findings": findings,
        "runs": samples.len(), "median_s": med, "min_s": min, "max_s": max, "samples_s": samples,
    });
    let line = format!(
        "{LINE} {in_docker} containers in Docker's state ({CONTAINERS} created for the run), {findings} findings: median {med:.3} s ({min:.3} … {max:.3} s over {} runs; `--profile all --json`, commit {commit}, {date})",
        samples.len()
    );
    println!("{line}");
    std::fs::create_dir_all(out)?;
    let json_path = out.join("results.json");
    let mut results: Value = std::fs::read_to_string(&json_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!({}));
    results["check"] = member;
    std::fs::write(&json_path, serde_json::to_string_pretty(&results)? + "\n")?;
    let md_path = out.join("results.md");
    let md = std::fs::read_to_string(&md_path).unwrap_or_else(|_| "# Benchmark results\n".into());
    std::fs::write(&md_path, with_line(&md, &line))?;
    eprintln!("xtask: check figure in {}", out.display());
    Ok(())
}

/// `md` with its `monitor check:` line replaced by `line` (appended when there is none).
fn with_line(md: &str, line: &str) -> String {
    let mut lines: Vec<&str> = md.lines().filter(|l| !l.starts_with(LINE)).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    format!("{}\n{line}\n", lines.join("\n"))
}

/// The check figure of the results in `out`, for a full bench run to keep: the JSON member
/// and the results.md line.
pub fn carried_over(out: &Path) -> (Option<Value>, Option<String>) {
    let member = std::fs::read_to_string(out.join("results.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("check").cloned());
    let line = std::fs::read_to_string(out.join("results.md"))
        .ok()
        .and_then(|md| md.lines().find(|l| l.starts_with(LINE)).map(str::to_string));
    (member, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_replaced_or_appended() {
        assert_eq!(with_line("# R\n\na\n", "monitor check: 1"), "# R\n\na\nmonitor check: 1\n");
        assert_eq!(
            with_line("# R\nmonitor check: 0\nb\n\n", "monitor check: 1"),
            "# R\nb\nmonitor check: 1\n"
        );
    }

    /// Rewriting results.json to update one member leaves the others' text as it was
    /// (serde_json's float_roundtrip: without it some floats came back a digit off).
    #[test]
    fn results_json_is_rewritten_byte_for_byte() {
        let text =
            std::fs::read_to_string(crate::util::workspace_root().join("docs/bench/results.json"))
                .unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string_pretty(&v).unwrap() + "\n", text);
    }
}
