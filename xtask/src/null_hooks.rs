//! The tracepoint floor for the bench: empty BPF programs (`r0 = 0; exit`) on the hook
//! points the monitor reports in its start record (`monitor.start.hook_points`), so that
//! the cost of being hooked at all can be told apart from the cost of the monitor's
//! programs. Loaded with raw `bpf(2)` and `perf_event_open(2)` calls: no BPF object needed.

use anyhow::{bail, Context, Result};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
const BPF_PROG_TYPE_TRACEPOINT: u32 = 5;
const BPF_PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
const PERF_TYPE_TRACEPOINT: u32 = 2;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
/// `_IOW('$', 8, __u32)` and `_IO('$', 0)`.
const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;

/// Empty programs attached until dropped.
pub struct NullHooks {
    _fds: Vec<OwnedFd>,
    pub attached: usize,
}

fn bpf(cmd: libc::c_long, attr: &mut [u64; 16]) -> Result<RawFd> {
    let fd = unsafe {
        libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), std::mem::size_of_val(attr))
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(fd as RawFd)
}

/// Load `r0 = 0; exit` as a program of `prog_type`.
fn load_empty(prog_type: u32) -> Result<OwnedFd> {
    // BPF_ALU64 | BPF_MOV | BPF_K to r0, imm 0; then BPF_JMP | BPF_EXIT.
    let insns: [u64; 2] = [0xb7, 0x95];
    let license = b"GPL\0";
    let mut attr = [0u64; 16];
    attr[0] = prog_type as u64 | (insns.len() as u64) << 32;
    attr[1] = insns.as_ptr() as u64;
    attr[2] = license.as_ptr() as u64;
    let fd = bpf(BPF_PROG_LOAD, &mut attr).context("loading an empty BPF program")?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Attach an empty program to `syscalls:<name>` (a perf tracepoint event).
fn attach_syscall(name: &str) -> Result<Vec<OwnedFd>> {
    let id_path = format!("/sys/kernel/tracing/events/syscalls/{name}/id");
    let id: u64 = std::fs::read_to_string(&id_path)
        .with_context(|| format!("reading {id_path}"))?
        .trim()
        .parse()
        .with_context(|| format!("parsing {id_path}"))?;
    // struct perf_event_attr (PERF_ATTR_SIZE_VER5, 112 bytes): type, size, config,
    // sample_period; the rest zero.
    let mut attr = [0u64; 14];
    attr[0] = PERF_TYPE_TRACEPOINT as u64 | (std::mem::size_of_val(&attr) as u64) << 32;
    attr[1] = id;
    attr[2] = 1;
    let pfd = unsafe {
        libc::syscall(libc::SYS_perf_event_open, attr.as_ptr(), -1, 0, -1, PERF_FLAG_FD_CLOEXEC)
    };
    if pfd < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("perf_event_open on syscalls:{name}"));
    }
    let event = unsafe { OwnedFd::from_raw_fd(pfd as RawFd) };
    let prog = load_empty(BPF_PROG_TYPE_TRACEPOINT)?;
    use std::os::fd::AsRawFd;
    if unsafe { libc::ioctl(event.as_raw_fd(), PERF_EVENT_IOC_SET_BPF, prog.as_raw_fd()) } < 0
        || unsafe { libc::ioctl(event.as_raw_fd(), PERF_EVENT_IOC_ENABLE, 0) } < 0
    {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("attaching to syscalls:{name}"));
    }
    Ok(vec![event, prog])
}

/// Attach an empty raw tracepoint program to `name` (what a `raw_tp` hook point is).
fn attach_raw(name: &str) -> Result<Vec<OwnedFd>> {
    let prog = load_empty(BPF_PROG_TYPE_RAW_TRACEPOINT)?;
    let cname = std::ffi::CString::new(name)?;
    let mut attr = [0u64; 16];
    attr[0] = cname.as_ptr() as u64;
    use std::os::fd::AsRawFd;
    attr[1] = prog.as_raw_fd() as u64;
    let link = bpf(BPF_RAW_TRACEPOINT_OPEN, &mut attr)
        .with_context(|| format!("attaching to raw tracepoint {name}"))?;
    Ok(vec![unsafe { OwnedFd::from_raw_fd(link) }, prog])
}

impl NullHooks {
    /// Attach an empty program to every hook point (`syscalls:…`, `raw_tp:…`).
    pub fn attach(points: &[String]) -> Result<NullHooks> {
        let mut fds = Vec::new();
        for p in points {
            let more = match p.split_once(':') {
                Some(("syscalls", name)) => attach_syscall(name)?,
                Some(("raw_tp", name)) => attach_raw(name)?,
                _ => bail!("unknown hook point {p:?} in the monitor's start record"),
            };
            fds.extend(more);
        }
        Ok(NullHooks { _fds: fds, attached: points.len() })
    }
}
