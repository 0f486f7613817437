//! The audit-backed sources: auditd's logs (`log`: `monitor replay --format auditd`) and
//! the kernel audit subsystem's read-only netlink multicast (`live`: `monitor run --source
//! audit`).
//!
//! Both give records (`record`), grouped into events by serial (`group`), mapped onto the
//! same `Event`s the eBPF source produces (`map`; `events` does both), with what the
//! logging host said beyond them (`names`: its user and group names, the audit keys), then
//! enriched, matched and rendered by the same pipeline.

pub mod events;
pub mod group;
pub mod live;
pub mod log;
pub mod map;
pub mod names;
pub mod netlink;
pub mod record;

use record::Record;
use std::collections::BTreeMap;

/// What reading audit input found, for the summary.
#[derive(Clone, Default, Debug)]
pub struct Stats {
    pub lines: u64,
    pub records: u64,
    /// Lines that are not audit records (reported once per input, with where).
    pub malformed: u64,
    /// Inputs with nothing in them.
    pub empty_inputs: u64,
    /// Inputs skipped (not audit logs, in a directory) or broken off (a cut gzip file).
    pub unreadable_inputs: u64,
    /// Records of types this monitor does not know, by type.
    pub unknown: BTreeMap<String, u64>,
    /// Records dropped by `exclude` rules.
    pub excluded: u64,
    pub events: u64,
    /// Syscall events of other architectures (the rules are x86-64's).
    pub other_arch: u64,
    /// Events of known types no rule can select (daemon start, AVC, ...).
    pub not_evaluated: u64,
}

impl Stats {
    pub fn unknown_type(&mut self, r: &Record) {
        *self.unknown.entry(r.type_name()).or_default() += 1;
    }

    /// Whether part of the input could not be read (lines, or whole inputs).
    pub fn partial(&self) -> bool {
        self.malformed > 0 || self.unreadable_inputs > 0
    }
}
