//! The library's error: what failed, in words a user can act on, and the exit code the
//! command ends with (the table is in README.md, "Exit codes"). Each area has its own typed
//! error ([`RuleErrors`], [`crate::source::ebpf::LoadError`],
//! [`crate::source::capture::CaptureError`], ...); this type gathers them for `main`, which
//! maps them to exit codes without looking inside.

use crate::rules::RuleErrors;

/// Exit codes of every subcommand: one table (README.md, "Exit codes"; `monitor --help`;
/// monitor(8), EXIT STATUS), made from [`exit::TABLE`].
pub mod exit {
    /// Success (and for `check`: nothing failed, nothing unknown).
    pub const OK: u8 = 0;
    /// A runtime error: an output, the kernel or the host failed while running.
    pub const RUNTIME: u8 = 1;
    /// The command line is wrong (clap uses 2 for its own usage errors too).
    pub const USAGE: u8 = 2;
    /// The rules could not be read or are invalid: nothing was loaded.
    pub const RULES: u8 = 3;
    /// The kernel lacks what the sensors need (BTF, tracefs, a kfunc).
    pub const KERNEL: u8 = 4;
    /// Not privileged enough (root, or the capabilities the command needs).
    pub const PRIVILEGE: u8 = 5;
    /// The settings cannot work (together).
    pub const CONFIG: u8 = 6;
    /// A replay's input cannot be read or is not what was expected: nothing replayed.
    pub const INPUT: u8 = 7;
    /// A replay's input was read, but part of it was not (lines or records skipped).
    pub const INPUT_PARTIAL: u8 = 8;
    /// `check`: nothing failed, but some checks could not tell (unknown).
    pub const CHECK_UNKNOWN: u8 = 9;
    /// `check`: 10 + the worst failed severity (10 info … 14 critical).
    pub const CHECK_FAILED: u8 = 10;

    /// Every code (the first of a range), what it means, and the subcommands that end
    /// with it.
    pub const TABLE: &[(u8, &str, &str, &str)] = &[
        (OK, "0", "success (run: a clean stop on SIGINT, SIGTERM or when every output is closed; check: nothing failed and nothing unknown)", "all"),
        (RUNTIME, "1", "runtime error: an output, the kernel or the host failed (an output that cannot be opened, a program that would not attach)", "all"),
        (USAGE, "2", "usage error: an unknown option or value, an --only/--skip id no check has, replay inputs that cannot go together", "all"),
        (RULES, "3", "rules error: a rules file is missing, unreadable or invalid (each problem printed as file:line:col); nothing loaded", "run, replay, rules"),
        (KERNEL, "4", "kernel unsupported: no BTF, no tracefs (and it cannot be mounted), no kfunc bpf_rdonly_cast", "run"),
        (PRIVILEGE, "5", "not privileged: not root, or a capability the source needs is missing", "run"),
        (CONFIG, "6", "settings invalid: monitor.toml unreadable, an unknown key or a bad value (file:line:col), or settings that cannot work together (--capture with --source audit); nothing started", "run, config"),
        (INPUT, "7", "replay input error: missing, unreadable, empty, or not a capture nor audit records (the message names the input and what it looks like); nothing replayed", "replay"),
        (INPUT_PARTIAL, "8", "replay input partly unreadable: lines that are not audit records, a capture or gzip file cut off, records that cannot be decoded (each input reported once, with file:line); everything readable was replayed", "replay"),
        (CHECK_UNKNOWN, "9", "nothing failed, but some checks could not tell (unknown)", "check"),
        (CHECK_FAILED, "10-14", "something failed: 10 + the worst failed severity (10 info, 11 low, 12 medium, 13 high, 14 critical)", "check"),
    ];

