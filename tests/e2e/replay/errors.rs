//! What is not a replayable input: garbage, empty input, input without a single record, a
//! capture with a bad header, a cut-off gzip rotation, inputs that cannot go together. Each
//! says which input and what it looks like, with its exit code (7 nothing replayed, 8 part
//! of it not read, 2 a usage error). Hand-made inputs: no privilege needed.

use super::{gzip, replay, summary_value};
use monitor_tests::{scratch_dir, write_file};

/// A synthetic log of `n` write events under /etc/docker, one second apart.
fn log(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        let t = 1_700_000_000 + i;
        text.push_str(&format!(
            "type=SYSCALL msg=audit({t}.000:{i}): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=1 a2=241 a3=1b6 items=1 ppid=1 pid=42 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm=\"sh\" exe=\"/bin/sh\" key=\"docker-config\"\n\
             type=PATH msg=audit({t}.000:{i}): item=0 name=\"/etc/docker/f{i}\" inode=1 dev=fe:00 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype=CREATE\n\
             type=EOE msg=audit({t}.000:{i}):\n"
        ));
    }
    text
}

#[test]
fn garbage_empty_and_recordless_inputs_are_exit_7_naming_the_input() {
    let dir = scratch_dir("replay-errors");
    let elf = write_file(&dir, "binary", std::fs::read("/bin/true").unwrap());
    let r = replay(&[elf.to_str().unwrap()], None);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("{}: not recognised (an executable (ELF)", elf.display()))
            && r.stderr.contains("starts with \"\\x7fELF")
            && r.stderr.contains("expected audit records"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    // Forced: read line by line, and not one record in it.
    let text = write_file(&dir, "notes.txt", b"hello\nthis is not an audit log\n");
    let r = replay(&["--format", "auditd", text.to_str().unwrap()], None);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("{}: no audit record in 2 line(s)", text.display())),
        "{}",
        r.stderr
    );
    // Empty, as a file or on standard input.
    let empty = write_file(&dir, "empty.log", b"");
    let r = replay(&[empty.to_str().unwrap()], None);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("{}: empty", empty.display())), "{}", r.stderr);
    let r = replay(&["-"], Some(b""));
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("stdin: empty"), "{}", r.stderr);
    let r = replay(&["/nonexistent/audit.log"], None);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("/nonexistent/audit.log: cannot open"), "{}", r.stderr);
    // A compressed archive of another kind: what to do about it.
    let xz = write_file(&dir, "audit.log.xz", b"\xfd7zXZ\x00\x00\x04garbage");
    let r = replay(&[xz.to_str().unwrap()], None);
    assert_eq!(r.code, 7);
    assert!(r.stderr.contains("xz-compressed: unxz it first"), "{}", r.stderr);
}

#[test]
fn a_capture_with_a_bad_header_says_what_the_file_looks_like() {
    let dir = scratch_dir("replay-capture-errors");
    let audit = write_file(&dir, "audit.log", log(2).as_bytes());
    // An audit log given as a capture.
    let r = replay(&["--format", "capture", audit.to_str().unwrap()], None);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(
        r.stderr.contains("not a monitor capture (audit records; it starts with \"type=SYSCALL")
            && r.stderr.contains("use --format auditd, or leave --format out"),
        "{}",
        r.stderr
    );
    // Leaving --format out, it is recognised (and replays).
    let r = replay(&[audit.to_str().unwrap()], None);
    assert_eq!((r.code, r.alerts().len()), (0, 2), "{}", r.stderr);
    // A capture of a format version this monitor does not read.
    let later = write_file(&dir, "later.cap", b"MONCAP\x00\x02\x05\x00\x00\x00\x01{}");
    let r = replay(&[later.to_str().unwrap()], None);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("a monitor capture of another format version"), "{}", r.stderr);
    // A capture whose header is not what a capture starts with.
    let bad = write_file(&dir, "bad.cap", b"MONCAP\x00\x01\x03\x00\x00\x00\x02ab");
    let r = replay(&[bad.to_str().unwrap()], None);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("the capture does not start with a header"), "{}", r.stderr);
    // A capture and a log together cannot be one replay; nor can stdin twice.
    let header = br#"{"format":"monitor-capture","version":1,"host":"h","clock_offset_ns":"0"}"#;
    let mut good = b"MONCAP\x00\x01".to_vec();
    good.extend_from_slice(&(header.len() as u32 + 1).to_le_bytes());
    good.push(1);
    good.extend_from_slice(header);
    let good = write_file(&dir, "good.cap", &good);
    let r = replay(&[good.to_str().unwrap()], None);
    assert_eq!(r.code, 0, "an empty capture replays (nothing): {}", r.stderr);
    let r = replay(&[good.to_str().unwrap(), audit.to_str().unwrap()], None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("a capture replays by itself"), "{}", r.stderr);
    let r = replay(&[later.to_str().unwrap(), audit.to_str().unwrap()], None);
    assert_eq!(r.code, 7, "the unreadable capture is said first: {}", r.stderr);
    let r = replay(&["-", "-"], Some(b""));
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn a_cut_off_gzip_rotation_is_replayed_up_to_the_cut_and_exit_8() {
    let dir = scratch_dir("replay-cut-gzip");
    // Large enough that the cut comes after the first 64 KiB the reader looks at.
    let older = log(2000);
    assert!(older.len() > 256 * 1024);
    let gz = gzip(older.as_bytes());
    let rotated = dir.join("rotated");
    std::fs::create_dir(&rotated).unwrap();
    write_file(&rotated, "audit.log.1.gz", &gz[..gz.len() * 2 / 3]);
    // The current log continues after the older one.
    let newer: String = log(2003).lines().skip(3 * 2000).map(|l| format!("{l}\n")).collect();
    write_file(&rotated, "audit.log", newer.as_bytes());
    let r = replay(&[rotated.to_str().unwrap(), "--aggregate-window", "0"], None);
    assert_eq!(r.code, 8, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "{}: unreadable after line",
            rotated.join("audit.log.1.gz").display()
        )),
        "{}",
        r.stderr
    );
    let alerts = r.alerts();
    assert!(alerts.len() > 500 && alerts.len() < 2003, "{}", alerts.len());
    // The readable part of the older file, then the newer file: in time order.
    assert_eq!(monitor_tests::s(alerts.last().unwrap(), "file.path"), "/etc/docker/f2002");
    assert_eq!(summary_value(&r.stderr, "unreadable_inputs"), 1);
    // Not in a directory: a gzip file cut inside its first bytes is an error naming it.
    let tiny = write_file(&dir, "tiny.gz", &gz[..40]);
    let r = replay(&[tiny.to_str().unwrap()], None);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stderr.contains("gzip-compressed, but the data cannot be unpacked"), "{}", r.stderr);
}
