//! `--output syslog` and `syslog:unix:PATH`: one RFC 5424 message per alert over a local
//! unix datagram socket (`/dev/log` by default), the alert's JSON as the message.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME monitor PID MSGID - {"@timestamp":...}`: PRI from the
//! configured facility and a severity derived from the line (`event.severity` 99 critical
//! → crit, 73 high → err, 47 medium → warning, else notice; the monitor's own records
//! (`event.dataset: monitor.status`) info, their warnings (`events-lost`,
//! `output-lost`, `rules-reload-failed`) warning), MSGID the line's
//! `event.action`. The MSG carries no UTF-8 BOM: RFC 5424 allows any encoding without
//! one, and collectors hand the JSON on unchanged.
//!
//! Written here rather than with the `syslog` crate: its RFC 5424 formatter takes a number
//! as MSGID and its unix transport blocks without bound, while an alert pipeline must
//! never wait forever on a stalled logger. The transport here waits at most `send_timeout`
//! for room in the receiver's queue, then drops and counts; once it has dropped for lack of
//! room, it does not wait again until a message gets through. A missing socket (logger
//! stopped or restarting) is retried after `retry_delay`; lines in between are counted lost.

use super::line::{strip_line, LineSink, SinkError, SinkStats};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The local logger's socket.
pub const DEV_LOG: &str = "/dev/log";

/// Syslog facilities a local program may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Facility {
    User,
    Daemon,
    Auth,
    Authpriv,
    Local(u8),
}

impl Facility {
    fn code(self) -> u8 {
        match self {
            Facility::User => 1,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::Authpriv => 10,
            Facility::Local(n) => 16 + n.min(7),
        }
    }
}

impl std::str::FromStr for Facility {
    type Err = String;
    fn from_str(s: &str) -> Result<Facility, String> {
        Ok(match s {
            "user" => Facility::User,
            "daemon" => Facility::Daemon,
            "auth" => Facility::Auth,
            "authpriv" => Facility::Authpriv,
            _ => match s.strip_prefix("local").and_then(|n| n.parse::<u8>().ok()) {
                Some(n) if n <= 7 => Facility::Local(n),
                _ => return Err(format!("unknown syslog facility {s:?} (user, daemon, auth, authpriv, local0 ... local7)")),
            },
        })
    }
}

impl std::fmt::Display for Facility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Facility::User => f.write_str("user"),
            Facility::Daemon => f.write_str("daemon"),
            Facility::Auth => f.write_str("auth"),
            Facility::Authpriv => f.write_str("authpriv"),
            Facility::Local(n) => write!(f, "local{}", n.min(&7)),
        }
    }
}

/// Where and how to send.
#[derive(Clone, Debug)]
pub struct SyslogConfig {
    pub socket: PathBuf,
    /// Default `authpriv`: Debian's rsyslog files it in /var/log/auth.log (root and adm
    /// only), not in the world-readable logs; alerts carry command lines.
    pub facility: Facility,
    pub hostname: String,
    pub app_name: String,
    /// How long one message may wait for room in the receiver's queue.
    pub send_timeout: Duration,
    /// How long after a failed connection the next attempt is made.
    pub retry_delay: Duration,
}

impl SyslogConfig {
    pub fn new(socket: impl Into<PathBuf>) -> SyslogConfig {
        SyslogConfig {
            socket: socket.into(),
            facility: Facility::Authpriv,
            hostname: crate::enrich::hostname(),
            app_name: "monitor".into(),
            send_timeout: Duration::from_secs(1),
            retry_delay: Duration::from_secs(1),
        }
    }
}

/// An RFC 5424 sender on a unix datagram socket.
pub struct Syslog {
    cfg: SyslogConfig,
    name: String,
    /// `HOSTNAME APP-NAME PROCID`, checked once.
    header: String,
    sock: Option<UnixDatagram>,
    /// No connection attempt before this (after a failed one), and why it failed.
    down: Option<(Instant, i32)>,
    /// The last message found the queue full and waited in vain: do not wait again until
    /// a message gets through.
    congested: bool,
    buf: Vec<u8>,
    stats: SinkStats,
}

