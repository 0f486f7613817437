//! The `monitor` command line: exit codes and one-line errors a user or a service manager
//! acts on, the rule-pack checks (ours and the real auditctl's), and the settings file (`config`).

#[path = "cli/config.rs"]
mod config;
#[path = "cli/readme.rs"]
mod readme;

use monitor_tests::audit::{create_missing_dirs, exported, pack, AUDIT};
use monitor_tests::{
    monitor_bin, privileged, privileged_turn, s, scratch_dir, write_file, Monitor,
};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

fn monitor(args: &[&str]) -> Output {
    Command::new(monitor_bin()).args(args).output().expect("running monitor")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_syntax_error_names_file_and_line_and_loads_nothing() {
    let bad = write_file(
        &scratch_dir("cli-bad"),
        "bad.rules",
        "# ok\n-w /etc/docker -k docker\n-a always,exit -F arch=b64 -S nosuchcall -k x\n",
    );
    let o = monitor(&["rules", "check", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "invalid rules: {}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&format!("{}:3:", bad.display())), "{err}");
    assert!(err.contains("nothing loaded"), "{err}");
    if privileged() {
        // `run` refuses before loading any program.
        let o = monitor(&["run", "--rules", bad.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(3), "invalid rules: {}", stderr(&o));
        assert!(stderr(&o).contains(&format!("{}:3:", bad.display())), "{}", stderr(&o));
    }
}

#[test]
fn a_missing_rules_file_is_a_clear_error() {
    let o = monitor(&["rules", "check", "/nonexistent/monitor.rules"]);
    assert_eq!(o.status.code(), Some(3), "missing rules");
    let err = stderr(&o);
    assert!(err.contains("/nonexistent/monitor.rules"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn not_root_is_refused_with_one_line() {
    if !privileged() {
        return;
    }
    let o = Command::new(monitor_bin())
        .arg("run")
        .uid(65534)
        .gid(65534)
        .output()
        .expect("running monitor as nobody");
    assert_eq!(o.status.code(), Some(5), "not privileged: {}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("root"), "{err}");
    assert!(o.stdout.is_empty());
}

/// `monitor run` in a private mount namespace that `change` alters first (a host without a
/// piece the monitor needs); asserts the documented refusal: exit 4, one line on stderr,
/// nothing on stdout. Returns that line.
fn run_refused_in_private_mounts(name: &str, change: fn() -> std::io::Result<()>) -> String {
    let dir = scratch_dir(name);
    let rules = dir.join("t.rules");
    std::fs::write(&rules, "-w /etc/docker -k docker-config\n").unwrap();
    let mut cmd = Command::new(monitor_bin());
    cmd.arg("run").arg("--rules").arg(&rules);
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let flags = libc::MS_REC | libc::MS_PRIVATE;
            if libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                flags,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            change()
        });
    }
    let o = cmd.output().expect("running monitor in a private mount namespace");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(4), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(o.stdout.is_empty());
    err
}

#[test]
fn tracefs_missing_and_not_mountable_is_exit_4_with_one_line() {
    if !privileged() {
        return;
    }
    // No tracefs (nor debugfs), and no CAP_SYS_ADMIN to mount it: the state of a
    // locked-down host where tracefs was never mounted.
    let err = run_refused_in_private_mounts("cli-tracefs", || unsafe {
        for dir in [c"/sys/kernel/tracing", c"/sys/kernel/debug"] {
            // Mounts may be stacked: take them all off.
            for _ in 0..8 {
                if libc::umount2(dir.as_ptr(), libc::MNT_DETACH) != 0 {
                    break;
                }
            }
        }
        const CAP_SYS_ADMIN: libc::c_ulong = 21;
        if libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    });
    assert!(err.contains("tracefs is not mounted") && err.contains("mount -t tracefs"), "{err}");
}

#[test]
fn no_kernel_btf_is_exit_4_with_one_line() {
    if !privileged() {
        return;
    }
    // /sys/kernel/btf as an empty tmpfs: what a kernel built without CONFIG_DEBUG_INFO_BTF
    // shows.
    let err = run_refused_in_private_mounts("cli-btf", || unsafe {
        if libc::mount(
            c"none".as_ptr(),
            c"/sys/kernel/btf".as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    });
    assert!(err.contains("BTF") && err.contains("CONFIG_DEBUG_INFO_BTF"), "{err}");
    // The host's BTF is untouched.
    assert!(Path::new("/sys/kernel/btf/vmlinux").exists());
}

#[test]
fn the_default_pack_checks_clean() {
    let o = monitor(&["rules", "check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for key in ["docker-socket", "docker-daemon", "docker-config", "setuid-root"] {
        assert!(out.contains(key), "key {key} missing from:\n{out}");
    }
}

/// The rule files of the default pack.
#[test]
fn the_default_pack_loads_in_the_real_auditctl() {
    let Some(_lock) = privileged_turn(&AUDIT) else { return };
    let before = Command::new("auditctl")
        .arg("-l")
        .output()
        .expect("auditctl (cargo xtask setup --test-deps installs it)");
    assert!(before.status.success());
    // Whatever the host had is put back afterwards.
    let saved = scratch_dir("cli-audit").join("saved.rules");
    let before = String::from_utf8_lossy(&before.stdout).into_owned();
    let had_rules = before.lines().any(|l| l.starts_with('-'));
    std::fs::write(&saved, &before).unwrap();
    let auditctl =
        |args: &[&std::ffi::OsStr]| Command::new("auditctl").args(args).output().unwrap();
    // The community-style set changes the backlog, failure and rate settings: put back too.
    let status = String::from_utf8_lossy(&auditctl(&["-s".as_ref()]).stdout).into_owned();
    let setting = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ').map(str::to_string))
            .unwrap()
    };
    let restore: Vec<(&str, String)> = [
        ("-b", "backlog_limit"),
        ("-f", "failure"),
        ("-r", "rate_limit"),
        ("--backlog_wait_time", "backlog_wait_time"),
        ("-e", "enabled"),
    ]
    .iter()
    .map(|(opt, name)| (*opt, setting(name)))
    .collect();
    // First on this host as it is: auditctl resolves every watch's parent and every `dir=`
    // against the filesystem and stops at the first rule whose directory is missing
    // (/etc/sysconfig on Debian, /sys/fs/selinux without SELinux); `--for-host` leaves
    // those out, as comments, so that every shipped file loads whole.
    // Each file of the pack exported into `dir`, loaded alone: (file, `-R` output, `-l` output).
    let load_each = |dir: &Path| -> Vec<_> {
        pack()
            .iter()
            .map(|file| {
                let file = exported(file, dir);
                auditctl(&["-D".as_ref()]);
                let loaded = auditctl(&["-R".as_ref(), file.as_os_str()]);
                (file, loaded, auditctl(&["-l".as_ref()]))
            })
            .collect()
    };
    let for_host = load_each(&scratch_dir("cli-export-as-is"));
    // Then with such directories created (removed after), as on a host that has them:
    // nothing is left out but the monitor's own extensions.
    let created = create_missing_dirs(&pack());
    // Each file as `monitor rules export --for-host` writes it (the monitor's extensions
    // left out: auditd has no parent_exe=), which is what an admin loads into auditd.
    let results = load_each(&scratch_dir("cli-export"));
    let community = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/community.rules");
    let community_dirs = create_missing_dirs(std::slice::from_ref(&community));
    let community_loaded = auditctl(&["-R".as_ref(), community.as_os_str()]);
    let community_listed = auditctl(&["-l".as_ref()]);
    auditctl(&["-D".as_ref()]);
    if had_rules {
        auditctl(&["-R".as_ref(), saved.as_os_str()]);
    }
    for (opt, value) in &restore {
        auditctl(&[opt.as_ref(), value.as_str().as_ref()]);
    }
    for d in created.iter().chain(&community_dirs).rev() {
        let _ = std::fs::remove_dir(d);
    }
    let mut left_out = 0;
    for (file, loaded, listed) in for_host {
        let err = stderr(&loaded);
        assert!(
            loaded.status.success() && !err.contains("rror"),
            "auditctl -R {} on this host: {err}",
            file.display()
        );
        let ours = std::fs::read_to_string(&file).unwrap();
        let rules =
            ours.lines().filter(|l| ["-w ", "-a ", "-A "].iter().any(|p| l.starts_with(p))).count();
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert_eq!(
            listed.lines().filter(|l| l.starts_with('-')).count(),
            rules,
            "every rule of {} loaded:\n{listed}",
            file.display()
        );
        left_out += ours.lines().filter(|l| l.starts_with("# not on this host")).count();
    }
    assert!(left_out > 0, "this host lacks /etc/sysconfig: a rule was left out for it");
    // `-c`/`-i` in the file let auditctl go on after an error, so its stderr is the verdict.
    assert!(
        community_loaded.status.success() && !stderr(&community_loaded).contains("error"),
        "auditctl -R fixtures/community.rules: {}",
        stderr(&community_loaded)
    );
    let listed = String::from_utf8_lossy(&community_listed.stdout);
    let ours = monitor(&["rules", "list", "--rules", community.to_str().unwrap()]);
    assert!(ours.status.success(), "{}", stderr(&ours));
    assert_eq!(
        listed.lines().filter(|l| l.starts_with('-')).count(),
        String::from_utf8_lossy(&ours.stdout).lines().count(),
        "auditctl and monitor hold as many rules:\n{listed}"
    );
    for (file, loaded, listed) in results {
        assert!(
            loaded.status.success(),
            "auditctl -R {} failed:\n{}{}",
            file.display(),
            stderr(&loaded),
            String::from_utf8_lossy(&loaded.stdout)
        );
        let listed = String::from_utf8_lossy(&listed.stdout);
        let ours = std::fs::read_to_string(&file).unwrap();
        let rules: Vec<&str> = ours
            .lines()
            .map(str::trim_start)
            .filter(|l| ["-w ", "-a ", "-A "].iter().any(|p| l.starts_with(p)))
            .collect();
        // A watch on a kernel filesystem this kernel lacks (selinuxfs without SELinux) is
        // refused by the kernel; its file says `-i` so auditctl reports it and goes on.
        let unplaceable = rules
            .iter()
            .filter_map(|l| l.strip_prefix("-w ")?.split_whitespace().next())
            .filter(|p| p.starts_with("/sys/") && !Path::new(p).parent().unwrap().exists())
            .count();
        assert_eq!(
            stderr(&loaded).matches("There was an error").count(),
            unplaceable,
            "auditctl -R {}: {}",
            file.display(),
            stderr(&loaded)
        );
        let active = listed.lines().filter(|l| l.starts_with('-')).count();
        assert_eq!(
            active,
            rules.len() - unplaceable,
            "auditctl -l after {}:\n{listed}",
            file.display()
        );
        // Nothing else was left out than what the export says it left out.
        let original = pack()
            .into_iter()
            .find(|p| {
                file.ends_with(format!("exported-{}", p.file_name().unwrap().to_string_lossy()))
            })
            .unwrap();
        let written = std::fs::read_to_string(&original)
            .unwrap()
            .lines()
            .filter(|l| ["-w ", "-a ", "-A "].iter().any(|p| l.trim_start().starts_with(p)))
            .count();
        let commented = ours
            .lines()
            .filter(|l| l.starts_with("# monitor only") || l.starts_with("# not on this host"))
            .count();
        assert_eq!(
            rules.len() + commented,
            written,
            "{}: rules lost in the export:\n{ours}",
            file.display()
        );
    }
}

/// Resident KiB of a process's BPF map mappings: the ring buffer's (the only map the
/// monitor maps into memory).
fn bpf_map_rss_kib(pid: u32) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap();
    let mut in_map = false;
    let mut kib = 0;
    for line in smaps.lines() {
        if let Some(rss) = line.strip_prefix("Rss:") {
            if in_map {
                kib += rss.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap();
            }
        } else if line.split_whitespace().next().is_some_and(|f| {
            f.contains('-') && f.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        }) {
            in_map = line.ends_with("anon_inode:bpf-map");
        }
    }
    kib
}

#[test]
fn the_ring_buffer_has_the_size_asked_and_a_size_the_kernel_refuses_is_a_clear_error() {
    for (size, why) in [
        ("3M", "3M is not a power of two, which the kernel requires: 2M or 4M"),
        ("1024", "smaller than a page"),
        ("4Q", "unknown unit"),
    ] {
        let o = monitor(&["run", "--ring-buffer-size", size]);
        assert!(!o.status.success(), "{size} accepted");
        assert!(stderr(&o).contains(why), "{size}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("--ring-buffer-size"),
            "the error names the option: {}",
            stderr(&o)
        );
    }
    if !privileged() {
        return;
    }
    let dir = scratch_dir("cli-ring");
    let rules = dir.join("ring.rules");
    std::fs::create_dir_all(dir.join("watched")).unwrap();
    std::fs::write(&rules, format!("-w {}/watched -p w -k ring\n", dir.display())).unwrap();
    for (arg, kib) in [("64K", 64), ("256K", 256), ("1M", 1024)] {
        let m = Monitor::start_args(&[&rules], &["--heartbeat", "0", "--ring-buffer-size", arg]);
        // The data pages mapped once, plus the consumer and producer pages.
        let mapped = bpf_map_rss_kib(m.pid());
        assert!(
            (kib..kib + 64).contains(&mapped),
            "--ring-buffer-size {arg}: {mapped} KiB of map mappings"
        );
        // Records of every length go round the buffer many times: each one that crosses
        // its end is put back together, byte for byte.
        let mut want = Vec::new();
        for batch in 0..10 {
            for i in 0..40 {
                let n = batch * 40 + i;
                let f = format!("{}/watched/{arg}-{n}-{}", dir.display(), "x".repeat(n % 200));
                std::fs::write(&f, "x").unwrap();
                want.push(f);
            }
            let last = want.last().unwrap().clone();
            m.wait_for(&last, |a| s(a, "file.path") == last);
        }
        let prefix = format!("{}/watched/{arg}-", dir.display());
        let got: Vec<String> = m
            .matching(|a| s(a, "file.path").starts_with(&prefix))
            .iter()
            .map(|a| s(a, "file.path").to_string())
            .collect();
        let got: Vec<String> = got.into_iter().fold(Vec::new(), |mut v, p| {
            // A write may alert for the open and the write: one path once.
            if v.last() != Some(&p) {
                v.push(p);
            }
            v
        });
        let first_bad = (0..want.len().max(got.len())).find(|&i| got.get(i) != want.get(i));
        assert_eq!(
            first_bad.map(|i| (i, got.get(i))),
            None,
            "--ring-buffer-size {arg}: every record intact and in order ({} alerts, {} writes)",
            got.len(),
            want.len()
        );
        assert_eq!(m.stop(libc::SIGTERM), "exit status: 0");
    }
}

#[test]
fn sigterm_and_sigint_stop_cleanly_after_draining() {
    if !privileged() {
        return;
    }
    for (name, signal) in [("sigterm", libc::SIGTERM), ("sigint", libc::SIGINT)] {
        let dir = scratch_dir(&format!("cli-{name}"));
        let rules = dir.join("stop.rules");
        std::fs::write(&rules, format!("-w {}/watched -p w -k stop\n", dir.display())).unwrap();
        std::fs::create_dir(dir.join("watched")).unwrap();
        let m = Monitor::start(&rules);
        // Written right before the signal: still reported (the ring is drained on stop).
        let f = dir.join("watched/last").display().to_string();
        std::fs::write(&f, "x").unwrap();
        let exit = m.stop(signal);
        assert_eq!(exit, "exit status: 0", "{name}: {:?}", m.stderr());
        assert_eq!(m.matching(|a| s(a, "file.path") == f).len(), 1, "{name}: last write lost");
        assert!(
            m.stderr().iter().any(|l| l.contains(&name.to_uppercase())),
            "{name}: {:?}",
            m.stderr()
        );
    }
}

/// Replay progress goes to a terminal and nowhere else: under a pseudo-terminal (util-linux
/// `script`) stderr shows "replay: N% of M MiB" and clears it before the summary; through a
/// pipe it never appears.
#[test]
fn replay_progress_shows_on_a_terminal_only() {
    let dir = scratch_dir("cli-progress");
    let log = dir.join("audit.log");
    let mut text = String::new();
    for i in 0..20_000u64 {
        text.push_str(&format!(
            "type=SYSCALL msg=audit(1700000000.{:03}:{i}): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=1 a2=241 a3=1b6 items=1 ppid=1 pid=42 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm=\"sh\" exe=\"/bin/sh\" key=(null)\n\
             type=PATH msg=audit(1700000000.{:03}:{i}): item=0 name=\"/etc/docker/f{i}\" inode=1 dev=fe:00 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=CREATE\n\
             type=EOE msg=audit(1700000000.{:03}:{i}):\n",
            i % 1000,
            i % 1000,
            i % 1000
        ));
    }
    std::fs::write(&log, text).unwrap();
    let rules = dir.join("p.rules");
    std::fs::write(&rules, "-w /etc/docker -p wa -k docker-config\n").unwrap();
    let replay = format!(
        "{} replay --format auditd --rules {} {} > /dev/null",
        monitor_bin().display(),
        rules.display(),
        log.display()
    );
    // `script -q -e -c CMD /dev/null`: CMD on a new pty, whose output script copies to stdout.
    let tty = Command::new("script")
        .args(["-q", "-e", "-c", &replay, "/dev/null"])
        .output()
        .expect("script (util-linux)");
    assert!(tty.status.success(), "{tty:?}");
    let shown = String::from_utf8_lossy(&tty.stdout);
    let line = shown
        .split('\r')
        .find(|l| l.starts_with("replay: "))
        .unwrap_or_else(|| panic!("no progress on the terminal: {shown:?}"));
    assert!(line.contains("% of ") && line.contains(" MiB"), "{line:?}");
    assert!(
        shown.contains("\r\x1b[2K"),
        "the progress line is cleared before the summary: {shown:?}"
    );
    // The summary follows (coloured on a terminal: without the colour codes).
    let plain: String = shown
        .split('\x1b')
        .enumerate()
        .map(
            |(i, part)| {
                if i == 0 {
                    part
                } else {
                    part.split_once('m').map_or("", |(_, rest)| rest)
                }
            },
        )
        .collect();
    assert!(plain.contains("alerts=20000"), "{plain:?}");
    let piped = Command::new("sh").args(["-c", &replay]).output().unwrap();
    assert!(piped.status.success());
    let err = stderr(&piped);
    assert!(
        err.contains("alerts=20000") && !err.contains("replay: ") && !err.contains('\r'),
        "{err:?}"
    );
}

/// `monitor rules list`: each rule as its file has it, fields included (`arch=b64`,
/// `perm=`, `-F kind=`), with where it comes from and whether it is evaluated.
#[test]
fn rules_list_prints_each_rule_as_written() {
    let o = monitor(&["rules", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let mut fields = 0;
    for line in out.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 3, "source, rule, state: {line:?}");
        let (file, no) = cols[0].strip_prefix("builtin:").unwrap().rsplit_once(':').unwrap();
        let written = std::fs::read_to_string(pack.join(file)).unwrap();
        let at = written.lines().nth(no.parse::<usize>().unwrap() - 1).unwrap();
        assert_eq!(cols[1], at.trim(), "{line}");
        assert!(
            cols[2] == "active"
                || cols[2].starts_with("inactive: ")
                || cols[2].starts_with("audit sources only: "),
            "{line}"
        );
        fields += cols[1].contains("-F arch=b64") as usize;
    }
    assert!(fields > 10, "rules with arch=b64 keep it:\n{out}");
}

/// Rules only audit records can evaluate are one warning on an eBPF run, none where they
/// are evaluated (an audit log replay); not one warning per rule.
#[test]
fn rule_warnings_are_said_once_per_run() {
    let dir = scratch_dir("cli-warnings");
    let rules = dir.join("w.rules");
    std::fs::write(
        &rules,
        format!(
            "-w {}/watched -p wa -k w\n\
             -a always,exit -F arch=b64 -S kill -k k1\n\
             -a always,exit -F arch=b64 -S init_module -k k2\n\
             -a always,user -F msgtype=USER_CMD -k k3\n",
            dir.display()
        ),
    )
    .unwrap();
    let log = dir.join("audit.log");
    std::fs::write(
        &log,
        "type=SYSCALL msg=audit(1700000000.000:1): arch=c000003e syscall=62 success=yes exit=0 a0=1 a1=9 pid=5 uid=0\n",
    )
    .unwrap();
    let o = monitor(&["replay", "--rules", rules.to_str().unwrap(), log.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains(rules.to_str().unwrap()),
        "evaluated here, nothing to warn of: {}",
        stderr(&o)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 1, "the kill alerts");
    if !privileged() {
        return;
    }
    std::fs::create_dir(dir.join("watched")).unwrap();
    let m = Monitor::start(&rules);
    assert_eq!(m.stop(libc::SIGTERM), "exit status: 0");
    let named = rules.display().to_string();
    let warnings: Vec<String> = m.stderr().into_iter().filter(|l| l.contains(&named)).collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    for at in [":2", ":3", ":4"] {
        assert!(warnings[0].contains(&format!("{}{at}", rules.display())), "{}", warnings[0]);
    }
    assert!(warnings[0].contains("3 rule(s)"), "{}", warnings[0]);
}
