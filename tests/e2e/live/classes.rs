//! Coverage of the live pipeline: every file-syscall class reaches its watch, watches that
//! appear after start, argv cut at its limit, and read watches. Shares the one live monitor
//! of `main.rs`.

use super::*;

fn cstr(p: &str) -> std::ffi::CString {
    std::ffi::CString::new(p).unwrap()
}

#[test]
fn every_file_syscall_class_reaches_its_watch() {
    let Some(l) = live() else { return };
    let p = |n: &str| l.path(&format!("watched/cls-{n}"));
    let rc = |r: i64, what: &str| assert!(r >= 0, "{what}: {}", std::io::Error::last_os_error());
    unsafe {
        // open(2) and creat(2) themselves, not the libc wrappers (which use openat).
        let fd = libc::syscall(libc::SYS_creat, cstr(&p("creat")).as_ptr(), 0o644);
        rc(fd, "creat");
        libc::close(fd as i32);
        let fd = libc::syscall(libc::SYS_open, cstr(&p("creat")).as_ptr(), libc::O_RDWR);
        rc(fd, "open");
        rc(libc::syscall(libc::SYS_ftruncate, fd, 1), "ftruncate");
        rc(libc::syscall(libc::SYS_fchmod, fd, 0o640), "fchmod");
        libc::close(fd as i32);
        // openat2 with O_CREAT through `struct open_how`.
        let how: [u64; 3] = [(libc::O_CREAT | libc::O_WRONLY) as u64, 0o600, 0];
        let fd = libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            cstr(&p("openat2")).as_ptr(),
            how.as_ptr(),
            24usize,
        );
        rc(fd, "openat2");
        libc::close(fd as i32);
        rc(libc::truncate(cstr(&p("creat")).as_ptr(), 0) as i64, "truncate");
        rc(libc::mkdir(cstr(&p("dir")).as_ptr(), 0o755) as i64, "mkdir");
        rc(libc::rmdir(cstr(&p("dir")).as_ptr()) as i64, "rmdir");
        rc(libc::link(cstr(&p("creat")).as_ptr(), cstr(&p("hard")).as_ptr()) as i64, "link");
        rc(
            libc::symlink(cstr("some target text").as_ptr(), cstr(&p("soft")).as_ptr()) as i64,
            "symlink",
        );
        rc(libc::mkfifo(cstr(&p("fifo")).as_ptr(), 0o600) as i64, "mkfifo");
        let v = b"v";
        rc(
            libc::setxattr(
                cstr(&p("creat")).as_ptr(),
                cstr("user.e2e").as_ptr(),
                v.as_ptr().cast(),
                1,
                0,
            ) as i64,
            "setxattr",
        );
        rc(
            libc::removexattr(cstr(&p("creat")).as_ptr(), cstr("user.e2e").as_ptr()) as i64,
            "removexattr",
        );
        rc(libc::lchown(cstr(&p("soft")).as_ptr(), 0, 0) as i64, "lchown");
    }
    let src = l.source("-k e2e-dir");
    for (action, syscall, name) in [
        ("write", "creat", "creat"),
        ("write", "open", "creat"),
        ("truncate", "ftruncate", "creat"),
        ("chmod", "fchmod", "creat"),
        ("write", "openat2", "openat2"),
        ("truncate", "truncate", "creat"),
        ("mkdir", "mkdir", "dir"),
        ("rmdir", "rmdir", "dir"),
        ("link", "link", "creat"),
        ("symlink", "symlink", "soft"),
        ("mknod", "mknodat", "fifo"),
        ("setxattr", "setxattr", "creat"),
        ("removexattr", "removexattr", "creat"),
        ("chown", "lchown", "soft"),
    ] {
        let path = p(name);
        let a = l.expect(&format!("{syscall} {name}"), |x| {
            s(x, "monitor.syscall.name") == syscall
                && s(x, "event.action") == action
                && s(x, "file.path") == path
        });
        check_common(&a, "e2e-dir", &src);
        assert_eq!(s(&a, "event.outcome"), "success", "{a}");
        match syscall {
            "link" => assert_eq!(s(&a, "monitor.file.new_path"), p("hard"), "{a}"),
            "symlink" => assert_eq!(s(&a, "file.target_path"), "some target text", "{a}"),
            "creat" | "open" | "openat2" => {
                assert!(s(&a, "file.inode").parse::<u64>().is_ok(), "{a}")
            }
            _ => {}
        }
    }
}