impl Syslog {
    /// Connect to the socket; fails when nobody listens there now. Afterwards the sender
    /// reconnects by itself.
    pub fn open(cfg: SyslogConfig) -> Result<Syslog, SinkError> {
        let header = format!(
            "{} {} {}",
            header_field(&cfg.hostname, 255),
            header_field(&cfg.app_name, 48),
            std::process::id()
        );
        let mut s = Syslog {
            name: format!("syslog:unix:{}", cfg.socket.display()),
            cfg,
            header,
            sock: None,
            down: None,
            congested: false,
            buf: Vec::with_capacity(4096),
            stats: SinkStats::default(),
        };
        s.connect()?;
        Ok(s)
    }

    fn connect(&mut self) -> Result<(), SinkError> {
        let connected =
            UnixDatagram::unbound().and_then(|s| s.connect(&self.cfg.socket).map(|()| s));
        match connected {
            Ok(s) => {
                self.sock = Some(s);
                self.down = None;
                Ok(())
            }
            Err(e) => {
                self.sock = None;
                self.down = Some((
                    Instant::now() + self.cfg.retry_delay,
                    e.raw_os_error().unwrap_or(libc::EIO),
                ));
                Err(self.unavailable(e))
            }
        }
    }

    fn unavailable(&self, source: io::Error) -> SinkError {
        let retry_in = self
            .down
            .map_or(Duration::ZERO, |(at, _)| at.saturating_duration_since(Instant::now()));
        SinkError::Unavailable { path: self.cfg.socket.clone(), source, retry_in }
    }

    fn format(&mut self, line: &[u8]) {
        let (severity, action) = classify(line);
        let pri = self.cfg.facility.code() as u16 * 8 + severity as u16;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        // RFC 5424 allows at most six fraction digits: 2024-01-02T03:04:05.123456Z.
        let ts = crate::enrich::rfc3339(now);
        let ts = match ts.find('.') {
            Some(dot) => format!("{}Z", &ts[..(dot + 7).min(ts.len() - 1)]),
            None => ts,
        };
        self.buf.clear();
        self.buf.extend_from_slice(
            format!("<{pri}>1 {ts} {} {} - ", self.header, header_field(&action, 32)).as_bytes(),
        );
        self.buf.extend_from_slice(line);
    }

