//! Unix-socket calls: `connect` to a watched socket path, and the bytes later sent on such a
//! connection (write, writev, sendto, sendmsg), reported from their start for the Docker
//! API decoder in userspace.

use super::*;

/// The `struct sock` behind descriptor `fd`; `None` when it is no socket (now: another
/// thread may have replaced the descriptor since the call) or cannot be read.
#[inline(always)]
fn socket_sock(task: u64, fd: i64) -> Option<u64> {
    const S_IFMT: u16 = 0o170000;
    const S_IFSOCK: u16 = 0o140000;
    let file = task_file(task, fd)?;
    let inode = member::<u64>(file_path(file)?.dentry, ty!(dentry), off!(dentry_inode))?;
    if member::<u16>(inode, ty!(inode), off!(inode_mode))? & S_IFMT != S_IFSOCK {
        return None;
    }
    // A socket file's `private_data` (a `void *`) is its `struct socket`; `sk` is a
    // `struct sock *`.
    let socket = member::<u64>(file, ty!(file), off!(file_private_data))?;
    member::<u64>(socket, ty!(socket), off!(socket_sk))
}

/// Address family of the socket `sk` (a `struct sock`).
#[inline(always)]
fn sock_family(sk: u64) -> Option<u16> {
    member::<u16>(sk, ty!(sock), off!(sock_family))
}

/// Path of the listening socket a connected unix socket (descriptor `fd`) reached.
#[inline(always)]
fn unix_peer_path(task: u64, fd: i64) -> Option<KPath> {
    unix_peer_of(socket_sock(task, fd)?)
}

/// Path of the listening socket the connected socket `sk` reached; `None` unless `sk` is
/// a unix socket.
#[inline(always)]
fn unix_peer_of(sk: u64) -> Option<KPath> {
    if sock_family(sk)? != AF_UNIX {
        return None;
    }
    // `peer` is a `struct sock *`, of a unix socket.
    let peer = member::<u64>(sk, ty!(unix_sock), off!(unix_sock_peer))?;
    let path = KPath::field(typed(peer, ty!(unix_sock)), off!(unix_sock_path))?;
    if path.dentry == 0 {
        None
    } else {
        Some(path)
    }
}

/// Returns `int` because the verifier allows tail calls only in such functions.
pub fn exit_connect(ctx: &TracePointContext) -> i32 {
    exit_connect_inner(ctx);
    0
}

#[inline(always)]
fn exit_connect_inner(ctx: &TracePointContext) {
    let task = current_task();
    let Some((entry, ret)) = current_call(ctx, task) else {
        return;
    };
    let fd = entry.args[0] as i32 as i64;
    // The socket's own family, from kernel memory: other families (TCP and the like) end
    // here without the copy of the caller's address (a user copy costs more than the rest).
    // Without a readable socket, the caller's address decides, as it always did.
    let sk = socket_sock(task, fd);
    if sk.and_then(sock_family).is_some_and(|f| f != AF_UNIX) {
        return;
    }
    // A connected unix socket reached a listener the kernel names by its dentry: most are
    // nowhere near a watch, and are judged like an open file, before any copy or record.
    if ret == 0 && !unfiltered(class::CONNECT) {
        if let Some(peer) = sk.and_then(unix_peer_of) {
            if crate::path::surely_unwatched(peer, task) {
                return;
            }
        }
    }
    let uaddr = entry.args[1];
    let family = unsafe { bpf_probe_read_user(uaddr as *const u16).unwrap_or(0) };
    if family != AF_UNIX {
        return;
    }
    let Some(mut d) = Draft::begin(kind::CONNECT, 0, entry.nr as i32) else {
        return;
    };
    fill_syscall(&mut d, &entry, ret);
    let Some(job) = Job::begin(class::CONNECT, task) else {
        return;
    };
    // Field 1: the path exactly as the caller passed it (abstract sockets have none).
    match job.push_raw(uaddr + 2, SUN_PATH_MAX) {
        Some(len) if len > 0 => {}
        _ => return,
    }
    // Field 2: the socket the kernel reached (connected) or the caller's path resolved.
    let peer = if ret == 0 { sk.and_then(unix_peer_of) } else { None };
    let second = match peer {
        Some(path) => {
            d.set_identity(path.dentry);
            job.push_kernel(path)
        }
        None => job.push_user(task, AT_FDCWD, uaddr + 2, SUN_PATH_MAX),
    };
    if second.is_some() {
        start(ctx);
    }
}

