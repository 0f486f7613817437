//! Line sinks: the destinations a finished alert line goes to (`--output`), behind one trait.
//!
//! A [`LineSink`] takes one complete line (one JSON object, no newline) at a time. Every
//! error from [`LineSink::write_line`] means exactly "this line was not delivered": the sink
//! has counted it in [`SinkStats::lost`] and stays usable (the next line retries: a file is
//! reopened, a socket reconnected). Only [`SinkError::Closed`] (stdout's reader went away)
//! is final. [`Fanout`] sends each line to several sinks and is an [`std::io::Write`], so the
//! pipeline's renderer can write into it as it writes into stdout.

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a sink has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Lines delivered (written to the file, accepted by the socket).
    pub lines: u64,
    /// Bytes delivered, newlines and syslog headers included.
    pub bytes: u64,
    /// Lines not delivered (each one an `Err` from `write_line`).
    pub lost: u64,
    /// Files started by size rotation (file sinks).
    pub rotations: u64,
}

/// Why a line was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A file or socket operation failed (`op` names it: open, write, rename, ...).
    #[error("{}: {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// The line holds a newline: it would become two lines in the output.
    #[error("the line holds a newline at byte {at}; a line must be one JSON object")]
    EmbeddedNewline { at: usize },
    /// The syslog socket cannot be reached; lines are dropped without trying until the
    /// next attempt, `retry_in` from now.
    #[error("syslog socket {}: {source}; next attempt in {} ms", path.display(), retry_in.as_millis())]
    Unavailable {
        path: PathBuf,
        #[source]
        source: io::Error,
        retry_in: Duration,
    },
    /// The receiver's queue stayed full for `waited` (zero: it was already full at the
    /// previous line, which waited), or the kernel had no buffer for the message.
    #[error("syslog socket {}: the receiver is not keeping up (waited {} ms)", path.display(), waited.as_millis())]
    Busy { path: PathBuf, waited: Duration },
    /// The message is larger than the socket's send buffer accepts.
    #[error("syslog socket {}: a {len}-byte message is larger than the socket accepts", path.display())]
    TooLarge { path: PathBuf, len: usize },
    /// The reader of stdout went away: final, the monitor stops cleanly.
    #[error("stdout closed")]
    Closed,
}

impl SinkError {
    /// Whether the sink can take no more lines (only a closed stdout).
    pub fn is_final(&self) -> bool {
        matches!(self, SinkError::Closed)
    }

    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> SinkError {
        SinkError::Io { path: path.into(), op, source }
    }
}

/// A destination for alert lines.
pub trait LineSink: Send {
    /// A short name for logs: `stdout`, `file:/var/log/monitor/alerts.json`, ...
    fn name(&self) -> &str;
    /// Deliver one line; `line` may end with one `\n` (it is added when missing). An error
    /// means the line was lost and counted; the sink stays usable unless `is_final()`.
    fn write_line(&mut self, line: &[u8]) -> Result<(), SinkError>;
    /// Hand what is buffered to the kernel (cheap; not a disk sync).
    fn flush(&mut self) -> Result<(), SinkError>;
    /// Make everything delivered so far durable (file sinks: fdatasync). The file sink also
    /// does this by itself at most once a second while lines are written, and when dropped.
    fn sync(&mut self) -> Result<(), SinkError> {
        self.flush()
    }
    /// Start again on the configured path (SIGUSR1 after an outside rotation, e.g.
    /// logrotate's `postrotate`), or reconnect a socket.
    fn reopen(&mut self) -> Result<(), SinkError>;
    fn stats(&self) -> SinkStats;
}

/// The line without its trailing newline, or the position of a newline inside it.
pub(crate) fn strip_line(line: &[u8]) -> Result<&[u8], SinkError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    match memchr::memchr(b'\n', line) {
        Some(at) => Err(SinkError::EmbeddedNewline { at }),
        None => Ok(line),
    }
}

/// How much standard output collects before it writes: a replay fills it, a live monitor
/// flushes after every line.
const STDOUT_BUFFER: usize = 64 << 10;

/// Standard output (the default output). Lines are collected and written at
/// [`LineSink::flush`] (the live monitor flushes after every line) or when 64 KiB are
/// waiting; a failed write loses, and counts, every line it held.
pub struct Stdout {
    out: io::Stdout,
    buf: Vec<u8>,
    /// Lines in `buf`.
    waiting: u64,
    stats: SinkStats,
}

