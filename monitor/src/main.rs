//! `monitor`: the command line (run, check, rules). The pipeline lives in the library.

mod generate;

use clap::{Parser, Subcommand};
use monitor::{check, enrich, pipeline, rules, sink};
use rules::{parse::SystemIds, RuleErrors, RuleSet};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes (documented in README.md).
mod exit {
    pub const RUNTIME: u8 = 1;
    pub const RULES: u8 = 2;
    pub const NOT_ROOT: u8 = 3;
    pub const KERNEL: u8 = 4;
    pub const USAGE: u8 = 5;
}

#[derive(Parser)]
#[command(
    name = "monitor",
    version,
    about = "Runtime security monitor for container hosts: eBPF sensors, auditctl rules, JSON alerts on stdout",
    after_help = "Alerts are written to stdout, one JSON object per line; logs go to stderr (RUST_LOG=debug for more)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        /// Also print the audit trail: matches of `kind=event` rules (the container runtime's
        /// own work, routine reads of the Docker files) as `event.kind: "event"` lines.
        #[arg(long)]
        audit_trail: bool,
        /// Size of the kernel's event ring buffer (eBPF source): bytes or K, M, G; a power
        /// of two. It counts twice in resident memory; events that find it full are counted
        /// lost (`events-lost` records).
        #[arg(long, value_name = "BYTES", default_value_t = monitor::source::ebpf::ring::RingSize::default())]
        ring_buffer_size: monitor::source::ebpf::ring::RingSize,
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
        /// Also print the audit trail (`kind=event` rules' matches), as `monitor run` does.
        #[arg(long)]
        audit_trail: bool,
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
    /// anything failed (10 info, 11 low, 12 medium, 13 high, 14 critical); 5 a usage error
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
    /// Write the manual pages or shell completions into DIR (for packaging).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        what: GenerateCommand,
    },
}

