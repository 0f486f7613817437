//! auditd's logs as a source: inputs read in time order (rotated files given in any order
//! or as a directory, gzip-compressed or not, standard input), line by line, records
//! grouped into events.
//!
//! What cannot be read is said once per input, with where: the lines that are not audit
//! records (a count, the first line's reason and the first line numbers), an input that
//! breaks off (a cut gzip file); the rest of the input is still read.

use super::events::Events;
use super::record::{self, Record};
use super::Stats;
use crate::error::Error;
use crate::source::input::{Opened, Probe};
use crate::source::{Input, Source};
use std::io::BufRead;

type Result<T> = crate::Result<T>;

/// Line numbers of bad lines named in the report of one input, at most.
const LINES_NAMED: usize = 8;

/// The lines of one input that were not records.
#[derive(Default)]
struct BadLines {
    count: u64,
    first_why: Option<record::Malformed>,
    lines: Vec<u64>,
}

/// The input being read.
struct Current {
    name: String,
    reader: std::io::BufReader<Box<dyn std::io::Read>>,
    consumed: std::rc::Rc<std::cell::Cell<u64>>,
    line_no: u64,
    bad: BadLines,
}

impl Current {
    /// The input's end (or break): its bad lines reported in one message.
    fn report(&self) {
        let b = &self.bad;
        if b.count == 0 {
            return;
        }
        let mut lines: Vec<String> = b.lines.iter().map(u64::to_string).collect();
        if b.count as usize > lines.len() {
            lines.push("...".into());
        }
        let why = b.first_why.as_ref().map_or("", |w| w.0);
        tracing::warn!(
            "{}:{}: {} line(s) of this input are not audit records, skipped (first: {why}; lines {})",
            self.name,
            b.lines[0],
            b.count,
            lines.join(", ")
        );
    }
}

/// Audit log inputs read in time order, line by line.
pub struct LogFiles {
    inputs: Vec<Probe>,
    next: usize,
    current: Option<Current>,
    buf: Vec<u8>,
    /// Bytes of finished inputs (progress).
    done: u64,
    pub total: u64,
}

impl LogFiles {
    /// The inputs (looked at by [`crate::source::input::probe`]), ordered by the time of
    /// their first record, whatever order they were named in; those without one early on
    /// keep their place after the others.
    pub fn new(mut inputs: Vec<Probe>) -> LogFiles {
        inputs.sort_by_key(|p| p.first_record_ms.unwrap_or(u64::MAX));
        let total = inputs.iter().filter_map(|p| p.size).sum();
        LogFiles { inputs, next: 0, current: None, buf: Vec::new(), done: 0, total }
    }

    /// The inputs' names, in the order they are read.
    pub fn names(&self) -> Vec<String> {
        self.inputs.iter().map(|p| p.named.name()).collect()
    }

    /// Bytes read so far (of the inputs themselves: compressed ones count as stored).
    pub fn read(&self) -> u64 {
        self.done + self.current.as_ref().map_or(0, |c| c.consumed.get())
    }

    /// The next record; lines that are not records are counted in `stats` and skipped.
    pub fn next_record(&mut self, stats: &mut Stats) -> Result<Option<Record>> {
        loop {
            if self.current.is_none() {
                let Some(probe) = self.inputs.get_mut(self.next) else { return Ok(None) };
                self.next += 1;
                let name = probe.named.name();
                let Opened { reader, consumed } = probe.open()?;
                self.current = Some(Current {
                    name,
                    reader: std::io::BufReader::with_capacity(1 << 16, reader),
                    consumed,
                    line_no: 0,
                    bad: BadLines::default(),
                });
            }
            let cur = self.current.as_mut().expect("set above");
            match read_line(&mut cur.reader, &mut self.buf) {
                Ok(0) => {
                    self.end_input();
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    stats.unreadable_inputs += 1;
                    tracing::warn!(
                        "{}: unreadable after line {} ({e}); the rest of this input is skipped",
                        cur.name,
                        cur.line_no
                    );
                    self.end_input();
                    continue;
                }
            }
            cur.line_no += 1;
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
                Err(why) => {
                    stats.malformed += 1;
                    let bad = &mut cur.bad;
                    bad.count += 1;
                    bad.first_why.get_or_insert(why);
                    if bad.lines.len() < LINES_NAMED {
                        bad.lines.push(cur.line_no);
                    }
                }
            }
        }
    }

    fn end_input(&mut self) {
        if let Some(cur) = self.current.take() {
            cur.report();
            self.done += cur.consumed.get();
        }
    }
}

/// One line into `buf`, bounded: a line longer than the limit is read in pieces and kept
/// cut (it is then not a record). The count read, 0 at the end.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    use std::io::Read;
    buf.clear();
    let n = reader.by_ref().take(record::LINE_MAX as u64 + 1).read_until(b'\n', buf)?;
    if buf.last() != Some(&b'\n') && n > record::LINE_MAX {
        let mut rest = Vec::new();
        loop {
            rest.clear();
            let m = reader.by_ref().take(1 << 16).read_until(b'\n', &mut rest)?;
            if m == 0 || rest.last() == Some(&b'\n') {
                break;
            }
        }
    }
    Ok(n)
}

/// Audit logs as a source of events.
pub struct AuditLog {
    files: LogFiles,
    events: Events,
    ended: bool,
}

impl AuditLog {
    /// Read `inputs` (audit logs, looked at already); `stats` holds what was counted
    /// before reading (empty or skipped inputs).
    pub fn new(inputs: Vec<Probe>, stats: Stats) -> AuditLog {
        // Times stay wall-clock: the pipeline's clock has no offset for logs.
        let mut events = Events::new(0, false);
        events.stats = stats;
        AuditLog { files: LogFiles::new(inputs), events, ended: false }
    }

    pub fn stats(&self) -> &Stats {
        &self.events.stats
    }

    pub fn names(&self) -> Vec<String> {
        self.files.names()
    }

    /// No record at all was read: what the user is told, naming the inputs.
    pub fn nothing_read(&self) -> Error {
        let s = self.stats();
        Error::Input(format!(
            "{}: no audit record in {} line(s) ({})",
            self.names().join(", "),
            s.lines,
            crate::source::input::EXPECTED
        ))
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
        (self.files.read(), self.files.total)
    }

    /// The record types the rules exclude.
    fn arm(&mut self, plan: &crate::plan::FilterPlan) -> Result<()> {
        self.events.set_excluded(plan.excluded_types.clone());
        Ok(())
    }
}
