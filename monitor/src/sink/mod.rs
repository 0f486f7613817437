//! Sinks: where alerts go. `json` writes one ECS-aligned JSON object per line.

pub mod json;