impl Stdout {
    pub fn new() -> Stdout {
        Stdout { out: io::stdout(), buf: Vec::new(), waiting: 0, stats: SinkStats::default() }
    }

    fn write_out(&mut self) -> Result<(), SinkError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut out = self.out.lock();
        let written = out.write_all(&self.buf).and_then(|()| out.flush());
        let (lines, bytes) = (std::mem::take(&mut self.waiting), self.buf.len() as u64);
        self.buf.clear();
        match written {
            Ok(()) => {
                self.stats.lines += lines;
                self.stats.bytes += bytes;
                Ok(())
            }
            Err(e) => {
                self.stats.lost += lines;
                if e.kind() == io::ErrorKind::BrokenPipe {
                    Err(SinkError::Closed)
                } else {
                    Err(SinkError::io("stdout", "write", e))
                }
            }
        }
    }
}

impl Default for Stdout {
    fn default() -> Self {
        Stdout::new()
    }
}

impl LineSink for Stdout {
    fn name(&self) -> &str {
        "stdout"
    }

    fn write_line(&mut self, line: &[u8]) -> Result<(), SinkError> {
        let line = strip_line(line).inspect_err(|_| self.stats.lost += 1)?;
        if !self.buf.is_empty() && self.buf.len() + line.len() >= STDOUT_BUFFER {
            self.write_out().inspect_err(|_| self.stats.lost += 1)?;
        }
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        self.waiting += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.write_out()
    }

    fn reopen(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn stats(&self) -> SinkStats {
        self.stats
    }
}

/// How often a sink's failures are logged while they go on (the first one at once).
const ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

/// Every line written into it goes to each sink, as an [`std::io::Write`]: bytes are
/// collected until a newline, and each complete line is sent to every sink in order.
/// A sink's failures are logged (the first at once, then at most every 10 s with how many
/// lines were lost since) and do not hold up the others. A sink closed for good (stdout's
/// reader gone) is left out from then on, its lines counted lost; `write` fails (as a
/// broken pipe) only once every sink is closed, as writing to stdout alone did before.
///
/// Its counters and a reopen request cross threads through an [`OutputsHandle`]: the
/// fan-out may belong to a render thread while the driver reports and handles signals.
pub struct Fanout {
    sinks: Vec<Slot>,
    pending: Vec<u8>,
    shared: Arc<Shared>,
}

struct Slot {
    sink: Box<dyn LineSink>,
    last_log: Option<Instant>,
    unlogged: u64,
    /// Closed for good; lines since then, not handed to it.
    closed: bool,
    dropped: u64,
}

/// What the outputs have done and what is asked of them, shared with an [`OutputsHandle`].
struct Shared {
    names: Vec<String>,
    counters: Vec<[AtomicU64; 4]>,
    reopen: AtomicBool,
}

/// The outputs seen from another thread: their counters, and a reopen request (SIGUSR1)
/// carried out before the next line is written.
#[derive(Clone)]
pub struct OutputsHandle(Arc<Shared>);

impl OutputsHandle {
    /// Each output's name and counters, as of the last line written.
    pub fn stats(&self) -> Vec<(String, SinkStats)> {
        let s = &self.0;
        s.names
            .iter()
            .zip(&s.counters)
            .map(|(name, c)| {
                let [lines, bytes, lost, rotations] =
                    c.each_ref().map(|a| a.load(Ordering::Relaxed));
                (name.clone(), SinkStats { lines, bytes, lost, rotations })
            })
            .collect()
    }

    /// Reopen every output before the next line (a file after an outside rotation).
    pub fn request_reopen(&self) {
        self.0.reopen.store(true, Ordering::Release);
    }
}

impl Fanout {
    pub fn new(sinks: Vec<Box<dyn LineSink>>) -> Fanout {
        let shared = Arc::new(Shared {
            names: sinks.iter().map(|s| s.name().to_string()).collect(),
            counters: sinks.iter().map(|_| Default::default()).collect(),
            reopen: AtomicBool::new(false),
        });
        Fanout {
            sinks: sinks
                .into_iter()
                .map(|sink| Slot { sink, last_log: None, unlogged: 0, closed: false, dropped: 0 })
                .collect(),
            pending: Vec::new(),
            shared,
        }
    }

    /// The counters and the reopen request, for another thread.
    pub fn handle(&self) -> OutputsHandle {
        OutputsHandle(self.shared.clone())
    }

