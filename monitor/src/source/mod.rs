//! Event sources: `ebpf` is the live kernel sensor; `audit` reads the kernel audit
//! subsystem live and auditd's logs; `capture` records what the eBPF source sent (with
//! the host context) and reads it back for `monitor replay`.

pub mod audit;
pub mod capture;
pub mod ebpf;
