//! Sinks: where alerts go. `json` writes one ECS-aligned JSON object per line; `state`
//! writes `monitor check` findings (table or JSON lines); `progress` reports long replays.

pub mod json;
pub mod progress;
pub mod state;
