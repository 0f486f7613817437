//! `monitor`: the command line. The subcommands are in [`cmd`], their flags in [`cli`];
//! everything they run is the library's. A failure is a typed `monitor::Error`, whose
//! exit code is printed with it (the table is in README.md, "Exit codes").

mod cli;
mod cmd;
mod generate;

use clap::Parser;
use cli::{Cli, Command, Format, GenerateCommand, ProfileArg, ReportFormat, RulesCommand};
use monitor::error::exit;
use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let result = match Cli::parse().command {
        Command::Run { rules, heartbeat, capture, source, presentation } => {
            cmd::run::run(rules, heartbeat, capture, source, presentation.presentation())
        }
        Command::Replay { files, rules, format, presentation } => {
            cmd::replay::replay(files, rules, format == Format::Auditd, presentation.presentation())
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
