//! Sinks: where alerts go. `json` writes one ECS-aligned JSON object per line; `state`
//! writes `monitor check` findings (table or JSON lines); `progress` reports long replays;
//! `writer` is the byte-level JSON writer alerts are made with; `output` renders alerts and
//! writes the lines, inline or on a render thread. `line` is the destination of finished
//! lines (`--output`): the [`line::LineSink`] trait, stdout and the fan-out to several;
//! `file` and `syslog` are the other destinations, `target` parses and opens them.

pub mod file;
pub mod json;
pub mod line;
pub mod output;
pub mod progress;
pub mod state;
pub mod syslog;
pub mod target;
pub mod writer;
