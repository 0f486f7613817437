//! `monitor check`: the host's hardening posture, read-only.

use crate::cli::ReportFormat;
use monitor::error::exit;
use monitor::{check, enrich, sink, Error};

/// A usage error of `check` (an id no check has): exit 2 with the message.
fn usage(e: impl std::fmt::Display) -> Error {
    Error::Usage(e.to_string())
}

pub fn check(format: ReportFormat, selection: check::Selection, list: bool) -> monitor::Result<u8> {
    if list {
        let checks = match selection.checks() {
            Ok(c) => c,
            Err(e) => return Err(usage(e)),
        };
        for c in checks {
            let (cis, level) =
                c.cis.map(|c| (c.id, format!("L{}", c.level))).unwrap_or(("-", "-".into()));
            super::out(format_args!(
                "{:<26} {:<7} {:<2} {:<29} {:<8} {}",
                c.id,
                cis,
                level,
                c.profiles().join(","),
                c.severity.as_str(),
                c.title
            ))?;
        }
        return Ok(exit::OK);
    }
    let started = std::time::Instant::now();
    let now = enrich::Clock::measure();
    let timestamp = enrich::rfc3339(now.wall_ns(now.boot_now()));
    let findings = match check::run(&check::Host::real(), &selection) {
        Ok(f) => f,
        Err(e) => return Err(usage(e)),
    };
    let code = check::exit_code(&findings);
    let report = sink::state::Report {
        findings: &findings,
        profile: selection.profile,
        timestamp,
        seconds: started.elapsed().as_secs_f64(),
        host: sink::state::HostInfo::read(),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let written = match format {
        ReportFormat::Json => sink::state::json::write(&mut out, &report),
        ReportFormat::Sarif => sink::state::sarif::write(&mut out, &report, code),
        ReportFormat::Junit => sink::state::junit::write(&mut out, &report),
        ReportFormat::Table => sink::state::table::write(
            &mut out,
            &report,
            std::io::IsTerminal::is_terminal(&std::io::stdout()),
        ),
    };
    written.map_err(Error::Output)?;
    Ok(code)
}
