//! Event sources. `ebpf` is the live kernel sensor; audit and capture sources come later.

pub mod ebpf;
