//! auditd as the bench runs it, alone or with laurel as its plugin (the JSON pipeline users
//! compare the monitor with), in a configuration of its own: `auditd -n -c DIR` with an
//! auditd.conf that is the host's with the log, the plugin directory and the dispatcher
//! queue moved or raised; laurel's plugin file, TOML and log directory (owned by a `_laurel`
//! user, created for the run when the host has none) in the same directory. The kernel's
//! audit state (rules, enabled, backlog) is saved first and put back on drop; the daemons
//! are stopped by pid and the directory removed.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::daemons;

/// The configuration's directory (removed afterwards).
const DIR: &str = "/var/tmp/monitor-bench-audit";
const LAUREL_USER: &str = "_laurel";
/// The kernel backlog for a load test: the kernel's 64 makes audited processes wait for
/// room (or drops), which no one who runs auditd under load keeps.
const BACKLOG: &str = "16384";
const BACKLOG_WAIT: &str = "60000";
/// auditd's dispatcher queue to its plugins: the largest auditd accepts (the default 2 000
/// overflows within a second of a load test, and auditd drops what does not fit).
const Q_DEPTH: &str = "99999";

/// The rules as stock auditctl loads them on this host: the monitor's own export.
pub fn exported_pack() -> Result<String> {
    crate::util::output(Command::new(daemons::monitor_bin()).args([
        "rules",
        "export",
        "--for-host",
    ]))
}

/// The host's auditd.conf with `overrides` set: each key replaced where it is, or added.
pub fn conf_with(host: &str, overrides: &[(&str, &str)]) -> String {
    let key = |line: &str| line.split_once('=').map(|(k, _)| k.trim().to_string());
    let mut out: Vec<String> = host
        .lines()
        .filter(|l| !overrides.iter().any(|(k, _)| key(l).as_deref() == Some(k)))
        .map(str::to_string)
        .collect();
    out.extend(overrides.iter().map(|(k, v)| format!("{k} = {v}")));
    out.join("\n") + "\n"
}

/// What the bench changes on the host, put back on drop: the kernel's audit state (rules,
/// enabled, backlog), the configuration directory, the `_laurel` user if the bench created it.
struct HostState {
    rules: String,
    enabled: String,
    backlog: (Option<String>, Option<String>),
    created_user: bool,
}

/// A running auditd (with laurel when asked); stopped and everything restored on drop.
pub struct Audit {
    child: Child,
    laurel: bool,
    /// The plugins auditd started (laurel), seen once running.
    plugins: Vec<u32>,
    kauditd: Option<u32>,
    /// Dropped after the daemons are stopped.
    _host: HostState,
}

fn auditctl(args: &[&str]) -> Result<String> {
    crate::util::output(Command::new("auditctl").args(args))
}

