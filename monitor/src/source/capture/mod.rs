//! Capture files: what the kernel sent, plus the host context needed to reproduce the
//! enrichment elsewhere, so that `monitor replay` gives the alerts `monitor run` gave. The
//! format lives here; [`recorder`] writes a capture during a live run, [`replay`] reads one
//! back as a [`super::Source`].
//!
//! Format (version 1, documented in docs/capture-format.md): the 8-byte magic
//! `MONCAP\0\x01`, then records `[u32 LE length][u8 type][length-1 bytes]`. Types:
//! HEADER (JSON, first), EVENT (a ring-buffer record as the kernel wrote it), PROCESS (one
//! process-table entry learned from /proc), ENRICH (JSON: host-dependent results for the
//! preceding EVENT), USERS (JSON uid → name), OUTPUT (an in-band record line), PLAN (JSON
//! watch targets), TICK (u64 LE: the live loop's clock, CLOCK_BOOTTIME ns, when it closed
//! aggregation windows), GROUPS (JSON gid → name). A file cut off mid-record is read up to
//! the last whole record.

pub mod recorder;
pub mod replay;

use crate::enrich::container::{ContainerInfo, ContainerMeta};
use crate::enrich::process::ProcInfo;
use crate::error::{Malformed, OrMalformed};
use std::io::{Read, Write};
use std::path::Path;

type Result<T, E = Malformed> = std::result::Result<T, E>;

pub const MAGIC: &[u8; 8] = b"MONCAP\x00\x01";
/// Records longer than this are malformed (the largest real one is a few KiB).
pub const RECORD_MAX: usize = 1 << 20;

pub mod rec {
    pub const HEADER: u8 = 1;
    pub const EVENT: u8 = 2;
    pub const PROCESS: u8 = 3;
    pub const ENRICH: u8 = 4;
    pub const USERS: u8 = 5;
    pub const OUTPUT: u8 = 6;
    pub const PLAN: u8 = 7;
    pub const TICK: u8 = 8;
    pub const GROUPS: u8 = 9;
}

pub struct Writer {
    out: std::io::BufWriter<std::fs::File>,
    pub bytes: u64,
    pub events: u64,
}

impl Writer {
    pub fn create(path: &Path) -> std::io::Result<Writer> {
        let file = std::fs::File::create(path)?;
        let mut w =
            Writer { out: std::io::BufWriter::with_capacity(1 << 20, file), bytes: 0, events: 0 };
        w.out.write_all(MAGIC)?;
        w.bytes = MAGIC.len() as u64;
        Ok(w)
    }