    /// Each sink's name and counters (for the stop record and `events-lost`-style reports).
    pub fn stats(&self) -> Vec<(String, SinkStats)> {
        self.sinks.iter().map(|s| (s.sink.name().to_string(), s.stats())).collect()
    }

    /// Reopen every sink (SIGUSR1). Failures are logged; the sinks retry on the next line.
    pub fn reopen(&mut self) {
        for slot in self.sinks.iter_mut().filter(|s| !s.closed) {
            match slot.sink.reopen() {
                Ok(()) => tracing::debug!(output = slot.sink.name(), "reopened"),
                Err(e) => tracing::warn!(output = slot.sink.name(), "reopening: {e}"),
            }
        }
    }

    /// Make everything written durable (at a clean stop).
    pub fn sync(&mut self) -> Result<(), SinkError> {
        let mut first = None;
        for slot in self.sinks.iter_mut().filter(|s| !s.closed) {
            if let Err(e) = slot.sink.sync() {
                tracing::warn!(output = slot.sink.name(), "syncing: {e}");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn send(&mut self, line: &[u8]) -> io::Result<()> {
        if self.shared.reopen.swap(false, Ordering::AcqRel) {
            self.reopen();
        }
        for slot in &mut self.sinks {
            if slot.closed {
                slot.dropped += 1;
            } else if let Err(e) = slot.sink.write_line(line) {
                slot.failed(e);
            }
        }
        self.publish()
    }

    /// Counters to the handle; the broken pipe once every sink is closed.
    fn publish(&mut self) -> io::Result<()> {
        for (slot, c) in self.sinks.iter().zip(&self.shared.counters) {
            let s = slot.stats();
            for (a, v) in c.iter().zip([s.lines, s.bytes, s.lost, s.rotations]) {
                a.store(v, Ordering::Relaxed);
            }
        }
        if !self.sinks.is_empty() && self.sinks.iter().all(|s| s.closed) {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, SinkError::Closed));
        }
        Ok(())
    }
}

impl Slot {
    fn stats(&self) -> SinkStats {
        let mut s = self.sink.stats();
        s.lost += self.dropped;
        s
    }

    fn failed(&mut self, e: SinkError) {
        if e.is_final() {
            self.closed = true;
            tracing::warn!(
                output = self.sink.name(),
                "closed: {e}; its lines are counted lost from now on"
            );
            return;
        }
        self.unlogged += 1;
        let now = Instant::now();
        if self.last_log.is_none_or(|t| now.duration_since(t) >= ERROR_LOG_EVERY) {
            tracing::warn!(
                output = self.sink.name(),
                lost_since_last_report = self.unlogged,
                "line lost: {e}"
            );
            self.last_log = Some(now);
            self.unlogged = 0;
        }
    }
}

impl Write for Fanout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        if !self.pending.is_empty() {
            let Some(nl) = memchr::memchr(b'\n', rest) else {
                self.pending.extend_from_slice(rest);
                return Ok(buf.len());
            };
            let mut line = std::mem::take(&mut self.pending);
            line.extend_from_slice(&rest[..nl]);
            let sent = self.send(&line);
            line.clear();
            self.pending = line;
            sent?;
            rest = &rest[nl + 1..];
        }
        // Whole lines straight from the caller's buffer; the tail waits for its newline.
        // memchr: a byte-by-byte search of each ~2 KiB line was the hottest code of a burst
        // of alerts (perf: 22 % of the monitor's samples here and in `strip_line`).
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            self.send(&rest[..nl])?;
            rest = &rest[nl + 1..];
        }
        self.pending.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.shared.reopen.swap(false, Ordering::AcqRel) {
            self.reopen();
        }
        for slot in self.sinks.iter_mut().filter(|s| !s.closed) {
            if let Err(e) = slot.sink.flush() {
                slot.failed(e);
            }
        }
        self.publish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    type Lines = Arc<Mutex<Vec<Vec<u8>>>>;

    /// Records lines and counts reopens; fails every line while `fail` is set.
    struct Recorder {
        lines: Lines,
        reopens: Arc<Mutex<u32>>,
        fail: Option<fn() -> SinkError>,
        stats: SinkStats,
    }

    impl LineSink for Recorder {
        fn name(&self) -> &str {
            "recorder"
        }
        fn write_line(&mut self, line: &[u8]) -> Result<(), SinkError> {
            if let Some(f) = self.fail {
                self.stats.lost += 1;
                return Err(f());
            }
            self.lines.lock().unwrap().push(strip_line(line)?.to_vec());
            self.stats.lines += 1;
            Ok(())
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
        fn reopen(&mut self) -> Result<(), SinkError> {
            *self.reopens.lock().unwrap() += 1;
            Ok(())
        }
        fn stats(&self) -> SinkStats {
            self.stats
        }
    }

