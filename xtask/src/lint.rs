//! `cargo xtask lint`: the tree is formatted (`cargo fmt --check`, rustfmt.toml) and clippy
//! finds nothing, warnings denied: the host crates with every target (tests, benches), the
//! eBPF crate on its own target with the nightly toolchain, and the fuzz crate (its own
//! workspace, nightly like cargo-fuzz), so a changed library signature fails here in a
//! minute rather than in `cargo xtask fuzz` under the sanitizer.

use anyhow::Result;
use std::process::Command;

use crate::util::{cargo, run, workspace_root};

pub fn lint() -> Result<()> {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(Command::new("cargo")
        .current_dir(workspace_root().join("monitor/fuzz"))
        .args(["fmt", "--check"]))?;
    run(cargo().args(["clippy", "--release", "--all-targets", "--", "-D", "warnings"]))?;
    run(Command::new("cargo")
        .current_dir(workspace_root().join("monitor/fuzz"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .args(["+nightly", "clippy", "--bins", "--", "-D", "warnings"]))?;
    run(Command::new("cargo")
        .current_dir(workspace_root().join("monitor-ebpf"))
        .env_remove("RUSTUP_TOOLCHAIN")
        .args([
            "+nightly",
            "clippy",
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--",
            "-D",
            "warnings",
        ]))
}