#[test]
fn a_watched_socket_created_after_start_is_caught_at_once() {
    let Some(l) = live() else { return };
    // The watch names a socket that did not exist when the monitor started: no inode was
    // known, so the kernel matches the path it reached by spelling.
    let (sock, _listener) = l.listen_and_connect("late/sock");
    let a = l.expect("connect to the late socket", |x| {
        s(x, "event.action") == "connect" && s(x, "file.path") == sock
    });
    check_common(&a, "e2e-late", &l.source("/late/sock "));
}

#[test]
fn a_watched_file_that_appears_after_start_is_caught_when_opened() {
    let Some(l) = live() else { return };
    // Neither the file nor (the second time) its directory existed at start: the kernel
    // knows no inode for them, and its quick inode-only verdict on an open file must leave
    // the open to the spelling match. Renamed into place (no create by open), then opened
    // for writing without O_CREAT at once, long before the next inode refresh.
    for rel in ["late/file", "late/newdir/file"] {
        let path = l.path(rel);
        fs::create_dir_all(std::path::Path::new(&path).parent().unwrap()).unwrap();
        let tmp = l.path("late/staging");
        fs::write(&tmp, "x").unwrap();
        fs::rename(&tmp, &path).unwrap();
        use std::io::Write;
        fs::OpenOptions::new().write(true).open(&path).unwrap().write_all(b"y").unwrap();
        let a = l.expect(&format!("open for writing of {rel}"), |x| {
            s(x, "event.action") == "write"
                && s(x, "file.path") == path
                && get(x, "process.pid").as_u64() == Some(me())
        });
        check_common(&a, "e2e-late-file", &l.source(&format!("/{rel} ")));
        let flags =
            u32::from_str_radix(s(&a, "monitor.file.open_flags").trim_start_matches("0o"), 8)
                .unwrap();
        assert_eq!(flags & 0o3, 1, "O_WRONLY: {a}");
        assert_eq!(flags & 0o100, 0, "no O_CREAT: {a}");
    }
}

#[test]
fn long_argv_is_cut_and_flagged() {
    let Some(l) = live() else { return };
    let long: Vec<String> =
        (0..80).map(|i| format!("e2e-long-{i:03}-{}", "x".repeat(90))).collect();
    assert!(Command::new(l.path("bin/watched-true")).args(&long).status().unwrap().success());
    let a = l.expect("exec with long argv", |x| {
        s(x, "event.action") == "exec"
            && get(x, "process.args").get(1).and_then(Value::as_str) == Some(long[0].as_str())
    });
    assert_eq!(get(&a, "monitor.process.args_truncated").as_bool(), Some(true), "{a}");
    let args = get(&a, "process.args").as_array().unwrap();
    let bytes: usize = args.iter().map(|v| v.as_str().unwrap().len() + 1).sum();
    assert!(bytes <= 4096, "{bytes} bytes of argv");
    assert!(args.len() > 30 && args.len() < long.len() + 1, "{} args", args.len());
}

/// With no rule that can match a read, the kernel drops read-only opens before looking at
/// the file (the shared rules above watch `wa` only); a rule with `-p r` turns them back on,
/// and then a read of its file alerts and a read elsewhere stays silent.
#[test]
fn a_read_watch_turns_read_opens_on() {
    if !privileged() {
        return;
    }
    let root = scratch_dir("reads");
    fs::create_dir_all(root.join("fence")).unwrap();
    fs::write(root.join("secret"), "s").unwrap();
    fs::write(root.join("other"), "o").unwrap();
    let r = root.display();
    let rules = root.join("reads.rules");
    fs::write(&rules, format!("-w {r}/secret -p r -k e2e-read\n-w {r}/fence -p w -k e2e-fence\n"))
        .unwrap();
    let monitor = Monitor::start(&rules);
    fs::read(root.join("other")).unwrap();
    fs::read(root.join("secret")).unwrap();
    let secret = root.join("secret").display().to_string();
    let a =
        monitor.wait_for("read of the read-watched file", |x| s(x, "rule.id") == "e2e-read").json;
    assert_eq!(s(&a, "event.action"), "open", "{a}");
    assert_eq!(s(&a, "file.path"), secret, "{a}");
    assert_eq!(s(&a, "monitor.rule.source"), format!("{}:1", rules.display()), "{a}");
    monitor.fence(&root.join("fence"));
    let other = root.join("other").display().to_string();
    assert!(
        monitor.matching(|x| s(x, "file.path") == other).is_empty(),
        "a read elsewhere alerted"
    );
}
