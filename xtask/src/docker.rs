//! A running dockerd for the benchmarks (the tests' harness has its own).

use anyhow::{bail, Result};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn answers() -> bool {
    crate::util::succeeds(Command::new("docker").args([
        "version",
        "--format",
        "{{.Server.Version}}",
    ]))
}

/// Start `dockerd --iptables=false --bridge=none` unless one answers already.
pub fn ensure_dockerd() -> Result<()> {
    if answers() {
        return Ok(());
    }
    let log = std::fs::File::create("/tmp/monitor-bench-dockerd.log")?;
    let mut cmd = Command::new("dockerd");
    cmd.args(["--iptables=false", "--bridge=none"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !answers() {
        if Instant::now() > deadline {
            bail!("dockerd did not answer within 60 s (see /tmp/monitor-bench-dockerd.log)");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
