//! The filters an incident responder narrows a replay with, each on the real log, and text
//! output: one readable line per alert, never a terminal control character from the
//! event's data, colour only on a terminal and never with NO_COLOR.

use super::{real_log, replay, replay_env, summary_value, Replayed};
use monitor_tests::{get, monitor_bin, s, write_file};
use std::collections::BTreeSet;
use std::process::Command;

fn pids(r: &Replayed) -> BTreeSet<u64> {
    r.alerts().iter().filter_map(|a| get(a, "process.pid").as_u64()).collect()
}

#[test]
fn each_filter_narrows_the_alerts() {
    let Some(real) = real_log() else { return };
    let all = replay(&[real.path()], None);
    let every = all.alerts();
    assert!(every.len() >= 6, "{:#?}", all.lines);
    let with = |args: &[&str]| {
        let mut a = args.to_vec();
        a.push(real.path());
        let r = replay(&a, None);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        r
    };

    // --key: our rule key, or the audit key the record carried.
    let key = with(&["--key", "docker-socket-nonroot"]);
    assert_eq!(key.alerts().len(), 1, "{:#?}", key.lines);
    assert_eq!(
        summary_value(&key.stderr, "filtered") as usize,
        every.len() - 1,
        "what was left out is counted: {}",
        key.stderr
    );
    let rules = write_file(&real.dir, "renamed.rules", b"-w /etc/docker -p wa -k renamed\n");
    let by_audit_key = with(&["--rules", rules.to_str().unwrap(), "--key", "docker-config"]);
    assert!(!by_audit_key.alerts().is_empty());
    assert!(by_audit_key.alerts().iter().all(|a| s(a, "rule.id") == "renamed"));

    // --min-severity: the connect is critical, the writes high.
    let critical = with(&["--min-severity", "critical"]);
    assert!(critical.alerts().iter().all(|a| s(a, "rule.id") == "docker-socket-nonroot"));
    assert_eq!(critical.alerts().len(), 1);
    let high = with(&["--min-severity", "high"]);
    assert!(high.alerts().len() > 1 && high.alerts().len() <= every.len());

    // --pid: the script and its children (a child wrote the second file, rm removed both).
    let tree = with(&["--pid", &real.script_pid.to_string()]);
    let expected: BTreeSet<u64> = every
        .iter()
        .filter(|a| s(a, "file.path").contains(&format!("{}-", real.tag)))
        .filter(|a| !s(a, "file.path").contains("-end") && !s(a, "file.path").contains('\x1b'))
        .filter_map(|a| get(a, "process.pid").as_u64())
        .collect();
    assert_eq!(pids(&tree), expected, "{:#?}", tree.lines);
    assert!(expected.len() >= 2, "a descendant, not only the script: {expected:?}");
    assert!(expected.contains(&(real.script_pid as u64)));

    // --action.
    let unlinks = with(&["--action", "unlink"]);
    assert!(unlinks.alerts().len() >= 2);
    assert!(unlinks.alerts().iter().all(|a| s(a, "event.action") == "unlink"));
    let two = with(&["--action", "unlink,connect"]);
    assert_eq!(two.alerts().len(), unlinks.alerts().len() + 1);

    // --since/--until split the alerts at one of their times, in either spelling.
    let mut times: Vec<String> = every.iter().map(|a| s(a, "@timestamp").to_string()).collect();
    times.sort();
    times.dedup();
    assert!(times.len() >= 2, "{times:?}");
    let mid = &times[times.len() / 2];
    let since = with(&["--since", mid]);
    let until = with(&["--until", mid]);
    assert_eq!(since.alerts().len() + until.alerts().len(), every.len());
    assert!(since.alerts().iter().all(|a| s(a, "@timestamp") >= mid.as_str()));
    assert!(until.alerts().iter().all(|a| s(a, "@timestamp") < mid.as_str()));
    let ns = monitor_tests::timestamp_ns(mid).unwrap();
    let audit_time = format!("{}.{:03}", ns / 1_000_000_000, ns % 1_000_000_000 / 1_000_000);
    let since_audit = with(&["--since", &audit_time]);
    assert_eq!(since_audit.cores(), since.cores(), "{audit_time} is {mid}");

    // Criteria combine.
    let both = with(&["--key", "docker-config", "--action", "write"]);
    assert!(both
        .alerts()
        .iter()
        .all(|a| s(a, "rule.id") == "docker-config" && s(a, "event.action") == "write"));

    // What cannot be: a usage error (exit 2) that says why.
    let container = replay(&["--container", "abc", real.path()], None);
    assert_eq!(container.code, 2, "{}", container.stderr);
    assert!(container.stderr.contains("audit records do not say which container"));
    for bad in [["--since", "yesterday"], ["--min-severity", "severe"], ["--action", "nope"]] {
        let r = replay(&[bad[0], bad[1], real.path()], None);
        assert_eq!(r.code, 2, "{bad:?}: {}", r.stderr);
    }
}

#[test]
fn text_output_is_one_readable_line_per_alert_escaped_and_coloured_only_on_a_terminal() {
    let Some(real) = real_log() else { return };
    let json = replay(&["--audit-trail", real.path()], None);
    let text = replay(&["--audit-trail", "--output-format", "text", real.path()], None);
    assert_eq!(text.code, 0, "{}", text.stderr);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), json.lines.len(), "one line per JSON line:\n{}", text.stdout);
    // Not a terminal: no colour, and nothing from the log acts on a terminal.
    assert!(!text.stdout.contains('\x1b'), "{:?}", text.stdout);
    assert!(!text.stdout.chars().any(|c| c.is_control() && c != '\n'), "{:?}", text.stdout);
    let evil = lines
        .iter()
        .find(|l| l.contains("]0;pwned"))
        .unwrap_or_else(|| panic!("the escape-laden file name: {}", text.stdout));
    assert!(evil.contains(r"\u{1b}]0;pwned\u{7}\u{1b}[2J"), "{evil}");
    let connect =
        lines.iter().find(|l| l.contains("docker-socket-nonroot")).expect("the connect's line");
    for part in [
        "critical",
        "connect",
        &format!("pid={}", real.connect_pid),
        &format!("user={}({})", real.user, real.uid),
        "/run/docker.sock",
    ] {
        assert!(connect.contains(part), "{part:?} in {connect}");
    }
    assert!(connect.starts_with("20"), "starts with the time: {connect}");

    // On a terminal (util-linux `script` gives the replay a pty): coloured severities;
    // with NO_COLOR, none. Either way the file name's escapes stay escaped.
    let on_tty = |env: &str| {
        let cmd = format!(
            "{env} {} replay --output-format text {} 2>/dev/null",
            monitor_bin().display(),
            real.path()
        );
        let out =
            Command::new("script").args(["-q", "-e", "-c", &cmd, "/dev/null"]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = on_tty("");
    assert!(coloured.contains("\x1b[91m") || coloured.contains("\x1b[1m"), "{coloured:?}");
    assert!(!coloured.contains("\x1b]0;pwned") && !coloured.contains("\x1b[2J"), "{coloured:?}");
    let plain = on_tty("NO_COLOR=1");
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
    assert!(plain.contains(r"\u{1b}]0;pwned"), "{plain:?}");
    // NO_COLOR in the environment of a pipe changes nothing (never coloured there).
    let piped = replay_env(&["--output-format", "text", real.path()], None, &[("NO_COLOR", "1")]);
    assert!(!piped.stdout.contains('\x1b'));
}
