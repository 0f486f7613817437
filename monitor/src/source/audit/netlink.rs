//! The kernel audit subsystem over netlink: the read-only multicast group every record is
//! copied to (so the monitor runs beside auditd, which keeps its unicast link and its
//! rules), the status query (enabled, lost count, rules loaded), and a user-space message
//! of the monitor's own (the probe that proves records reach it).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// AUDIT_NLGRP_READLOG: the multicast group of audit records (needs CAP_AUDIT_READ).
const NLGRP_READLOG: u32 = 1;
const AUDIT_GET: u16 = 1000;
const AUDIT_LIST_RULES: u16 = 1013;
/// A trusted application's message (free text): the monitor's probe.
pub const AUDIT_TRUSTED_APP: u16 = 1121;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDRLEN: usize = 16;

fn socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            libc::NETLINK_AUDIT,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket(2) and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bind(fd: RawFd, groups: u32) -> io::Result<()> {
    // SAFETY: sockaddr_nl is plain data; zeroed is a valid value.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as u16;
    addr.nl_groups = groups;
    // SAFETY: addr lives across the call and its size is passed.
    let rc = unsafe {
        libc::bind(
            fd,
            &addr as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What went wrong talking to the kernel's audit subsystem.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("joining the audit multicast group was refused: CAP_AUDIT_READ is needed")]
    NotPermitted,
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the kernel did not answer the audit status request")]
    NoAnswer,
}

impl From<NetlinkError> for crate::Error {
    fn from(e: NetlinkError) -> crate::Error {
        match e {
            NetlinkError::NotPermitted => {
                crate::Error::NotRoot("reading the audit multicast needs CAP_AUDIT_READ")
            }
            other => crate::Error::Kernel(other.to_string()),
        }
    }
}

type Result<T> = std::result::Result<T, NetlinkError>;

fn io_error(what: &'static str) -> impl Fn(io::Error) -> NetlinkError {
    move |source| NetlinkError::Io { what, source }
}

/// The multicast subscription: a non-blocking socket to poll.
pub struct Multicast {
    fd: OwnedFd,
    buf: Vec<u8>,
    /// Times the socket's buffer overflowed (ENOBUFS: the kernel dropped records for us).
    pub overruns: u64,
}

impl AsRawFd for Multicast {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Multicast {
    pub fn subscribe() -> Result<Multicast> {
        let fd = socket().map_err(io_error("opening a NETLINK_AUDIT socket"))?;
        // A large buffer rides out bursts; FORCE works as root beyond rmem_max.
        let size: libc::c_int = 32 << 20;
        // SAFETY: setsockopt with an int option value that lives across the call.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                &size as *const _ as *const libc::c_void,
                4,
            );
        }
        bind(fd.as_raw_fd(), NLGRP_READLOG).map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) => NetlinkError::NotPermitted,
            _ => NetlinkError::Io { what: "joining the audit multicast group", source: e },
        })?;
        Ok(Multicast { fd, buf: vec![0; 1 << 16], overruns: 0 })
    }

    /// Read every waiting message: `each(type, body)`. Returns when the socket would block.
    pub fn drain(&mut self, mut each: impl FnMut(u16, &[u8]) -> io::Result<()>) -> io::Result<()> {
        loop {
            // SAFETY: buf is valid for its length for the duration of the call.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr() as *mut libc::c_void,
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(()),
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) => {
                        self.overruns += 1;
                        continue;
                    }
                    _ => return Err(e),
                }
            }
            for (t, body) in messages(&self.buf[..n as usize]) {
                each(t, body)?;
            }
        }
    }
}

/// The netlink messages in a datagram: (type, payload).
pub fn messages(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes(data[0..4].try_into().ok()?) as usize;
        let t = u16::from_ne_bytes(data[4..6].try_into().ok()?);
        // Audit's multicast may set a length that excludes the header; accept both.
        let len = if len < NLMSG_HDRLEN || len > data.len() { data.len() } else { len };
        let body = &data[NLMSG_HDRLEN..len];
        data = &data[((len + 3) & !3).min(data.len())..];
        Some((t, body))
    })
}

/// What the kernel says about auditing.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    /// 0 off, 1 on, 2 locked on.
    pub enabled: u32,
    /// The registered audit daemon (auditd), 0 when none.
    pub pid: u32,
    /// Records the kernel lost (backlog full, rate limit), since boot.
    pub lost: u32,
}

fn request(fd: RawFd, t: u16, seq: u32) -> io::Result<()> {
    request_with(fd, t, seq, &[])
}

