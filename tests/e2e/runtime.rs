//! Silence on Docker's own work: a benign container lifecycle, watched with the default rule
//! pack, raises no alert from the container runtime (dockerd, containerd, the shim, runc);
//! what it did is on the audit trail (`--audit-trail`: `event.kind: "event"` lines).

use monitor_tests::docker::{docker, ensure, IMAGE};
use monitor_tests::{get, privileged, s, Monitor};
use serde_json::Value;
use std::collections::BTreeMap;

/// The runtime's executables, where Debian and Docker's packages put them.
const RUNTIME: &[&str] = &[
    "/usr/sbin/dockerd",
    "/usr/bin/dockerd",
    "/usr/bin/containerd",
    "/usr/bin/containerd-shim-runc-v2",
    "/usr/sbin/runc",
    "/usr/bin/runc",
];

fn ok(args: &[&str]) {
    let out = docker(args);
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// "key exe" → count, for the failure message and the log.
fn tally(lines: &[Value]) -> BTreeMap<String, usize> {
    let mut t = BTreeMap::new();
    for a in lines {
        *t.entry(format!(
            "{} {} {}",
            s(a, "rule.id"),
            s(a, "event.action"),
            s(a, "process.executable")
        ))
        .or_insert(0) += 1;
    }
    t
}

#[test]
fn a_benign_lifecycle_raises_no_alert_from_the_runtime() {
    if !privileged() {
        return;
    }
    ensure(); // dockerd runs and the image exists before the monitor starts
    let name = format!("monitor-e2e-lifecycle-{}", std::process::id());
    let _ = docker(&["rm", "-f", &name]);
    // The built-in pack, as a new user runs it, with the audit trail.
    let m = Monitor::start_args(&[], &["--audit-trail", "--heartbeat", "0"]);
    for _ in 0..3 {
        ok(&["run", "--rm", "--network", "none", IMAGE, "true"]);
    }
    ok(&["create", "--name", &name, "--network", "none", IMAGE, "sleep", "300"]);
    ok(&["start", &name]);
    ok(&["exec", &name, "true"]);
    ok(&["logs", &name]);
    ok(&["inspect", &name]);
    ok(&["stop", "-t", "1", &name]);
    ok(&["rm", &name]);
    ok(&["ps"]);
    ok(&["images"]);
    // Everything before this write has gone through the monitor once its alert is in.
    let fence = format!("/etc/docker/monitor-e2e-fence-{}", std::process::id());
    std::fs::write(&fence, "x").unwrap();
    std::fs::remove_file(&fence).unwrap();
    m.wait_for("the fence under /etc/docker", |a| {
        s(a, "file.path") == fence && s(a, "event.action") == "unlink"
    });
    let all = m.all();
    let alerts: Vec<Value> =
        all.iter().filter(|a| s(a, "event.kind") == "alert").cloned().collect();
    let trail: Vec<Value> = all.iter().filter(|a| is_trail(a)).cloned().collect();
    let from_runtime: Vec<Value> =
        alerts.iter().filter(|a| RUNTIME.contains(&s(a, "process.executable"))).cloned().collect();
    eprintln!("alerts: {:#?}\naudit trail: {:#?}", tally(&alerts), tally(&trail));
    assert!(
        from_runtime.is_empty(),
        "alerts from the runtime's own work: {:#?}",
        tally(&from_runtime)
    );
    // Its work was seen, and recorded: runc run by the shim, and runc's own init.
    let runc_runs = trail
        .iter()
        .filter(|a| {
            s(a, "rule.id") == "docker-runtime"
                && s(a, "event.action") == "exec"
                && s(a, "process.executable").ends_with("/runc")
        })
        .count();
    assert!(runc_runs >= 8, "runc runs on the audit trail: {runc_runs}");
    // The clients' requests are still judged: the exec request has its key.
    assert!(
        alerts.iter().any(|a| s(a, "rule.id") == "docker-exec"
            && get(a, "http.request.method").as_str() == Some("POST")),
        "{:#?}",
        tally(&alerts)
    );
}

/// A line of the audit trail (the monitor's own start and stop records are events too).
fn is_trail(a: &Value) -> bool {
    s(a, "event.kind") == "event" && s(a, "event.dataset") == "monitor.runtime"
}

/// Without `--audit-trail`, the trail is counted, not printed: alert consumers see alerts.
#[test]
fn the_audit_trail_is_printed_only_when_asked_for() {
    if !privileged() {
        return;
    }
    ensure();
    let m = Monitor::start_args(&[], &["--heartbeat", "0"]);
    ok(&["run", "--rm", "--network", "none", IMAGE, "true"]);
    let fence = format!("/etc/docker/monitor-e2e-fence-quiet-{}", std::process::id());
    std::fs::write(&fence, "x").unwrap();
    std::fs::remove_file(&fence).unwrap();
    m.wait_for("the fence under /etc/docker", |a| {
        s(a, "file.path") == fence && s(a, "event.action") == "unlink"
    });
    assert!(m.matching(is_trail).is_empty(), "audit-trail lines without --audit-trail");
    assert_eq!(m.stop(libc::SIGTERM), "exit status: 0");
    let stop = m.matching(|a| s(a, "event.action") == "monitor-stop");
    let trail = get(&stop[0], "monitor.trail").as_u64().unwrap_or(0);
    assert!(trail >= 3, "the stop record counts the trail it did not print: {}", stop[0]);
}
