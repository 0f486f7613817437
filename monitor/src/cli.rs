//! The command line: every subcommand and flag, with the help text `--help`, the manual
//! pages and the shell completions are made from.

use clap::{Parser, Subcommand};
use monitor::source::ebpf::ring::RingSize;
use std::path::PathBuf;

use monitor::error::exit::{self, help as exit_codes};

#[derive(Parser)]
#[command(
    name = "monitor",
    version,
    about = "Runtime security monitor for container hosts: eBPF sensors, auditctl rules, JSON alerts on stdout",
    after_help = format!("Alerts are written to stdout, one JSON object per line; logs go to stderr (RUST_LOG=debug for more).\n\n{}", exit_codes(None))
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Load the eBPF sensors and write one JSON alert per matching event (needs root).
    ///
    /// Settings come from /etc/monitor/monitor.toml when it exists (another file with
    /// --config); a flag given here wins over the file's key.
    #[command(after_help = exit_codes(Some(&[exit::OK, exit::RUNTIME, exit::USAGE, exit::RULES, exit::KERNEL, exit::PRIVILEGE, exit::CONFIG])))]
    Run(RunArgs),
    /// Replay what a host recorded through rules again: a capture (`monitor run --capture`)
    /// or auditd's logs.
    ///
    /// Inputs are files (gzip-compressed or not), directories (their audit.log* files:
    /// auditd's log and its rotations, read in time order whatever their names) and `-`
    /// for standard input (a pipe, a FIFO). What each input is, is recognised from its
    /// content; --format says it instead.
    ///
    /// Everything comes from the recording, nothing from this host: host.name from the
    /// records' node= (or the capture's header), user and group names from auditd's
    /// enriched format (or the capture's tables), the audit key as monitor.audit.key. This
    /// host is observer.hostname. With the capturing run's rules, a capture gives the very
    /// lines the live run printed.
    ///
    /// Progress goes to stderr when it is a terminal; a summary line (lines, records,
    /// events, alerts, what was skipped and why) goes to stderr at the end.
    #[command(after_help = exit_codes(Some(&[exit::OK, exit::RUNTIME, exit::USAGE, exit::RULES, exit::INPUT, exit::INPUT_PARTIAL])))]
    Replay {
        /// Capture files, audit logs (plain or .gz), directories of audit logs, `-` (stdin).
        #[arg(required = true, value_name = "INPUT")]
        inputs: Vec<PathBuf>,
        /// Rules file or directory (repeatable); without it the built-in pack.
        #[arg(long = "rules", short = 'r', value_name = "PATH")]
        rules: Vec<PathBuf>,
        /// What the inputs are (default: recognised from their content).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// The host audit records without node= come from (default: unknown; this host's
        /// name is never assumed).
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
        #[command(flatten)]
        select: SelectArgs,
        /// json: one JSON object per alert (for SIEMs, jq); text: one readable line per
        /// alert, coloured on a terminal (NO_COLOR=1 turns colour off).
        #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
        output_format: OutputFormat,
        #[command(flatten)]
        presentation: PresentationArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Report this host's hardening posture right now, read-only: the hardening guides'
    /// items and the CIS Docker Benchmark v1.6.0 (sections 1-5 and 7).
    ///
    /// Docker is read from its files (daemon.json, dockerd's command line in /proc, the
    /// containers' config.v2.json and hostconfig.json, the image store), never through its
    /// API. Container recommendations give one finding per container in Docker's state
    /// (running, created or stopped), image recommendations one per image.
    ///
    /// Each finding is pass, fail (with the evidence and the fix), warn (a manual review is
    /// needed, and what to review), not-applicable (and why) or unknown (what could not be
    /// read; never a silent pass).
    ///
    /// The exit code says the worst: see below.
    #[command(after_help = exit_codes(Some(&[exit::OK, exit::RUNTIME, exit::USAGE, exit::CHECK_UNKNOWN, exit::CHECK_FAILED])))]
    Check {
        /// One ECS JSON object per finding (the same as --format json).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Report format: table (for people), json (ECS lines for a SIEM), sarif (SARIF
        /// 2.1.0 for code-scanning dashboards), junit (JUnit XML for CI).
        #[arg(long, value_enum, value_name = "FORMAT")]
        format: Option<ReportFormat>,
        /// Which checks: the CIS Docker Benchmark, the hardening guides, or both.
        #[arg(long, value_enum, default_value_t = ProfileArg::All)]
        profile: ProfileArg,
        /// CIS profile level: 1 keeps the Level 1 recommendations only, 2 all of them (the
        /// hardening guides' items have no level and are kept).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
        level: Option<u8>,
        /// Run only these checks: ids (DOCKER-ICC), CIS ids (5.4 or CIS-5.4), or prefixes
        /// ending in "-" or "." (DOCKER-, CIS-5., 1.1.).
        #[arg(long, value_name = "ID", num_args = 1..)]
        only: Vec<String>,
        /// Skip these checks (ids, CIS ids or prefixes).
        #[arg(long, value_name = "ID", num_args = 1..)]
        skip: Vec<String>,
        /// List the checks (id, CIS id, level, profiles, severity, title) and exit.
        #[arg(long)]
        list: bool,
    },
    /// Validate, list and export rules.
    #[command(after_help = exit_codes(Some(&[exit::OK, exit::RUNTIME, exit::USAGE, exit::RULES])))]
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Validate the settings file or print the settings `monitor run` would use.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Write the manual pages, shell completions (for packaging) or the schema documents
    /// (docs/alert-schema.md and docs/siem/) into DIR.
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: GenerateCommand,
    },
}

