//! The kernel audit subsystem over netlink: the read-only multicast group every record is
//! copied to (so the monitor runs beside auditd, which keeps its unicast link and its
//! rules), the status query (enabled, lost count, rules loaded), and a user-space message
//! of the monitor's own (the probe that proves records reach it).
//!
//! Sockets come from `netlink-sys`, the message layout from `netlink-packet-core` and
//! `netlink-packet-audit`. Records are read as slices of the datagram through their
//! `NetlinkBuffer` view, not decoded into `AuditMessage`: that copies each record into a
//! `String` (250 to 720 ns per 300-byte SYSCALL record against 1 to 6 ns for the slice, a
//! 2-million-record loop in a release build) and drops one that is not UTF-8 uncounted.

use netlink_packet_audit::{
    AuditMessage, StatusMessage, StatusMessageBuffer, AUDIT_GET, AUDIT_LIST_RULES,
    AUDIT_NLGRP_READLOG,
};
use netlink_packet_core::{
    ErrorBuffer, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, Parseable,
    NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_sys::{protocols::NETLINK_AUDIT, Socket, SocketAddr};
use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// A trusted application's message (free text): the monitor's probe.
pub const AUDIT_TRUSTED_APP: u16 = 1121;
/// The netlink header before each message's payload.
const NLMSG_HDRLEN: usize = 16;

fn socket() -> io::Result<Socket> {
    let socket = Socket::new(NETLINK_AUDIT)?;
    socket.set_non_blocking(true)?;
    Ok(socket)
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
    #[error("the kernel's audit status is malformed: {0}")]
    Malformed(String),
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
    socket: Socket,
    buf: Vec<u8>,
    /// Times the socket's buffer overflowed (ENOBUFS: the kernel dropped records for us).
    pub overruns: u64,
}

impl AsRawFd for Multicast {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl Multicast {
    pub fn subscribe() -> Result<Multicast> {
        let mut socket = socket().map_err(io_error("opening a NETLINK_AUDIT socket"))?;
        // A large buffer rides out bursts; FORCE works as root beyond rmem_max (netlink-sys
        // sets SO_RCVBUF only).
        let size: libc::c_int = 32 << 20;
        // SAFETY: setsockopt with an int option value that lives across the call.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                &size as *const _ as *const libc::c_void,
                4,
            );
        }
        // nl_groups is a bit mask: group n is bit n - 1.
        let groups = 1 << (AUDIT_NLGRP_READLOG - 1);
        socket.bind(&SocketAddr::new(0, groups)).map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) => NetlinkError::NotPermitted,
            _ => NetlinkError::Io { what: "joining the audit multicast group", source: e },
        })?;
        Ok(Multicast { socket, buf: Vec::with_capacity(1 << 16), overruns: 0 })
    }

    /// Read every waiting message: `each(type, body)`. Returns when the socket would block.
    pub fn drain(&mut self, mut each: impl FnMut(u16, &[u8]) -> io::Result<()>) -> io::Result<()> {
        loop {
            self.buf.clear();
            if let Err(e) = self.socket.recv(&mut self.buf, 0) {
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
            for (t, body) in messages(&self.buf) {
                each(t, body)?;
            }
        }
    }
}

/// The netlink messages in a datagram: (type, payload). A length field shorter than the
/// header or running past the datagram makes the rest of the datagram one message.
pub fn messages(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = NetlinkBuffer::new_checked(data).map_or(data.len(), |m| m.length() as usize);
        let t = NetlinkBuffer::new(data).message_type();
        let body = &data[NLMSG_HDRLEN..len];
        data = &data[len.next_multiple_of(4).min(data.len())..];
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

fn request(socket: &Socket, message: AuditMessage, seq: u32) -> io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    socket.send(&buf, 0)?;
    Ok(())
}

/// Receive replies until `each` says so (or 2 s pass).
fn replies(socket: &Socket, mut each: impl FnMut(u16, &[u8]) -> Option<Result<()>>) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut buf = Vec::with_capacity(1 << 16);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(NetlinkError::NoAnswer);
        }
        let mut pfd = libc::pollfd { fd: socket.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, left.as_millis() as i32) };
        buf.clear();
        if let Err(e) = socket.recv(&mut buf, 0) {
            if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) {
                continue;
            }
            return Err(NetlinkError::Io { what: "reading the kernel's answer", source: e });
        }
        for (t, body) in messages(&buf) {
            if let Some(r) = each(t, body) {
                return r;
            }
        }
    }
}

/// Ask the kernel for its audit status.
pub fn status() -> Result<Status> {
    let socket = socket().map_err(io_error("opening a NETLINK_AUDIT socket"))?;
    request(&socket, AuditMessage::GetStatus(None), 1)
        .map_err(io_error("asking for the audit status"))?;
    let mut out = None;
    replies(&socket, |t, body| match t {
        AUDIT_GET => Some(
            StatusMessageBuffer::new_checked(body)
                .and_then(|b| StatusMessage::parse(&b))
                .map(|s| out = Some(Status { enabled: s.enabled, pid: s.pid, lost: s.lost }))
                .map_err(|e| NetlinkError::Malformed(e.to_string())),
        ),
        NLMSG_ERROR => error_of(body),
        _ => None,
    })?;
    out.ok_or(NetlinkError::NoAnswer)
}

/// An NLMSG_ERROR payload: an ack (0) is not an error and does not end the exchange.
fn error_of(body: &[u8]) -> Option<Result<()>> {
    let code = ErrorBuffer::new_checked(body).ok()?.code()?;
    Some(Err(NetlinkError::Io {
        what: "the kernel refused the request",
        source: io::Error::from_raw_os_error(-code.get()),
    }))
}

/// Log `text` as a user-space message of type `t` (needs CAP_AUDIT_WRITE): the kernel
/// makes it a record like any other, for auditd and the multicast group. It is dropped
/// when auditing is off or a `never,user` / `exclude` rule selects it.
pub fn send_user_message(t: u16, text: &str) -> Result<()> {
    let socket = socket().map_err(io_error("opening a NETLINK_AUDIT socket"))?;
    let mut text = text.to_owned();
    text.push('\0');
    request(&socket, AuditMessage::Other((t, text)), 3)
        .map_err(io_error("sending a user-space audit message"))?;
    replies(&socket, |t, body| match t {
        NLMSG_ERROR => Some(error_of(body).unwrap_or(Ok(()))),
        _ => None,
    })
}

/// How many rules the kernel has loaded.
pub fn rule_count() -> Result<usize> {
    let socket = socket().map_err(io_error("opening a NETLINK_AUDIT socket"))?;
    request(&socket, AuditMessage::ListRules(None), 2)
        .map_err(io_error("listing the audit rules"))?;
    let mut count = 0;
    replies(&socket, |t, body| match t {
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