#[derive(Subcommand)]
enum GenerateCommand {
    /// monitor.8 and a page per subcommand (monitor-run.8, ...).
    Man { dir: PathBuf },
    /// bash (monitor.bash), zsh (_monitor) and fish (monitor.fish) completions.
    Completions { dir: PathBuf },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Source {
    Ebpf,
    Audit,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReportFormat {
    Table,
    Json,
    Sarif,
    Junit,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ProfileArg {
    /// Both profiles.
    All,
    /// The CIS Docker Benchmark v1.6.0.
    CisDocker,
    /// The hardening guides' host items.
    HardeningGuides,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// A capture written by `monitor run --capture`.
    Capture,
    /// Linux audit logs (auditd's audit.log and its rotations).
    Auditd,
}

#[derive(Subcommand)]
enum RulesCommand {
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run { .. }) {
        // Listing commands end quietly when their reader goes away (`monitor rules list | head`).
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match cli.command {
        Command::Run { rules, heartbeat, capture, source, audit_trail, ring_buffer_size } => run(rules, heartbeat, capture, source, audit_trail, ring_buffer_size),
        Command::Replay { files, rules, format: Format::Capture, audit_trail } => match <[PathBuf; 1]>::try_from(files) {
            Ok([file]) => replay(file, rules, audit_trail),
            Err(_) => fail(exit::USAGE, "a capture replay takes one file (several files: --format auditd)"),
        },
        Command::Replay { files, rules, format: Format::Auditd, audit_trail } => replay_auditd(files, rules, audit_trail),
        Command::Check { json, format, profile, level, only, skip, list } => {
            let format = if json { ReportFormat::Json } else { format.unwrap_or(ReportFormat::Table) };
            let profile = match profile {
                ProfileArg::All => check::Profile::All,
                ProfileArg::CisDocker => check::Profile::CisDocker,
                ProfileArg::HardeningGuides => check::Profile::HardeningGuides,
            };
            host_check(format, check::Selection { profile, level, only, skip }, list)
        }
        Command::Rules {
            command: RulesCommand::Check { paths },
        } => rules_check(paths),
        Command::Rules {
            command: RulesCommand::List { rules },
        } => rules_list(rules),
        Command::Rules {
            command: RulesCommand::Export { rules, for_host },
        } => rules_export(rules, for_host),
        Command::Generate { what } => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let written = match &what {
                GenerateCommand::Man { dir } => generate::man_pages(cmd, dir),
                GenerateCommand::Completions { dir } => generate::completions(cmd, dir),
            };
            match written {
                Ok(files) => files.iter().for_each(|f| println!("{}", f.display())),
                Err(e) => return fail(exit::RUNTIME, format!("generating: {e}")),
            }
            ExitCode::SUCCESS
        }
    }
}

fn host_check(format: ReportFormat, selection: check::Selection, list: bool) -> ExitCode {
    if list {
        let checks = match selection.checks() {
            Ok(c) => c,
            Err(e) => return fail(exit::USAGE, e),
        };
        for c in checks {
            let (cis, level) = c.cis.map(|c| (c.id, format!("L{}", c.level))).unwrap_or(("-", "-".into()));
            println!("{:<26} {:<7} {:<2} {:<29} {:<8} {}", c.id, cis, level, c.profiles().join(","), c.severity.as_str(), c.title);
        }
        return ExitCode::SUCCESS;
    }
    let started = std::time::Instant::now();
    let now = enrich::Clock::measure();
    let timestamp = enrich::rfc3339(now.wall_ns(now.boot_now()));
    let findings = match check::run(&check::Host::real(), &selection) {
        Ok(f) => f,
        Err(e) => return fail(exit::USAGE, e),
    };
    let code = check::exit_code(&findings);
    let report = sink::state::Report { findings: &findings, profile: selection.profile, timestamp, seconds: started.elapsed().as_secs_f64(), host: sink::state::HostInfo::read() };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = match format {
        ReportFormat::Json => sink::state::json::write(&mut out, &report),
        ReportFormat::Sarif => sink::state::sarif::write(&mut out, &report, code),
        ReportFormat::Junit => sink::state::junit::write(&mut out, &report),
        ReportFormat::Table => sink::state::table::write(&mut out, &report, std::io::IsTerminal::is_terminal(&std::io::stdout())),
    };
    if let Err(e) = written {
        return fail(exit::RUNTIME, format!("writing the report: {e}"));
    }
    ExitCode::from(code)
}

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("monitor: {msg}");
    ExitCode::from(code)
}

/// Load rules from paths, or the built-in pack. Errors are printed one per line; warnings
/// are logged.
fn load_rules(paths: &[PathBuf]) -> Result<RuleSet, ExitCode> {
    load_rules_quietly(paths).inspect(|set| {
        for w in &set.warnings {
            tracing::warn!("{w}");
        }
    })
}

/// Load rules; errors are printed, warnings left to the caller.
fn load_rules_quietly(paths: &[PathBuf]) -> Result<RuleSet, ExitCode> {
    let ids = SystemIds::load();
    let loaded = if paths.is_empty() {
        RuleSet::builtin(&ids).map_err(anyhow::Error::from)
    } else {
        RuleSet::load(paths, &ids)
    };
    match loaded {
        Ok(set) => Ok(set),
        Err(e) => {
            if let Some(errors) = e.downcast_ref::<RuleErrors>() {
                for d in &errors.0 {
                    eprintln!("{d}");
                }
                Err(fail(
                    exit::RULES,
                    format!("{} error(s) in rules; nothing loaded", errors.0.len()),
                ))
            } else {
                Err(fail(exit::RULES, format!("{e:#}")))
            }
        }
    }
}

/// What both replays share: the rules, buffered stdout, progress on stderr, the summary on
/// success, and a closed stdout as a clean end.
fn replay_with<T>(
    paths: &[PathBuf],
    replay: impl FnOnce(RuleSet, std::io::BufWriter<std::io::Stdout>, &mut dyn FnMut(u64, u64)) -> anyhow::Result<T>,
    summary: impl FnOnce(T, f64),
) -> ExitCode {
    let rules = match load_rules(paths) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let started = std::time::Instant::now();
    // Unlocked: the replay writes from its render thread (one lock per 64 KiB written).
    let out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
    let mut progress = sink::progress::Progress::stderr("replay");
    let result = replay(rules, out, &mut |done, total| progress.bytes(done, total));
    progress.finish();
    match result {
        Ok(stats) => {
            summary(stats, started.elapsed().as_secs_f64().max(1e-9));
            ExitCode::SUCCESS
        }
        Err(e) => {
            if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) {
                return ExitCode::SUCCESS;
            }
            fail(exit::RUNTIME, format!("{e:#}"))
        }
    }
}

fn replay(file: PathBuf, paths: Vec<PathBuf>, audit_trail: bool) -> ExitCode {
    replay_with(
        &paths,
        |rules, out, progress| pipeline::replay(&file, rules, &SystemIds::load(), out, audit_trail, progress),
        |stats, secs| {
            if let Some(at) = stats.truncated_at {
                tracing::warn!(offset = at, "the capture is cut off inside a record (crash, disk full?): replayed everything before byte {at}");
            }
            if !stats.same_rules {
                tracing::info!("rules differ from the capturing run's: watch identities are re-resolved on this host");
            }
            tracing::info!(
                events = stats.events,
                alerts = stats.alerts,
                bytes_per_event = if stats.events > 0 { stats.bytes as u64 / stats.events } else { 0 },
                events_per_s = (stats.events as f64 / secs) as u64,
                "replay done"
            );
        },
    )
}

fn replay_auditd(files: Vec<PathBuf>, paths: Vec<PathBuf>, audit_trail: bool) -> ExitCode {
    replay_with(
        &paths,
        |rules, out, progress| pipeline::audit::replay_audit(&files, rules, out, audit_trail, progress),
        |stats, secs| {
            let a = &stats.audit;
            for (t, n) in &a.unknown {
                tracing::info!(record_type = %t, records = n, "unknown audit record type; skipped");
            }
            tracing::info!(
                files = stats.files.len(),
                lines = a.lines,
                records = a.records,
                malformed_lines = a.malformed,
                unknown_records = a.unknown.values().sum::<u64>(),
                excluded_records = a.excluded,
                events = a.events,
                other_arch_events = a.other_arch,
                not_evaluated_events = a.not_evaluated,
                alerts = stats.alerts,
                events_per_s = (a.events as f64 / secs) as u64,
                "audit log replay done"
            );
        },
    )
}

