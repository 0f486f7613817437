//! The Debian package `cargo xtask dist` builds (target/dist/*.deb), installed for real with
//! dpkg: the files where Debian expects them, the rules and settings as conffiles that a
//! reinstall keeps when edited, `monitor rules check` on the installed rules and
//! `monitor config check`/`show` on the installed settings, the unit accepted by
//! `systemd-analyze verify`, and a purge that leaves nothing behind.
//!
//! It installs and purges the package `monitor` on this host: run it on a test machine
//! (CI's is thrown away), under the e2e lock.

use monitor_tests::{monitor_bin, privileged};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The package of this tree; without it the test fails under CI and is skipped otherwise.
fn package() -> Option<PathBuf> {
    let dist = root().join("target/dist");
    let debs: Vec<PathBuf> = std::fs::read_dir(&dist)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "deb"))
                .collect()
        })
        .unwrap_or_default();
    match debs.as_slice() {
        [deb] => Some(deb.clone()),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("no single .deb in {} ({debs:?}): `cargo xtask dist` must build it before the tests", dist.display())
        }
        _ => {
            eprintln!(
                "SKIPPED: no package in {}: run `cargo xtask dist` (`cargo xtask test` does)",
                dist.display()
            );
            None
        }
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn ok(cmd: &mut Command) -> String {
    let what = format!("{cmd:?}");
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{what}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn installed() -> bool {
    run(Command::new("dpkg-query").args(["-W", "-f=${Status}", "monitor"]))
        .stdout
        .starts_with(b"install ok installed")
}

/// Files (not directories) the package installed, from `dpkg -L`.
fn listed_files() -> Vec<String> {
    ok(Command::new("dpkg").args(["-L", "monitor"]))
        .lines()
        .filter(|p| Path::new(p).is_file())
        .map(String::from)
        .collect()
}

/// The default pack's rule files, by name.
fn pack_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("rules"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rules"))
        .collect();
    names.sort();
    names
}

/// The last line of `monitor rules check`: "N rules in M file(s), W warning(s)".
fn summary(stdout: &str) -> String {
    stdout.lines().last().unwrap_or_default().to_string()
}

/// Visible subcommands from `monitor --help` ("Commands:" section, without help).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(String::from)
        .collect()
}

