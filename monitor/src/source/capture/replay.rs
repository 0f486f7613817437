//! A capture read back as a source, streamed record by record: the events as the kernel
//! sent them, each with what the capturing host added to it, and the host's context (its
//! process table entries, user names, watch plan, in-band records and clock ticks) in the
//! order it changed.
//!
//! The records that belong to an event (the process entries learned while handling it, its
//! ENRICH record) are written after it; they are handed out before it.

use super::{container_from_json, decode_process, rec, Reader};
use crate::error::Error;
use crate::source::input::Probe;
use crate::source::{Arrival, Input, Recorded, Source};
use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;

/// What the capture's HEADER says of the run that wrote it.
#[derive(Clone, Debug, Default)]
pub struct Header {
    /// Realtime minus boottime on the capturing host, in ns.
    pub clock_offset_ns: i128,
    pub host: String,
    /// The capturing host as ECS describes it (`host_info`; captures made before it was
    /// recorded: the name only).
    pub host_info: crate::enrich::HostInfo,
    pub monitor_pid: u32,
    pub monitor_ppid: u32,
    pub rules_hash: Option<String>,
    /// The rules the live run put in front of its own (self-defence watches).
    pub prelude: Option<String>,
}

/// An event read, with the records after it that belong to it.
struct Pending {
    raw: Vec<u8>,
    processes: Vec<Input>,
    enrich: Option<serde_json::Value>,
}

pub struct CaptureSource {
    reader: Reader,
    header: Header,
    ready: VecDeque<Input>,
    pending: Option<Pending>,
    ended: bool,
    /// Records that could not be decoded (skipped).
    undecodable: u64,
    /// Bytes of the file read, and its size (0: a stream).
    consumed: Rc<Cell<u64>>,
    size: u64,
}

impl CaptureSource {
    /// Open the capture `probe` found (see `source::input`) and read its header.
    pub fn open(probe: &mut Probe) -> crate::Result<CaptureSource> {
        let name = probe.named.name();
        let size = probe.size.unwrap_or(0);
        let opened = probe.open()?;
        let mut reader = Reader::new(opened.reader, size as usize).map_err(|e| {
            Error::Input(format!(
                "{name}: {e}: expected a capture written by `monitor run --capture`"
            ))
        })?;
        let header = match reader.next_record().map_err(|e| Error::Input(format!("{name}: {e}")))? {
            Some((rec::HEADER, body)) => serde_json::from_slice::<serde_json::Value>(body)
                .map_err(|e| {
                    Error::Input(format!("{name}: the capture header is not JSON: {e}"))
                })?,
            Some(_) => {
                return Err(Error::Input(format!(
                    "{name}: the capture does not start with a header"
                )))
            }
            None => return Err(Error::Input(format!("{name}: the capture is empty (no header)"))),
        };
        if header["version"] != 1 {
            return Err(Error::Input(format!(
                "{name}: capture format version {} is not supported (this monitor reads 1)",
                header["version"]
            )));
        }
        let clock_offset_ns =
            header["clock_offset_ns"].as_str().and_then(|s| s.parse().ok()).ok_or_else(|| {
                Error::Input(format!("{name}: the capture header has no clock_offset_ns"))
            })?;
        let header = Header {
            clock_offset_ns,
            host: header["host"].as_str().unwrap_or_default().to_string(),
            host_info: serde_json::from_value(header["host_info"].clone()).unwrap_or_else(|_| {
                crate::enrich::HostInfo::named(header["host"].as_str().unwrap_or_default())
            }),
            monitor_pid: header["monitor_pid"].as_u64().unwrap_or(0) as u32,
            monitor_ppid: header["monitor_ppid"].as_u64().unwrap_or(0) as u32,
            rules_hash: header["rules_hash"].as_str().map(str::to_string),
            prelude: header["prelude"].as_str().map(str::to_string),
        };
        Ok(CaptureSource {
            reader,
            header,
            ready: VecDeque::new(),
            pending: None,
            ended: false,
            undecodable: 0,
            consumed: opened.consumed,
            size,
        })
    }

