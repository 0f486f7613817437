//! `cargo xtask dist`: the Debian package, in target/dist/.
//!
//! The binary is the one `cargo xtask build` makes (with the eBPF object embedded); the
//! manual pages and completions come from that binary's own `monitor generate`, so they
//! match its command line; cargo-deb (crates.io) packages it all without building again
//! (`--no-build`), from the metadata in monitor/Cargo.toml.

use crate::util::{cargo, run, workspace_root};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// Build the package; returns the path of the .deb.
pub fn dist() -> Result<PathBuf> {
    crate::setup::setup(false)?;
    crate::setup::ensure_cargo_deb()?;
    crate::build()?;
    let root = workspace_root();
    let out = root.join("target/dist");
    let gen = out.join("gen");
    if gen.exists() {
        std::fs::remove_dir_all(&gen).with_context(|| format!("removing {}", gen.display()))?;
    }
    let bin = root.join("target/release/monitor");
    for what in ["man", "completions"] {
        run(Command::new(&bin).args(["generate", what]).arg(gen.join(what)))?;
    }
    // Only this build's package is left in target/dist.
    for old in debs(&out)? {
        std::fs::remove_file(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    run(cargo().args(["deb", "--no-build", "--package", "monitor", "--output"]).arg(&out))?;
    match debs(&out)?.as_slice() {
        [deb] => {
            eprintln!("xtask: {}", deb.display());
            Ok(deb.clone())
        }
        other => bail!("expected one .deb in {}, found {other:?}", out.display()),
    }
}

fn debs(dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for e in entries {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "deb") {
            found.push(p);
        }
    }
    Ok(found)
}