#[test]
fn the_package_installs_checks_its_rules_keeps_edited_conffiles_and_purges_clean() {
    if !privileged() {
        return;
    }
    let Some(deb) = package() else { return };
    if installed() {
        eprintln!("purging a monitor package left by an earlier run");
        ok(Command::new("dpkg").args(["-P", "monitor"]));
    }
    ok(Command::new("dpkg").arg("-i").arg(&deb));
    assert!(installed());

    // Files where Debian expects them.
    let files = listed_files();
    let mut want: Vec<String> = vec![
        "/usr/sbin/monitor".into(),
        "/etc/monitor/monitor.toml".into(),
        "/usr/lib/systemd/system/monitor.service".into(),
        "/usr/share/man/man8/monitor.8.gz".into(),
        "/usr/share/man/man8/monitor-run.8.gz".into(),
        "/usr/share/man/man8/monitor-rules-check.8.gz".into(),
        "/usr/share/bash-completion/completions/monitor".into(),
        "/usr/share/zsh/vendor-completions/_monitor".into(),
        "/usr/share/fish/vendor_completions.d/monitor.fish".into(),
        "/usr/share/doc/monitor/README.md".into(),
        "/usr/share/doc/monitor/LICENSE-MIT".into(),
        "/usr/share/doc/monitor/LICENSE-APACHE".into(),
        "/usr/share/doc/monitor/copyright".into(),
        "/usr/share/doc/monitor/examples/logrotate".into(),
    ];
    want.extend(pack_files().iter().map(|n| format!("/etc/monitor/rules.d/{n}")));
    for w in &want {
        assert!(files.contains(w), "{w} not in `dpkg -L monitor`:\n{}", files.join("\n"));
    }
    let conffiles = ok(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "monitor"]));
    for etc in want.iter().filter(|p| p.starts_with("/etc/")) {
        assert!(conffiles.contains(etc.as_str()), "{etc} is a conffile:\n{conffiles}");
    }
    // Bookworm has merged /usr: the unit is also /lib/systemd/system/monitor.service.
    let unit = std::fs::read(root().join("packaging/monitor.service")).unwrap();
    assert_eq!(
        std::fs::read("/lib/systemd/system/monitor.service").unwrap(),
        unit,
        "the unit as in packaging/"
    );
    let mode = std::fs::metadata("/usr/sbin/monitor").unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o7777, 0o755);

    // The installed binary is this tree's (with its eBPF object) and checks the installed
    // rules as the built binary checks rules/.
    let version = ok(Command::new("/usr/sbin/monitor").arg("--version"));
    assert_eq!(version, ok(Command::new(monitor_bin()).arg("--version")));
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert!(size(Path::new("/usr/sbin/monitor")) > 1 << 20, "the binary embeds the eBPF object");
    let installed_check =
        ok(Command::new("/usr/sbin/monitor").args(["rules", "check", "/etc/monitor/rules.d"]));
    let tree_check =
        ok(Command::new(monitor_bin()).args(["rules", "check"]).arg(root().join("rules")));
    assert_eq!(summary(&installed_check), summary(&tree_check));
    assert!(
        summary(&installed_check).contains(&format!(" in {} file(s)", pack_files().len())),
        "{installed_check}"
    );

    // The installed settings file is the packaged one and valid; `monitor run` reads it by
    // default (rules from /etc/monitor/rules.d, the rest defaults).
    let check = ok(Command::new("/usr/sbin/monitor").args(["config", "check"]));
    let toml = "/etc/monitor/monitor.toml";
    assert_eq!(
        check,
        format!("{toml}: {}\n{toml}: valid, 1 key(s) set\n", summary(&installed_check)),
        "`monitor config check` on the installed default"
    );
    let shown = ok(Command::new("/usr/sbin/monitor").args(["config", "show"]));
    assert!(
        shown.starts_with(&format!("# The settings of `monitor run`, from {toml} ")),
        "{shown}"
    );
    for line in [r#"rules = ["/etc/monitor/rules.d"]"#, r#"targets = ["stdout"]"#, "heartbeat = 30"]
    {
        assert!(shown.lines().any(|l| l == line), "`{line}` in:\n{shown}");
    }
    let logrotate =
        run(Command::new("logrotate").args(["-d", "/usr/share/doc/monitor/examples/logrotate"]));
    assert!(logrotate.status.success(), "the logrotate example parses: {logrotate:?}");

    // The manual names every subcommand the binary has.
    let help = ok(Command::new("/usr/sbin/monitor").arg("--help"));
    let subs = subcommands(&help);
    assert!(subs.len() >= 4, "{help}");
    let page = ok(Command::new("zcat").arg("/usr/share/man/man8/monitor.8.gz"));
    for sub in &subs {
        assert!(page.contains(&format!("monitor\\-{sub}(8)")), "monitor(8) lists {sub}:\n{page}");
        assert!(
            files.contains(&format!("/usr/share/man/man8/monitor-{sub}.8.gz")),
            "a page for {sub}"
        );
    }
    if Path::new("/usr/bin/man").exists() {
        let shown = ok(Command::new("man").args(["-P", "cat", "8", "monitor"]));
        assert!(shown.contains("EXIT STATUS"), "man 8 monitor shows the page:\n{shown}");
    }

    // The unit, statically (PID 1 is not systemd here). It references the man page and the
    // binary, so it is verified once both are installed.
    let verify = run(
        Command::new("systemd-analyze").args(["verify", "/lib/systemd/system/monitor.service"])
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(verify.status.success(), "systemd-analyze verify: {}\n{said}", verify.status);
    assert!(!said.contains("monitor.service"), "no complaint about the unit:\n{said}");

    // An admin's edit of a conffile survives a reinstall; an untouched one stays the package's.
    let edited = "/etc/monitor/rules.d/docker.rules";
    let mut text = std::fs::read_to_string(edited).unwrap();
    text.push_str("\n# site rule\n-w /etc/monitor-site-test -p wa -k site\n");
    std::fs::write(edited, &text).unwrap();
    ok(Command::new("dpkg").arg("-i").arg(&deb));
    assert_eq!(std::fs::read_to_string(edited).unwrap(), text, "the edited conffile is kept");
    assert_eq!(
        std::fs::read("/etc/monitor/monitor.toml").unwrap(),
        std::fs::read(root().join("packaging/monitor.toml")).unwrap()
    );
    let after =
        ok(Command::new("/usr/sbin/monitor").args(["rules", "check", "/etc/monitor/rules.d"]));
    assert!(after.contains("site: 1 active"), "the site rule is loaded:\n{after}");

    // Purge: every file and the configuration go.
    ok(Command::new("dpkg").args(["-P", "monitor"]));
    assert!(!installed());
    for f in &files {
        assert!(!Path::new(f).exists(), "{f} left after purge");
    }
    assert!(!Path::new("/etc/monitor").exists(), "/etc/monitor left after purge");
    assert!(!Path::new("/usr/share/doc/monitor").exists());
}
