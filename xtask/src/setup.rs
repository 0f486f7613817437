//! `cargo xtask setup`: install the eBPF toolchain and the test packages.
//!
//! Every step checks first and does nothing when its piece is already present, so a second
//! run takes well under a second.

use crate::util::{output, run, succeeds};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// bpf-linker release known to build against the nightly's LLVM 22 on this machine kind.
const BPF_LINKER_VERSION: &str = "0.13.0";
const NIGHTLY: &str = "nightly";

/// Debian packages the tests drive for real, with a binary that proves each is installed.
const TEST_PACKAGES: &[(&str, &str)] = &[
    ("auditd", "/usr/sbin/auditctl"),
    ("bpftool", "/usr/sbin/bpftool"),
    ("docker.io", "/usr/sbin/dockerd"),
    ("busybox-static", "/bin/busybox"),
    // setenforce/getenforce: the SELinux tools the pack watches (they run without SELinux too).
    ("selinux-utils", "/usr/sbin/setenforce"),
    // The account tools and sysctl the hardening tests run (present on most installs).
    ("passwd", "/usr/sbin/usermod"),
    ("procps", "/usr/sbin/sysctl"),
    // perf: the bench's in-run hook cost pass samples the workloads with it.
    ("linux-perf", "/usr/bin/perf"),
    // node and npm: the ECS tests fetch Elastic's field table (`npm pack @elastic/ecs`).
    ("nodejs", "/usr/bin/node"),
    ("npm", "/usr/bin/npm"),
    // The syslog output's test sends to a real rsyslogd (its own socket and config).
    ("rsyslog", "/usr/sbin/rsyslogd"),
    // systemd-analyze verify checks the unit (PID 1 is not systemd here).
    ("systemd", "/usr/bin/systemd-analyze"),
    // laurel's build needs them (its install notes): the bench runs auditd + laurel.
    ("libacl1-dev", "/usr/include/sys/acl.h"),
    ("clang", "/usr/bin/clang"),
    // The packaged logrotate example rotates a live file output in the tests.
    ("logrotate", "/usr/sbin/logrotate"),
    // The README's Filebeat, Vector and Fluent Bit snippets are parsed as YAML.
    ("python3-yaml", "/usr/lib/python3/dist-packages/yaml/__init__.py"),
];

/// Packages whose service apt must not start: the tests run their own instance, and the
/// host's logger is not theirs to take over.
const NO_SERVICE_START: &[&str] = &["rsyslog"];

/// cargo-deb release that builds the Debian package (`cargo xtask dist`).
const CARGO_DEB_VERSION: &str = "3.8.0";

/// cargo-fuzz release used for the fuzz targets (monitor/fuzz).
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// laurel release the bench runs as auditd's plugin (the JSON pipeline users compare with).
pub const LAUREL_VERSION: &str = "0.8.2";

pub fn setup(test_deps: bool) -> Result<()> {
    ensure_rust_src()?;
    ensure_bpf_linker()?;
    if test_deps {
        ensure_packages(TEST_PACKAGES)?;
        ensure_cargo_fuzz()?;
        ensure_laurel()?;
        ensure_lint_tools()?;
    }
    Ok(())
}

/// rustfmt and clippy on the stable toolchain and clippy on the nightly (the eBPF crate is
/// linted on its own target), for `cargo xtask lint`.
pub fn ensure_lint_tools() -> Result<()> {
    for (toolchain, component, probe) in [
        ("stable", "rustfmt", "rustfmt"),
        ("stable", "clippy", "clippy-driver"),
        (NIGHTLY, "clippy", "clippy-driver"),
    ] {
        if succeeds(Command::new("rustup").args(["run", toolchain, probe, "--version"])) {
            continue;
        }
        eprintln!("xtask: installing {component} for {toolchain}");
        run(Command::new("rustup").args([
            "component",
            "add",
            component,
            "--toolchain",
            toolchain,
        ]))?;
    }
    Ok(())
}

