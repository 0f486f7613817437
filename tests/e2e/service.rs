//! The binary under the environment packaging/monitor.service gives it, without systemd
//! (PID 1 is not systemd here): root with the unit's `CapabilityBoundingSet` and
//! `NoNewPrivileges` (setpriv), every mount read-only but a writable directory and the API
//! file systems (`ProtectSystem=strict`, `ProtectHome=read-only`, `ProtectKernelTunables`,
//! emulated in a private mount namespace), stdin from /dev/null, its settings from the
//! packaged monitor.toml as an admin would edit it (rules and outputs). It must start,
//! alert with full process context to stdout (the journal) and to a file, reopen the file
//! on SIGUSR1 (logrotate's postrotate), reload on SIGHUP (the unit's `ExecReload`) and
//! stop with exit 0 on SIGTERM; the audit source must start under the same capabilities.

use monitor_tests::{die_with_parent, json_lines, monitor_bin, privileged, s, scratch_dir};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

fn unit_text() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/monitor.service"),
    )
    .unwrap()
}

/// The values of `Key=` in the unit's [Service] section.
fn service_key(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .skip_while(|l| l.trim() != "[Service]")
        .take_while(|l| !l.starts_with("[Install]"))
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().to_string())
        .collect()
}

/// The unit's capabilities as setpriv names them: CAP_SYS_PTRACE → sys_ptrace.
fn unit_caps(unit: &str) -> Vec<String> {
    let set = service_key(unit, "CapabilityBoundingSet");
    assert_eq!(set.len(), 1, "one CapabilityBoundingSet line");
    set[0].split_whitespace().map(|c| c.trim_start_matches("CAP_").to_ascii_lowercase()).collect()
}

