//! Flags and keys: which key of monitor.toml each `monitor run` flag has, the file laid
//! under the flags (a flag given on the command line wins), and the effective settings
//! written back as a file (`monitor config show`).

use super::{Aggregate, Output, Settings, Size, Text};
use crate::cli::RunArgs;
use clap::parser::ValueSource;
use clap::ArgMatches;
use std::collections::HashSet;

/// A flag of `monitor run` and its key in the file.
pub struct Key {
    /// The flag's clap id (its field in [`RunArgs`]).
    pub flag: &'static str,
    /// The key, dotted for a table's (`output.targets`).
    pub key: &'static str,
    /// Put the file's value, when it has one, into the flags.
    set: fn(&Settings, &mut RunArgs),
}

/// Every flag of `monitor run` with its key. `--config` names the file itself and has none.
pub const KEYS: &[Key] = &[
    Key { flag: "rules", key: "rules", set: |f, a| put(&f.rules, &mut a.rules) },
    Key { flag: "source", key: "source", set: |f, a| put(&text(&f.source), &mut a.source) },
    Key { flag: "heartbeat", key: "heartbeat", set: |f, a| put(&f.heartbeat, &mut a.heartbeat) },
    Key {
        flag: "capture",
        key: "capture",
        set: |f, a| put(&f.capture.clone().map(Some), &mut a.capture),
    },
    Key {
        flag: "audit_trail",
        key: "audit_trail",
        set: |f, a| put(&f.audit_trail, &mut a.presentation.audit_trail),
    },
    Key {
        flag: "ring_buffer_size",
        key: "ring_buffer_size",
        set: |f, a| put(&text(&f.ring_buffer_size), &mut a.ring_buffer_size),
    },
    Key {
        flag: "log_level",
        key: "log_level",
        set: |f, a| put(&text(&f.log_level), &mut a.log_level),
    },
    Key {
        flag: "aggregate_window",
        key: "aggregate.window",
        set: |f, a| put(&f.aggregate.window, &mut a.presentation.aggregate_window),
    },
    Key {
        flag: "aggregate_keys",
        key: "aggregate.keys",
        set: |f, a| put(&f.aggregate.keys.map(|k| k.get()), &mut a.presentation.aggregate_keys),
    },
    Key {
        flag: "targets",
        key: "output.targets",
        set: |f, a| {
            let targets =
                f.output.targets.as_ref().map(|t| t.iter().map(|t| t.0.clone()).collect());
            put(&targets, &mut a.output.targets)
        },
    },
    Key {
        flag: "output_max_size",
        key: "output.max_size",
        set: |f, a| put(&f.output.max_size.as_ref().map(|s| s.0 .0), &mut a.output.output_max_size),
    },
    Key {
        flag: "output_max_files",
        key: "output.max_files",
        set: |f, a| put(&f.output.max_files, &mut a.output.output_max_files),
    },
    Key {
        flag: "syslog_facility",
        key: "output.syslog_facility",
        set: |f, a| put(&text(&f.output.syslog_facility), &mut a.output.syslog_facility),
    },
];

fn put<T: Clone>(from: &Option<T>, to: &mut T) {
    if let Some(v) = from {
        *to = v.clone();
    }
}

fn text<T: Clone>(t: &Option<Text<T>>) -> Option<T> {
    t.as_ref().map(|t| t.0.clone())
}

/// The flags given on the command line (clap ids), as opposed to clap's defaults.
#[derive(Clone, Debug, Default)]
pub struct Given(HashSet<String>);

impl Given {
    /// The flags `matches` (of `run` or `config show`) holds from the command line.
    pub fn from_matches(matches: &ArgMatches) -> Given {
        Given(
            matches
                .ids()
                .filter(|id| matches.value_source(id.as_str()) == Some(ValueSource::CommandLine))
                .map(|id| id.as_str().to_string())
                .collect(),
        )
    }

    pub fn has(&self, id: &str) -> bool {
        self.0.contains(id)
    }
}

/// `args` with each key the file sets, unless its flag was given; and the keys the file
/// sets that a flag overrides (worth a log line: a unit's drop-in may shadow the file).
pub fn apply(file: &Settings, mut args: RunArgs, given: &Given) -> (RunArgs, Vec<&'static str>) {
    let written = toml::Value::try_from(file).ok();
    let mut overridden = Vec::new();
    for k in KEYS {
        if !given.has(k.flag) {
            (k.set)(file, &mut args);
        } else if written.as_ref().is_some_and(|w| lookup(w, k.key).is_some()) {
            overridden.push(k.key);
        }
    }
    (args, overridden)
}

/// The value at a dotted key.
pub fn lookup<'v>(v: &'v toml::Value, dotted: &str) -> Option<&'v toml::Value> {
    dotted.split('.').try_fold(v, |v, k| v.get(k))
}

/// Every setting of `args` as the file would say it (`monitor config show`).
pub fn from_args(args: &RunArgs) -> Settings {
    let p = &args.presentation;
    let o = &args.output;
    Settings {
        rules: Some(args.rules.clone()),
        source: Some(Text(args.source)),
        heartbeat: Some(args.heartbeat),
        capture: args.capture.clone(),
        audit_trail: Some(p.audit_trail),
        ring_buffer_size: Some(Text(args.ring_buffer_size)),
        log_level: Some(Text(args.log_level)),
        aggregate: Aggregate {
            window: Some(p.aggregate_window),
            keys: std::num::NonZeroU64::new(p.aggregate_keys),
        },
        output: Output {
            targets: Some(o.targets.iter().cloned().map(Text).collect()),
            max_size: Some(Text(Size(o.output_max_size))),
            max_files: Some(o.output_max_files),
            syslog_facility: Some(Text(o.syslog_facility)),
        },
    }
}