/// cargo-fuzz, for the fuzz targets the test run exercises.
pub fn ensure_cargo_fuzz() -> Result<()> {
    if succeeds(Command::new(cargo_bin_dir().join("cargo-fuzz")).arg("--version")) {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-fuzz {CARGO_FUZZ_VERSION} (about a minute)");
    run(&mut cargo_install("cargo-fuzz", CARGO_FUZZ_VERSION))
}

/// laurel, the auditd plugin the bench runs beside bare auditd. Its path.
pub fn ensure_laurel() -> Result<PathBuf> {
    let bin = cargo_bin_dir().join("laurel");
    // `laurel --version` prints "0.8.2 (generic)".
    let version = output(Command::new(&bin).arg("--version")).unwrap_or_default();
    if version.split_whitespace().next() == Some(LAUREL_VERSION) {
        return Ok(bin);
    }
    eprintln!("xtask: installing laurel {LAUREL_VERSION} (about four minutes)");
    run(Command::new("cargo").args([
        "install",
        "laurel",
        "--locked",
        "--version",
        LAUREL_VERSION,
    ]))?;
    Ok(bin)
}

/// cargo-deb, for `cargo xtask dist`.
pub fn ensure_cargo_deb() -> Result<()> {
    let version = output(Command::new(cargo_bin_dir().join("cargo-deb")).arg("--version"))
        .unwrap_or_default();
    if version.split_whitespace().nth(1) == Some(CARGO_DEB_VERSION) {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-deb {CARGO_DEB_VERSION} (about three minutes)");
    run(&mut cargo_install("cargo-deb", CARGO_DEB_VERSION))
}

/// `cargo install` of one release of a crate, with its locked dependencies.
fn cargo_install(krate: &str, version: &str) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.args(["install", krate, "--locked", "--version", version]);
    cmd
}

/// The nightly toolchain's sysroot (it builds the eBPF programs).
fn nightly_sysroot() -> Result<String> {
    output(Command::new("rustc").args([&format!("+{NIGHTLY}"), "--print", "sysroot"]))
        .context("the nightly toolchain is required to build the eBPF programs")
}

fn ensure_rust_src() -> Result<()> {
    let sysroot = nightly_sysroot()?;
    let src = Path::new(&sysroot).join("lib/rustlib/src/rust/library/core");
    if src.exists() {
        return Ok(());
    }
    eprintln!("xtask: installing rust-src for {NIGHTLY}");
    run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", NIGHTLY]))
}

fn cargo_bin_dir() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
    });
    home.join("bin")
}

fn ensure_bpf_linker() -> Result<()> {
    let installed = cargo_bin_dir().join("bpf-linker");
    if succeeds(Command::new(&installed).arg("--version")) {
        return Ok(());
    }
    // bpf-linker must use exactly the LLVM that produced the bitcode: the nightly's own
    // libLLVM. It finds it through LLVM_PREFIX/lib, which we populate with symlinks.
    let sysroot = nightly_sysroot()?;
    let sys_lib = Path::new(&sysroot).join("lib");
    let libllvm = std::fs::read_dir(&sys_lib)
        .with_context(|| format!("reading {}", sys_lib.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("libLLVM.so."))
        .with_context(|| format!("no libLLVM.so.* in {}", sys_lib.display()))?;
    let major =
        libllvm.trim_start_matches("libLLVM.so.").split('.').next().unwrap_or_default().to_string();
    if major != "22" && major != "21" {
        bail!("nightly ships LLVM {major}; bpf-linker {BPF_LINKER_VERSION} supports 21 and 22");
    }
    let prefix = crate::util::workspace_root().join("target/llvm-prefix");
    let prefix_lib = prefix.join("lib");
    std::fs::create_dir_all(&prefix_lib)?;
    for name in ["libLLVM.so".to_string(), libllvm.clone()] {
        let link = prefix_lib.join(&name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(sys_lib.join(&libllvm), &link)
            .with_context(|| format!("symlinking {}", link.display()))?;
    }
    eprintln!("xtask: building bpf-linker {BPF_LINKER_VERSION} against {libllvm} (about a minute)");
    run(cargo_install("bpf-linker", BPF_LINKER_VERSION)
        .args(["--no-default-features", "--features", &format!("llvm-{major}")])
        .env("LLVM_PREFIX", &prefix)
        .env(format!("LLVM_SYS_{major}0_PREFIX"), &prefix))
}

fn ensure_packages(packages: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, probe)| !Path::new(probe).exists())
        .map(|(pkg, _)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing Debian packages {missing:?}");
    let apt = |args: &[&str]| {
        run(Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive"))
    };
    apt(&["update", "-q"])?;
    let (quiet, others): (Vec<&str>, Vec<&str>) =
        missing.iter().partition(|p| NO_SERVICE_START.contains(p));
    let install = |pkgs: &[&str]| {
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend(pkgs);
        apt(&args)
    };
    if !others.is_empty() {
        install(&others)?;
    }
    if !quiet.is_empty() {
        // Debian's way to keep a package's postinst from starting its service.
        let policy = Path::new("/usr/sbin/policy-rc.d");
        let ours = !policy.exists();
        if ours {
            std::fs::write(
                policy,
                "#!/bin/sh\n# cargo xtask setup: no service starts while it installs.\nexit 101\n",
            )?;
            std::fs::set_permissions(policy, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        }
        let result = install(&quiet);
        if ours {
            let _ = std::fs::remove_file(policy);
        }
        result?;
    }
    Ok(())
}