    fn recorder(fail: Option<fn() -> SinkError>) -> (Box<dyn LineSink>, Lines) {
        let (sink, lines, _) = counting_reopens(fail);
        (sink, lines)
    }

    /// A recorder, its lines and its count of reopens.
    fn counting_reopens(
        fail: Option<fn() -> SinkError>,
    ) -> (Box<dyn LineSink>, Lines, Arc<Mutex<u32>>) {
        let (lines, reopens) = (Lines::default(), Arc::new(Mutex::new(0)));
        let r = Recorder {
            lines: lines.clone(),
            reopens: reopens.clone(),
            fail,
            stats: SinkStats::default(),
        };
        (Box::new(r), lines, reopens)
    }

    #[test]
    fn fanout_splits_writes_into_whole_lines_for_every_sink() {
        let (a, a_lines) = recorder(None);
        let (b, b_lines) = recorder(None);
        let mut f = Fanout::new(vec![a, b]);
        f.write_all(b"{\"a\":1}\n{\"b\"").unwrap();
        f.write_all(b":2}\n{\"c\":3}").unwrap();
        let want: Vec<Vec<u8>> = vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()];
        assert_eq!(*a_lines.lock().unwrap(), want);
        assert_eq!(*b_lines.lock().unwrap(), want, "each sink gets each line");
        f.write_all(b"\n").unwrap();
        assert_eq!(a_lines.lock().unwrap().len(), 3, "the partial line is sent once completed");
    }

    #[test]
    fn a_failing_sink_does_not_hold_up_the_others_and_counts_its_losses() {
        let (bad, _) =
            recorder(Some(|| SinkError::Busy { path: "/x".into(), waited: Duration::ZERO }));
        let (good, lines) = recorder(None);
        let mut f = Fanout::new(vec![bad, good]);
        f.write_all(b"1\n2\n3\n").unwrap();
        assert_eq!(lines.lock().unwrap().len(), 3);
        let stats = f.stats();
        assert_eq!(stats[0].1.lost, 3);
        assert_eq!(stats[1].1.lines, 3);
    }

    #[test]
    fn a_closed_sink_fails_the_write_as_a_broken_pipe() {
        let (closed, _) = recorder(Some(|| SinkError::Closed));
        let mut f = Fanout::new(vec![closed]);
        let e = f.write_all(b"x\n").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn a_closed_sink_among_others_is_left_out_and_its_lines_counted_lost() {
        let (closed, _) = recorder(Some(|| SinkError::Closed));
        let (good, lines) = recorder(None);
        let mut f = Fanout::new(vec![closed, good]);
        let handle = f.handle();
        f.write_all(b"1\n2\n3\n").unwrap();
        f.flush().unwrap();
        assert_eq!(lines.lock().unwrap().len(), 3, "the other output goes on");
        let stats = handle.stats();
        assert_eq!(stats[0].0, "recorder");
        assert_eq!((stats[0].1.lines, stats[0].1.lost), (0, 3), "one refused, two not handed over");
        assert_eq!((stats[1].1.lines, stats[1].1.lost), (3, 0));
    }

    #[test]
    fn a_reopen_request_from_another_thread_is_carried_out_before_the_next_line() {
        let (sink, _, count) = counting_reopens(None);
        let mut f = Fanout::new(vec![sink]);
        let handle = f.handle();
        f.write_all(b"a\n").unwrap();
        std::thread::spawn(move || handle.request_reopen()).join().unwrap();
        assert_eq!(*count.lock().unwrap(), 0, "not before a line or a flush");
        f.write_all(b"b\n").unwrap();
        assert_eq!(*count.lock().unwrap(), 1);
        f.write_all(b"c\n").unwrap();
        f.flush().unwrap();
        assert_eq!(*count.lock().unwrap(), 1, "once per request");
        assert_eq!(f.handle().stats()[0].1.lines, 3);
    }

    #[test]
    fn a_line_with_a_newline_inside_is_refused() {
        assert!(matches!(strip_line(b"a\nb"), Err(SinkError::EmbeddedNewline { at: 1 })));
        assert_eq!(strip_line(b"ab\n").unwrap(), b"ab");
    }
}