    pub fn record(&mut self, kind: u8, payload: &[u8]) -> std::io::Result<()> {
        let len = payload.len() as u32 + 1;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&[kind])?;
        self.out.write_all(payload)?;
        self.bytes += 4 + len as u64;
        if kind == rec::EVENT {
            self.events += 1;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// A capture read record by record, streamed from its file (or from bytes in memory).
pub struct Reader {
    input: Box<dyn Read>,
    /// The body of the record last returned (reused; at most RECORD_MAX bytes).
    body: Vec<u8>,
    /// Offset of the next record.
    pos: usize,
    /// Size of the whole input.
    total: usize,
    /// Set when the data ends inside a record: the offset of that record.
    pub truncated_at: Option<usize>,
}

/// Fill `dst` as far as the input goes; the count read (short only at the end).
fn read_up_to(input: &mut dyn Read, dst: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < dst.len() {
        match input.read(&mut dst[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Reader {
    /// Streams the file: memory stays at one record however large the capture is.
    pub fn open(path: &Path) -> Result<Reader> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot read capture file {}", path.display()))?;
        let total = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
        Reader::new(Box::new(std::io::BufReader::with_capacity(1 << 16, file)), total)
            .with_context(|| path.display().to_string())
    }

    pub fn from_bytes(data: Vec<u8>) -> Result<Reader> {
        let total = data.len();
        Reader::new(Box::new(std::io::Cursor::new(data)), total)
    }

    /// Streams `input` (`total`: its size, when known, else 0).
    pub fn new(mut input: Box<dyn Read>, total: usize) -> Result<Reader> {
        let mut magic = [0u8; MAGIC.len()];
        if read_up_to(&mut *input, &mut magic).context("reading the capture header")? < MAGIC.len()
            || &magic != MAGIC
        {
            crate::malformed!("not a monitor capture (bad magic)");
        }
        Ok(Reader { input, body: Vec::new(), pos: MAGIC.len(), total, truncated_at: None })
    }

    /// The next record, `Ok(None)` at the end (or at a cut-off record: see `truncated_at`).
    pub fn next_record(&mut self) -> Result<Option<(u8, &[u8])>> {
        let mut head = [0u8; 5];
        let n = read_up_to(&mut *self.input, &mut head)
            .with_context(|| format!("reading the record at byte {}", self.pos))?;
        if n == 0 {
            return Ok(None);
        }
        if n < head.len() {
            self.truncated_at = Some(self.pos);
            return Ok(None);
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if len == 0 || len > RECORD_MAX {
            crate::malformed!("malformed record at byte {}: length {len}", self.pos);
        }
        self.body.resize(len - 1, 0);
        let n = read_up_to(&mut *self.input, &mut self.body)
            .with_context(|| format!("reading the record at byte {}", self.pos))?;
        if n < len - 1 {
            self.truncated_at = Some(self.pos);
            return Ok(None);
        }
        self.pos += 4 + len;
        Ok(Some((head[4], &self.body)))
    }

    pub fn offset(&self) -> usize {
        self.pos
    }

    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

/// A container as an ENRICH record holds it.
pub fn container_json(c: &ContainerInfo) -> serde_json::Value {
    let m = c.meta.clone().unwrap_or_default();
    serde_json::json!({"id": c.id, "runtime": c.runtime, "meta": c.meta.is_some(), "name": m.name, "image": m.image, "privileged": m.privileged})
}

/// A container from an ENRICH record.
pub fn container_from_json(v: &serde_json::Value) -> Option<ContainerInfo> {
    let runtime = match v.get("runtime").and_then(|r| r.as_str()) {
        Some("docker") => Some("docker"),
        Some("podman") => Some("podman"),
        Some("cri-o") => Some("cri-o"),
        Some("containerd") => Some("containerd"),
        _ => None,
    };
    let meta = (v.get("meta").and_then(|m| m.as_bool()) == Some(true)).then(|| ContainerMeta {
        name: v.get("name").and_then(|x| x.as_str()).map(str::to_string),
        image: v.get("image").and_then(|x| x.as_str()).map(str::to_string),
        privileged: v.get("privileged").and_then(|x| x.as_bool()),
    });
    Some(ContainerInfo { id: v.get("id")?.as_str()?.to_string(), runtime, meta })
}

/// PROCESS payload: pid, ppid, exe (u32::MAX length = none), comm, argc, args; u32 LE lengths;
/// then, when known, the start time (u64 LE clock ticks since boot: captures before it end
/// after the args, and readers before it stop there).
pub fn encode_process(pid: u32, p: &ProcInfo) -> Vec<u8> {
    let mut out = Vec::new();
    let bytes = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    };
    out.extend_from_slice(&pid.to_le_bytes());
    out.extend_from_slice(&p.ppid.to_le_bytes());
    match &p.exe {
        Some(e) => bytes(&mut out, e),
        None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
    }
    bytes(&mut out, &p.comm);
    out.extend_from_slice(&(p.args.len() as u32).to_le_bytes());
    for a in &p.args {
        bytes(&mut out, a);
    }
    if let Some(start) = p.start {
        out.extend_from_slice(&start.to_le_bytes());
    }
    out
}

/// Bounds-checked reads from a record payload.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn u32(&mut self) -> Result<u32> {
        let v = self.b.get(self.pos..self.pos + 4).context("process record too short")?;
        self.pos += 4;
        Ok(u32::from_le_bytes([v[0], v[1], v[2], v[3]]))
    }

    fn bytes(&mut self, n: usize) -> Result<Vec<u8>> {
        let end = self.pos.checked_add(n).context("length overflow")?;
        let v = self.b.get(self.pos..end).context("process record too short")?;
        self.pos = end;
        Ok(v.to_vec())
    }

    fn field(&mut self) -> Result<Vec<u8>> {
        let n = self.u32()? as usize;
        self.bytes(n)
    }
}

pub fn decode_process(b: &[u8]) -> Result<(u32, ProcInfo)> {
    let mut c = Cursor { b, pos: 0 };
    let pid = c.u32()?;
    let ppid = c.u32()?;
    let exe_len = c.u32()?;
    let exe = if exe_len == u32::MAX { None } else { Some(c.bytes(exe_len as usize)?) };
    let comm = c.field()?;
    let argc = c.u32()? as usize;
    if argc > b.len() {
        crate::malformed!("process record claims {argc} arguments");
    }
    let mut args = Vec::with_capacity(argc);
    for _ in 0..argc {
        args.push(c.field()?);
    }
    let start = match b.get(c.pos..) {
        Some(rest) if rest.len() >= 8 => Some(u64::from_le_bytes(rest[..8].try_into().unwrap())),
        _ => None,
    };
    Ok((pid, ProcInfo { ppid, exe, args, comm, start }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_cut_file_reads_up_to_the_last_whole_record() {
        let dir = std::env::temp_dir().join(format!("monitor-capture-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.cap");
        let mut w = Writer::create(&path).unwrap();
        w.record(rec::HEADER, b"{}").unwrap();
        let p = ProcInfo {
            ppid: 1,
            exe: Some(b"/bin/\xffsh".to_vec()),
            args: vec![b"sh".to_vec(), b"-c".to_vec()],
            comm: b"sh".to_vec(),
            start: Some(1234),
        };
        w.record(rec::PROCESS, &encode_process(42, &p)).unwrap();
        // A record written before start times were recorded.
        let old = ProcInfo { start: None, ..p.clone() };
        assert_eq!(decode_process(&encode_process(42, &old)).unwrap().1.start, None);
        w.record(rec::EVENT, &[7u8; 100]).unwrap();
        w.flush().unwrap();
        drop(w);
        let mut r = Reader::open(&path).unwrap();
        assert_eq!(r.next_record().unwrap().unwrap(), (rec::HEADER, &b"{}"[..]));
        let (k, b) = r.next_record().unwrap().unwrap();
        assert_eq!(k, rec::PROCESS);
        let (pid, back) = decode_process(b).unwrap();
        assert_eq!(
            (pid, back.ppid, back.exe.clone(), back.args.clone(), back.comm.clone(), back.start),
            (42, 1, p.exe.clone(), p.args.clone(), p.comm.clone(), Some(1234))
        );
        assert_eq!(r.next_record().unwrap().unwrap().0, rec::EVENT);
        assert!(r.next_record().unwrap().is_none() && r.truncated_at.is_none());
        // Cut inside the last record.
        let data = std::fs::read(&path).unwrap();
        let mut r = Reader::from_bytes(data[..data.len() - 10].to_vec()).unwrap();
        let mut n = 0;
        while r.next_record().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 2);
        assert!(r.truncated_at.is_some());
        // Garbage.
        assert!(Reader::from_bytes(b"nope".to_vec()).is_err());
        let mut r =
            Reader::from_bytes([&MAGIC[..], &[0xff, 0xff, 0xff, 0x7f, 1]].concat()).unwrap();
        assert!(r.next_record().is_err(), "a huge length is an error, not an allocation");
        assert!(decode_process(&[1, 2, 3]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
