//! `monitor`: the command line. The subcommands are in [`cmd`], their flags in [`cli`],
//! `monitor run`'s settings file in [`config`]; everything they run is the library's. A failure is a typed `monitor::Error`, whose
//! exit code is printed with it (the table is in README.md, "Exit codes").

mod cli;
mod cmd;
mod config;
mod generate;

use cli::{
    Cli, Command, ConfigCommand, Format, GenerateCommand, LogLevel, OutputFormat, ProfileArg,
    ReportFormat, RulesCommand,
};
use config::keys::Given;
use monitor::error::exit;
use std::process::ExitCode;

fn main() -> ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli =
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let sub = |path: &[&str]| {
        path.iter()
            .try_fold(&matches, |m, name| m.subcommand_matches(name))
            .map(Given::from_matches)
            .unwrap_or_default()
    };
    let result = match cli.command {
        Command::Run(args) => {
            let given = sub(&["run"]);
            config::effective(args, &given).and_then(|(args, loaded)| {
                init_logging(Some((args.log_level, given.has("log_level"))));
                match &loaded.path {
                    Some(p) => tracing::info!(
                        file = %p.display(),
                        overridden_by_flags = ?loaded.overridden,
                        "settings read"
                    ),
                    None => tracing::debug!("no {}: default settings", config::DEFAULT_PATH),
                }
                cmd::run::run(args)
            })
        }
        Command::Config { command } => {
            init_logging(None);
            match command {
                ConfigCommand::Check { config } => cmd::config::check(config),
                ConfigCommand::Show(args) => cmd::config::show(args, &sub(&["config", "show"])),
            }
        }
        command => {
            init_logging(None);
            other(command)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // The reader of the output went away (`monitor rules list | head`): a clean end.
        Err(e) if e.is_closed_output() => ExitCode::SUCCESS,
        Err(e) => {
            if let monitor::Error::Rules(errors) = &e {
                for d in &errors.0 {
                    eprintln!("{d}");
                }
            }
            eprintln!("monitor: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Logs on stderr. `monitor run`'s level: its `--log-level` when given, else `RUST_LOG`
/// when set, else its settings' level; other commands: `RUST_LOG`, else info.
fn init_logging(run_level: Option<(LogLevel, bool)>) {
    let env = tracing_subscriber::EnvFilter::try_from_default_env().ok();
    let level = |l: LogLevel| {
        tracing_subscriber::EnvFilter::new(match l {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        })
    };
    let filter = match (run_level, env) {
        (Some((l, true)), _) => level(l),
        (_, Some(env)) => env,
        (Some((l, false)), None) => level(l),
        (None, None) => level(LogLevel::Info),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .init();
}

/// The subcommands without settings.
fn other(command: Command) -> monitor::Result<u8> {
    match command {
        Command::Run(_) | Command::Config { .. } => unreachable!("handled in main"),
        Command::Replay {
            inputs,
            rules,
            format,
            host,
            select,
            output_format,
            presentation,
            output,
        } => {
            let opts = monitor::pipeline::replay::ReplayOptions {
                inputs,
                format: format.map(|f| match f {
                    Format::Capture => monitor::pipeline::replay::Format::Capture,
                    Format::Auditd => monitor::pipeline::replay::Format::Auditd,
                }),
                host,
                select: select.selection(),
                presentation: presentation.presentation(),
                output: cmd::replay::line_format(output_format == OutputFormat::Text),
            };
            cmd::replay::replay(opts, rules, &output)
        }
        Command::Check { json, format, profile, level, only, skip, list } => {
            let format =
                if json { ReportFormat::Json } else { format.unwrap_or(ReportFormat::Table) };
            let profile = match profile {
                ProfileArg::All => monitor::check::Profile::All,
                ProfileArg::CisDocker => monitor::check::Profile::CisDocker,
                ProfileArg::HardeningGuides => monitor::check::Profile::HardeningGuides,
            };
            cmd::check::check(
                format,
                monitor::check::Selection { profile, level, only, skip },
                list,
            )
        }
        Command::Rules { command: RulesCommand::Check { paths } } => cmd::rules::check(paths),
        Command::Rules { command: RulesCommand::List { rules } } => cmd::rules::list(rules),
        Command::Rules { command: RulesCommand::Export { rules, for_host } } => {
            cmd::rules::export(rules, for_host)
        }
        Command::Generate { what } => {
            let command = <Cli as clap::CommandFactory>::command();
            let written = match &what {
                GenerateCommand::Man { dir } => generate::man_pages(command, dir),
                GenerateCommand::Completions { dir } => generate::completions(command, dir),
                GenerateCommand::Schema { dir } => monitor::sink::docs::write_docs(dir),
            };
            written
                .map(|files| {
                    files.iter().for_each(|f| println!("{}", f.display()));
                    exit::OK
                })
                .map_err(|source| monitor::Error::Io { context: "generating".into(), source })
        }
    }
}
