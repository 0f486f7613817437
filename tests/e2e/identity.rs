//! Watched-object identity: an alert names the file that really changed, under the rule
//! that really watches it. A watch follows its path, as auditd's does: the inode at the
//! watched path is watched, under any name (hard link, bind mount), until that path is
//! unlinked or renamed over; a freed inode's number taken by another file, or the old file
//! moved elsewhere, is not watched. Also the exec of a watched binary right after a failed
//! exec (E2BIG), run many times.

use monitor_tests::{get, privileged, s, scratch_dir, Monitor};
use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Rules: the watched target and a fence directory.
fn rules(root: &Path) -> PathBuf {
    let r = root.display();
    let file = root.join("identity.rules");
    fs::write(
        &file,
        format!("-w {r}/a/target -p wa -k e2e-target\n-w {r}/fence -p w -k e2e-fence\n"),
    )
    .unwrap();
    file
}

fn append(path: &Path, text: &str) {
    fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// A fresh directory under /var/tmp, which is on the root filesystem (ext4 on the test
/// machines), unlike /tmp on many hosts; removed when dropped.
struct OnDisk(PathBuf);

impl OnDisk {
    fn new(name: &str) -> OnDisk {
        let root = PathBuf::from(format!("/var/tmp/monitor-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        OnDisk(root)
    }
}

impl Drop for OnDisk {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A tmpfs mounted on `dir` for the test's lifetime.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: PathBuf) -> Tmpfs {
        fs::create_dir_all(&dir).unwrap();
        monitor_tests::sh(&format!("mount -t tmpfs e2e-identity {}", dir.display()));
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The repro: the target replaced the way editors and package managers do (`cp
/// target target.new; mv target.new target`, then written) while thousands of unrelated
/// files are created, written and removed in another directory; right after each
/// replacement one of them is created (on ext4 it takes the freed inode's number). Every
/// tenth time the old file is moved to the other directory first and written there.
/// Returns (alerts under the target's key naming another path, those naming the target,
/// unrelated files that got a number the target once had).
fn replace_while_others_churn(root: &Path) -> (Vec<String>, usize, usize) {
    fs::create_dir_all(root.join("a")).unwrap();
    fs::create_dir_all(root.join("b")).unwrap();
    fs::create_dir_all(root.join("fence")).unwrap();
    let target = root.join("a/target");
    fs::write(&target, "0\n").unwrap();
    let monitor = Monitor::start(&rules(root));
    let churn_dir = root.join("b");
    let churn = std::thread::spawn(move || {
        let mut inodes = Vec::new();
        for i in 0..3000 {
            let f = churn_dir.join(format!("churn-{i}"));
            fs::write(&f, "x").unwrap();
            inodes.push(fs::metadata(&f).unwrap().ino());
            append(&f, "y");
            if i % 2 == 0 {
                fs::remove_file(&f).unwrap();
            }
        }
        inodes
    });
    let mut target_inodes = HashSet::new();
    let mut others = Vec::new();
    for i in 0..100 {
        target_inodes.insert(fs::metadata(&target).unwrap().ino());
        let new = root.join("a/target.new");
        fs::copy(&target, &new).unwrap();
        if i % 10 == 0 {
            // Now and then the old file is kept as a backup elsewhere, and written there.
            let backup = root.join(format!("b/backup-{i}"));
            fs::rename(&target, &backup).unwrap();
            fs::rename(&new, &target).unwrap();
            append(&backup, "kept");
            append(&target, &format!("{i}\n"));
            continue;
        }
        fs::rename(&new, &target).unwrap();
        // The old target's inode is free now: an unrelated file is created at once, and
        // written again, as a log or a cache would be.
        let other = root.join(format!("b/after-{i}"));
        fs::write(&other, "z").unwrap();
        others.push(fs::metadata(&other).unwrap().ino());
        append(&other, "w");
        append(&target, &format!("{i}\n"));
    }
    let mut churned = churn.join().unwrap();
    churned.extend(others);
    monitor.fence(&root.join("fence"));
    let a_dir = format!("{}/", root.join("a").display());
    let target_path = target.display().to_string();
    let mine = monitor.matching(|x| s(x, "rule.id") == "e2e-target");
    let elsewhere: Vec<String> = mine
        .iter()
        .filter(|x| !s(x, "file.path").starts_with(&a_dir))
        .map(|x| {
            format!("{} {} inode {}", s(x, "event.action"), s(x, "file.path"), get(x, "file.inode"))
        })
        .collect();
    let on_target = mine
        .iter()
        .filter(|x| s(x, "file.path") == target_path && s(x, "event.action") == "write")
        .count();
    let reused = churned.iter().filter(|ino| target_inodes.contains(ino)).count();
    (elsewhere, on_target, reused)
}

#[test]
fn a_replaced_watched_file_lends_its_inode_number_to_no_alert_on_disk() {
    if !privileged() {
        return;
    }
    let (elsewhere, on_target, reused) = replace_while_others_churn(&OnDisk::new("identity").0);
    eprintln!("on disk: {reused} unrelated files took a number the target once had; {on_target} writes to the target alerted");
    assert!(elsewhere.is_empty(), "alerts under the target's rule for other files: {elsewhere:#?}");
    assert!(on_target >= 1, "no write to the replaced target alerted");
    assert!(reused > 0, "the repro did not make an unrelated file reuse a number the target had (nothing was tested)");
}

#[test]
fn a_replaced_watched_file_lends_its_inode_number_to_no_alert_on_tmpfs() {
    if !privileged() {
        return;
    }
    let fs = Tmpfs::mount(scratch_dir("identity-tmpfs").join("mnt"));
    let (elsewhere, on_target, reused) = replace_while_others_churn(&fs.0);
    eprintln!("on tmpfs: {reused} unrelated files took a number the target once had; {on_target} writes to the target alerted");
    assert!(elsewhere.is_empty(), "alerts under the target's rule for other files: {elsewhere:#?}");
    assert!(on_target >= 1, "no write to the replaced target alerted");
}

/// The inode at the watched path is watched under any name (a hard link in an unwatched
/// directory: an inode-only match, which also proves the monitor knows the generation the
/// kernel has); once the watched name is removed, or the file moved away from it, that
/// file is no longer watched, and a new file at the watched path is.
#[test]
fn a_watch_follows_its_path_not_the_file_that_left_it() {
    if !privileged() {
        return;
    }
    let disk = OnDisk::new("identity-follow");
    let root = &disk.0;
    for d in ["a", "elsewhere", "fence"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    let target = root.join("a/target");
    fs::write(&target, "0").unwrap();
    let link = root.join("elsewhere/hard-link");
    fs::hard_link(&target, &link).unwrap();
    let monitor = Monitor::start(&rules(root));
    let link_path = link.display().to_string();
    let written = |path: &str| {
        let path = path.to_string();
        move |x: &serde_json::Value| {
            s(x, "rule.id") == "e2e-target"
                && s(x, "event.action") == "write"
                && s(x, "file.path") == path
        }
    };
    // 1. Through the hard link: the watched inode, reached by another name.
    append(&link, "1");
    monitor.wait_for("a write through a hard link to the watched file", written(&link_path));
    // 2. The watched name removed: the file lives on under the link, unwatched.
    fs::remove_file(&target).unwrap();
    append(&link, "2");
    // 3. A new file at the watched path is watched.
    fs::write(&target, "new").unwrap();
    append(&target, "3");
    let target_path = target.display().to_string();
    monitor.wait_for("a write to the new file at the watched path", written(&target_path));
    // 4. That file moved away from the watched path: no longer watched there.
    let moved = root.join("elsewhere/moved");
    fs::rename(&target, &moved).unwrap();
    append(&moved, "4");
    monitor.fence(&root.join("fence"));
    let link_writes = monitor.matching(written(&link_path)).len();
    assert_eq!(link_writes, 1, "the link was written twice, watched only the first time");
    let moved_path = moved.display().to_string();
    assert!(monitor.matching(written(&moved_path)).is_empty(), "the file moved away still alerted");
}

/// An exec of a watched binary right after a failed exec whose argument list is too long
/// (E2BIG), in the same process, two hundred times: every one alerts.
#[test]
fn every_exec_of_a_watched_binary_after_an_e2big_failure_alerts() {
    if !privileged() {
        return;
    }
    const RUNS: usize = 200;
    let root = scratch_dir("identity-e2big");
    fs::create_dir_all(root.join("bin")).unwrap();
    let bin = root.join("bin/watched-true");
    fs::copy("/bin/true", &bin).unwrap();
    let rules = root.join("e2big.rules");
    fs::write(&rules, format!("-w {} -p x -k e2e-e2big\n", bin.display())).unwrap();
    let monitor = Monitor::start(&rules);
    use std::ffi::CString;
    let path = CString::new(bin.display().to_string()).unwrap();
    // More than the kernel takes for one argument list (a quarter of the 8 MiB stack).
    let huge = CString::new(vec![b'a'; 3 << 20]).unwrap();
    let tags: Vec<CString> =
        (0..RUNS).map(|i| CString::new(format!("e2big-run-{i}")).unwrap()).collect();
    let envp = [std::ptr::null::<libc::c_char>()];
    for tag in &tags {
        let too_long = [path.as_ptr(), huge.as_ptr(), std::ptr::null()];
        let fine = [path.as_ptr(), tag.as_ptr(), std::ptr::null()];
        // Only raw syscalls between fork and _exit: the test process has threads.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            unsafe {
                let rc = libc::syscall(
                    libc::SYS_execve,
                    path.as_ptr(),
                    too_long.as_ptr(),
                    envp.as_ptr(),
                );
                if rc != -1 || *libc::__errno_location() != libc::E2BIG {
                    libc::_exit(3);
                }
                libc::syscall(libc::SYS_execve, path.as_ptr(), fine.as_ptr(), envp.as_ptr());
                libc::_exit(4);
            }
        }
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "run ended with {status:#x} (3: no E2BIG, 4: exec failed)"
        );
    }
    let last = format!("e2big-run-{}", RUNS - 1);
    monitor.wait_for("the last run's exec", |x| {
        get(x, "process.args.1").as_str() == Some(last.as_str())
    });
    let alerted: HashSet<String> = monitor
        .matching(|x| s(x, "rule.id") == "e2e-e2big" && s(x, "event.outcome") == "success")
        .iter()
        .filter_map(|x| get(x, "process.args.1").as_str().map(str::to_string))
        .collect();
    let failed = monitor
        .matching(|x| s(x, "rule.id") == "e2e-e2big" && s(x, "event.outcome") == "failure")
        .len();
    let missing: Vec<usize> =
        (0..RUNS).filter(|i| !alerted.contains(&format!("e2big-run-{i}"))).collect();
    eprintln!(
        "{} of {RUNS} execs after an E2BIG failure alerted; {failed} failed execs alerted",
        RUNS - missing.len()
    );
    assert!(missing.is_empty(), "execs of the watched binary without an alert: runs {missing:?}");
    assert_eq!(failed, RUNS, "every failed exec of the watched binary alerts too");
}
