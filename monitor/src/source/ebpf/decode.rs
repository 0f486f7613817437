//! Decoding ring-buffer records ([`monitor_common::Event`] + two variable fields).
//!
//! Records come from the kernel, but the decoder treats them as untrusted: sizes are checked
//! against the buffer and a malformed record is an error, never a panic.

use crate::error::Malformed;
use crate::event::{Action, Event};

type Result<T, E = Malformed> = std::result::Result<T, E>;
use monitor_common::{
    file_op, flag, kind, tamper_op, Event as Raw, EVENT_SIZE, EVENT_SIZE_V1, FIELD_CAP,
};

/// Decode one record. Its header is [`EVENT_SIZE`] bytes, or [`EVENT_SIZE_V1`] in records
/// written before the header gained `generation` (captures of earlier versions): the size
/// the record states, less its fields, says which.
pub fn decode(buf: &[u8]) -> Result<Event> {
    crate::ensure_well_formed!(
        buf.len() >= EVENT_SIZE_V1,
        "record of {} bytes is shorter than the header",
        buf.len()
    );
    // SAFETY: Raw is plain old data; the first EVENT_SIZE_V1 bytes are read, the rest of
    // the header after the size is known.
    let mut raw: Raw = unsafe { std::mem::zeroed() };
    unsafe {
        std::ptr::copy_nonoverlapping(
            buf.as_ptr(),
            (&mut raw as *mut Raw).cast::<u8>(),
            EVENT_SIZE_V1,
        )
    };
    let len1 = raw.len1 as usize;
    let len2 = raw.len2 as usize;
    crate::ensure_well_formed!(len1 <= FIELD_CAP && len2 <= FIELD_CAP, "field length out of range");
    let header = (raw.size as usize).saturating_sub(len1 + len2);
    crate::ensure_well_formed!(
        header == EVENT_SIZE || header == EVENT_SIZE_V1,
        "record header of {header} bytes: neither {EVENT_SIZE} nor {EVENT_SIZE_V1}"
    );
    crate::ensure_well_formed!(header + len1 + len2 <= buf.len(), "fields run past the record");
    if header == EVENT_SIZE {
        // SAFETY: as above, the whole header this time (the buffer holds it).
        unsafe {
            std::ptr::copy_nonoverlapping(
                buf.as_ptr(),
                (&mut raw as *mut Raw).cast::<u8>(),
                EVENT_SIZE,
            )
        };
    }
    let field1 = &buf[header..header + len1];
    let field2 = &buf[header + len1..header + len1 + len2];
    let action = match raw.kind {
        kind::EXEC => Action::Exec,
        kind::CONNECT => Action::Connect,
        kind::SETID => Action::SetId,
        kind::FORK => Action::Fork,
        kind::EXIT => Action::Exit,
        kind::PAYLOAD => Action::Payload,
        kind::TAMPER => match raw.op {
            tamper_op::SIGNAL => Action::Signal,
            tamper_op::PTRACE => Action::Ptrace,
            tamper_op::PROCESS_VM => Action::ProcessVm,
            op => crate::malformed!("unknown tamper operation {op}"),
        },
        kind::FILE => match raw.op {
            file_op::OPEN => Action::Open,
            file_op::UNLINK => Action::Unlink,
            file_op::RMDIR => Action::Rmdir,
            file_op::RENAME => Action::Rename,
            file_op::LINK => Action::Link,
            file_op::SYMLINK => Action::Symlink,
            file_op::MKDIR => Action::Mkdir,
            file_op::MKNOD => Action::Mknod,
            file_op::TRUNCATE => Action::Truncate,
            file_op::CHMOD => Action::Chmod,
            file_op::CHOWN => Action::Chown,
            file_op::SETXATTR => Action::SetXattr,
            file_op::REMOVEXATTR => Action::RemoveXattr,
            op => crate::malformed!("unknown file operation {op}"),
        },
        k => crate::malformed!("unknown event kind {k}"),
    };
    let comm_len = raw.comm.iter().position(|&b| b == 0).unwrap_or(raw.comm.len());
    let opt = |f: &[u8]| if f.is_empty() { None } else { Some(f.to_vec()) };
    let (path, path2, argv, payload) = match action {
        Action::Exec => (opt(field1), None, split_argv(field2), Vec::new()),
        Action::Payload => (None, None, Vec::new(), field1.to_vec()),
        _ => (opt(field1), opt(field2), Vec::new(), Vec::new()),
    };
    let mut flags = raw.flags;
    if action == Action::Exec && raw.flags & flag::PATH2_TRUNCATED != 0 {
        flags |= flag::PATH2_TRUNCATED;
    }
    Ok(Event {
        action,
        syscall: raw.syscall,
        ret: raw.ret,
        args: raw.args,
        ts_boot_ns: raw.ts_boot_ns,
        pid: raw.pid,
        tid: raw.tid,
        ppid: raw.ppid,
        ids: raw.ids,
        old_ids: raw.old_ids,
        auid: raw.auid,
        sessionid: raw.sessionid,
        cgroup_id: raw.cgroup_id,
        cgroup_name: raw.cgroup_name
            [..raw.cgroup_name.iter().position(|&b| b == 0).unwrap_or(raw.cgroup_name.len())]
            .to_vec(),
        comm: raw.comm[..comm_len].to_vec(),
        path,
        path2,
        argv,
        payload,
        ino: raw.ino,
        dev: raw.dev,
        generation: (header == EVENT_SIZE && raw.ino != 0).then_some(raw.generation),
        mode: raw.mode,
        watch: raw.watch,
        watch2: raw.watch2,
        open_flags: raw.extra,
        flags,
        child_or_code: raw.args[0],
        audit_key: None,
    })
}

