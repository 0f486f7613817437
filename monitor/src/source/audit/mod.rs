//! The audit-backed sources: auditd's logs (`log`: `monitor replay --format auditd`) and
//! the kernel audit subsystem's read-only netlink multicast (`live`: `monitor run --source
//! audit`).
//!
//! Both give records (`record`), grouped into events by serial (`group`), mapped onto the
//! same `Event`s the eBPF source produces (`map`; `events` does both), then enriched,
//! matched and rendered by the same pipeline.

pub mod events;
pub mod group;
pub mod live;
pub mod log;
pub mod map;
pub mod netlink;
pub mod record;

use record::Record;
use std::collections::BTreeMap;
use std::path::Path;

/// What reading audit input found, for the summary.
#[derive(Clone, Default, Debug)]
pub struct Stats {
    pub lines: u64,
    pub records: u64,
    /// Lines that are not audit records (reported with file and line number).
    pub malformed: u64,
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

/// Malformed lines reported one by one at most; the rest are counted.
const MALFORMED_REPORTED: u64 = 20;

impl Stats {
    /// Count a malformed line, saying where it is.
    pub fn malformed(&mut self, file: &Path, line: u64, why: &record::Malformed) {
        self.malformed += 1;
        if self.malformed <= MALFORMED_REPORTED {
            tracing::warn!("{}:{line}: not an audit record ({why}); skipped", file.display());
        } else if self.malformed == MALFORMED_REPORTED + 1 {
            tracing::warn!("more malformed lines; counting them without reporting each");
        }
    }

    pub fn unknown_type(&mut self, r: &Record) {
        *self.unknown.entry(r.type_name()).or_default() += 1;
    }
}