/// The calls that send bytes on a socket (`monitor_common::sys::SENDS`).
mod send_nr {
    use monitor_common::sys;
    pub const WRITE: i64 = sys::WRITE as i64;
    pub const WRITEV: i64 = sys::WRITEV as i64;
    pub const SENDTO: i64 = sys::SENDTO as i64;
    pub const SENDMSG: i64 = sys::SENDMSG as i64;
}

/// Up to this many iovecs of a writev/sendmsg are added up for the stream offset (the data
/// reported comes from the first one).
const IOV_SUM_MAX: u64 = 8;

/// `(base, len)` of the first iovec at `iov`, and the total length of the first `count`.
#[inline(always)]
fn iovecs(iov: u64, count: u64) -> Option<(u64, u64)> {
    let first = unsafe { bpf_probe_read_user(iov as *const [u64; 2]).ok()? };
    let mut total = 0u64;
    for i in 0..IOV_SUM_MAX {
        if i >= count {
            break;
        }
        let v = unsafe { bpf_probe_read_user((iov + 16 * i) as *const [u64; 2]).unwrap_or([0, 0]) };
        total += v[1];
    }
    Some((first[0], total))
}

/// sys_enter of write, writev, sendto and sendmsg: on a captured connection, report the
/// bytes being sent (the start of them, see `CAPTURE_*`) with their offset in the stream.
pub fn enter_send(ctx: &TracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    // Most processes never connected to a watched socket (an unreadable map: look).
    if capturing_slot(tgid).is_some_and(|slot| unsafe { core::ptr::read_volatile(slot) } == 0) {
        return;
    }
    let fd = tp_arg(ctx, 0);
    let key = CaptureKey { tgid, fd: fd as u32 };
    let Some(capture) = CAPTURE.get_ptr_mut(&key) else { return };
    // The descriptor may have been closed and reused since the connect (close is not
    // hooked): it must still reach the same socket path.
    let peer = unix_peer_path(current_task(), fd as i32 as i64).map_or(0, |p| p.dentry);
    if peer != unsafe { (*capture).peer } {
        let _ = CAPTURE.remove(&key);
        return;
    }
    let n = tp_field::<i32>(ctx, TP_SYSCALL_NR) as i64;
    let (buf, len) = match n {
        send_nr::WRITE | send_nr::SENDTO => (tp_arg(ctx, 1), tp_arg(ctx, 2)),
        send_nr::WRITEV => match iovecs(tp_arg(ctx, 1), tp_arg(ctx, 2)) {
            Some(v) => v,
            None => return,
        },
        send_nr::SENDMSG => {
            // struct user_msghdr: msg_iov at 16, msg_iovlen at 24.
            let msg = tp_arg(ctx, 1);
            let iov = unsafe { bpf_probe_read_user((msg + 16) as *const u64).unwrap_or(0) };
            let count = unsafe { bpf_probe_read_user((msg + 24) as *const u64).unwrap_or(0) };
            match iovecs(iov, count) {
                Some(v) => v,
                None => return,
            }
        }
        _ => return,
    };
    let offset = unsafe { (*capture).sent };
    unsafe { (*capture).sent = offset + len };
    let cap = if offset < CAPTURE_FULL_BYTES { CAPTURE_CHUNK } else { CAPTURE_HEAD } as u64;
    let take = if len < cap { len } else { cap };
    let Some(mut d) = Draft::new(kind::PAYLOAD, 0, n as i32, current_task()) else { return };
    d.event().args = [fd, offset, len, 0];
    let dst = d.field1();
    // An explicit bound for the verifier (the field holds up to FIELD_CAP bytes).
    let take = if take as usize > CAPTURE_CHUNK { CAPTURE_CHUNK } else { take as usize };
    if unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_user(dst.cast(), take as u32, buf as *const _)
    } != 0
    {
        return;
    }
    d.set_len1(take);
    d.submit();
}
