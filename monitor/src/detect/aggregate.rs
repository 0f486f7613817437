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
use crate::event::Event;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};

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

/// What makes two verdicts the same (the same rule or detection, kind, process, syscall,
/// action, access mode, outcome, paths and request), as a 128-bit digest: two SipHash-1-3
/// hashes under this run's random keys. An open window keeps the digest, not the verdict's
/// paths: the monitor's heap while 10 000 windows of distinct file alerts are open is
/// 3.6 MiB instead of 5.6 (the bench's files-watched workload, /proc/PID/smaps). Two
/// different verdicts share a digest with a chance of 2^-128 per pair, and nobody who does
/// not know the keys can aim at one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Digest(u64, u64);

/// The digest's two keyed hashers.
struct Digester(RandomState, RandomState);

impl Default for Digester {
    fn default() -> Digester {
        Digester(RandomState::new(), RandomState::new())
    }
}

impl Digester {
    fn of(&self, ev: &Event, v: &Verdict) -> Digest {
        let (mut a, mut b) = (self.0.build_hasher(), self.1.build_hasher());
        feed(&mut a, ev, v);
        feed(&mut b, ev, v);
        Digest(a.finish(), b.finish())
    }
}

/// Everything that makes two verdicts the same, each part length- or tag-prefixed by its
/// `Hash` so that no two different verdicts feed the same bytes.
fn feed(h: &mut impl Hasher, ev: &Event, v: &Verdict) {
    /// An open's access mode and O_CREAT/O_TRUNC (a read and a write are not the same).
    const ACCESS: u32 = 0o3 | 0o100 | 0o1000;
    v.raised.hash(h);
    v.kind.hash(h);
    ev.pid.hash(h);
    ev.syscall.hash(h);
    ev.action.hash(h);
    (ev.open_flags & ACCESS).hash(h);
    ev.success().hash(h);
    ev.path.hash(h);
    ev.path2.hash(h);
    // A Docker request's method and URL, or a self-defence detail.
    match (&v.docker, &v.tamper) {
        (Some(d), _) => {
            h.write_u8(1);
            let _ = std::fmt::Write::write_fmt(&mut HashWrite(h), format_args!("{}", d.0.request));
            h.write_u8(0xff);
        }
        (None, Some(t)) => {
            h.write_u8(2);
            t.hash(h);
        }
        (None, None) => h.write_u8(0),
    }
}

/// Formatted text straight into a hasher.
struct HashWrite<'h, H: Hasher>(&'h mut H);

impl<H: Hasher> std::fmt::Write for HashWrite<'_, H> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}

/// An open window. A storm of distinct paths fills the table to `max_keys`; what a window
/// is about is kept, and the record's JSON built, only for a window that counts a verdict.
struct Window {
    /// The printed verdict's `event.sequence`.
    sequence: u64,
    /// What the window is about, from the first verdict counted in it (all of them are the
    /// same): kept only for a window that will close with a count.
    about: Option<Box<About>>,
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
    digester: Digester,
    open: FxHashMap<Digest, Window>,
    /// Windows by opening time (windows are all as long: also by closing time).
    order: VecDeque<Digest>,
    /// The digest of the verdict last admitted for printing.
    pending: Option<Digest>,
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
        let digest = self.digester.of(ev, v);
        if let Some(w) = self.open.get_mut(&digest) {
            if w.about.is_none() {
                w.about = Some(Box::new(About {
                    raised: v.raised.clone(),
                    pid: ev.pid,
                    action: ev.action_name(),
                    path: ev.path.clone(),
                    path2: ev.path2.clone(),
                }));
            }
            w.suppressed += 1;
            w.last_ns = w.last_ns.max(ev.ts_boot_ns);
            return Admit::Counted;
        }
        if self.open.len() >= self.settings.max_keys.max(1) {
            self.close_oldest(closed);
        }
        self.pending = Some(digest);
        Admit::Print
    }

    /// The verdict just admitted (of `ev`) was printed as `sequence`: its window opens.
    pub fn printed(&mut self, ev: &Event, sequence: u64) {
        let Some(digest) = self.pending.take() else { return };
        let opened_ns = ev.ts_boot_ns;
        let window = Window {
            sequence,
            about: None,
            opened_ns,
            ends_ns: opened_ns.saturating_add(self.settings.window_ns),
            suppressed: 0,
            last_ns: opened_ns,
        };
        self.order.push_back(digest);
        self.open.insert(digest, window);
    }

    /// Close the windows that ended by `now_ns` (an event's time, or a live tick's).
    pub fn expire(&mut self, now_ns: u64, closed: &mut Vec<Summary>) {
        self.now_ns = self.now_ns.max(now_ns);
        while let Some(digest) = self.order.front() {
            match self.open.get(digest) {
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
        let Some(digest) = self.order.pop_front() else { return };
        if let Some(w) = self.open.remove(&digest) {
            if let (true, Some(about)) = (w.suppressed > 0, w.about) {
                closed.push(Summary {
                    sequence: w.sequence,
                    about: *about,
                    count: w.suppressed,
                    opened_ns: w.opened_ns,
                    ends_ns: w.ends_ns,
                    last_ns: w.last_ns,
                });
            }
        }
        // A storm's table is not kept at its size once the storm is over.
        if self.open.capacity() > 1024 && self.open.len() < self.open.capacity() / 8 {
            self.open.shrink_to(self.open.len() * 2);
            self.order.shrink_to(self.open.len() * 2);
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
    use crate::event::Action;
    use crate::rules::model::Kind;
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
