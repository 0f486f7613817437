//! Grouping records into events by serial.
//!
//! The kernel writes a syscall event as SYSCALL, its auxiliary records (EXECVE, SOCKADDR,
//! CWD, PATH...), PROCTITLE last, then EOE; auditd does not log the EOE. Records of events
//! finishing on different CPUs may interleave. An event is complete at its EOE, at the
//! PROCTITLE of a syscall event, at once for a user-space message, and otherwise when no
//! record of it has come for `QUIET_RECORDS` records (or, live, for a while) or at the end.

use super::record::Record;
use crate::vocab::records as types;
use std::collections::VecDeque;

/// One event: its records in arrival order (the EOE left out).
#[derive(Debug)]
pub struct Group {
    pub serial: u64,
    pub sec: u64,
    pub ms: u32,
    pub records: Vec<Record>,
    /// Record count of the assembler when this group last grew.
    touched: u64,
    /// Time (caller's clock) when this group last grew.
    touched_at: u64,
}

impl Group {
    /// The one event the audit log `lines` make, assembled as a reader would (tests).
    #[cfg(test)]
    pub fn of_lines(lines: &[&str]) -> Group {
        let mut a = Assembler::default();
        let mut done = Vec::new();
        for l in lines {
            a.push(Record::parse_line(l).unwrap(), 0, &mut done);
        }
        a.finish(&mut done);
        assert_eq!(done.len(), 1, "one event");
        done.pop().unwrap()
    }

    pub fn first(&self, rtype: u16) -> Option<&Record> {
        self.records.iter().find(|r| r.rtype == rtype)
    }

    pub fn all(&self, rtype: u16) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(move |r| r.rtype == rtype)
    }

    pub fn node(&self) -> Option<&str> {
        self.records.first().and_then(|r| r.node())
    }
}

/// An open event with no new record for this many records is complete.
const QUIET_RECORDS: u64 = 64;
/// Open events at most (the oldest is completed first).
const MAX_OPEN: usize = 256;

/// Events are released in the order their first record arrived: a complete event waits
/// for the older ones still open (at most `QUIET_RECORDS` records), so the output follows
/// the log.
#[derive(Default)]
pub struct Assembler {
    open: VecDeque<(Group, bool)>,
    records: u64,
}

impl Assembler {
    /// Add a record; events now complete are appended to `done`. `now` is any monotonic
    /// clock of the caller's (used by `expire`).
    pub fn push(&mut self, r: Record, now: u64, done: &mut Vec<Group>) {
        self.records += 1;
        let pos = self.open.iter().rposition(|(g, _)| {
            g.serial == r.serial && g.sec == r.sec && g.ms == r.ms && g.node() == r.node()
        });
        let complete = match r.rtype {
            types::EOE => true,
            types::PROCTITLE => pos.is_some_and(|p| self.open[p].0.first(types::SYSCALL).is_some()),
            t => pos.is_none() && types::is_user_message(t),
        };
        let idx = match pos {
            Some(p) => p,
            None => {
                let g = Group {
                    serial: r.serial,
                    sec: r.sec,
                    ms: r.ms,
                    records: Vec::new(),
                    touched: 0,
                    touched_at: 0,
                };
                self.open.push_back((g, false));
                self.open.len() - 1
            }
        };
        let (g, done_flag) = &mut self.open[idx];
        g.touched = self.records;
        g.touched_at = now;
        if r.rtype != types::EOE {
            g.records.push(r);
        }
        *done_flag |= complete;
        self.release(done);
    }

    /// Hand over the complete events at the front, and the front when it went quiet or
    /// too many are open.
    fn release(&mut self, done: &mut Vec<Group>) {
        while let Some((front, complete)) = self.open.front() {
            if *complete
                || self.open.len() > MAX_OPEN
                || self.records - front.touched > QUIET_RECORDS
            {
                let (g, _) = self.open.pop_front().expect("front exists");
                if !g.records.is_empty() {
                    done.push(g);
                }
            } else {
                break;
            }
        }
    }

    /// Complete events that got no record since `before` (live: the kernel sends EOE, but a
    /// single-record kernel event has none).
    pub fn expire(&mut self, before: u64, done: &mut Vec<Group>) {
        for (g, complete) in self.open.iter_mut() {
            if g.touched_at < before {
                *complete = true;
            }
        }
        self.release(done);
    }

    /// The end of the input: everything still open is complete.
    pub fn finish(&mut self, done: &mut Vec<Group>) {
        for (_, complete) in self.open.iter_mut() {
            *complete = true;
        }
        self.release(done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(line: &str) -> Record {
        Record::parse_line(line).unwrap()
    }

    #[test]
    fn groups_interleaved_events_and_releases_them_in_arrival_order() {
        let mut a = Assembler::default();
        let mut done = Vec::new();
        a.push(rec("type=SYSCALL msg=audit(1.000:10): syscall=59"), 0, &mut done);
        a.push(rec("type=SYSCALL msg=audit(1.000:11): syscall=2"), 0, &mut done);
        a.push(rec("type=EXECVE msg=audit(1.000:10): argc=1 a0=\"x\""), 0, &mut done);
        a.push(rec("type=PATH msg=audit(1.000:11): item=0 name=\"/a\""), 0, &mut done);
        a.push(rec("type=PROCTITLE msg=audit(1.000:11): proctitle=78"), 0, &mut done);
        assert!(done.is_empty(), "11 is complete but 10, older, is still open");
        a.push(rec("type=EOE msg=audit(1.000:10): "), 0, &mut done);
        let serials: Vec<u64> = done.iter().map(|g| g.serial).collect();
        assert_eq!(serials, [10, 11]);
        assert_eq!((done[0].records.len(), done[1].records.len()), (2, 3));
        a.push(rec("type=USER_CMD msg=audit(1.000:12): pid=1 msg='cmd=78'"), 0, &mut done);
        assert_eq!(done.len(), 3, "a user message is an event by itself");
        // Same serial, other time: another event (serials restart after a reboot).
        a.push(rec("type=CONFIG_CHANGE msg=audit(5.000:10): op=x"), 0, &mut done);
        a.push(rec("type=CONFIG_CHANGE msg=audit(6.000:10): op=y"), 5, &mut done);
        a.expire(3, &mut done);
        assert_eq!(done.len(), 4);
        a.finish(&mut done);
        assert_eq!(done.len(), 5);
    }

    #[test]
    fn quiet_events_complete_without_an_end_marker() {
        let mut a = Assembler::default();
        let mut done = Vec::new();
        a.push(rec("type=CONFIG_CHANGE msg=audit(1.000:1): op=x"), 0, &mut done);
        for i in 0..QUIET_RECORDS + 1 {
            a.push(
                rec(&format!("type=SYSCALL msg=audit(1.000:{}): syscall=2", 100 + i)),
                0,
                &mut done,
            );
        }
        assert_eq!(done.first().map(|g| g.serial), Some(1));
    }
}
