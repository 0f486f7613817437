//! `monitor generate man|completions DIR` (hidden): the manual pages and shell completions,
//! made from the command line definition itself so that they always match the binary.
//! `cargo xtask dist` runs it for the Debian package. (`monitor generate schema DIR` writes
//! the schema documents: `monitor::sink::docs`.)

use clap::Command;
use std::path::Path;

/// The manual section: a system administration command (it runs as root).
const SECTION: &str = "8";

/// Write monitor.8 and a page per subcommand (monitor-run.8, monitor-rules-check.8, ...)
/// into `dir`; returns the files written.
pub fn man_pages(cmd: Command, dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    // `monitor help` needs no page of its own (every page is its help).
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    // monitor.8 gives the exit codes a section of their own (below), not --help's closing
    // text; the subcommands' pages keep theirs.
    let name = cmd.get_name().to_string();
    pages(&cmd.clone().after_help(None::<&str>), &name, dir, &mut written)?;
    let main = dir.join(format!("{name}.{SECTION}"));
    let mut text = std::fs::read_to_string(&main)?;
    text.push_str(&exit_status());
    text.push_str(MAIN_SECTIONS);
    std::fs::write(&main, text)?;
    Ok(written)
}

/// monitor(8)'s EXIT STATUS: the one table (`monitor::error::exit::TABLE`).
fn exit_status() -> String {
    let mut out = String::from(".SH EXIT STATUS\n");
    for (_, code, meaning, commands) in monitor::error::exit::TABLE {
        let roff = |s: &str| s.replace('\\', "\\e").replace('-', "\\-");
        out.push_str(&format!(
            ".TP\n\\fB{}\\fR ({})\n{}\n",
            roff(code),
            roff(commands),
            roff(meaning)
        ));
    }
    out
}

/// What monitor.8 says beyond the options: behaviour documented in README.md.
const MAIN_SECTIONS: &str = r#".SH SIGNALS
SIGHUP reloads the rules: the new set is validated completely and swapped in, or refused
while the old rules stay. SIGUSR1 reopens file outputs (after logrotate renamed them).
SIGINT and SIGTERM drain the kernel ring buffer, write the \fBmonitor\-stop\fR record and
exit 0.
.SH FILES
.TP
/etc/monitor/monitor.toml
Settings of \fBmonitor run\fR (another file with \-\-config); a flag wins over its key.
\fBmonitor config check\fR validates it.
.TP
/etc/monitor/rules.d/*.rules
The rules (auditctl syntax) the packaged settings name.
.TP
/lib/systemd/system/monitor.service
The systemd unit.
.TP
/usr/share/doc/monitor/examples/logrotate
A logrotate configuration for the file output.
.SH SEE ALSO
auditctl(8), audit.rules(7), systemd.exec(5)
"#;

/// The pages of `cmd` and of its subcommands.
fn pages(
    cmd: &Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<std::path::PathBuf>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    // The page's title is the full command (`monitor-rules-check`), as git's pages are.
    let named = cmd
        .clone()
        .name(name.to_string())
        .display_name(name.to_string())
        .bin_name(name.replace('-', " "))
        .version(env!("CARGO_PKG_VERSION"));
    clap_mangen::Man::new(named).section(SECTION).render(&mut buf)?;
    let path = dir.join(format!("{name}.{SECTION}"));
    std::fs::write(&path, buf)?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        pages(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}

/// Write the bash (`monitor.bash`), zsh (`_monitor`) and fish (`monitor.fish`) completions
/// into `dir`; returns the files written.
pub fn completions(mut cmd: Command, dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    use clap_complete::Shell;
    std::fs::create_dir_all(dir)?;
    let name = cmd.get_name().to_string();
    [Shell::Bash, Shell::Zsh, Shell::Fish]
        .into_iter()
        .map(|shell| clap_complete::generate_to(shell, &mut cmd, &name, dir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every visible subcommand, as `run`, `rules check`, ...
    fn subcommands(cmd: &Command, prefix: &str, out: &mut Vec<String>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
            let full = format!("{prefix}{}", sub.get_name());
            out.push(full.clone());
            subcommands(sub, &format!("{full} "), out);
        }
    }

    #[test]
    fn the_man_pages_cover_every_subcommand_and_hide_generate() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = crate::Cli::command();
        let mut subs = Vec::new();
        subcommands(&cmd, "", &mut subs);
        assert!(subs.len() >= 6, "{subs:?}");
        let written = man_pages(cmd, dir.path()).unwrap();
        let main = std::fs::read_to_string(dir.path().join("monitor.8")).unwrap();
        assert!(
            main.starts_with(".ie \\n(.g .ds Aq") || main.contains(".TH monitor 8"),
            "{}",
            &main[..200]
        );
        assert!(main.contains(".TH monitor 8"), "section 8");
        for sub in &subs {
            let top = sub.split(' ').next().unwrap();
            assert!(
                main.contains(&format!("monitor\\-{top}")) || main.contains(top),
                "monitor.8 names {top}"
            );
            let page = dir.path().join(format!("monitor-{}.8", sub.replace(' ', "-")));
            assert!(written.contains(&page), "a page for {sub}");
            let text = std::fs::read_to_string(&page).unwrap();
            assert!(
                text.contains(&format!("monitor {}", sub).replace('-', "\\-")),
                "{sub}'s page shows its usage:\n{text}"
            );
        }
        assert!(!main.contains("generate"), "the hidden subcommand stays out of the manual");
        assert!(!main.contains("monitor\\-help"), "no reference to a page that is not written");
        assert!(main.contains(".SH EXIT STATUS") && main.contains(".SH SIGNALS"));
        for (_, code, ..) in monitor::error::exit::TABLE {
            assert!(main.contains(&format!("\\fB{}\\fR", code.replace('-', "\\-"))), "{code}");
        }
        assert_eq!(main.matches("Exit codes:").count(), 0, "the table once, as a section");
        let replay = std::fs::read_to_string(dir.path().join("monitor-replay.8")).unwrap();
        assert!(replay.contains("Exit codes:") && replay.contains("replay input error"));
        assert!(!dir.path().join("monitor-generate.8").exists());
        let run = std::fs::read_to_string(dir.path().join("monitor-run.8")).unwrap();
        assert!(
            run.contains("\\-\\-rules") && run.contains("\\-\\-capture"),
            "options are documented"
        );
    }

    #[test]
    fn completions_are_written_for_bash_zsh_and_fish() {
        let dir = tempfile::tempdir().unwrap();
        let written = completions(crate::Cli::command(), dir.path()).unwrap();
        let names: Vec<_> =
            written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["monitor.bash", "_monitor", "monitor.fish"]);
        let bash = std::fs::read_to_string(dir.path().join("monitor.bash")).unwrap();
        assert!(
            bash.contains("--rules") && bash.contains("replay"),
            "bash completes subcommands and options"
        );
        let fish = std::fs::read_to_string(dir.path().join("monitor.fish")).unwrap();
        assert!(fish.contains("-l capture"));
    }
}
