//! `monitor`: runtime security monitor for Docker hosts, as a library for the binary, the
//! fuzz targets and benchmarks.
//!
//! Pipeline: [`source`] (eBPF records) → [`enrich`] (paths, processes, containers, HTTP
//! requests) → [`rules`] (auditctl rules and built-in detections) → [`sink`] (JSON lines on
//! stdout). [`check`] is the separate posture report.

pub mod check;
pub mod detect;
pub mod enrich;
pub mod error;
pub mod event;
pub mod hash;
pub mod pipeline;
pub mod plan;
pub mod rules;
pub mod sink;
pub mod source;
pub mod vocab;

pub use error::{Error, Result};