/// argv as the kernel laid it out: NUL-terminated strings back to back.
fn split_argv(field: &[u8]) -> Vec<Vec<u8>> {
    let field = field.strip_suffix(&[0]).unwrap_or(field);
    if field.is_empty() {
        return Vec::new();
    }
    field.split(|&b| b == 0).map(|s| s.to_vec()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind_: u16, op: u16, f1: &[u8], f2: &[u8]) -> Vec<u8> {
        let mut raw: Raw = unsafe { std::mem::zeroed() };
        raw.kind = kind_;
        raw.op = op;
        raw.len1 = f1.len() as u32;
        raw.len2 = f2.len() as u32;
        raw.size = (EVENT_SIZE + f1.len() + f2.len()) as u32;
        raw.pid = 42;
        raw.generation = 7;
        raw.ino = 99;
        raw.comm[..3].copy_from_slice(b"cat");
        let mut b = unsafe {
            std::slice::from_raw_parts(&raw as *const Raw as *const u8, EVENT_SIZE).to_vec()
        };
        b.extend_from_slice(f1);
        b.extend_from_slice(f2);
        b
    }

    #[test]
    fn decodes_exec_with_argv() {
        let ev = decode(&record(kind::EXEC, 0, b"/usr/bin/docker", b"docker\0ps\0-a\0")).unwrap();
        assert_eq!(ev.action, Action::Exec);
        assert_eq!(ev.path.as_deref(), Some(&b"/usr/bin/docker"[..]));
        assert_eq!(ev.argv, vec![b"docker".to_vec(), b"ps".to_vec(), b"-a".to_vec()]);
        assert_eq!(ev.comm, b"cat");
        assert_eq!(ev.pid, 42);
    }

    #[test]
    fn decodes_rename_with_two_paths() {
        let ev = decode(&record(kind::FILE, file_op::RENAME, b"/a", b"/etc/docker/x")).unwrap();
        assert_eq!(ev.action, Action::Rename);
        assert_eq!(ev.path2.as_deref(), Some(&b"/etc/docker/x"[..]));
    }

    #[test]
    fn decodes_records_of_earlier_captures_without_generation() {
        let full = record(kind::FILE, file_op::RENAME, b"/a", b"/etc/docker/x");
        assert_eq!(decode(&full).unwrap().generation, Some(7));
        // The same record as an earlier version wrote it: the header ends before
        // `generation`, and the size it states says so.
        let mut old = full[..EVENT_SIZE_V1].to_vec();
        old.extend_from_slice(&full[EVENT_SIZE..]);
        let size = old.len() as u32;
        let at = std::mem::offset_of!(Raw, size);
        old[at..at + 4].copy_from_slice(&size.to_ne_bytes());
        let ev = decode(&old).unwrap();
        assert_eq!(
            (ev.path.as_deref(), ev.path2.as_deref(), ev.generation),
            (Some(&b"/a"[..]), Some(&b"/etc/docker/x"[..]), None)
        );
    }

    #[test]
    fn rejects_malformed_records() {
        assert!(decode(&[0u8; 10]).is_err());
        let mut r = record(kind::FILE, file_op::OPEN, b"/x", b"");
        r.truncate(EVENT_SIZE + 1);
        assert!(decode(&r).is_err());
        assert!(decode(&record(99, 0, b"", b"")).is_err());
        assert!(decode(&record(kind::FILE, 999, b"", b"")).is_err());
    }
}
