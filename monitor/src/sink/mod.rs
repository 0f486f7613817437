//! Sinks: where alerts go. `json` writes one ECS-aligned JSON object per line; `state`
//! writes `monitor check` findings (table or JSON lines).

pub mod json;
pub mod state;
