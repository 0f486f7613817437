//! Builds the eBPF programs (monitor-ebpf, bpfel target, nightly + bpf-linker) and leaves the
//! object in OUT_DIR for `include_bytes_aligned!`. `cargo xtask setup` installs the toolchain.

fn main() -> anyhow::Result<()> {
    let ebpf = aya_build::Package {
        name: "monitor-ebpf",
        root_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../monitor-ebpf"),
        ..Default::default()
    };
    aya_build::build_ebpf([ebpf], aya_build::Toolchain::default())
}