impl Audit {
    /// Load `rules` (auditctl syntax) and start auditd; with `laurel` (its binary), as
    /// auditd's plugin.
    pub fn start(rules: &str, laurel: Option<&Path>) -> Result<Audit> {
        let status = auditctl(&["-s"])?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .map(|v| v.trim().to_string())
        };
        let mut host = HostState {
            rules: auditctl(&["-l"])?,
            enabled: field("enabled").unwrap_or_else(|| "0".into()),
            backlog: (field("backlog_limit"), field("backlog_wait_time")),
            created_user: false,
        };
        let dir = Path::new(DIR);
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("plugins.d"))?;
        let host_conf = std::fs::read_to_string("/etc/audit/auditd.conf").unwrap_or_default();
        let conf = conf_with(
            &host_conf,
            &[
                ("log_file", &dir.join("audit.log").display().to_string()),
                ("plugin_dir", &dir.join("plugins.d").display().to_string()),
                ("q_depth", Q_DEPTH),
                // One file per run, counted afterwards: no rotation in between.
                ("max_log_file_action", "IGNORE"),
            ],
        );
        write_private(&dir.join("auditd.conf"), &conf)?;
        if let Some(bin) = laurel {
            host.created_user = ensure_user()?;
            let logs = dir.join("laurel");
            std::fs::create_dir_all(&logs)?;
            crate::util::run(Command::new("chown").arg(LAUREL_USER).arg(&logs))?;
            let toml = dir.join("laurel.toml");
            write_private(&toml, &format!("directory = \"{}\"\nuser = \"{LAUREL_USER}\"\n\n[auditlog]\nfile = \"audit.log\"\n# One file per run, counted afterwards.\nsize = 10000000000\ngenerations = 1\n", logs.display()))?;
            write_private(
                &dir.join("plugins.d/laurel.conf"),
                &format!("active = yes\ndirection = out\ntype = always\nformat = string\npath = {}\nargs = --config {}\n", bin.display(), toml.display()),
            )?;
        }
        // Off while the rules change (no records for a backlog nobody drains yet).
        auditctl(&["-e", "0"])?;
        auditctl(&["-D"])?;
        auditctl(&["-b", BACKLOG, "--backlog_wait_time", BACKLOG_WAIT])?;
        let file = dir.join("bench.rules");
        std::fs::write(&file, rules)?;
        crate::util::output(Command::new("auditctl").arg("-R").arg(&file))
            .context("loading the rules with auditctl -R")?;
        let loaded = auditctl(&["-l"])?.lines().filter(|l| l.starts_with('-')).count();
        eprintln!(
            "xtask: auditd{}: {loaded} rules loaded into the kernel",
            if laurel.is_some() { " + laurel" } else { "" }
        );
        let child = Command::new("auditd")
            .args(["-n", "-s", "enable", "-c", DIR])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting auditd")?;
        let mut audit = Audit {
            child,
            laurel: laurel.is_some(),
            plugins: Vec::new(),
            kauditd: daemons::kauditd(),
            _host: host,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while audit.laurel && audit.plugins.is_empty() {
            if Instant::now() > deadline {
                bail!("auditd did not start laurel within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
            audit.plugins = daemons::children(audit.pid());
        }
        std::thread::sleep(Duration::from_millis(300));
        if let Some(st) = audit.child.try_wait()? {
            bail!("auditd -n -c {DIR} exited at start: {st}");
        }
        auditctl(&["-e", "1"])?;
        Ok(audit)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds so far of auditd, its plugins and the kernel's `kauditd` thread.
    pub fn cpu_seconds(&self) -> f64 {
        std::iter::once(self.pid())
            .chain(self.plugins.iter().copied())
            .chain(self.kauditd)
            .map(daemons::cpu_seconds)
            .sum()
    }

    /// Peak resident memory of auditd and its plugins, summed (KiB).
    pub fn peak_rss_kib(&self) -> u64 {
        std::iter::once(self.pid())
            .chain(self.plugins.iter().copied())
            .filter_map(daemons::peak_rss_kib)
            .sum()
    }

    /// The log users read: laurel's JSON lines, or auditd's own log.
    fn output(&self) -> PathBuf {
        Path::new(DIR).join(if self.laurel { "laurel/audit.log" } else { "audit.log" })
    }

    /// Bytes written to [`Self::output`] so far (it grows until the daemons are drained).
    pub fn output_len(&self) -> u64 {
        std::fs::metadata(self.output()).map(|m| m.len()).unwrap_or(0)
    }

    /// Exec records of children of `ppid` with key `key` in the output.
    pub fn exec_records(&self, key: &str, ppid: u32) -> Result<u64> {
        let text = std::fs::read_to_string(self.output())
            .with_context(|| format!("reading {}", self.output().display()))?;
        Ok(if self.laurel {
            laurel_exec_records(&text, key, ppid)
        } else {
            auditd_exec_records(&text, key, ppid)
        })
    }
}

/// `type=SYSCALL` records of execve with `key` and `ppid` in an auditd log.
pub fn auditd_exec_records(log: &str, key: &str, ppid: u32) -> u64 {
    let (key, ppid) = (format!(" key=\"{key}\""), format!(" ppid={ppid} "));
    log.lines()
        .filter(|l| {
            l.starts_with("type=SYSCALL ")
                && l.contains(" syscall=59 ")
                && l.contains(&key)
                && l.contains(&ppid)
        })
        .count() as u64
}

/// laurel's events (one JSON object a line) whose SYSCALL is an execve with `key` and `ppid`.
pub fn laurel_exec_records(log: &str, key: &str, ppid: u32) -> u64 {
    let needle = format!("\"ppid\":{ppid},");
    log.lines()
        .filter(|l| l.contains(&needle))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            let s = &v["SYSCALL"];
            s["syscall"] == 59
                && s["ppid"] == ppid
                && (s["key"] == key
                    || s["key"].as_array().is_some_and(|k| k.iter().any(|k| k == key)))
        })
        .count() as u64
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Create the `_laurel` system user when missing; whether it was created.
fn ensure_user() -> Result<bool> {
    if crate::util::succeeds(Command::new("id").arg(LAUREL_USER)) {
        return Ok(false);
    }
    crate::util::run(Command::new("useradd").args([
        "--system",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        LAUREL_USER,
    ]))?;
    Ok(true)
}

impl Drop for Audit {
    fn drop(&mut self) {
        let _ = auditctl(&["-e", "0"]);
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        // auditd stops its plugins; one that outlived it is stopped here, by pid.
        for &p in &self.plugins {
            let alive = || Path::new(&format!("/proc/{p}")).exists();
            let deadline = Instant::now() + Duration::from_secs(5);
            while alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if alive() {
                unsafe { libc::kill(p as i32, libc::SIGKILL) };
            }
        }
    }
}

impl Drop for HostState {
    fn drop(&mut self) {
        let _ = auditctl(&["-e", "0"]);
        let _ = auditctl(&["-D"]);
        if self.rules.lines().any(|l| l.starts_with('-')) {
            let f = std::env::temp_dir().join("monitor-bench-saved.rules");
            if std::fs::write(&f, &self.rules).is_ok() {
                let _ = Command::new("auditctl").arg("-R").arg(&f).output();
                let _ = std::fs::remove_file(&f);
            }
        }
        if let (Some(limit), Some(wait)) = &self.backlog {
            let _ = auditctl(&["-b", limit, "--backlog_wait_time", wait]);
        }
        let _ = auditctl(&["-e", &self.enabled]);
        let _ = std::fs::remove_dir_all(DIR);
        if self.created_user {
            let _ = Command::new("userdel").arg(LAUREL_USER).output();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_conf_keeps_its_settings_with_the_overrides_in_place() {
        let host = "# comment\nlog_file = /var/log/audit/audit.log\nflush = INCREMENTAL_ASYNC\nq_depth = 2000\n";
        let conf = conf_with(
            host,
            &[("log_file", "/x/audit.log"), ("q_depth", "99999"), ("plugin_dir", "/x/plugins.d")],
        );
        assert_eq!(conf, "# comment\nflush = INCREMENTAL_ASYNC\nlog_file = /x/audit.log\nq_depth = 99999\nplugin_dir = /x/plugins.d\n");
    }

    #[test]
    fn exec_records_are_counted_by_key_and_parent() {
        let log = "type=SYSCALL msg=audit(1.5:7): arch=c000003e syscall=59 success=yes exit=0 items=2 ppid=42 pid=43 comm=\"true\" key=\"exec\"ARCH=x86_64\n\
type=EXECVE msg=audit(1.5:7): argc=1 a0=\"true\"\n\
type=SYSCALL msg=audit(1.5:8): arch=c000003e syscall=59 success=yes exit=0 items=2 ppid=420 pid=44 comm=\"true\" key=\"exec\"\n\
type=SYSCALL msg=audit(1.5:9): arch=c000003e syscall=59 success=yes exit=0 items=2 ppid=42 pid=45 comm=\"true\" key=\"other\"\n\
type=SYSCALL msg=audit(1.5:10): arch=c000003e syscall=257 success=yes exit=3 items=1 ppid=42 pid=46 comm=\"true\" key=\"exec\"\n";
        assert_eq!(auditd_exec_records(log, "exec", 42), 1);
        let laurel = r#"{"ID":"1.5:7","SYSCALL":{"syscall":59,"ppid":42,"pid":43,"key":"exec"}}
{"ID":"1.5:8","SYSCALL":{"syscall":59,"ppid":420,"pid":44,"key":"exec"}}
{"ID":"1.5:9","SYSCALL":{"syscall":59,"ppid":42,"pid":45,"key":["other","exec"]}}
{"ID":"1.5:10","SYSCALL":{"syscall":257,"ppid":42,"pid":46,"key":"exec"}}
not json "ppid":42,
"#;
        assert_eq!(laurel_exec_records(laurel, "exec", 42), 2);
    }
}
