//! Floods are counted, not repeated and not lost. Identical verdicts (the same rule or
//! built-in detection, process, action, outcome, objects and request) within a window are
//! one alert and then a count: the first is printed, the ones after it within the window
//! are counted, and when the window ends an `alerts-suppressed` record names the alert (its
//! `event.sequence`) and carries the count. Alerts printed plus the counts equal the
//! verdicts made. A window of 0 turns this off.
//!
//! Time is the events' own (CLOCK_BOOTTIME): windows close as later events arrive, and on
//! the live loop's ticks, which a capture records, so that a replay closes them where the
//! live run did.

use super::{Raised, Verdict};
use crate::event::{Action, Event};
use crate::rules::model::Kind;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// How verdicts are aggregated (`--aggregate-window`, `--aggregate-keys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The window, in ns; 0: every verdict is printed.
    pub window_ns: u64,
    /// Open windows at most; the oldest closes early when another would open.
    pub max_keys: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { window_ns: 10_000_000_000, max_keys: 10_000 }
    }
}

/// What makes two verdicts the same.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    raised: Raised,
    kind: Kind,
    pid: u32,
    syscall: i32,
    action: Action,
    /// An open's access mode and O_CREAT/O_TRUNC (a read and a write are not the same).
    access: u32,
    success: bool,
    path: Option<Vec<u8>>,
    path2: Option<Vec<u8>>,
    /// A Docker request's method and URL, or a self-defence detail.
    detail: Option<String>,
}

impl Key {
    fn of(ev: &Event, v: &Verdict) -> Key {
        const ACCESS: u32 = 0o3 | 0o100 | 0o1000;
        let detail = match (&v.docker, &v.tamper) {
            (Some(d), _) => Some(d.0.request.to_string()),
            (None, Some(t)) => Some(t.clone()),
            (None, None) => None,
        };
        Key {
            raised: v.raised.clone(),
            kind: v.kind,
            pid: ev.pid,
            syscall: ev.syscall,
            action: ev.action,
            access: ev.open_flags & ACCESS,
            success: ev.success(),
            path: ev.path.clone(),
            path2: ev.path2.clone(),
            detail,
        }
    }
}

/// An open window. What it is about is its key, and nothing else is kept: a storm of
/// distinct paths fills the table to `max_keys`, and the record's JSON is built only for a
/// window that closes with a count.
struct Window {
    /// The printed verdict's `event.sequence`.
    sequence: u64,
    /// Its `event.action`.
    action: &'static str,
    opened_ns: u64,
    ends_ns: u64,
    suppressed: u64,
    last_ns: u64,
}

/// What the verdicts of a window were about: the rule, the process, the action and the
/// objects.
#[derive(Debug, PartialEq)]
pub struct About {
    pub raised: Raised,
    pub pid: u32,
    pub action: &'static str,
    pub path: Option<Vec<u8>>,
    pub path2: Option<Vec<u8>>,
}

/// A window that closed with verdicts counted in it: the `alerts-suppressed` record.
#[derive(Debug, PartialEq)]
pub struct Summary {
    /// `event.sequence` of the alert printed for them.
    pub sequence: u64,
    pub about: About,
    pub count: u64,
    /// The window (CLOCK_BOOTTIME ns) and the last verdict counted.
    pub opened_ns: u64,
    pub ends_ns: u64,
    pub last_ns: u64,
}

/// What to do with a verdict.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Print it (a window opens: tell [`Aggregator::printed`] its sequence).
    Print,
    /// Counted in an open window.
    Counted,
}

#[derive(Default)]
pub struct Aggregator {
    settings: Settings,
    open: HashMap<Arc<Key>, Window>,
    /// Keys by opening time (windows are all as long: also by closing time).
    order: VecDeque<Arc<Key>>,
    /// The key of the verdict last admitted for printing.
    pending: Option<Key>,
    /// The latest event time seen.
    now_ns: u64,
}

impl Aggregator {
    pub fn new(settings: Settings) -> Aggregator {
        Aggregator { settings, ..Aggregator::default() }
    }

    /// Print `v` (of `ev`) or count it. Windows that ended before `ev` close first (into
    /// `closed`).
    pub fn admit(&mut self, ev: &Event, v: &Verdict, closed: &mut Vec<Summary>) -> Admit {
        if self.settings.window_ns == 0 {
            return Admit::Print;
        }
        self.expire(ev.ts_boot_ns, closed);
        let key = Key::of(ev, v);
        if let Some(w) = self.open.get_mut(&key) {
            w.suppressed += 1;
            w.last_ns = w.last_ns.max(ev.ts_boot_ns);
            return Admit::Counted;
        }
        if self.open.len() >= self.settings.max_keys.max(1) {
            self.close_oldest(closed);
        }
        self.pending = Some(key);
        Admit::Print
    }

    /// The verdict just admitted (of `ev`) was printed as `sequence`: its window opens.
    pub fn printed(&mut self, ev: &Event, sequence: u64) {
        let Some(key) = self.pending.take() else { return };
        let key = Arc::new(key);
        let opened_ns = ev.ts_boot_ns;
        let window = Window {
            sequence,
            action: ev.action_name(),
            opened_ns,
            ends_ns: opened_ns.saturating_add(self.settings.window_ns),
            suppressed: 0,
            last_ns: opened_ns,
        };
        self.order.push_back(key.clone());
        self.open.insert(key, window);
    }

