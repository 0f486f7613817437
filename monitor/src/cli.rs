//! The command line: every subcommand and flag, with the help text `--help`, the manual
//! pages and the shell completions are made from.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "monitor",
    version,
    about = "Runtime security monitor for container hosts: eBPF sensors, auditctl rules, JSON alerts on stdout",
    after_help = "Alerts are written to stdout, one JSON object per line; logs go to stderr (RUST_LOG=debug for more)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Load the eBPF sensors and print one JSON alert per matching event (needs root).
    Run {
        /// Rules file or directory of *.rules files (auditctl syntax); repeatable.
        /// Without it the built-in default pack is used.
        #[arg(long = "rules", short = 'r', value_name = "PATH")]
        rules: Vec<PathBuf>,
        /// Seconds between heartbeat records on stdout (0: none).
        #[arg(long, value_name = "SECS", default_value_t = 30)]
        heartbeat: u64,
        /// Also record every kernel event and the host context into FILE, for `monitor replay`.
        #[arg(long, value_name = "FILE")]
        capture: Option<PathBuf>,
        /// Where events come from: `ebpf` (the monitor's own sensors) or `audit` (the kernel
        /// audit subsystem, read beside auditd through its read-only multicast group; the
        /// kernel's audit rules, e.g. loaded with `auditctl -R`, decide what arrives).
        #[arg(long, value_enum, default_value_t = Source::Ebpf)]
        source: Source,
        #[command(flatten)]
        presentation: PresentationArgs,
    },
    /// Run a capture (`monitor run --capture`) through rules again and print the alerts.
    ///
    /// With the rules of the capturing run the alerts are the ones it printed; with other
    /// rules, those decide.
    ///
    /// With `--format auditd`, read Linux audit logs instead (raw or enriched, rotated files
    /// in any order, or a directory such as /var/log/audit) and evaluate the same rules on
    /// them. Progress goes to stderr when it is a terminal; the summary is logged at the end.
    Replay {
        /// The capture file, or (--format auditd) audit log files or directories.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Rules file or directory (repeatable); without it the built-in pack.
        #[arg(long = "rules", short = 'r', value_name = "PATH")]
        rules: Vec<PathBuf>,
        /// What the files are.
        #[arg(long, value_enum, default_value_t = Format::Capture)]
        format: Format,
        #[command(flatten)]
        presentation: PresentationArgs,
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
    /// Exit codes: 0 nothing failed and nothing unknown (pass, warn, not-applicable only);
    /// 9 nothing failed but some findings are unknown; 10 + the worst failed severity when
    /// anything failed (10 info, 11 low, 12 medium, 13 high, 14 critical); 2 a usage error
    /// (an --only/--skip id no check has); 1 the report could not be written.
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
    /// Validate and list rules.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
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

#[derive(Clone, Copy, clap::ValueEnum)]
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
    /// Linux audit logs (auditd's audit.log and its rotations).
    Auditd,
}

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Validate rule files: print problems as file:line:col: message; non-zero exit on errors.
    Check {
        /// Rules files or directories (default: the built-in pack).
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Print the rules that would be loaded (default pack without --rules).
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
    /// own work, routine reads of the Docker files) as `event.kind: "event"` lines.
    #[arg(long)]
    pub audit_trail: bool,
    /// Identical alerts (same rule, process, action, objects) within this many seconds are
    /// one alert and an `alerts-suppressed` record with their count (0: print every one).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub aggregate_window: u64,
    /// Aggregation windows open at once, at most (the oldest closes early beyond it).
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
