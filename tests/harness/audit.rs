//! The host's real audit subsystem for tests: the rule pack loaded with the real
//! `auditctl -R` (as `monitor rules export` writes it), auditd running and writing its log,
//! and everything put back afterwards.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Tests that change the kernel's audit state take this first (one at a time per binary).
pub static AUDIT: Mutex<()> = Mutex::new(());

/// The repository's rule pack files, in name order.
pub fn pack() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

/// auditctl resolves every watch's parent and every `dir=`/`exe=`/`path=` against the
/// filesystem and refuses the rule when it is missing (/etc/sysconfig on Debian,
/// /var/lib/docker before Docker first ran). Creates those directories; returns them,
/// outermost first, for removal. Kernel filesystems (/sys/fs/selinux without SELinux) are
/// not ours to create: those rules fail in auditctl, which the rule file tolerates (`-i`).
pub fn create_missing_dirs(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut needed = Vec::new();
    for file in files {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            for (i, w) in words.iter().enumerate() {
                let next = words.get(i + 1).copied().unwrap_or("");
                let dir = match *w {
                    "-w" => Path::new(next).parent().map(Path::to_path_buf),
                    _ if w.starts_with("dir=") => Some(Path::new(&w[4..]).to_path_buf()),
                    _ if w.starts_with("exe=") || w.starts_with("path=") => {
                        Path::new(w.split_once('=').unwrap().1).parent().map(Path::to_path_buf)
                    }
                    _ => None,
                };
                needed.extend(dir);
            }
        }
    }
    let mut created = Vec::new();
    for dir in needed {
        let mut missing: Vec<_> =
            dir.ancestors().take_while(|a| !a.exists()).map(Path::to_path_buf).collect();
        missing.reverse();
        for m in missing {
            if m.starts_with("/sys") || m.starts_with("/proc") {
                break;
            }
            std::fs::create_dir(&m).unwrap();
            created.push(m);
        }
    }
    created
}

/// `monitor rules export --for-host --rules FILE`, written to `dir`: the file as stock
/// auditctl takes it (the monitor's extensions left out). Returns its path.
pub fn exported(file: &Path, dir: &Path) -> PathBuf {
    let out = Command::new(crate::monitor_bin())
        .args(["rules", "export", "--for-host", "--rules"])
        .arg(file)
        .output()
        .expect("running monitor rules export");
    assert!(
        out.status.success(),
        "monitor rules export --rules {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join(format!("exported-{}", file.file_name().unwrap().to_string_lossy()));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

pub fn auditctl(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new("auditctl")
        .args(args)
        .output()
        .expect("auditctl (cargo xtask setup --test-deps installs it)")
}

fn status_field(name: &str) -> Option<String> {
    let out = auditctl(&["-s".as_ref()]);
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')).map(|v| v.trim().to_string())
    })
}

pub const LOG: &str = "/var/log/audit/audit.log";

/// The pack loaded into the kernel, auditing on, auditd writing `LOG`. Dropping it restores
/// the rules, the enabled flag and the backlog limit the host had, stops an auditd it
/// started and removes the directories it created.
pub struct AuditedHost {
    _lock: MutexGuard<'static, ()>,
    saved_rules: PathBuf,
    had_rules: bool,
    saved_enabled: String,
    saved_backlog_limit: Option<String>,
    created: Vec<PathBuf>,
    auditd: Option<Child>,
    /// Size of the log when the pack was loaded: what follows is this test's.
    pub log_start: u64,
}

impl AuditedHost {
    pub fn with_pack(scratch: &Path) -> AuditedHost {
        let lock = AUDIT.lock().unwrap_or_else(|e| e.into_inner());
        let listed = auditctl(&["-l".as_ref()]);
        assert!(listed.status.success(), "auditctl -l failed");
        let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
        let saved_rules = scratch.join("saved.rules");
        std::fs::write(&saved_rules, &listed).unwrap();
        let saved_enabled = status_field("enabled").unwrap_or_else(|| "0".into());
        let saved_backlog_limit = status_field("backlog_limit");
        // Auditing off while the rules change and no daemon reads: with it on (a host booted
        // with audit=1), every change is a record for a backlog of 64 that nobody drains,
        // and the kernel makes the callers wait for room (seconds, seen on a first run).
        auditctl(&["-e".as_ref(), "0".as_ref()]);
        // Room for the bursts the tests make, as the usual audit.rules give (`-b 8192`).
        auditctl(&["-b".as_ref(), "8192".as_ref()]);
        let files = pack();
        let created = create_missing_dirs(&files);
        let mut host = AuditedHost {
            _lock: lock,
            saved_rules,
            had_rules: listed.lines().any(|l| l.starts_with('-')),
            saved_enabled,
            saved_backlog_limit,
            created,
            auditd: None,
            log_start: 0,
        };
        auditctl(&["-D".as_ref()]);
        for f in &files {
            let f = exported(f, scratch);
            let out = auditctl(&["-R".as_ref(), f.as_os_str()]);
            assert!(
                out.status.success(),
                "auditctl -R {} failed: {}",
                f.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // auditd registers itself with the kernel: a pid in the status means one runs.
        let running = status_field("pid").is_some_and(|p| p != "0");
        if !running {
            let child = Command::new("auditd")
                .args(["-n", "-s", "enable"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting auditd (cargo xtask setup --test-deps installs it)");
            host.auditd = Some(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while status_field("pid").is_none_or(|p| p == "0") {
                assert!(Instant::now() < deadline, "auditd did not register with the kernel");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        auditctl(&["-e".as_ref(), "1".as_ref()]);
        host.log_start = std::fs::metadata(LOG).map(|m| m.len()).unwrap_or(0);
        host
    }

    /// What auditd wrote since the pack was loaded, once `until` holds for it (auditd writes
    /// asynchronously). A rotation meanwhile is followed into audit.log.1.
    pub fn log_since_start(&self, until: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.read_log();
            if until(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "auditd's log never showed the expected records:\n{}",
                &text[text.len().saturating_sub(4000)..]
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn read_log(&self) -> String {
        let current = std::fs::read(LOG).unwrap_or_default();
        let mut bytes = Vec::new();
        if (current.len() as u64) < self.log_start {
            // Rotated: the earlier part is in audit.log.1.
            let older = std::fs::read(format!("{LOG}.1")).unwrap_or_default();
            bytes.extend_from_slice(&older[(self.log_start as usize).min(older.len())..]);
            bytes.extend_from_slice(&current);
        } else {
            bytes.extend_from_slice(&current[self.log_start as usize..]);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Drop for AuditedHost {
    fn drop(&mut self) {
        // Off before the daemon goes, for the same reason as on the way in.
        auditctl(&["-e".as_ref(), "0".as_ref()]);
        if let Some(mut child) = self.auditd.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
        auditctl(&["-D".as_ref()]);
        if self.had_rules {
            auditctl(&["-R".as_ref(), self.saved_rules.as_os_str()]);
        }
        if let Some(limit) = &self.saved_backlog_limit {
            auditctl(&["-b".as_ref(), limit.as_str().as_ref()]);
        }
        auditctl(&["-e".as_ref(), self.saved_enabled.as_str().as_ref()]);
        for d in self.created.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}
