//! README.md's operator sections ("Install", "Run as a service", "Send to your SIEM") as
//! written: every `monitor run` command line's flags are accepted and mean what the text
//! says (checked through `monitor config show`, which parses the same flags without
//! starting: the commands write to /var/log and /dev/log), every `monitor config` command
//! runs, every TOML block is a valid settings file (the first one says what the packaged file
//! says), the Filebeat, Vector and Fluent Bit snippets are YAML with the paths and keys
//! shown, and the rsyslog snippet passes `rsyslogd -N1`. `monitor rules check
//! /etc/monitor/rules.d` and `monitor config check` on an installed package run in
//! tests/e2e/package.rs; `systemctl` cannot run here (PID 1 is not systemd).

use monitor_tests::{monitor_bin, scratch_dir};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap()
}

/// The text of `## title` up to the next `## ` heading.
fn section(text: &str, title: &str) -> String {
    let start =
        text.find(&format!("\n## {title}\n")).unwrap_or_else(|| panic!("no section {title}"));
    let rest = &text[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    rest[..end].to_string()
}

/// The operator sections together.
fn operator_sections() -> String {
    let text = readme();
    ["Install", "Run as a service", "Send to your SIEM"].map(|t| section(&text, t)).join("\n")
}

/// Indented command lines starting with `monitor `, without their trailing comment.
fn commands(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter_map(|l| l.strip_prefix("    monitor "))
        .map(|l| l.split(" #").next().unwrap().split_whitespace().map(String::from).collect())
        .collect()
}

/// The fenced blocks opened with ```` ```lang ```` (`""`: a bare fence).
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines() {
        match (line.strip_prefix("```"), &mut open) {
            (Some(_), Some((l, body))) => {
                if l == lang {
                    out.push(std::mem::take(body));
                }
                open = None;
            }
            (Some(l), None) => open = Some((l.trim().to_string(), String::new())),
            (None, Some((_, body))) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

fn monitor(args: &[String]) -> Output {
    Command::new(monitor_bin()).args(args).output().expect("running monitor")
}

fn ok(args: &[String]) -> String {
    let o = monitor(args);
    assert!(o.status.success(), "monitor {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_monitor_command_in_the_operator_sections_is_accepted_as_written() {
    let cmds = commands(&operator_sections());
    let runs: Vec<&Vec<String>> = cmds.iter().filter(|c| c[0] == "run").collect();
    assert!(runs.len() >= 3, "{cmds:?}");
    for run in runs {
        // The same flags, settled as `monitor run` settles them (an empty settings file:
        // the README's command does not depend on the host's).
        let mut show = strings(&["config", "show", "--config", "/dev/null"]);
        show.extend(run[1..].iter().cloned());
        let shown = ok(&show);
        let outputs: Vec<String> =
            run.windows(2).filter(|w| w[0] == "--output").map(|w| format!("{:?}", w[1])).collect();
        let targets = shown.lines().find(|l| l.starts_with("targets = ")).unwrap();
        assert_eq!(targets, format!("targets = [{}]", outputs.join(", ")), "monitor {run:?}");
        if let Some(w) = run.windows(2).find(|w| w[0] == "--output-max-size") {
            assert!(shown.contains(&format!("max_size = \"{}\"", w[1])), "{shown}");
        }
    }
    let configs: Vec<&Vec<String>> = cmds.iter().filter(|c| c[0] == "config").collect();
    assert!(configs.len() >= 4, "{cmds:?}");
    for c in configs {
        ok(c);
    }
}

#[test]
fn every_toml_block_is_a_settings_file_and_the_first_says_what_the_package_ships() {
    let dir = scratch_dir("readme-toml");
    let tomls = blocks(&operator_sections(), "toml");
    assert!(tomls.len() >= 2, "{tomls:?}");
    let shown = |file: &Path| -> String {
        let out = ok(&strings(&["config", "show", "--config", file.to_str().unwrap()]));
        out.lines().filter(|l| !l.starts_with("# The settings")).collect::<Vec<_>>().join("\n")
    };
    let mut settings = Vec::new();
    for (i, block) in tomls.iter().enumerate() {
        let f = dir.join(format!("block{i}.toml"));
        std::fs::write(&f, block).unwrap();
        settings.push(shown(&f));
    }
    let packaged = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/monitor.toml");
    assert_eq!(settings[0], shown(&packaged), "the README's keys are the packaged file's");
    assert!(
        settings[1].contains(r#"targets = ["file:/var/log/monitor/alerts.json", "syslog"]"#),
        "{}",
        settings[1]
    );
}

/// A YAML block parsed by Debian's python3-yaml, as JSON.
fn yaml(block: &str) -> Value {
    let o = Command::new("/usr/bin/python3")
        .args(["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(block.as_bytes())?;
            c.wait_with_output()
        })
        .expect("python3 with python3-yaml (cargo xtask setup --test-deps)");
    assert!(o.status.success(), "not YAML: {}\n{block}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn the_shipper_snippets_are_yaml_reading_the_file_output() {
    let text = section(&readme(), "Send to your SIEM");
    let snippets = blocks(&text, "yaml");
    assert_eq!(snippets.len(), 3, "Filebeat, Vector, Fluent Bit");
    let glob = "/var/log/monitor/alerts.json*";
    let file = yaml(&snippets[0]);
    let input = &file["filebeat.inputs"][0];
    assert_eq!((&input["type"], &input["paths"][0]), (&"filestream".into(), &glob.into()));
    assert_eq!(input["parsers"][0]["ndjson"]["target"], "");
    assert_eq!(input["prospector.scanner.exclude_files"][0], "\\.gz$");

    let vector = yaml(&snippets[1]);
    let source = &vector["sources"]["monitor"];
    assert_eq!((&source["type"], &source["include"][0]), (&"file".into(), &glob.into()));
    let remap = &vector["transforms"]["monitor_json"];
    assert_eq!(remap["inputs"][0], "monitor");
    assert_eq!(remap["source"], ". = parse_json!(.message)");

    let fluent = yaml(&snippets[2]);
    let tail = &fluent["pipeline"]["inputs"][0];
    assert_eq!((&tail["name"], &tail["path"]), (&"tail".into(), &glob.into()));
    assert_eq!(fluent["parsers"][0]["name"], tail["parser"], "the parser it names is defined");
    assert_eq!(fluent["parsers"][0]["format"], "json");
    // The glob covers what the file output writes.
    assert!(text.contains("--output file:/var/log/monitor/alerts.json "));
}

#[test]
fn the_rsyslog_snippet_passes_rsyslogd_config_check() {
    let rsyslogd = "/usr/sbin/rsyslogd";
    if !Path::new(rsyslogd).exists() {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "{rsyslogd} is missing");
        eprintln!("SKIPPED: {rsyslogd} is missing (cargo xtask setup --test-deps)");
        return;
    }
    let text = section(&readme(), "Send to your SIEM");
    let snippet = blocks(&text, "")
        .into_iter()
        .find(|b| b.starts_with("# /etc/rsyslog.d/monitor.conf"))
        .expect("the rsyslog snippet");
    let dir = scratch_dir("readme-rsyslog");
    // Debian's rsyslog.conf, including the snippet as /etc/rsyslog.d/monitor.conf would be.
    let debian = std::fs::read_to_string("/etc/rsyslog.conf").expect("Debian's rsyslog.conf");
    let include = "$IncludeConfig /etc/rsyslog.d/*.conf";
    assert!(debian.contains(include), "{debian}");
    std::fs::create_dir_all(dir.join("rsyslog.d")).unwrap();
    std::fs::write(dir.join("rsyslog.d/monitor.conf"), &snippet).unwrap();
    let conf = dir.join("rsyslog.conf");
    let ours = format!("$IncludeConfig {}/rsyslog.d/*.conf", dir.display());
    std::fs::write(&conf, debian.replace(include, &ours)).unwrap();
    let o = Command::new(rsyslogd).args(["-N1", "-f"]).arg(&conf).output().unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "rsyslogd -N1: {said}");
    assert!(!said.contains("error"), "{said}");
}
