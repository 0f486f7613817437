//! Writing a capture during a live run (`monitor run --capture FILE`): every event as the
//! kernel sent it and what this host added to it, the process entries, user and group
//! names and watch plans in the order they changed, the in-band records and the clock
//! ticks that closed aggregation windows. A failing capture (a full disk) is reported once
//! and stops; the alerts go on.

use super::{container_json, encode_process, rec, Writer};
use crate::enrich::container::ContainerInfo;
use crate::enrich::process::ProcInfo;
use crate::plan::FilterPlan;
use std::path::Path;

pub struct Recorder {
    writer: Option<Writer>,
}

/// What this host added to one event: its paths as resolved here (when they differ from
/// what the kernel sent) and its container.
pub struct Added<'a> {
    pub raw_paths: (Option<Vec<u8>>, Option<Vec<u8>>),
    pub paths: (&'a Option<Vec<u8>>, &'a Option<Vec<u8>>),
    pub container: Option<&'a ContainerInfo>,
}

impl Recorder {
    /// Create the file and write its header (a JSON object, `version` 1).
    pub fn create(path: &Path, header: &serde_json::Value) -> crate::Result<Recorder> {
        let context = || format!("writing the capture {}", path.display());
        let mut writer = Writer::create(path)
            .map_err(|source| crate::Error::Io { context: context(), source })?;
        writer
            .record(rec::HEADER, header.to_string().as_bytes())
            .map_err(|source| crate::Error::Io { context: context(), source })?;
        Ok(Recorder { writer: Some(writer) })
    }

    fn write(&mut self, kind: u8, payload: &[u8]) {
        if let Some(w) = self.writer.as_mut() {
            if let Err(e) = w.record(kind, payload) {
                tracing::error!(error = %e, "writing the capture failed; capturing stops here (the file is readable up to this point)");
                self.writer = None;
            }
        }
    }

    pub fn plan(&mut self, plan: &FilterPlan) {
        self.write(rec::PLAN, serde_json::to_string(plan).unwrap_or_default().as_bytes());
    }

    pub fn process(&mut self, pid: u32, info: &ProcInfo) {
        self.write(rec::PROCESS, &encode_process(pid, info));
    }

    pub fn users<'a>(&mut self, names: impl IntoIterator<Item = (&'a u32, &'a String)>) {
        let map: std::collections::BTreeMap<&u32, &String> = names.into_iter().collect();
        self.write(rec::USERS, serde_json::to_string(&map).unwrap_or_default().as_bytes());
    }

    pub fn groups<'a>(&mut self, names: impl IntoIterator<Item = (&'a u32, &'a String)>) {
        let map: std::collections::BTreeMap<&u32, &String> = names.into_iter().collect();
        self.write(rec::GROUPS, serde_json::to_string(&map).unwrap_or_default().as_bytes());
    }

    /// One event: the record as the kernel wrote it, the process entries read from /proc
    /// while handling it, and what this host added.
    pub fn event(&mut self, raw: &[u8], learned: Vec<(u32, ProcInfo)>, added: Added) {
        self.write(rec::EVENT, raw);
        for (pid, info) in learned {
            self.process(pid, &info);
        }
        let mut enrich = serde_json::Map::new();
        if *added.paths.0 != added.raw_paths.0 {
            enrich.insert("path".into(), serde_json::json!(added.paths.0));
        }
        if *added.paths.1 != added.raw_paths.1 {
            enrich.insert("path2".into(), serde_json::json!(added.paths.1));
        }
        if let Some(c) = added.container {
            enrich.insert("container".into(), container_json(c));
        }
        if !enrich.is_empty() {
            self.write(rec::ENRICH, serde_json::Value::Object(enrich).to_string().as_bytes());
        }
    }

    /// An in-band record line as written to the output.
    pub fn line(&mut self, line: &[u8]) {
        self.write(rec::OUTPUT, line);
    }

    /// The live loop's clock closed aggregation windows at `boot_ns`.
    pub fn tick(&mut self, boot_ns: u64) {
        self.write(rec::TICK, &boot_ns.to_le_bytes());
    }

    /// Flush the file: (events, bytes) written, or `None` when capturing had failed.
    pub fn finish(&mut self) -> std::io::Result<Option<(u64, u64)>> {
        match self.writer.as_mut() {
            Some(w) => {
                w.flush()?;
                Ok(Some((w.events, w.bytes)))
            }
            None => Ok(None),
        }
    }
}