#[derive(Subcommand)]
pub enum GenerateCommand {
    /// monitor.8 and a page per subcommand (monitor-run.8, ...).
    Man { dir: PathBuf },
    /// bash (monitor.bash), zsh (_monitor) and fish (monitor.fish) completions.
    Completions { dir: PathBuf },
    /// alert-schema.md and siem/ (Elasticsearch templates), from the field table.
    Schema { dir: PathBuf },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    Ebpf,
    Audit,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Sarif,
    Junit,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileArg {
    /// Both profiles.
    All,
    /// The CIS Docker Benchmark v1.6.0.
    CisDocker,
    /// The hardening guides' host items.
    HardeningGuides,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A capture written by `monitor run --capture`.
    Capture,
    /// Linux audit logs (auditd's audit.log and its rotations), read line by line even
    /// when they do not look like audit logs.
    Auditd,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Json,
    Text,
}

/// What a replay prints: every verdict, unless narrowed (all criteria must hold).
#[derive(clap::Args, Clone, Debug)]
pub struct SelectArgs {
    /// Only events at or after TIME: RFC 3339 with a zone (2024-12-06T15:00:00Z,
    /// 2024-12-06T16:00:00+01:00) or an audit timestamp (1733497200.123).
    #[arg(long, value_name = "TIME", value_parser = monitor::detect::select::parse_time)]
    pub since: Option<i128>,
    /// Only events before TIME (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = monitor::detect::select::parse_time)]
    pub until: Option<i128>,
    /// Only alerts with this rule key or audit key (repeatable, or comma-separated).
    #[arg(long = "key", value_name = "KEY", value_delimiter = ',')]
    pub keys: Vec<String>,
    /// Only alerts of this severity or worse: info, low, medium, high, critical (a key
    /// without metadata counts as info).
    #[arg(long, value_name = "SEVERITY", value_parser = monitor::detect::select::parse_severity)]
    pub min_severity: Option<u8>,
    /// Only alerts of this process or its descendants (repeatable).
    #[arg(long = "pid", value_name = "PID", value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// Only alerts from this container: an id, a prefix of one, or a name (repeatable;
    /// captures only: audit records do not name containers).
    #[arg(long = "container", value_name = "ID|NAME", value_delimiter = ',')]
    pub containers: Vec<String>,
    /// Only alerts with this event.action: write, exec, connect, setuid, unlink, ...
    /// (repeatable, or comma-separated).
    #[arg(long = "action", value_name = "ACTION", value_delimiter = ',',
          value_parser = clap::builder::PossibleValuesParser::new(monitor::detect::select::ACTIONS))]
    pub actions: Vec<String>,
}

impl SelectArgs {
    pub fn selection(self) -> monitor::detect::select::Selection {
        monitor::detect::select::Selection {
            since_ns: self.since,
            until_ns: self.until,
            keys: self.keys,
            min_severity: self.min_severity,
            pids: self.pids,
            containers: self.containers,
            actions: self.actions,
        }
    }
}

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Validate rule files: print problems as file:line:col: message; non-zero exit on errors.
    Check {
        /// Rules files or directories (default: the built-in pack).
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Print the rules that would be loaded, as written, each with where it comes from
    /// and whether it is evaluated (default pack without --rules).
    List {
        #[arg(long = "rules", short = 'r', value_name = "PATH")]
        rules: Vec<PathBuf>,
    },
    /// Write the rules as a file stock `auditctl -R` loads: as written, less the monitor's
    /// extensions (`parent_exe=` rules are left out as comments, `kind=` is dropped).
    Export {
        /// Rules files or directories (default: the built-in pack).
        #[arg(long = "rules", short = 'r', value_name = "PATH")]
        rules: Vec<PathBuf>,
        /// Also leave out, as comments, the rules auditctl would refuse on this host (a watch
        /// or `dir=` whose directory does not exist here): auditctl stops at the first.
        #[arg(long)]
        for_host: bool,
    },
}