fn run(paths: Vec<PathBuf>, heartbeat: u64, capture: Option<PathBuf>, source: Source, audit_trail: bool, ring_buffer_size: monitor::source::ebpf::ring::RingSize) -> ExitCode {
    if unsafe { libc::geteuid() } != 0 {
        let why = match source {
            Source::Ebpf => "loading eBPF programs needs CAP_BPF and CAP_PERFMON",
            Source::Audit => "reading the audit multicast needs CAP_AUDIT_READ",
        };
        return fail(exit::NOT_ROOT, format!("must run as root ({why})"));
    }
    if matches!(source, Source::Ebpf) && !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        return fail(exit::KERNEL, "kernel BTF (/sys/kernel/btf/vmlinux) is missing: a kernel built with CONFIG_DEBUG_INFO_BTF is required");
    }
    let rules = match load_rules(&paths) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let rules = match rules.with_self_defence(&SystemIds::load()) {
        Ok(r) => r,
        Err(e) => return fail(exit::RULES, format!("self-defence rules: {:?}", e.0)),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(exit::RUNTIME, format!("cannot start the runtime: {e}")),
    };
    let reload_paths = paths.clone();
    let reload = move || -> Result<RuleSet, Vec<String>> {
        let ids = SystemIds::load();
        let loaded = if reload_paths.is_empty() {
            RuleSet::builtin(&ids).map_err(anyhow::Error::from)
        } else {
            RuleSet::load(&reload_paths, &ids)
        };
        let set = loaded.map_err(|e| match e.downcast_ref::<RuleErrors>() {
            Some(errors) => errors.0.iter().map(|d| d.to_string()).collect(),
            None => vec![format!("{e:#}")],
        })?;
        set.with_self_defence(&ids).map_err(|e| e.0.iter().map(|d| d.to_string()).collect())
    };
    let opts = pipeline::RunOptions {
        heartbeat: (heartbeat > 0).then(|| std::time::Duration::from_secs(heartbeat)),
        reload: Box::new(reload),
        capture,
        source: match source {
            Source::Ebpf => pipeline::SourceKind::Ebpf,
            Source::Audit => pipeline::SourceKind::Audit,
        },
        audit_trail,
        ring_buffer_size,
    };
    match rt.block_on(pipeline::run_live(rules, opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<monitor::source::ebpf::tracefs::KernelUnsupported>() {
            Some(k) => fail(exit::KERNEL, k),
            None => fail(exit::RUNTIME, format!("{e:#}")),
        },
    }
}

fn rules_check(paths: Vec<PathBuf>) -> ExitCode {
    // Warnings go to stdout with the summary (once).
    let rules = match load_rules_quietly(&paths) {
        Ok(r) => r,
        Err(code) => return code,
    };
    for w in &rules.warnings {
        println!("{w}");
    }
    let mut per_key: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for r in &rules.rules {
        let e = per_key.entry(r.key()).or_default();
        if r.inactive.is_none() {
            e.0 += 1
        } else {
            e.1 += 1
        }
    }
    for (key, (active, inactive)) in per_key {
        let key = if key.is_empty() { "(no key)" } else { key };
        println!("{key}: {active} active, {inactive} inactive");
    }
    println!(
        "{} rules in {} file(s), {} warning(s)",
        rules.rules.len(),
        rules.files.len(),
        rules.warnings.len()
    );
    ExitCode::SUCCESS
}

fn rules_list(paths: Vec<PathBuf>) -> ExitCode {
    let rules = match load_rules(&paths) {
        Ok(r) => r,
        Err(code) => return code,
    };
    for r in &rules.rules {
        let state = match &r.inactive {
            Some(reason) => format!("inactive: {reason}"),
            None => "active".into(),
        };
        println!("{}\t{}\t{state}", r.source, r.describe());
    }
    ExitCode::SUCCESS
}

fn rules_export(paths: Vec<PathBuf>, for_host: bool) -> ExitCode {
    let set = match load_rules_quietly(&paths) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let texts: Vec<(String, String)> = if paths.is_empty() {
        rules::BUILTIN.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect()
    } else {
        let files = match rules::expand(&paths) {
            Ok(f) => f,
            Err(e) => return fail(exit::RULES, format!("{e:#}")),
        };
        let mut texts = Vec::new();
        for f in files {
            match std::fs::read_to_string(&f) {
                Ok(t) => texts.push((f.display().to_string(), t)),
                Err(e) => return fail(exit::RULES, format!("cannot read rules file {}: {e}", f.display())),
            }
        }
        texts
    };
    let (text, omitted) = rules::export::export(&texts, &set, for_host);
    print!("{text}");
    eprintln!(
        "monitor: exported {} file(s); left out {} rule(s) with parent_exe= and {} naming a directory absent here",
        texts.len(),
        omitted.extensions,
        omitted.absent
    );
    ExitCode::SUCCESS
}