    /// Records skipped because they could not be decoded.
    pub fn undecodable(&self) -> u64 {
        self.undecodable
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Where the capture was cut off inside a record (a crash, a full disk), if it was.
    pub fn truncated_at(&self) -> Option<usize> {
        self.reader.truncated_at
    }

    /// The pending event, after the records that belong to it.
    fn release(&mut self) {
        let Some(p) = self.pending.take() else { return };
        self.ready.extend(p.processes);
        self.ready.push_back(match super::super::ebpf::decode::decode(&p.raw) {
            Ok(ev) => {
                let recorded = p.enrich.map(|e| Recorded {
                    path: e
                        .get("path")
                        .map(|v| serde_json::from_value(v.clone()).unwrap_or_default()),
                    path2: e
                        .get("path2")
                        .map(|v| serde_json::from_value(v.clone()).unwrap_or_default()),
                    container: e.get("container").and_then(container_from_json),
                });
                Input::Event(Box::new(Arrival {
                    recorded: Some(recorded.unwrap_or_default()),
                    ..Arrival::event(ev)
                }))
            }
            Err(e) => {
                self.undecodable += 1;
                Input::Undecodable(e.to_string())
            }
        });
    }

    /// Read one record; false at the end.
    fn read(&mut self) -> bool {
        let offset = self.reader.offset();
        let record = match self.reader.next_record() {
            Ok(r) => r.map(|(k, b)| (k, b.to_vec())),
            Err(e) => {
                // Everything before it was read: replayed, and the break reported.
                self.undecodable += 1;
                tracing::warn!("{e}: the rest of the capture is skipped");
                None
            }
        };
        let Some((kind, body)) = record else {
            self.release();
            return false;
        };
        let body = body.as_slice();
        match kind {
            rec::EVENT => {
                self.release();
                self.pending =
                    Some(Pending { raw: body.to_vec(), processes: Vec::new(), enrich: None });
            }
            rec::PROCESS => {
                let input = match decode_process(body) {
                    Ok((pid, info)) => Input::Process(pid, info),
                    Err(e) => {
                        self.undecodable += 1;
                        Input::Undecodable(format!("process record at byte {offset}: {e}"))
                    }
                };
                match self.pending.as_mut() {
                    Some(p) => p.processes.push(input),
                    None => self.ready.push_back(input),
                }
            }
            rec::ENRICH => {
                if let Some(p) = self.pending.as_mut() {
                    p.enrich = serde_json::from_slice(body).ok();
                }
            }
            other => {
                self.release();
                let input = match other {
                    rec::USERS => Input::Users(serde_json::from_slice(body).unwrap_or_default()),
                    rec::GROUPS => Input::Groups(serde_json::from_slice(body).unwrap_or_default()),
                    rec::PLAN => match serde_json::from_slice(body) {
                        Ok(plan) => Input::Plan(plan),
                        Err(e) => {
                            self.undecodable += 1;
                            Input::Undecodable(format!("plan record at byte {offset}: {e}"))
                        }
                    },
                    rec::OUTPUT => Input::Line(body.to_vec()),
                    rec::TICK if body.len() == 8 => {
                        Input::Tick(u64::from_le_bytes(body.try_into().expect("8 bytes")))
                    }
                    _ => {
                        tracing::warn!(
                            kind = other,
                            offset,
                            "unknown capture record type; skipped"
                        );
                        return true;
                    }
                };
                self.ready.push_back(input);
            }
        }
        true
    }
}

impl Source for CaptureSource {
    fn next(&mut self) -> crate::Result<Option<Input>> {
        loop {
            if let Some(input) = self.ready.pop_front() {
                return Ok(Some(input));
            }
            if self.ended {
                return Ok(None);
            }
            self.ended = !self.read();
        }
    }

    fn progress(&self) -> (u64, u64) {
        (self.consumed.get(), self.size)
    }
}