/// A request of type `t` carrying `payload`, asking for an acknowledgement.
fn request_with(fd: RawFd, t: u16, seq: u32, payload: &[u8]) -> io::Result<()> {
    let mut msg = vec![0u8; NLMSG_HDRLEN];
    msg.extend_from_slice(payload);
    let len = msg.len() as u32;
    msg[0..4].copy_from_slice(&len.to_ne_bytes());
    msg[4..6].copy_from_slice(&t.to_ne_bytes());
    msg[6..8].copy_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
    msg[8..12].copy_from_slice(&seq.to_ne_bytes());
    // SAFETY: msg is a valid buffer of its length; the kernel is the default destination.
    let rc = unsafe { libc::send(fd, msg.as_ptr() as *const libc::c_void, msg.len(), 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receive replies until `done` says so (or 2 s pass).
fn replies(fd: RawFd, mut each: impl FnMut(u16, &[u8]) -> Option<Result<()>>) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(NetlinkError::NoAnswer);
        }
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) };
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) {
                continue;
            }
            return Err(NetlinkError::Io { what: "reading the kernel's answer", source: e });
        }
        for (t, body) in messages(&buf[..n as usize]) {
            if let Some(r) = each(t, body) {
                return r;
            }
        }
    }
}

/// Ask the kernel for its audit status.
pub fn status() -> Result<Status> {
    let fd = socket().map_err(io_error("opening a NETLINK_AUDIT socket"))?;
    request(fd.as_raw_fd(), AUDIT_GET, 1).map_err(io_error("asking for the audit status"))?;
    let mut out = None;
    replies(fd.as_raw_fd(), |t, body| match t {
        AUDIT_GET if body.len() >= 28 => {
            let word =
                |i: usize| u32::from_ne_bytes(body[i * 4..i * 4 + 4].try_into().expect("4 bytes"));
            out = Some(Status { enabled: word(1), pid: word(3), lost: word(6) });
            Some(Ok(()))
        }
        NLMSG_ERROR => error_of(body),
        _ => None,
    })?;
    out.ok_or(NetlinkError::NoAnswer)
}

/// An NLMSG_ERROR payload: an ack (0) is not an error and does not end the exchange.
fn error_of(body: &[u8]) -> Option<Result<()>> {
    let code = i32::from_ne_bytes(body.get(0..4)?.try_into().ok()?);
    (code != 0).then(|| {
        Err(NetlinkError::Io {
            what: "the kernel refused the request",
            source: io::Error::from_raw_os_error(-code),
        })
    })
}

/// Log `text` as a user-space message of type `t` (needs CAP_AUDIT_WRITE): the kernel
/// makes it a record like any other, for auditd and the multicast group. It is dropped
/// when auditing is off or a `never,user` / `exclude` rule selects it.
pub fn send_user_message(t: u16, text: &str) -> Result<()> {
    let fd = socket().map_err(io_error("opening a NETLINK_AUDIT socket"))?;
    let mut payload = text.as_bytes().to_vec();
    payload.push(0);
    request_with(fd.as_raw_fd(), t, 3, &payload)
        .map_err(io_error("sending a user-space audit message"))?;
    replies(fd.as_raw_fd(), |t, body| match t {
        NLMSG_ERROR => Some(error_of(body).unwrap_or(Ok(()))),
        _ => None,
    })
}

/// How many rules the kernel has loaded.
pub fn rule_count() -> Result<usize> {
    let fd = socket().map_err(io_error("opening a NETLINK_AUDIT socket"))?;
    request(fd.as_raw_fd(), AUDIT_LIST_RULES, 2).map_err(io_error("listing the audit rules"))?;
    let mut count = 0;
    replies(fd.as_raw_fd(), |t, body| match t {
        AUDIT_LIST_RULES => {
            count += 1;
            None
        }
        NLMSG_DONE => Some(Ok(())),
        NLMSG_ERROR => error_of(body),
        _ => None,
    })?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_datagrams_into_messages() {
        let mut d = Vec::new();
        for (t, body) in [(1300u16, &b"audit(1.000:1): a=b"[..]), (1320, b"audit(1.000:1): ")] {
            let len = NLMSG_HDRLEN + body.len();
            d.extend((len as u32).to_ne_bytes());
            d.extend(t.to_ne_bytes());
            d.extend([0u8; 10]);
            d.extend(body);
            while d.len() % 4 != 0 {
                d.push(0);
            }
        }
        let got: Vec<(u16, Vec<u8>)> = messages(&d).map(|(t, b)| (t, b.to_vec())).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (1300, b"audit(1.000:1): a=b".to_vec()));
        assert_eq!(got[1].0, 1320);
        assert_eq!(messages(&d[..7]).count(), 0);
    }
}