    /// The table as help text; `only`: the codes a subcommand ends with (all: `None`).
    pub fn help(only: Option<&[u8]>) -> String {
        let mut out = String::from("Exit codes:\n");
        for (code, shown, meaning, _) in TABLE {
            if only.is_none_or(|o| o.contains(code)) {
                out.push_str(&format!("  {shown:<6} {meaning}\n"));
            }
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{} error(s) in rules; nothing loaded", .0.0.len())]
    Rules(#[from] RuleErrors),
    /// A rules path that is missing or unreadable.
    #[error("{0}")]
    RulesPath(String),
    /// The kernel cannot run the sensors.
    #[error("{0}")]
    KernelUnsupported(String),
    #[error("must run as root ({0})")]
    NotRoot(&'static str),
    /// The command line asks for something that does not exist (an unknown check id).
    #[error("{0}")]
    Usage(String),
    /// Loading or attaching the eBPF programs, or another kernel interface, failed.
    #[error("{0}")]
    Kernel(String),
    /// The configuration file is invalid (`file:line: message`).
    #[error("{0}")]
    Config(String),
    /// A replay's input is unreadable or is not what was expected.
    #[error("{0}")]
    Input(String),
    /// An output could not be opened at start (its directory is missing, nobody listens on
    /// its socket); afterwards outputs recover by themselves and count what they lose.
    #[error("opening an output: {0}")]
    OpenOutput(#[from] crate::sink::line::SinkError),
    /// Writing the alerts failed (the reader went away: `BrokenPipe`, a clean stop).
    #[error("writing the output: {0}")]
    Output(#[source] std::io::Error),
    /// Another I/O failure, with what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<crate::rules::LoadError> for Error {
    fn from(e: crate::rules::LoadError) -> Error {
        match e {
            crate::rules::LoadError::Invalid(errors) => Error::Rules(errors),
            crate::rules::LoadError::Path(why) => Error::RulesPath(why),
        }
    }
}

impl Error {
    /// The exit code a command failing with this error ends with.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Rules(_) | Error::RulesPath(_) => exit::RULES,
            Error::KernelUnsupported(_) => exit::KERNEL,
            Error::NotRoot(_) => exit::PRIVILEGE,
            Error::Usage(_) => exit::USAGE,
            Error::Config(_) => exit::CONFIG,
            Error::Input(_) => exit::INPUT,
            Error::Kernel(_) | Error::OpenOutput(_) | Error::Output(_) | Error::Io { .. } => {
                exit::RUNTIME
            }
        }
    }

    /// Whether this is the output's reader going away (`monitor run | head`): a clean stop.
    pub fn is_closed_output(&self) -> bool {
        matches!(self, Error::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `.context("what was being done")` for I/O results.
pub trait IoContext<T> {
    fn context(self, what: impl std::fmt::Display) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn context(self, what: impl std::fmt::Display) -> Result<T> {
        self.map_err(|source| Error::Io { context: what.to_string(), source })
    }
}

/// What a reader of outside data (kernel BTF, an ELF object, a record) found wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

/// `.context(...)` for readers of outside data: `None` or an error becomes [`Malformed`].
pub trait OrMalformed<T> {
    fn context(self, what: impl std::fmt::Display) -> Result<T, Malformed>;
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, Malformed>;
}

impl<T> OrMalformed<T> for Option<T> {
    fn context(self, what: impl std::fmt::Display) -> Result<T, Malformed> {
        self.ok_or_else(|| Malformed(what.to_string()))
    }
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, Malformed> {
        self.ok_or_else(|| Malformed(what()))
    }
}

impl<T, E: std::fmt::Display> OrMalformed<T> for std::result::Result<T, E> {
    fn context(self, what: impl std::fmt::Display) -> Result<T, Malformed> {
        self.map_err(|e| Malformed(format!("{what}: {e}")))
    }
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T, Malformed> {
        self.map_err(|e| Malformed(format!("{}: {e}", what())))
    }
}

/// Return a [`Malformed`] error made from a format string.
#[macro_export]
macro_rules! malformed {
    ($($arg:tt)*) => {
        return Err($crate::error::Malformed(format!($($arg)*)).into())
    };
}

/// Return a [`Malformed`] error unless the condition holds.
#[macro_export]
macro_rules! ensure_well_formed {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::malformed!($($arg)*);
        }
    };
}
