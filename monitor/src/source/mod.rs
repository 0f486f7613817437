//! Event sources: `ebpf` is the live kernel sensor; `capture` records what it sent (with
//! the host context) and reads it back for `monitor replay`.

pub mod capture;
pub mod ebpf;
