//! auditd's logs as a source: files read in time order (rotated ones, given in any order or
//! as a directory), line by line, records grouped into events.

use super::events::Events;
use super::record::{self, Record};
use super::Stats;
use crate::error::Error;
use crate::source::{Input, Source};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

type Result<T> = crate::Result<T>;

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
        let io = |what: String| move |e: std::io::Error| Error::Input(format!("{what}: {e}"));
        let mut files = Vec::new();
        for p in paths {
            if p.is_dir() {
                let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                    .map_err(io(format!("reading directory {}", p.display())))?
                    .flatten()
                    .map(|e| e.path())
                    .filter(|f| {
                        f.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("audit.log"))
                    })
                    .collect();
                if found.is_empty() {
                    return Err(Error::Input(format!(
                        "{}: no audit.log* files in this directory",
                        p.display()
                    )));
                }
                found.sort();
                files.extend(found);
            } else {
                std::fs::metadata(p)
                    .map_err(io(format!("cannot read audit log {}", p.display())))?;
                files.push(p.clone());
            }
        }
        let mut keyed = Vec::new();
        let mut total = 0;
        for f in files {
            total += std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
            keyed.push((
                first_time(&f).map_err(io(format!("reading audit log {}", f.display())))?,
                f,
            ));
        }
        // Files without any record keep their place at the end.
        keyed.sort_by_key(|(t, _)| t.unwrap_or(u64::MAX));
        Ok(LogFiles {
            files: keyed.into_iter().map(|(_, f)| f).collect(),
            next: 0,
            current: None,
            line_no: 0,
            buf: Vec::new(),
            read: 0,
            total,
        })
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
                let file = std::fs::File::open(f)
                    .map_err(|e| Error::Input(format!("opening audit log {}: {e}", f.display())))?;
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
                .map_err(|e| Error::Input(format!("reading {}: {e}", path.display())))?;
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
                    let m =
                        reader.by_ref().take(1 << 16).read_until(b'\n', &mut rest).map_err(
                            |e| Error::Input(format!("reading {}: {e}", path.display())),
                        )?;
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
fn first_time(f: &Path) -> std::io::Result<Option<u64>> {
    let reader = std::io::BufReader::new(std::fs::File::open(f)?);
    for line in reader.split(b'\n').take(1000) {
        let line = line?;
        if let Ok(r) = Record::parse_line(&String::from_utf8_lossy(&line)) {
            return Ok(Some(r.sec * 1000 + r.ms as u64));
        }
    }
    Ok(None)
}

/// Audit logs as a source of events.
pub struct AuditLog {
    files: LogFiles,
    events: Events,
    ended: bool,
}

impl AuditLog {
    /// Open `paths` (see [`LogFiles::open`]).
    pub fn open(paths: &[PathBuf]) -> Result<AuditLog> {
        // Times stay wall-clock: the pipeline's clock has no offset for logs.
        Ok(AuditLog { files: LogFiles::open(paths)?, events: Events::new(0, false), ended: false })
    }

    pub fn stats(&self) -> &Stats {
        &self.events.stats
    }

    pub fn files(&self) -> &[PathBuf] {
        self.files.files()
    }
}

impl Source for AuditLog {
    fn next(&mut self) -> Result<Option<Input>> {
        loop {
            if let Some(a) = self.events.pop() {
                return Ok(Some(Input::Event(Box::new(a))));
            }
            if self.ended {
                return Ok(None);
            }
            match self.files.next_record(&mut self.events.stats)? {
                Some(r) => self.events.push(r, 0),
                None => {
                    self.events.finish();
                    self.ended = true;
                }
            }
        }
    }

    fn progress(&self) -> (u64, u64) {
        (self.files.read, self.files.total)
    }

    /// The record types the rules exclude.
    fn arm(&mut self, plan: &crate::plan::FilterPlan) -> Result<()> {
        self.events.set_excluded(plan.excluded_types.clone());
        Ok(())
    }
}
