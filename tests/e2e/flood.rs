//! Floods are counted, not repeated and not lost: a process writing one watched file
//! 10 000 times in a second gives one alert and an `alerts-suppressed` record with the
//! count (alerts + counts + losses = writes); with aggregation off, every write alerts.

use monitor_tests::{get, privileged, s, scratch_dir, Monitor};
use serde_json::Value;

const WRITES: u64 = 10_000;

/// Write `path` `WRITES` times from a child process (one process: identical alerts);
/// returns its pid.
fn flood(path: &std::path::Path) -> u32 {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // Only raw syscalls between fork and _exit: the test process has threads.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        for _ in 0..WRITES {
            unsafe {
                let fd = libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_CREAT, 0o600);
                libc::write(fd, b"x".as_ptr().cast(), 1);
                libc::close(fd);
            }
        }
        unsafe { libc::_exit(0) };
    }
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    pid as u32
}

/// Run the flood under `extra` flags; (alerts for the file, suppressed counts, lost).
fn run(name: &str, extra: &[&str]) -> (Vec<Value>, Vec<Value>, u64) {
    let root = scratch_dir(name);
    std::fs::create_dir_all(root.join("watched")).unwrap();
    let rules = root.join("flood.rules");
    std::fs::write(&rules, format!("-w {}/watched -p wa -k flood\n", root.display())).unwrap();
    let mut args = vec!["--heartbeat", "0"];
    args.extend_from_slice(extra);
    let m = Monitor::start_args(&[&rules], &args);
    let file = root.join("watched/target");
    let started = std::time::Instant::now();
    let pid = flood(&file) as u64;
    eprintln!("{name}: {WRITES} writes in {:?}", started.elapsed());
    assert_eq!(m.stop(libc::SIGTERM), "exit status: 0");
    let path = file.display().to_string();
    let alerts = m.matching(|a| {
        s(a, "event.kind") == "alert"
            && s(a, "file.path") == path
            && get(a, "process.pid").as_u64() == Some(pid)
    });
    let suppressed = m.matching(|a| s(a, "event.action") == "alerts-suppressed");
    let stop = m.matching(|a| s(a, "event.action") == "monitor-stop");
    let lost = get(&stop[0], "monitor.lost").as_u64().unwrap();
    monitor_tests::check_schema(&m.all());
    (alerts, suppressed, lost)
}

#[test]
fn a_flood_of_identical_writes_is_one_alert_and_a_count() {
    if !privileged() {
        return;
    }
    let (alerts, suppressed, lost) = run("flood-on", &[]);
    let counted: u64 =
        suppressed.iter().map(|r| get(r, "monitor.suppressed.count").as_u64().unwrap()).sum();
    eprintln!(
        "aggregated: {} alerts, {counted} counted in {} records, {lost} lost",
        alerts.len(),
        suppressed.len()
    );
    assert!(
        !alerts.is_empty() && alerts.len() <= 3,
        "one alert per 10 s window: {} alerts",
        alerts.len()
    );
    assert_eq!(alerts.len() as u64 + counted + lost, WRITES, "alerts + counts + losses = writes");
    let sequences: Vec<u64> =
        alerts.iter().map(|a| get(a, "event.sequence").as_u64().unwrap()).collect();
    for r in &suppressed {
        let of = get(r, "monitor.suppressed.of_sequence").as_u64().unwrap();
        assert!(sequences.contains(&of), "the record names a printed alert: {r}");
        assert_eq!(s(r, "monitor.suppressed.about.rule.key"), "flood", "{r}");
        assert_eq!(s(r, "event.kind"), "metric", "{r}");
    }
}

#[test]
fn with_aggregation_off_every_write_alerts() {
    if !privileged() {
        return;
    }
    let (alerts, suppressed, lost) = run("flood-off", &["--aggregate-window", "0"]);
    eprintln!("not aggregated: {} alerts, {lost} lost", alerts.len());
    assert!(suppressed.is_empty());
    assert_eq!(alerts.len() as u64 + lost, WRITES);
}
