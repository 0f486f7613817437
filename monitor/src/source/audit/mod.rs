//! The audit-backed sources: auditd's logs (`monitor replay --format auditd`) and the
//! kernel audit subsystem's read-only netlink multicast (`monitor run --source audit`).
//!
//! Both give records (`record`), grouped into events by serial (`group`), mapped onto the
//! same `Event`s the eBPF source produces (`map`), then enriched, matched and rendered by the
//! same pipeline.

pub mod group;
pub mod map;
pub mod netlink;
pub mod record;
pub mod types;

use anyhow::{Context, Result};
use record::Record;
use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

/// What reading audit input found, for the summary.
#[derive(Default, Debug)]
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

/// Audit log files read in time order, line by line.
pub struct LogFiles {
    files: Vec<PathBuf>,
    next: usize,
    current: Option<(PathBuf, std::io::BufReader<std::fs::File>)>,
    line_no: u64,
    buf: Vec<u8>,
    /// Bytes read so far and in all (progress).
    pub read: u64,
    pub total: u64,
}

impl LogFiles {
    /// Open `paths` (files, or directories whose `audit.log*` files are taken). Rotated logs
    /// are ordered by the time of their first record, whatever order they are given in.
    pub fn open(paths: &[PathBuf]) -> Result<LogFiles> {
        let mut files = Vec::new();
        for p in paths {
            if p.is_dir() {
                let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                    .with_context(|| format!("reading directory {}", p.display()))?
                    .flatten()
                    .map(|e| e.path())
                    .filter(|f| f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("audit.log")))
                    .collect();
                anyhow::ensure!(!found.is_empty(), "{}: no audit.log* files in this directory", p.display());
                found.sort();
                files.extend(found);
            } else {
                std::fs::metadata(p).with_context(|| format!("cannot read audit log {}", p.display()))?;
                files.push(p.clone());
            }
        }
        let mut keyed = Vec::new();
        let mut total = 0;
        for f in files {
            total += std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
            keyed.push((first_time(&f).with_context(|| format!("reading audit log {}", f.display()))?, f));
        }
        // Files without any record keep their place at the end.
        keyed.sort_by_key(|(t, _)| t.unwrap_or(u64::MAX));
        Ok(LogFiles { files: keyed.into_iter().map(|(_, f)| f).collect(), next: 0, current: None, line_no: 0, buf: Vec::new(), read: 0, total })
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The next record; malformed lines are counted in `stats` and skipped.
    pub fn next_record(&mut self, stats: &mut Stats) -> Result<Option<Record>> {
        loop {
            if self.current.is_none() {
                let Some(f) = self.files.get(self.next) else { return Ok(None) };
                self.next += 1;
                let file = std::fs::File::open(f).with_context(|| format!("opening audit log {}", f.display()))?;
                self.current = Some((f.clone(), std::io::BufReader::with_capacity(1 << 16, file)));
                self.line_no = 0;
            }
            let (path, reader) = self.current.as_mut().expect("set above");
            self.buf.clear();
            // Bounded: a line longer than the limit is read in pieces and rejected.
            let n = reader
                .by_ref()
                .take(record::LINE_MAX as u64 + 1)
                .read_until(b'\n', &mut self.buf)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                self.current = None;
                continue;
            }
            self.read += n as u64;
            if self.buf.last() != Some(&b'\n') && n > record::LINE_MAX {
                // Skip the rest of the overlong line.
                let mut rest = Vec::new();
                loop {
                    rest.clear();
                    let m = reader.by_ref().take(1 << 16).read_until(b'\n', &mut rest)?;
                    self.read += m as u64;
                    if m == 0 || rest.last() == Some(&b'\n') {
                        break;
                    }
                }
            }
            self.line_no += 1;
            stats.lines += 1;
            let text = String::from_utf8_lossy(&self.buf);
            if text.trim().is_empty() {
                continue;
            }
            match Record::parse_line(&text) {
                Ok(r) => {
                    stats.records += 1;
                    return Ok(Some(r));
                }
                Err(why) => stats.malformed(path, self.line_no, &why),
            }
        }
    }
}

/// Time of the first record of a log file, in milliseconds.
fn first_time(f: &Path) -> Result<Option<u64>> {
    let reader = std::io::BufReader::new(std::fs::File::open(f)?);
    for line in reader.split(b'\n').take(1000) {
        let line = line?;
        if let Ok(r) = Record::parse_line(&String::from_utf8_lossy(&line)) {
            return Ok(Some(r.sec * 1000 + r.ms as u64));
        }
    }
    Ok(None)
}