/// Makes every mount read-only in a private mount namespace but `$1` and /dev and /proc,
/// then runs the rest of the arguments.
const SANDBOX: &str = r#"set -e
w="$1"; shift
mount --bind "$w" "$w"
for mp in $(awk '{print $5}' /proc/self/mountinfo); do
  case "$mp" in /proc|/proc/*|/dev|/dev/*|"$w") continue;; esac
  mount -o remount,bind,ro "$mp" 2>/dev/null || echo "sandbox: $mp stays writable" >&2
done
exec "$@"
"#;

struct Service {
    child: Child,
    lines: Receiver<Value>,
    seen: Vec<Value>,
}

/// `dir/rules.d` with one rules file of `text`, as the packaged settings name a directory.
fn rules_d(dir: &Path, text: &str) -> PathBuf {
    let rules = dir.join("rules.d");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("test.rules"), text).unwrap();
    rules
}

/// packaging/monitor.toml with `rules` and `output.targets` set, as an admin edits it,
/// written into `dir`.
fn settings(dir: &Path, rules: &Path, targets: &[String]) -> PathBuf {
    let packaged = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/monitor.toml"),
    )
    .unwrap();
    let rules_line = r#"rules = ["/etc/monitor/rules.d"]"#;
    let targets_line = r#"#targets = ["stdout"]"#;
    assert!(packaged.contains(rules_line) && packaged.contains(targets_line), "{packaged}");
    let quoted: Vec<String> = targets.iter().map(|t| format!("{t:?}")).collect();
    let text = packaged
        .replace(rules_line, &format!("rules = [{:?}]", rules.display().to_string()))
        .replace(targets_line, &format!("targets = [{}]", quoted.join(", ")));
    let file = dir.join("monitor.toml");
    std::fs::write(&file, text).unwrap();
    file
}

impl Service {
    /// Start ExecStart (the monitor's path substituted) with `--config settings` in the
    /// unit's environment.
    fn start(writable: &Path, settings: &Path, extra: &[&str]) -> Service {
        let unit = unit_text();
        let exec = service_key(&unit, "ExecStart");
        let mut argv: Vec<String> = exec[0].split_whitespace().map(String::from).collect();
        assert_eq!(
            argv,
            ["/usr/sbin/monitor", "run"],
            "ExecStart runs the installed binary, settings from the file"
        );
        argv[0] = monitor_bin().to_string_lossy().into_owned();
        argv.extend(["--config".to_string(), settings.to_string_lossy().into_owned()]);
        argv.extend(extra.iter().map(|s| s.to_string()));
        let caps: Vec<String> = unit_caps(&unit).iter().map(|c| format!("+{c}")).collect();
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c", SANDBOX, "sandbox"])
            .arg(writable);
        cmd.args([
            "setpriv",
            &format!("--bounding-set=-all,{}", caps.join(",")),
            "--inh-caps=-all",
        ]);
        if service_key(&unit, "NoNewPrivileges") == ["yes"] {
            cmd.arg("--no-new-privs");
        }
        cmd.arg("--").args(&argv);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().expect("starting the monitor in the sandbox");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut s = Service { child, lines, seen: Vec::new() };
        s.wait_for(|v| s_action(v) == "monitor-start", Duration::from_secs(90));
        s
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The first line (already seen or coming) that `pred` accepts.
    fn wait_for(&mut self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Value {
        if let Some(v) = self.seen.iter().find(|v| pred(v)) {
            return v.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(e) => {
                    let status = self.child.try_wait();
                    panic!(
                        "no such line within {timeout:?} ({e}; monitor {status:?}); seen:\n{:#?}",
                        self.seen
                    )
                }
            }
        }
    }

    fn signal(&self, sig: i32) {
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    /// SIGTERM; returns the exit code.
    fn stop(mut self) -> (Option<i32>, Vec<Value>) {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(90);
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "the monitor did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(v) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(v);
        }
        (status.code(), self.seen)
    }
}

fn s_action(v: &Value) -> &str {
    v["event"]["action"].as_str().unwrap_or_default()
}

/// Capability names in a CapBnd mask, as capsh decodes them (cap_bpf, ...).
fn decode_caps(hex: &str) -> Vec<String> {
    let out = Command::new("capsh").arg(format!("--decode={hex}")).output().expect("capsh");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut caps: Vec<String> = text
        .trim()
        .split('=')
        .nth(1)
        .unwrap_or_default()
        .split(',')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect();
    caps.sort();
    caps
}

#[test]
fn the_unit_parses_with_systemd_analyze() {
    // The installed unit is verified by tests/e2e/package.rs; here the repository's, with
    // what only an installation provides (the binary, the man page) pointed elsewhere.
    let dir = scratch_dir("service-verify");
    let text = unit_text()
        .replace("/usr/sbin/monitor", &monitor_bin().to_string_lossy())
        .replace("Documentation=man:monitor(8) ", "Documentation=");
    let unit = dir.join("monitor.service");
    std::fs::write(&unit, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze (cargo xtask setup --test-deps)");
    let said =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "{}: {said}", out.status);
    let unit = unit_text();
    for (key, want) in [
        ("Restart", "on-failure"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "read-only"),
    ] {
        assert_eq!(service_key(&unit, key), [want], "{key}");
    }
}

#[test]
fn under_the_units_capabilities_and_sandbox_it_alerts_reloads_and_stops_cleanly() {
    if !privileged() {
        return;
    }
    let dir = scratch_dir("service");
    let watched = dir.join("watched");
    std::fs::create_dir_all(&watched).unwrap();
    let rules = rules_d(&dir, &format!("-w {} -p wa -k svc\n", watched.display()));
    let capture = dir.join("capture.bin");
    let alerts = dir.join("log/alerts.json");
    std::fs::create_dir_all(alerts.parent().unwrap()).unwrap();
    let settings = settings(&dir, &rules, &["stdout".into(), format!("file:{}", alerts.display())]);
    // A root process with every capability, started before the monitor, writes once it
    // runs: its executable is read from /proc/PID/exe (CAP_SYS_PTRACE).
    let marker = watched.join("from-before");
    let early = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "while [ ! -e {go} ]; do sleep 0.1; done; echo x > {marker}",
            go = dir.join("go").display(),
            marker = marker.display()
        ))
        .spawn()
        .unwrap();

    let mut svc = Service::start(
        &dir,
        &settings,
        &["--capture", capture.to_str().unwrap(), "--heartbeat", "1"],
    );
    // The bounding set is the unit's.
    let status = std::fs::read_to_string(format!("/proc/{}/status", svc.pid())).unwrap();
    let bnd = status.lines().find_map(|l| l.strip_prefix("CapBnd:")).unwrap().trim().to_string();
    let mut want: Vec<String> =
        unit_caps(&unit_text()).iter().map(|c| format!("cap_{c}")).collect();
    want.sort();
    assert_eq!(decode_caps(&bnd), want);
    assert!(status.lines().any(|l| l == "NoNewPrivs:\t1"), "{status}");
    // The sandbox is real: outside the writable directory, nothing can be written.
    let ro = Command::new("nsenter")
        .args(["-t", &svc.pid().to_string(), "-m", "touch", "/var/tmp/monitor-service-test"])
        .output()
        .unwrap();
    assert!(
        !ro.status.success()
            && String::from_utf8_lossy(&ro.stderr).contains("Read-only file system"),
        "{ro:?}"
    );

    std::fs::write(dir.join("go"), "").unwrap();
    let mut early = early;
    assert!(early.wait().unwrap().success());
    let alert = svc.wait_for(
        |v| s(v, "event.kind") == "alert" && v["file"]["path"] == marker.to_str().unwrap(),
        Duration::from_secs(10),
    );
    let sh = std::fs::canonicalize("/bin/sh").unwrap();
    assert_eq!(s(&alert, "process.executable"), sh.to_str().unwrap(), "{alert}");
    assert_eq!(s(&alert, "rule.id"), "svc", "{alert}");
    // The file output has the same line.
    let in_file = |path: &Path| json_lines(&std::fs::read_to_string(path).unwrap_or_default());
    assert!(in_file(&alerts).contains(&alert), "the alert is in {}", alerts.display());

    // logrotate's way: rename, then SIGUSR1; the record of the reopen starts the new file.
    let rotated = dir.join("log/alerts.json.0");
    std::fs::rename(&alerts, &rotated).unwrap();
    svc.signal(libc::SIGUSR1);
    let reopened = svc.wait_for(|v| s_action(v) == "outputs-reopened", Duration::from_secs(10));
    assert_eq!(in_file(&alerts).first(), Some(&reopened), "the new file starts with the record");
    assert!(!in_file(&rotated).contains(&reopened));

    // ExecReload: SIGHUP reloads the rules.
    svc.signal(libc::SIGHUP);
    svc.wait_for(|v| s_action(v) == "rules-reloaded", Duration::from_secs(10));
    let (code, lines) = svc.stop();
    assert_eq!(code, Some(0), "SIGTERM is a clean stop");
    assert_eq!(s_action(lines.last().unwrap()), "monitor-stop");
    assert!(
        std::fs::metadata(&capture).unwrap().len() > 0,
        "the capture was written in the writable directory"
    );
}

#[test]
fn the_audit_source_starts_under_the_same_capabilities() {
    if !privileged() {
        return;
    }
    let dir = scratch_dir("service-audit");
    let rules = rules_d(&dir, "-w /etc/docker -p wa -k docker\n");
    let svc =
        Service::start(&dir, &settings(&dir, &rules, &["stdout".into()]), &["--source", "audit"]);
    let (code, lines) = svc.stop();
    assert_eq!(code, Some(0));
    assert_eq!(s_action(&lines[0]), "monitor-start");
    // The unit's capabilities include sending the probe that proves the record path: it
    // came back, unless auditing is off on this host.
    let proof = lines[0]["monitor"]["start"]["source_proof"].as_str().unwrap_or_default();
    assert!(
        proof.starts_with("proven: ") || proof == "not proven: auditing is disabled",
        "{}",
        lines[0]
    );
    assert_eq!(s_action(lines.last().unwrap()), "monitor-stop");
}