    /// One send without waiting.
    fn send_now(&self, sock: &UnixDatagram) -> io::Result<usize> {
        let n = unsafe {
            libc::send(
                sock.as_raw_fd(),
                self.buf.as_ptr().cast(),
                self.buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    /// Send the formatted message once the socket is connected.
    fn send(&mut self) -> Result<(), SinkError> {
        let path = || self.cfg.socket.clone();
        let Some(sock) = &self.sock else { unreachable!("send without a socket") };
        let mut waited = Duration::ZERO;
        let would_block =
            |r: &io::Result<usize>| matches!(r, Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        let mut result = self.send_now(sock);
        if would_block(&result) && !self.congested {
            let started = Instant::now();
            // Room for one message may be taken again before this one is sent: wait again,
            // up to the timeout in all.
            while would_block(&result) {
                let left = self.cfg.send_timeout.saturating_sub(started.elapsed());
                if left.is_zero() || !wait_writable(sock, left) {
                    break;
                }
                result = self.send_now(sock);
            }
            waited = started.elapsed();
        }
        match result {
            Ok(_) => {
                self.congested = false;
                Ok(())
            }
            Err(e) => match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) => {
                    self.congested = true;
                    Err(SinkError::Busy { path: path(), waited })
                }
                Some(libc::EMSGSIZE) => {
                    Err(SinkError::TooLarge { path: path(), len: self.buf.len() })
                }
                Some(
                    libc::ECONNREFUSED
                    | libc::ENOTCONN
                    | libc::ENOENT
                    | libc::EPIPE
                    | libc::ECONNRESET,
                ) => {
                    self.sock = None;
                    Err(SinkError::Unavailable {
                        path: path(),
                        source: e,
                        retry_in: Duration::ZERO,
                    })
                }
                _ => Err(SinkError::io(path(), "send", e)),
            },
        }
    }
}

impl LineSink for Syslog {
    fn name(&self) -> &str {
        &self.name
    }

    fn write_line(&mut self, line: &[u8]) -> Result<(), SinkError> {
        let result = (|| {
            let line = strip_line(line)?;
            self.format(line);
            // Two tries: a logger that restarted has a new socket at the same path.
            for attempt in 0..2 {
                if self.sock.is_none() {
                    if let Some((until, errno)) = self.down {
                        if Instant::now() < until {
                            return Err(self.unavailable(io::Error::from_raw_os_error(errno)));
                        }
                    }
                    self.connect()?;
                }
                match self.send() {
                    Err(SinkError::Unavailable { source, .. }) if attempt == 0 => {
                        tracing::debug!(output = %self.name, "reconnecting after {source}");
                    }
                    other => return other,
                }
            }
            let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
            self.down = Some((Instant::now() + self.cfg.retry_delay, libc::ECONNREFUSED));
            Err(self.unavailable(e))
        })();
        match &result {
            Ok(()) => {
                self.stats.lines += 1;
                self.stats.bytes += self.buf.len() as u64;
            }
            Err(_) => self.stats.lost += 1,
        }
        result
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn reopen(&mut self) -> Result<(), SinkError> {
        self.congested = false;
        self.connect()
    }

    fn stats(&self) -> SinkStats {
        self.stats
    }
}

/// Wait until the connected receiver has room, at most `timeout`.
fn wait_writable(sock: &UnixDatagram, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd { fd: sock.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    unsafe { libc::poll(&mut pfd, 1, ms) == 1 && pfd.revents & libc::POLLOUT != 0 }
}

/// A header field: printable US-ASCII without spaces, at most `max` bytes, `-` when empty.
fn header_field(s: &str, max: usize) -> String {
    let f: String = s.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if f.is_empty() {
        "-".into()
    } else {
        f
    }
}

/// Syslog severities used here.
mod severity {
    pub const CRIT: u8 = 2;
    pub const ERR: u8 = 3;
    pub const WARNING: u8 = 4;
    pub const NOTICE: u8 = 5;
    pub const INFO: u8 = 6;
}

/// The line's syslog severity and `event.action` (empty when it has none).
fn classify(line: &[u8]) -> (u8, String) {
    #[derive(serde::Deserialize)]
    struct Line {
        #[serde(default)]
        event: Event,
    }
    #[derive(serde::Deserialize, Default)]
    struct Event {
        dataset: Option<String>,
        action: Option<String>,
        severity: Option<u64>,
    }
    let event = serde_json::from_slice::<Line>(line).map(|l| l.event).unwrap_or_default();
    let action = event.action.unwrap_or_default();
    let severity = match (event.dataset.as_deref(), event.severity) {
        (Some("monitor.status"), _)
            if matches!(action.as_str(), "events-lost" | "output-lost" | "rules-reload-failed") =>
        {
            severity::WARNING
        }
        (Some("monitor.status"), _) => severity::INFO,
        (_, Some(99..)) => severity::CRIT,
        (_, Some(73..)) => severity::ERR,
        (_, Some(47..)) => severity::WARNING,
        _ => severity::NOTICE,
    };
    (severity, action)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver() -> (tempfile::TempDir, PathBuf, UnixDatagram) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (dir, path, rx)
    }

    fn recv(rx: &UnixDatagram) -> String {
        let mut buf = vec![0; 1 << 16];
        let n = rx.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    fn config(path: &std::path::Path) -> SyslogConfig {
        SyslogConfig { hostname: "host one".into(), ..SyslogConfig::new(path) }
    }

    #[test]
    fn a_message_is_rfc5424_with_the_json_as_msg() {
        let (_dir, path, rx) = receiver();
        let mut s = Syslog::open(config(&path)).unwrap();
        let alert = r#"{"event":{"kind":"alert","action":"exec","severity":73},"x":"é"}"#;
        s.write_line(alert.as_bytes()).unwrap();
        let msg = recv(&rx);
        let parts: Vec<&str> = msg.splitn(8, ' ').collect();
        // authpriv (10) * 8 + err (3)
        assert_eq!(parts[0], "<83>1");
        assert!(
            parts[1].len() == "2024-01-02T03:04:05.123456Z".len() && parts[1].ends_with('Z'),
            "{}",
            parts[1]
        );
        assert_eq!(parts[2], "hostone", "spaces are not allowed in HOSTNAME");
        assert_eq!(parts[3], "monitor");
        assert_eq!(parts[4], std::process::id().to_string());
        assert_eq!(parts[5], "exec");
        assert_eq!(parts[6], "-");
        assert_eq!(parts[7], alert);
        assert_eq!(s.stats().lines, 1);
        assert_eq!(s.stats().bytes, msg.len() as u64);
    }

    #[test]
    fn severity_and_msgid_follow_the_line() {
        let cases: [(&[u8], u8, &str); 6] = [
            (br#"{"event":{"kind":"alert","action":"write","severity":99}}"#, 2, "write"),
            (br#"{"event":{"kind":"alert","action":"write","severity":47}}"#, 4, "write"),
            (br#"{"event":{"kind":"alert","action":"write","severity":21}}"#, 5, "write"),
            (br#"{"event":{"kind":"alert","action":"open","severity":0}}"#, 5, "open"),
            (
                br#"{"event":{"kind":"event","dataset":"monitor.status","action":"monitor-start"}}"#,
                6,
                "monitor-start",
            ),
            (
                br#"{"event":{"kind":"metric","dataset":"monitor.status","action":"events-lost"}}"#,
                4,
                "events-lost",
            ),
        ];
        for (line, severity, msgid) in cases {
            assert_eq!(
                classify(line),
                (severity, msgid.to_string()),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(classify(b"not json"), (5, String::new()));
        assert_eq!(header_field("", 32), "-");
    }

    #[test]
    fn a_missing_socket_is_typed_and_retried_after_the_delay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("later.sock");
        assert!(matches!(Syslog::open(config(&path)), Err(SinkError::Unavailable { .. })));
        // Open while listening, then the logger goes away and comes back.
        let rx = UnixDatagram::bind(&path).unwrap();
        let mut s =
            Syslog::open(SyslogConfig { retry_delay: Duration::from_millis(300), ..config(&path) })
                .unwrap();
        drop(rx);
        std::fs::remove_file(&path).unwrap();
        let e = s.write_line(b"{}").unwrap_err();
        assert!(
            matches!(&e, SinkError::Unavailable { retry_in, .. } if *retry_in > Duration::ZERO),
            "{e:?}"
        );
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert!(
            matches!(s.write_line(b"{}"), Err(SinkError::Unavailable { .. })),
            "no new attempt before the delay"
        );
        std::thread::sleep(Duration::from_millis(350));
        s.write_line(br#"{"n":3}"#).unwrap();
        assert!(recv(&rx).ends_with(r#"{"n":3}"#));
        assert_eq!(s.stats().lost, 2);
        assert_eq!(s.stats().lines, 1);
    }

    #[test]
    fn a_full_receiver_costs_one_bounded_wait_then_drops_at_once() {
        let (_dir, path, rx) = receiver();
        let timeout = Duration::from_millis(100);
        let mut s = Syslog::open(SyslogConfig { send_timeout: timeout, ..config(&path) }).unwrap();
        // Nobody reads: the receiver's queue (net.unix.max_dgram_qlen) fills.
        let started = Instant::now();
        let mut busy = Vec::new();
        for n in 0..3000 {
            if let Err(e) = s.write_line(format!("{{\"n\":{n}}}").as_bytes()) {
                busy.push(e);
            }
        }
        let took = started.elapsed();
        assert!(!busy.is_empty(), "3000 unread messages must fill the queue");
        assert!(busy.iter().all(|e| matches!(e, SinkError::Busy { .. })), "{busy:?}");
        assert!(took < timeout * 5, "one wait, not one per message: {took:?}");
        let stats = s.stats();
        assert_eq!(stats.lines + stats.lost, 3000);
        assert_eq!(stats.lost, busy.len() as u64);
        // Once the reader drains, messages get through again.
        rx.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 4096];
        while rx.recv(&mut buf).is_ok() {}
        s.write_line(b"{\"after\":1}").unwrap();
        rx.set_nonblocking(false).unwrap();
        assert!(recv(&rx).ends_with("{\"after\":1}"));
    }

    #[test]
    fn facilities_parse_by_name() {
        assert_eq!("local3".parse::<Facility>().unwrap().code(), 19);
        assert_eq!("authpriv".parse::<Facility>().unwrap().code(), 10);
        assert!("local8".parse::<Facility>().is_err());
    }
}
