//! The settings file, `/etc/monitor/monitor.toml` (or `--config PATH`): read, checked and
//! laid under `monitor run`'s flags before anything starts. It is input to the commands
//! (`cmd/`), never to the pipeline's stages, which get typed options from them.
//!
//! Every key mirrors a flag of `monitor run` ([`keys`] holds the pairs; a test walks clap's
//! definition so that a new flag cannot lack its key), and a flag given on the command line
//! wins over its key. An unknown key or a bad value is an error naming `file:line:col`
//! (exit 6), and nothing starts. A missing default file means the defaults; a missing file
//! named with `--config` is an error. Relative paths in the file are taken from the file's
//! directory, so the file means the same whatever directory the monitor starts in.

pub mod keys;
#[cfg(test)]
mod tests;

use crate::cli::{LogLevel, Source};
use monitor::sink::syslog::Facility;
use monitor::sink::target::{format_size, parse_size, OutputTarget};
use monitor::source::ebpf::ring::RingSize;
use monitor::Error;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

/// Where `monitor run` looks for its settings without `--config`.
pub const DEFAULT_PATH: &str = "/etc/monitor/monitor.toml";

/// The file's contents: each key `None` when the file does not set it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<PathBuf>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Text<Source>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_trail: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring_buffer_size: Option<Text<RingSize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<Text<LogLevel>>,
    #[serde(default, skip_serializing_if = "Aggregate::is_empty")]
    pub aggregate: Aggregate,
    #[serde(default, skip_serializing_if = "Output::is_empty")]
    pub output: Output,
}

/// `[aggregate]`: flood aggregation (`--aggregate-window`, `--aggregate-keys`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<NonZeroU64>,
}

impl Aggregate {
    fn is_empty(&self) -> bool {
        *self == Aggregate::default()
    }
}

/// `[output]`: where lines go (`--output`, `--output-max-size`, ...).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<Text<OutputTarget>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<Text<Size>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_files: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syslog_facility: Option<Text<Facility>>,
}

impl Output {
    fn is_empty(&self) -> bool {
        *self == Output::default()
    }
}

/// A value written as a string in the file (a target, a size, a level), checked while the
/// file is parsed so that an error carries the value's position.
#[derive(Clone, Debug, PartialEq)]
pub struct Text<T>(pub T);

/// How a [`Text`] value is read and written.
pub trait TextValue: Sized {
    fn parse(s: &str) -> Result<Self, String>;
    fn text(&self) -> String;
    /// A bare integer in the file, where the value allows one (a size in bytes).
    fn from_int(_n: i64) -> Option<Self> {
        None
    }
}

impl<T: TextValue> Serialize for Text<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.text())
    }
}

impl<'de, T: TextValue> Deserialize<'de> for Text<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<T: TextValue> de::Visitor<'_> for V<T> {
            type Value = Text<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<T>, E> {
                T::parse(s).map(Text).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Text<T>, E> {
                T::from_int(n)
                    .map(Text)
                    .ok_or_else(|| E::invalid_type(de::Unexpected::Signed(n), &self))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A clap value name (`ebpf`, `info`) as a file value.
fn value_enum<T: clap::ValueEnum>(s: &str) -> Result<T, String> {
    T::from_str(s, false).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| format!("\"{}\"", p.get_name())))
            .collect();
        format!("unknown value \"{s}\": expected one of {}", names.join(", "))
    })
}

fn value_name<T: clap::ValueEnum>(v: &T) -> String {
    v.to_possible_value().map(|p| p.get_name().to_string()).unwrap_or_default()
}

impl TextValue for Source {
    fn parse(s: &str) -> Result<Self, String> {
        value_enum(s)
    }
    fn text(&self) -> String {
        value_name(self)
    }
}

impl TextValue for LogLevel {
    fn parse(s: &str) -> Result<Self, String> {
        value_enum(s)
    }
    fn text(&self) -> String {
        value_name(self)
    }
}

impl TextValue for RingSize {
    fn parse(s: &str) -> Result<Self, String> {
        s.parse()
    }
    fn text(&self) -> String {
        self.to_string()
    }
    fn from_int(n: i64) -> Option<Self> {
        u64::try_from(n).ok().and_then(|n| RingSize::new(n).ok())
    }
}

impl TextValue for OutputTarget {
    fn parse(s: &str) -> Result<Self, String> {
        s.parse().map_err(|e: monitor::sink::target::TargetError| e.to_string())
    }
    fn text(&self) -> String {
        self.to_string()
    }
}

impl TextValue for Facility {
    fn parse(s: &str) -> Result<Self, String> {
        s.parse()
    }
    fn text(&self) -> String {
        self.to_string()
    }
}

/// A size in bytes: `"100M"` or a bare number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl TextValue for Size {
    fn parse(s: &str) -> Result<Self, String> {
        parse_size(s).map(Size).map_err(|e| e.to_string())
    }
    fn text(&self) -> String {
        format_size(self.0)
    }
    fn from_int(n: i64) -> Option<Self> {
        u64::try_from(n).ok().map(Size)
    }
}

/// The settings file `monitor run` reads: `--config PATH`, or the default when it exists.
pub struct Loaded {
    /// The file read; `None` when the default file does not exist.
    pub path: Option<PathBuf>,
    pub settings: Settings,
    /// Keys of the file that flags on the command line override.
    pub overridden: Vec<&'static str>,
}

/// Read and check the file: `explicit` (from `--config`) must exist; the default may not.
pub fn load(explicit: Option<&Path>) -> Result<Loaded, Error> {
    let path = explicit.unwrap_or(Path::new(DEFAULT_PATH));
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            return Ok(Loaded { path: None, settings: Settings::default(), overridden: Vec::new() })
        }
        Err(e) => return Err(Error::Config(format!("{}: cannot read: {e}", path.display()))),
    };
    let mut settings = parse(&text, path)?;
    let dir = std::path::absolute(path).ok().and_then(|p| p.parent().map(Path::to_path_buf));
    settings.resolve_paths(&dir.unwrap_or_default());
    Ok(Loaded { path: Some(path.to_path_buf()), settings, overridden: Vec::new() })
}

/// The settings `monitor run` uses: its file (`--config`, or the default) laid under the
/// flags `given` on the command line.
pub fn effective(
    args: crate::cli::RunArgs,
    given: &keys::Given,
) -> Result<(crate::cli::RunArgs, Loaded), Error> {
    let mut loaded = load(args.config.as_deref())?;
    let (args, overridden) = keys::apply(&loaded.settings, args, given);
    loaded.overridden = overridden;
    Ok((args, loaded))
}

/// Parse the text of `file` (named in errors as `file:line:col: message`).
pub fn parse(text: &str, file: &Path) -> Result<Settings, Error> {
    toml::from_str(text).map_err(|e| {
        let at = match e.span() {
            Some(span) => {
                let (line, col) = line_col(text, span.start);
                format!("{}:{line}:{col}", file.display())
            }
            None => file.display().to_string(),
        };
        Error::Config(format!("{at}: {}", e.message().trim_end()))
    })
}

/// 1-based line and column (in characters) of byte `at` of `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

impl Settings {
    /// Relative paths taken from `dir` (the file's directory).
    fn resolve_paths(&mut self, dir: &Path) {
        let abs = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        self.rules.iter_mut().flatten().for_each(abs);
        self.capture.iter_mut().for_each(abs);
        for Text(t) in self.output.targets.iter_mut().flatten() {
            match t {
                OutputTarget::File(p) | OutputTarget::Syslog(p) => abs(p),
                OutputTarget::Stdout => {}
            }
        }
    }

    /// The file as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("settings are plain TOML values")
    }
}
