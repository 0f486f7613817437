//! The settings file: every flag of `monitor run` has a key that works, flags win, and
//! every mistake is an error at its line and column.

use super::keys::{apply, from_args, lookup, Given, KEYS};
use super::*;
use crate::cli::{Cli, Command, RunArgs};
use clap::{CommandFactory, FromArgMatches};

/// `monitor run ARGS...`: the parsed flags and which were given.
fn run_args(args: &[&str]) -> (RunArgs, Given) {
    let argv = ["monitor", "run"].iter().chain(args);
    let m = Cli::command().try_get_matches_from(argv).unwrap();
    let given = Given::from_matches(m.subcommand_matches("run").unwrap());
    match Cli::from_arg_matches(&m).unwrap().command {
        Command::Run(a) => (a, given),
        _ => unreachable!(),
    }
}

/// The effective settings as the file would say them.
fn effective(file: &Settings, args: &[&str]) -> toml::Value {
    let (args, given) = run_args(args);
    toml::Value::try_from(from_args(&apply(file, args, &given).0)).unwrap()
}

/// For each key: a value in the file and a different one on the command line.
fn sample(key: &str) -> (&'static str, Vec<&'static str>) {
    match key {
        "rules" => (r#"["/etc/a.rules", "/etc/b.d"]"#, vec!["--rules", "/c.rules"]),
        "source" => (r#""audit""#, vec!["--source", "ebpf"]),
        "heartbeat" => ("7", vec!["--heartbeat", "0"]),
        "capture" => (r#""/var/lib/monitor/c.bin""#, vec!["--capture", "/tmp/x.bin"]),
        "audit_trail" => ("true", vec!["--audit-trail=false"]),
        "ring_buffer_size" => (r#""16M""#, vec!["--ring-buffer-size", "1M"]),
        "log_level" => (r#""debug""#, vec!["--log-level", "warn"]),
        "aggregate.window" => ("0", vec!["--aggregate-window", "60"]),
        "aggregate.keys" => ("5", vec!["--aggregate-keys", "9"]),
        "output.targets" => (
            r#"["file:/var/log/monitor/alerts.json", "syslog"]"#,
            vec!["--output", "syslog:unix:/run/x.sock"],
        ),
        "output.max_size" => (r#""3M""#, vec!["--output-max-size", "1G"]),
        "output.max_files" => ("2", vec!["--output-max-files", "30"]),
        "output.syslog_facility" => (r#""local3""#, vec!["--syslog-facility", "daemon"]),
        other => panic!("no sample for key {other}: add one here"),
    }
}

/// `key = value`, inside its table when the key is dotted.
fn file_setting(key: &str, value: &str) -> String {
    match key.split_once('.') {
        Some((table, name)) => format!("[{table}]\n{name} = {value}\n"),
        None => format!("{key} = {value}\n"),
    }
}

#[test]
fn every_flag_of_monitor_run_has_a_key() {
    let cli = Cli::command();
    let run = cli.find_subcommand("run").unwrap();
    let flags: Vec<&str> = run
        .get_arguments()
        .map(|a| a.get_id().as_str())
        .filter(|id| !["help", "config"].contains(id))
        .collect();
    assert!(flags.len() >= 12, "{flags:?}");
    for flag in &flags {
        assert!(
            KEYS.iter().any(|k| k.flag == *flag),
            "`monitor run` flag {flag} has no key in monitor.toml: add it to config::keys::KEYS"
        );
    }
    // --help names each flag's key.
    for arg in run.get_arguments() {
        let Some(k) = KEYS.iter().find(|k| k.flag == arg.get_id()) else { continue };
        let help =
            arg.get_long_help().or(arg.get_help()).map(|h| h.to_string()).unwrap_or_default();
        assert!(
            help.contains(&format!("`{}`", k.key)),
            "--help of {} names `{}`: {help}",
            k.flag,
            k.key
        );
    }
    for k in KEYS {
        assert!(
            flags.contains(&k.flag),
            "KEYS names {}, which `monitor run` does not have",
            k.flag
        );
    }
}

#[test]
fn each_key_sets_its_flag_and_a_flag_given_wins() {
    let defaults = effective(&Settings::default(), &[]);
    for k in KEYS {
        let (value, flag) = sample(k.key);
        let text = file_setting(k.key, value);
        let file = parse(&text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{text}: {e}"));
        let want: toml::Value =
            toml::from_str::<toml::Table>(&format!("v = {value}")).unwrap()["v"].clone();
        let from_file = effective(&file, &[]);
        assert_eq!(lookup(&from_file, k.key), Some(&want), "{} from the file", k.key);
        assert_ne!(lookup(&defaults, k.key), Some(&want), "the sample of {} is its default", k.key);
        let from_flag = effective(&Settings::default(), &flag);
        let with_both = effective(&file, &flag);
        assert_eq!(
            lookup(&with_both, k.key),
            lookup(&from_flag, k.key),
            "{:?} wins over {}",
            flag,
            k.key
        );
        assert_ne!(lookup(&with_both, k.key), Some(&want), "{:?} must differ from the file", flag);
        let (args, given) = run_args(&flag);
        assert_eq!(apply(&file, args, &given).1, vec![k.key], "reported as overridden");
    }
    // A switch given alone still means on.
    let (args, _) = run_args(&["--audit-trail", "--heartbeat", "1"]);
    assert!(args.presentation.audit_trail);
}

#[test]
fn the_shown_settings_are_a_settings_file_that_means_the_same() {
    let (args, _) =
        run_args(&["--rules", "/r", "--output", "file:/a/b.json", "--output", "stdout"]);
    let shown = from_args(&args).to_toml();
    let back = parse(&shown, Path::new("shown.toml")).unwrap();
    assert_eq!(back, from_args(&args), "{shown}");
}

#[test]
fn the_packaged_file_is_valid_and_says_what_the_package_needs() {
    let text = include_str!("../../../packaging/monitor.toml");
    let file = parse(text, Path::new("packaging/monitor.toml")).unwrap();
    assert_eq!(file.rules, Some(vec![PathBuf::from("/etc/monitor/rules.d")]));
    // Every other key is shown commented out, with its default.
    let defaults = toml::Value::try_from(from_args(&run_args(&[]).0)).unwrap();
    for k in KEYS.iter().filter(|k| k.key != "rules" && k.key != "capture") {
        let name = k.key.rsplit('.').next().unwrap();
        let default = lookup(&defaults, k.key).unwrap().to_string();
        let line = format!("#{name} = {default}");
        assert!(text.lines().any(|l| l == line), "packaging/monitor.toml lacks `{line}`");
    }
}

#[test]
fn an_unknown_key_is_an_error_at_its_line_and_column() {
    let e =
        parse("heartbeat = 5\n\n[output]\n  colour = 1\n", Path::new("/etc/m.toml")).unwrap_err();
    let e = e.to_string();
    assert!(e.starts_with("/etc/m.toml:4:3: unknown field `colour`"), "{e}");
    let e = parse("hearbeat = 5\n", Path::new("m.toml")).unwrap_err().to_string();
    assert!(e.starts_with("m.toml:1:1: unknown field `hearbeat`, expected one of"), "{e}");
    assert!(matches!(parse("[x]\n", Path::new("m")), Err(Error::Config(_))));
}

#[test]
fn a_bad_value_is_an_error_at_the_value() {
    for (text, at, says) in [
        ("heartbeat = \"30\"\n", "1:13", "invalid type: string \"30\", expected u64"),
        ("heartbeat = -1\n", "1:13", "invalid value"),
        (
            "source = \"kprobe\"\n",
            "1:10",
            "unknown value \"kprobe\": expected one of \"ebpf\", \"audit\"",
        ),
        ("[output]\ntargets = [\"stdout\", \"tcp:h\"]\n", "2:22", "unknown output \"tcp:h\""),
        ("[output]\ntargets = \"stdout\"\n", "2:11", "invalid type"),
        ("[output]\nmax_size = \"1T\"\n", "2:12", "size \"1T\""),
        ("[output]\nsyslog_facility = \"local9\"\n", "2:19", "unknown syslog facility"),
        ("[aggregate]\nkeys = 0\n", "2:8", "nonzero"),
        ("rules = \"/etc/x\"\n", "1:9", "invalid type"),
        ("heartbeat = 5\nheartbeat = 6\n", "2:1", "duplicate key"),
        ("log_level = \"loud\"\n", "1:13", "unknown value \"loud\""),
    ] {
        let e = parse(text, Path::new("f.toml")).unwrap_err();
        assert_eq!(e.exit_code(), monitor::error::exit::CONFIG);
        let e = e.to_string();
        assert!(e.starts_with(&format!("f.toml:{at}: ")), "{text:?} → {e}");
        assert!(e.contains(says), "{text:?} → {e}");
    }
}

#[test]
fn a_missing_default_file_means_the_defaults_and_a_missing_named_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("monitor.toml");
    let e = load(Some(&missing)).err().unwrap();
    assert_eq!(e.exit_code(), monitor::error::exit::CONFIG);
    assert!(e.to_string().contains(&missing.display().to_string()), "{e}");
    // The default path is absent on a build machine without the package; present, it must
    // at least parse.
    if !Path::new(DEFAULT_PATH).exists() {
        let loaded = load(None).unwrap();
        assert_eq!((loaded.path, loaded.settings), (None, Settings::default()));
    }
}

#[test]
fn relative_paths_are_taken_from_the_files_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("monitor.toml");
    std::fs::write(
        &file,
        "rules = [\"rules.d\", \"/abs.rules\"]\ncapture = \"c.bin\"\n[output]\ntargets = [\"file:log/a.json\", \"syslog:unix:s.sock\", \"syslog\", \"stdout\"]\n",
    )
    .unwrap();
    let s = load(Some(&file)).unwrap().settings;
    let d = dir.path();
    assert_eq!(s.rules, Some(vec![d.join("rules.d"), PathBuf::from("/abs.rules")]));
    assert_eq!(s.capture, Some(d.join("c.bin")));
    let targets: Vec<OutputTarget> = s.output.targets.unwrap().into_iter().map(|t| t.0).collect();
    assert_eq!(
        targets,
        [
            OutputTarget::File(d.join("log/a.json")),
            OutputTarget::Syslog(d.join("s.sock")),
            OutputTarget::Syslog("/dev/log".into()),
            OutputTarget::Stdout
        ]
    );
}

#[test]
fn sizes_may_be_written_as_bytes() {
    let s = parse("[output]\nmax_size = 1048576\n", Path::new("f")).unwrap();
    assert_eq!(s.output.max_size, Some(Text(Size(1 << 20))));
}
