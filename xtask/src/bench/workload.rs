//! The bench's workloads. Each runs as its own process of fixed size: this binary re-executed
//! with the hidden `bench-workload` command ([`command`]), so that a daemon's cost shows in
//! the workload's wall time and its children are the workload's own.

use anyhow::{bail, Context, Result};
use std::process::Command;
use std::time::{Duration, Instant};

pub const WORKLOADS: &[&str] = &[
    "exec",
    "files-unwatched",
    "files-watched",
    "connect-watched",
    "connect-unwatched",
    "setuid",
    "mixed",
];

/// The paced exec scenario's generator (not one of [`WORKLOADS`]): `/bin/true` at a rate.
pub const PACED_EXEC: &str = "paced-exec";

/// Watched by the default pack (CIS 1.1.6, key docker-config).
pub const WATCHED_DIR: &str = "/etc/docker/monitor-bench";
pub const UNWATCHED_DIR: &str = "/var/tmp/monitor-bench";
const DOCKER_SOCK: &str = "/run/docker.sock";

/// Threads of the paced exec generator: one thread's fork, exec and wait of `/bin/true` take
/// most of a millisecond once audited, so two share the rate.
pub const EXEC_THREADS: u64 = 2;

/// Run one workload in this process (the hidden `bench-workload` command). With `rate`,
/// `n` events are paced at `rate` per second (the paced exec scenario), and the events done
/// and the seconds they took are printed as `events=N seconds=S`.
pub fn workload(name: &str, n: u64, rate: Option<u64>) -> Result<()> {
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
    match (name, rate) {
        (PACED_EXEC, Some(rate)) => {
            let seconds = paced_execs(n, rate)?;
            println!("events={n} seconds={seconds}");
        }
        (PACED_EXEC, None) => bail!("{PACED_EXEC} needs --rate"),
        (_, Some(_)) => bail!("only {PACED_EXEC} is paced"),
        ("exec", None) => execs(n)?,
        ("files-unwatched", None) => files(UNWATCHED_DIR, n)?,
        ("files-watched", None) => files(WATCHED_DIR, n)?,
        ("connect-watched", None) => connects(DOCKER_SOCK, n)?,
        ("connect-unwatched", None) => {
            let path = format!("{UNWATCHED_DIR}/bench.sock");
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path)?;
            std::thread::spawn(move || {
                for c in listener.incoming() {
                    drop(c)
                }
            });
            connects(&path, n)?;
        }
        ("setuid", None) => setuids(n),
        ("mixed", None) => {
            execs(n / 10)?;
            files(UNWATCHED_DIR, n / 3)?;
            files(WATCHED_DIR, n / 10)?;
            connects(DOCKER_SOCK, n / 10)?;
            setuids(n / 10);
        }
        (other, None) => bail!("unknown workload {other}"),
    }
    Ok(())
}

/// `n` runs of `/bin/true` at `rate` per second over [`EXEC_THREADS`] threads; the seconds
/// they took. A thread that falls behind runs on without sleeping, and none finishes before
/// its schedule does: the rate achieved is at most `rate`.
fn paced_execs(n: u64, rate: u64) -> Result<f64> {
    let rate = rate.max(1);
    let start = Instant::now();
    let threads: Vec<_> = (0..EXEC_THREADS)
        .map(|t| {
            // Thread t runs the events t, t + EXEC_THREADS, ...: together, every event at its time.
            let mine: Vec<u64> = (t..n).step_by(EXEC_THREADS as usize).collect();
            std::thread::spawn(move || -> Result<()> {
                let due = |i: u64| Duration::from_secs_f64(i as f64 / rate as f64);
                for i in mine {
                    if let Some(wait) = due(i).checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                    let st = Command::new("/bin/true").status()?;
                    if !st.success() {
                        bail!("/bin/true: {st}");
                    }
                }
                if let Some(wait) = due(n).checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| anyhow::anyhow!("an exec thread panicked"))??;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// To nobody and back to root: one matching event (setuid-root), no filesystem in the
/// way. Raw syscalls change only the calling thread's ids.
pub fn setuid_round_trip() {
    unsafe {
        libc::syscall(libc::SYS_setresuid, 65534, 65534, 0);
        libc::syscall(libc::SYS_setresuid, 0, 0, 0);
    }
}

/// Size of each workload relative to `size` (execs are slow, syscalls fast).
pub fn count(workload: &str, size: u64) -> u64 {
    match workload {
        "exec" => size / 10,
        "setuid" | "connect-unwatched" | "connect-watched" => size * 2,
        _ => size,
    }
    .max(1)
}

/// Wall time of one workload run.
pub fn run(name: &str, n: u64) -> Result<Duration> {
    let mut cmd = command(name, n)?;
    let start = Instant::now();
    let st = cmd.status()?;
    let took = start.elapsed();
    if !st.success() {
        bail!("workload {name} failed: {st}");
    }
    Ok(took)
}

/// The command of one workload run (this binary's hidden `bench-workload`).
pub fn command(name: &str, n: u64) -> Result<Command> {
    let mut cmd = Command::new(std::env::current_exe()?);
    // Without the library path cargo adds for its own runs: the dynamic loader would look
    // for libc in each of those directories on every exec of the storm (dozens of failed
    // opens per exec that a normal host does not make).
    cmd.args(["bench-workload", name, &n.to_string()]).env_remove("LD_LIBRARY_PATH");
    Ok(cmd)
}

/// Remove what the workloads left behind.
pub fn clean() {
    let _ = std::fs::remove_dir_all(WATCHED_DIR);
    let _ = std::fs::remove_dir_all(UNWATCHED_DIR);
}