    /// Close the windows that ended by `now_ns` (an event's time, or a live tick's).
    pub fn expire(&mut self, now_ns: u64, closed: &mut Vec<Summary>) {
        self.now_ns = self.now_ns.max(now_ns);
        while let Some(key) = self.order.front() {
            match self.open.get(key) {
                Some(w) if w.ends_ns > self.now_ns => break,
                _ => self.close_oldest(closed),
            }
        }
    }

    /// Close every window (the end of the input, a stop).
    pub fn close_all(&mut self, closed: &mut Vec<Summary>) {
        while !self.order.is_empty() {
            self.close_oldest(closed);
        }
    }

    fn close_oldest(&mut self, closed: &mut Vec<Summary>) {
        let Some(key) = self.order.pop_front() else { return };
        if let Some(w) = self.open.remove(&key) {
            if w.suppressed > 0 {
                let key = Arc::try_unwrap(key).unwrap_or_else(|shared| (*shared).clone());
                closed.push(Summary {
                    sequence: w.sequence,
                    about: About {
                        raised: key.raised,
                        pid: key.pid,
                        action: w.action,
                        path: key.path,
                        path2: key.path2,
                    },
                    count: w.suppressed,
                    opened_ns: w.opened_ns,
                    ends_ns: w.ends_ns,
                    last_ns: w.last_ns,
                });
            }
        }
    }

    /// Windows open now.
    pub fn open_windows(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::event_at;

    fn verdict(rule: usize) -> Verdict {
        Verdict { raised: Raised::Rule(rule), kind: Kind::Alert, docker: None, tamper: None }
    }

    fn write_at(ts_s: u64, path: &str) -> Event {
        let mut ev = event_at(Action::Open, 257, path);
        ev.open_flags = 0o1;
        ev.ts_boot_ns = ts_s * 1_000_000_000;
        ev
    }

    /// Drive `events` (time in s, path, rule) through an aggregator; the printed ones
    /// (index, sequence) and the summaries.
    fn run(settings: Settings, events: &[(u64, &str, usize)]) -> (Vec<usize>, Vec<Summary>) {
        let mut agg = Aggregator::new(settings);
        let (mut printed, mut closed) = (Vec::new(), Vec::new());
        for (i, (t, path, rule)) in events.iter().enumerate() {
            let ev = write_at(*t, path);
            if agg.admit(&ev, &verdict(*rule), &mut closed) == Admit::Print {
                printed.push(i);
                agg.printed(&ev, i as u64 + 1);
            }
        }
        agg.close_all(&mut closed);
        (printed, closed)
    }

    #[test]
    fn a_flood_is_one_alert_and_a_count_per_window_and_nothing_is_lost() {
        let s = Settings { window_ns: 10_000_000_000, max_keys: 100 };
        // 10 000 identical writes in one second, then one after the window.
        let mut events: Vec<(u64, &str, usize)> = (0..10_000).map(|_| (100, "/etc/x", 0)).collect();
        events.push((111, "/etc/x", 0));
        let (printed, closed) = run(s, &events);
        assert_eq!(printed, [0, 10_000]);
        assert_eq!(closed.len(), 1);
        assert_eq!((closed[0].sequence, closed[0].count), (1, 9_999));
        let about = &closed[0].about;
        assert_eq!((&about.raised, about.action), (&Raised::Rule(0), "write"));
        assert_eq!(about.path.as_deref(), Some(&b"/etc/x"[..]));
        assert_eq!(
            printed.len() as u64 + closed.iter().map(|c| c.count).sum::<u64>(),
            events.len() as u64,
            "printed + counted = made"
        );
    }

    #[test]
    fn different_objects_rules_or_processes_are_not_the_same() {
        let s = Settings::default();
        let (printed, closed) =
            run(s, &[(1, "/etc/a", 0), (1, "/etc/b", 0), (1, "/etc/a", 1), (1, "/etc/a", 0)]);
        assert_eq!(printed, [0, 1, 2]);
        assert_eq!(closed.iter().map(|c| (c.sequence, c.count)).collect::<Vec<_>>(), [(1, 1)]);
        let mut agg = Aggregator::new(s);
        let mut closed = Vec::new();
        let mut other = write_at(1, "/etc/a");
        agg.admit(&write_at(1, "/etc/a"), &verdict(0), &mut closed);
        agg.printed(&write_at(1, "/etc/a"), 1);
        other.pid = 7;
        assert_eq!(agg.admit(&other, &verdict(0), &mut closed), Admit::Print, "another process");
    }

    #[test]
    fn a_window_of_zero_prints_everything_and_full_tables_close_early() {
        let off = Settings { window_ns: 0, max_keys: 10 };
        let (printed, closed) = run(off, &[(1, "/a", 0), (1, "/a", 0), (1, "/a", 0)]);
        assert_eq!((printed.len(), closed.len()), (3, 0));
        let tiny = Settings { window_ns: 10_000_000_000, max_keys: 1 };
        let (printed, closed) =
            run(tiny, &[(1, "/a", 0), (1, "/a", 0), (1, "/b", 0), (1, "/a", 0)]);
        assert_eq!(printed, [0, 2, 3], "/b closed /a's window early");
        assert_eq!(closed.iter().map(|c| (c.sequence, c.count)).collect::<Vec<_>>(), [(1, 1)]);
    }
}
