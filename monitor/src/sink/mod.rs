//! Sinks: where alerts go. `json` writes one ECS-aligned JSON object per line; `state`
//! writes `monitor check` findings (table or JSON lines); `progress` reports long replays;
//! `writer` is the byte-level JSON writer alerts are made with; `output` renders alerts and
//! writes the lines, inline or on a render thread.

pub mod json;
pub mod output;
pub mod progress;
pub mod state;
pub mod writer;