/// How alerts are presented: shared by `run` and `replay`.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct PresentationArgs {
    /// Also print the audit trail: matches of `kind=event` rules (the container runtime's
    /// own work, routine reads of the Docker files) as `event.kind: "event"` lines
    /// (`--audit-trail=false` turns off what a settings file turned on). Key (run):
    /// `audit_trail`.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set)]
    pub audit_trail: bool,
    /// Identical alerts (same rule, process, action, objects) within this many seconds are
    /// one alert and an `alerts-suppressed` record with their count (0: print every one).
    /// Key (run): `aggregate.window`.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub aggregate_window: u64,
    /// Aggregation windows open at once, at most (the oldest closes early beyond it).
    /// Key (run): `aggregate.keys`.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub aggregate_keys: u64,
}

impl PresentationArgs {
    pub fn presentation(self) -> monitor::pipeline::Presentation {
        monitor::pipeline::Presentation {
            audit_trail: self.audit_trail,
            aggregation: monitor::detect::aggregate::Settings {
                window_ns: self.aggregate_window.saturating_mul(1_000_000_000),
                max_keys: self.aggregate_keys as usize,
            },
        }
    }
}

/// `monitor run`'s flags. Each has a key in monitor.toml (named in its help; `config/keys.rs`
/// holds the list, and a test keeps it complete); a flag given wins over its key.
#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    /// The settings file [default: /etc/monitor/monitor.toml, used when it exists].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Rules file or directory of *.rules files (auditctl syntax); repeatable.
    /// Without it (and without `rules` in the settings) the built-in default pack is used.
    /// Key: `rules`.
    #[arg(long = "rules", short = 'r', value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Seconds between heartbeat records (0: none). Key: `heartbeat`.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub heartbeat: u64,
    /// Also record every kernel event and the host context into FILE, for `monitor replay`.
    /// Key: `capture`.
    #[arg(long, value_name = "FILE")]
    pub capture: Option<PathBuf>,
    /// Where events come from: `ebpf` (the monitor's own sensors) or `audit` (the kernel
    /// audit subsystem, read beside auditd through its read-only multicast group; the
    /// kernel's audit rules, e.g. loaded with `auditctl -R`, decide what arrives).
    /// Key: `source`.
    #[arg(long, value_enum, default_value_t = Source::Ebpf)]
    pub source: Source,
    /// Size of the kernel's event ring buffer (eBPF source): bytes or K, M, G; a power of
    /// two, at least a page. It counts twice in resident memory; events that find it full
    /// are counted lost (`events-lost` records). Key: `ring_buffer_size`.
    #[arg(long, value_name = "BYTES", default_value_t = RingSize::default())]
    pub ring_buffer_size: RingSize,
    /// The monitor's own log messages on stderr from this level up (RUST_LOG, when set and
    /// no --log-level is given, says more precisely). Key: `log_level`.
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
    #[command(flatten)]
    pub presentation: PresentationArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Where alert lines go: shared by `run` and `replay`.
#[derive(clap::Args, Clone, Debug)]
pub struct OutputArgs {
    /// Where alert lines and records go; repeatable, every target gets every line:
    /// `stdout`, `file:PATH` (appended, rotated by size), `syslog` (RFC 5424 to /dev/log),
    /// `syslog:unix:PATH` (to another unix datagram socket). Key: `output.targets`.
    #[arg(long = "output", value_name = "TARGET", default_value = "stdout")]
    pub targets: Vec<monitor::sink::target::OutputTarget>,
    /// File targets: rotate before a line would take the file past SIZE (K, M, G: powers
    /// of 1024; 0: never). Key: `output.max_size`.
    #[arg(long, value_name = "SIZE", default_value = "100M", value_parser = monitor::sink::target::parse_size)]
    pub output_max_size: u64,
    /// File targets: rotated files kept (PATH.1 the newest). Key: `output.max_files`.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub output_max_files: usize,
    /// Syslog targets: the facility (user, daemon, auth, authpriv, local0 ... local7).
    /// Key: `output.syslog_facility`.
    #[arg(long, value_name = "FACILITY", default_value = "authpriv")]
    pub syslog_facility: monitor::sink::syslog::Facility,
}

impl OutputArgs {
    pub fn options(&self) -> monitor::sink::target::OutputOptions {
        monitor::sink::target::OutputOptions {
            max_size: self.output_max_size,
            max_files: self.output_max_files,
            facility: self.syslog_facility,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Read and validate the settings file without starting anything: every unknown key
    /// or bad value as file:line:col: message (exit 6).
    Check {
        /// The settings file [default: /etc/monitor/monitor.toml; absent: the defaults].
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// Print the settings `monitor run` would use with these flags, as monitor.toml.
    Show(RunArgs),
}
