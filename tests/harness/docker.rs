//! A real Docker for the tests: a dockerd answering on /var/run/docker.sock (started when
//! none is running) and local images built from Debian's static busybox (no registry is
//! reachable from the test machines).

use crate::{privileged, scratch_dir, Monitor};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Plain busybox.
pub const IMAGE: &str = "local/busybox:1";
/// Busybox installed setuid root, with a passwd where root has no password: `su` run by
/// uid 1000 inside it is a real uid 1000 -> 0 transition.
pub const SUID_IMAGE: &str = "local/monitor-e2e-suid:1";

const DOCKERD_START: Duration = Duration::from_secs(60);

/// `docker ARGS`, its status and output.
pub fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker").args(args).stdin(Stdio::null()).output().expect("running the docker CLI")
}

/// One `monitor run` for a whole test binary, over the default pack (`rules/`) and rules of
/// the test's own, with Docker running ([`ensure`]). Its scratch `root` has a `fence/`
/// directory that the rules watch for writes (key `e2e-fence`).
pub struct PackMonitor {
    pub root: PathBuf,
    pub monitor: Monitor,
}

impl PackMonitor {
    /// The monitor in `cell`, started at the first call (`None`: not privileged, skip) in
    /// scratch directory `name`; `extra(root)` prepares the root and returns more rule lines.
    pub fn once(
        cell: &'static OnceLock<PackMonitor>,
        name: &str,
        extra: impl FnOnce(&Path) -> String,
    ) -> Option<&'static PackMonitor> {
        if !privileged() {
            return None;
        }
        Some(cell.get_or_init(|| {
            ensure();
            let root = scratch_dir(name);
            std::fs::create_dir_all(root.join("fence")).unwrap();
            let fence = format!("-w {}/fence -p w -k e2e-fence\n", root.display());
            let rules = crate::write_file(&root, "extra.rules", extra(&root) + &fence);
            let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
            PackMonitor { monitor: Monitor::start_with(&[&pack, &rules]), root }
        }))
    }

    /// Wait until everything done before has gone through the monitor ([`Monitor::fence`]).
    pub fn fence(&self) {
        self.monitor.fence(&self.root.join("fence"));
    }
}

fn daemon_answers() -> bool {
    docker(&["version", "--format", "{{.Server.Version}}"]).status.success()
}

/// Make sure dockerd runs and the test images exist (once per test process).
pub fn ensure() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        assert!(
            Command::new("docker").arg("--version").output().is_ok_and(|o| o.status.success()),
            "the docker CLI is missing: `cargo xtask setup --test-deps` installs docker.io"
        );
        if !daemon_answers() {
            start_dockerd();
        }
        build_image(IMAGE, false);
        build_image(SUID_IMAGE, true);
    });
}

fn start_dockerd() {
    let log = std::fs::File::create("/tmp/monitor-tests-dockerd.log").unwrap();
    let mut cmd = Command::new("dockerd");
    // No iptables and no bridge: the test machines have neither, and the tests need no network.
    cmd.args(["--iptables=false", "--bridge=none"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    unsafe {
        // Its own session: it outlives this test process, as a system daemon would.
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    // Not waited for: the daemon outlives the tests (its own session), and init reaps it.
    #[allow(clippy::zombie_processes)]
    let _daemon = cmd.spawn().expect("starting dockerd");
    let deadline = Instant::now() + DOCKERD_START;
    while !daemon_answers() {
        assert!(
            Instant::now() < deadline,
            "dockerd did not answer within {DOCKERD_START:?}; see /tmp/monitor-tests-dockerd.log"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn build_image(name: &str, suid: bool) {
    if docker(&["image", "inspect", name]).status.success() {
        return;
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox is missing: `cargo xtask setup --test-deps` installs busybox-static");
    let dir = scratch_dir(&format!("image-{}", if suid { "suid" } else { "plain" }));
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    std::fs::copy(busybox, dir.join("bin/busybox")).unwrap();
    let list = Command::new(busybox).arg("--list").output().unwrap();
    for applet in
        String::from_utf8_lossy(&list.stdout).lines().filter(|a| !a.is_empty() && *a != "busybox")
    {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root::0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
    if suid {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("bin/busybox"), std::fs::Permissions::from_mode(0o4755))
            .unwrap();
    }
    let script =
        format!("tar -C {} -c --owner=0 --group=0 . | docker import - {name}", dir.display());
    let status = Command::new("sh").arg("-c").arg(&script).stdout(Stdio::null()).status().unwrap();
    assert!(status.success(), "building {name} failed");
}
