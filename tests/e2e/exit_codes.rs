//! One exit-code table for every subcommand (`monitor::error::exit::TABLE`): README.md's
//! "Exit codes" table, `monitor --help` and each subcommand's help say the same, and each
//! code is what a real run ends with. Codes that need a particular host are asserted where
//! that host is made: 4 in cli.rs (no tracefs, no BTF), 9 and 10-14 in check.rs.

use monitor::error::exit::{self, TABLE};
use monitor_tests::{monitor_bin, privileged, scratch_dir};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn monitor(args: &[&str]) -> Output {
    Command::new(monitor_bin()).args(args).stdin(Stdio::null()).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_table_reads_the_same_in_the_readme_and_in_help() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = readme.split("\n## Exit codes").nth(1).expect("README.md has ## Exit codes");
    let section = section.split("\n## ").next().unwrap();
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| `")).collect();
    assert_eq!(rows.len(), TABLE.len(), "one README row per code:\n{section}");
    for ((_, code, meaning, commands), row) in TABLE.iter().zip(&rows) {
        assert_eq!(*row, format!("| `{code}` | {commands} | {meaning} |"), "README row for {code}");
    }
    let help = text(&monitor(&["--help"]).stdout);
    for (_, code, meaning, _) in TABLE {
        assert!(help.contains(&format!("  {code:<6} {meaning}")), "--help lacks {code}:\n{help}");
    }
    // Each subcommand's help lists the codes it ends with.
    let replay = text(&monitor(&["replay", "--help"]).stdout);
    for (code, meant) in
        [(exit::INPUT, true), (exit::INPUT_PARTIAL, true), (exit::CHECK_UNKNOWN, false)]
    {
        let (_, shown, meaning, _) = TABLE.iter().find(|(c, ..)| *c == code).unwrap();
        assert_eq!(replay.contains(&format!("  {shown:<6} {meaning}")), meant, "{code}:\n{replay}");
    }
    let check = text(&monitor(&["check", "--help"]).stdout);
    assert!(check.contains("10-14") && !check.contains("replay input error"), "{check}");
}

#[test]
fn each_code_is_what_a_run_ends_with() {
    let dir = scratch_dir("exit-codes");
    let code = |o: &Output| o.status.code().unwrap_or(-1);
    // 0
    assert_eq!(code(&monitor(&["rules", "check"])), exit::OK as i32);
    // 1: the output cannot be written (not a closed pipe: a full disk).
    let full = Command::new(monitor_bin())
        .args(["rules", "list"])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(code(&full), exit::RUNTIME as i32, "{}", text(&full.stderr));
    assert!(text(&full.stderr).contains("No space left on device"), "{}", text(&full.stderr));
    // 2: the command line.
    for args in
        [&["--no-such-option"][..], &["check", "--only", "NO-SUCH-CHECK"], &["replay", "-", "-"]]
    {
        let o = monitor(args);
        assert_eq!(code(&o), exit::USAGE as i32, "{args:?}: {}", text(&o.stderr));
    }
    // 3: the rules.
    let bad = dir.join("bad.rules");
    std::fs::write(&bad, "-w /etc/docker -p zz -k x\n").unwrap();
    let o = monitor(&["rules", "check", bad.to_str().unwrap()]);
    assert_eq!(code(&o), exit::RULES as i32, "{}", text(&o.stderr));
    let o = monitor(&["replay", "--rules", bad.to_str().unwrap(), "-"]);
    assert_eq!(code(&o), exit::RULES as i32, "{}", text(&o.stderr));
    // 7 and 8: replay input.
    let garbage = dir.join("garbage");
    std::fs::write(&garbage, [0u8, 1, 2, 3, 0xff]).unwrap();
    assert_eq!(code(&monitor(&["replay", garbage.to_str().unwrap()])), exit::INPUT as i32);
    let partial = dir.join("partial.log");
    std::fs::write(
        &partial,
        "type=SYSCALL msg=audit(1700000000.000:1): arch=c000003e syscall=2 pid=1 uid=0\nnot a record\n",
    )
    .unwrap();
    let o = monitor(&["replay", partial.to_str().unwrap()]);
    assert_eq!(code(&o), exit::INPUT_PARTIAL as i32, "{}", text(&o.stderr));
    if !privileged() {
        return;
    }
    // 5: not privileged.
    let o = Command::new(monitor_bin()).arg("run").uid(65534).gid(65534).output().unwrap();
    assert_eq!(code(&o), exit::PRIVILEGE as i32, "{}", text(&o.stderr));
    // 6: settings that cannot work together (refused before anything is loaded).
    let cap = dir.join("x.cap");
    let o = monitor(&["run", "--source", "audit", "--capture", cap.to_str().unwrap()]);
    assert_eq!(code(&o), exit::CONFIG as i32, "{}", text(&o.stderr));
    assert!(!cap.exists());
}
