//! The `--output` values and sizes as written on the command line or in monitor.toml, and
//! opening the sink each one names.

use super::file::RotatingFile;
use super::line::{LineSink, SinkError, Stdout};
use super::syslog::{Facility, Syslog, SyslogConfig, DEV_LOG};
use std::path::PathBuf;

/// One `--output` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputTarget {
    /// `stdout` (the default).
    Stdout,
    /// `file:PATH`: appended, rotated by size.
    File(PathBuf),
    /// `syslog` (the local `/dev/log`) or `syslog:unix:PATH`.
    Syslog(PathBuf),
}

/// A malformed `--output` or size value.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("unknown output {0:?}: expected stdout, file:PATH, syslog or syslog:unix:PATH")]
    Unknown(String),
    #[error("output {0:?} needs a path after the colon")]
    EmptyPath(String),
    #[error("output {0:?}: only local syslog sockets (syslog, syslog:unix:PATH) are supported")]
    UnsupportedSyslog(String),
    #[error("size {0:?}: expected a number with an optional K, M or G suffix (powers of 1024), e.g. 100M")]
    Size(String),
}

impl std::str::FromStr for OutputTarget {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<OutputTarget, TargetError> {
        let path = |p: &str| {
            if p.is_empty() {
                Err(TargetError::EmptyPath(s.into()))
            } else {
                Ok(PathBuf::from(p))
            }
        };
        if s == "stdout" {
            Ok(OutputTarget::Stdout)
        } else if let Some(p) = s.strip_prefix("file:") {
            Ok(OutputTarget::File(path(p)?))
        } else if s == "syslog" {
            Ok(OutputTarget::Syslog(DEV_LOG.into()))
        } else if let Some(p) = s.strip_prefix("syslog:unix:") {
            Ok(OutputTarget::Syslog(path(p)?))
        } else if s.starts_with("syslog:") {
            Err(TargetError::UnsupportedSyslog(s.into()))
        } else {
            Err(TargetError::Unknown(s.into()))
        }
    }
}

impl std::fmt::Display for OutputTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputTarget::Stdout => f.write_str("stdout"),
            OutputTarget::File(p) => write!(f, "file:{}", p.display()),
            OutputTarget::Syslog(p) if p.as_os_str() == DEV_LOG => f.write_str("syslog"),
            OutputTarget::Syslog(p) => write!(f, "syslog:unix:{}", p.display()),
        }
    }
}

/// Settings shared by the targets (`--output-max-size`, `--output-max-files`, the facility).
#[derive(Clone, Copy, Debug)]
pub struct OutputOptions {
    /// File rotation size in bytes (0: never rotate).
    pub max_size: u64,
    /// Rotated files kept beside the live one.
    pub max_files: usize,
    pub facility: Facility,
}

impl Default for OutputOptions {
    fn default() -> Self {
        OutputOptions { max_size: 100 << 20, max_files: 10, facility: Facility::Authpriv }
    }
}

impl OutputTarget {
    /// Open the sink: the file is created, the socket connected (an error here is worth
    /// refusing to start for; afterwards the sinks recover by themselves).
    pub fn open(&self, opts: &OutputOptions) -> Result<Box<dyn LineSink>, SinkError> {
        Ok(match self {
            OutputTarget::Stdout => Box::new(Stdout::new()),
            OutputTarget::File(p) => {
                Box::new(RotatingFile::open(p, opts.max_size, opts.max_files)?)
            }
            OutputTarget::Syslog(p) => Box::new(Syslog::open(SyslogConfig {
                facility: opts.facility,
                ..SyslogConfig::new(p)
            })?),
        })
    }
}

/// `100M`, `1G`, `512K`, `4096` (bytes); suffixes are powers of 1024, `B`/`iB` allowed after.
pub fn parse_size(s: &str) -> Result<u64, TargetError> {
    let err = || TargetError::Size(s.into());
    let t = s.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (digits, shift) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let n: u64 = digits.trim().parse().map_err(|_| err())?;
    n.checked_mul(1 << shift).ok_or_else(err)
}

/// A size as [`parse_size`] reads it, in the largest unit that divides it: `100M`, `1536K`.
pub fn format_size(n: u64) -> String {
    match n {
        0 => "0".into(),
        n if n % (1 << 30) == 0 => format!("{}G", n >> 30),
        n if n % (1 << 20) == 0 => format!("{}M", n >> 20),
        n if n % (1 << 10) == 0 => format!("{}K", n >> 10),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_print_back() {
        for (s, t) in [
            ("stdout", OutputTarget::Stdout),
            (
                "file:/var/log/monitor/alerts.json",
                OutputTarget::File("/var/log/monitor/alerts.json".into()),
            ),
            ("syslog", OutputTarget::Syslog("/dev/log".into())),
            ("syslog:unix:/run/x.sock", OutputTarget::Syslog("/run/x.sock".into())),
        ] {
            assert_eq!(s.parse::<OutputTarget>().unwrap(), t);
        }
        assert_eq!(OutputTarget::File("a:b".into()).to_string(), "file:a:b");
        for s in ["stdout", "file:/a", "syslog", "syslog:unix:/run/x.sock"] {
            assert_eq!(s.parse::<OutputTarget>().unwrap().to_string(), s);
        }
        assert_eq!("file:".parse::<OutputTarget>(), Err(TargetError::EmptyPath("file:".into())));
        assert!(matches!(
            "syslog:tcp:h:514".parse::<OutputTarget>(),
            Err(TargetError::UnsupportedSyslog(_))
        ));
        assert!(matches!("stderr".parse::<OutputTarget>(), Err(TargetError::Unknown(_))));
    }

    #[test]
    fn sizes_are_powers_of_1024() {
        assert_eq!(parse_size("100M"), Ok(100 << 20));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("M").is_err());
        assert!(parse_size("1.5M").is_err());
        assert!(parse_size("99999999999G").is_err());
        for n in [0, 1, 1023, 1024, 1536 << 10, 100 << 20, 3 << 30, u64::MAX] {
            assert_eq!(parse_size(&format_size(n)), Ok(n), "{}", format_size(n));
        }
        assert_eq!(format_size(100 << 20), "100M");
    }
}
