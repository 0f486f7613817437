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
    match line.iter().position(|&b| b == b'\n') {
        Some(at) => Err(SinkError::EmbeddedNewline { at }),
        None => Ok(line),
    }
}

/// Standard output, one line per write, flushed each line (the default output).
pub struct Stdout {
    out: io::Stdout,
    stats: SinkStats,
}

impl Stdout {
    pub fn new() -> Stdout {
        Stdout { out: io::stdout(), stats: SinkStats::default() }
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
        let mut out = self.out.lock();
        let written =
            out.write_all(line).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush());
        match written {
            Ok(()) => {
                self.stats.lines += 1;
                self.stats.bytes += line.len() as u64 + 1;
                Ok(())
            }
            Err(e) => {
                self.stats.lost += 1;
                if e.kind() == io::ErrorKind::BrokenPipe {
                    Err(SinkError::Closed)
                } else {
                    Err(SinkError::io("stdout", "write", e))
                }
            }
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|e| match e.kind() {
            io::ErrorKind::BrokenPipe => SinkError::Closed,
            _ => SinkError::io("stdout", "flush", e),
        })
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
/// lines were lost since) and do not hold up the others; `write` fails only when a sink
/// is closed for good (stdout), as writing to stdout did before.
pub struct Fanout {
    sinks: Vec<Slot>,
    pending: Vec<u8>,
}

struct Slot {
    sink: Box<dyn LineSink>,
    last_log: Option<Instant>,
    unlogged: u64,
}

impl Fanout {
    pub fn new(sinks: Vec<Box<dyn LineSink>>) -> Fanout {
        Fanout {
            sinks: sinks
                .into_iter()
                .map(|sink| Slot { sink, last_log: None, unlogged: 0 })
                .collect(),
            pending: Vec::new(),
        }
    }

    /// Each sink's name and counters (for the stop record and `events-lost`-style reports).
    pub fn stats(&self) -> Vec<(String, SinkStats)> {
        self.sinks.iter().map(|s| (s.sink.name().to_string(), s.sink.stats())).collect()
    }

    /// Reopen every sink (SIGUSR1). Failures are logged; the sinks retry on the next line.
    pub fn reopen(&mut self) {
        for slot in &mut self.sinks {
            if let Err(e) = slot.sink.reopen() {
                tracing::warn!(output = slot.sink.name(), "reopening: {e}");
            }
        }
    }

    /// Make everything written durable (at a clean stop).
    pub fn sync(&mut self) -> Result<(), SinkError> {
        let mut first = None;
        for slot in &mut self.sinks {
            if let Err(e) = slot.sink.sync() {
                tracing::warn!(output = slot.sink.name(), "syncing: {e}");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn send(&mut self, line: &[u8]) -> io::Result<()> {
        for slot in &mut self.sinks {
            match slot.sink.write_line(line) {
                Ok(()) => {}
                Err(e) if e.is_final() => return Err(io::Error::new(io::ErrorKind::BrokenPipe, e)),
                Err(e) => slot.failed(e),
            }
        }
        Ok(())
    }
}

impl Slot {
    fn failed(&mut self, e: SinkError) {
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
        self.pending.extend_from_slice(buf);
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + nl;
            let line = std::mem::take(&mut self.pending);
            let result = self.send(&line[start..end]);
            self.pending = line;
            start = end + 1;
            if let Err(e) = result {
                self.pending.drain(..start);
                return Err(e);
            }
        }
        self.pending.drain(..start);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        for slot in &mut self.sinks {
            match slot.sink.flush() {
                Ok(()) => {}
                Err(e) if e.is_final() => return Err(io::Error::new(io::ErrorKind::BrokenPipe, e)),
                Err(e) => slot.failed(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records lines; fails every line while `fail` is set.
    struct Recorder {
        lines: Arc<Mutex<Vec<Vec<u8>>>>,
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
            Ok(())
        }
        fn stats(&self) -> SinkStats {
            self.stats
        }
    }

    type Lines = Arc<Mutex<Vec<Vec<u8>>>>;

    fn recorder(fail: Option<fn() -> SinkError>) -> (Box<dyn LineSink>, Lines) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        (Box::new(Recorder { lines: lines.clone(), fail, stats: SinkStats::default() }), lines)
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
    fn a_line_with_a_newline_inside_is_refused() {
        assert!(matches!(strip_line(b"a\nb"), Err(SinkError::EmbeddedNewline { at: 1 })));
        assert_eq!(strip_line(b"ab\n").unwrap(), b"ab");
    }
}
