//! `monitor rules export`: rule files as a file stock `auditctl -R` loads.
//!
//! The files are copied line by line, as written (comments and control lines included),
//! except for what auditd cannot take:
//! * a rule with `parent_exe=` (a monitor extension; auditd has no such field) is left out,
//!   as a comment saying why: auditd would apply it to every parent, which is another rule;
//! * `-F kind=...` (a monitor extension) is dropped: auditd records every match anyway;
//! * with `for_host`, a rule auditctl would refuse on this host (a watch whose directory, or
//!   a `dir=`/`path=`/`exe=` whose directory, does not exist here) is left out, as a
//!   comment, as auditctl stops at the first rule it cannot load.

use super::model::{Cond, PathField, Rule};
use super::RuleSet;
use std::collections::HashMap;
use std::path::Path;

/// What the export left out, for the summary on stderr.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Omitted {
    /// Rules with monitor-only fields.
    pub extensions: usize,
    /// Rules naming a directory this host lacks (`for_host`).
    pub absent: usize,
}

/// The files `texts` (name, content), whose rules `set` holds, as auditctl text.
pub fn export(texts: &[(String, String)], set: &RuleSet, for_host: bool) -> (String, Omitted) {
    let by_line: HashMap<(&str, u32), &Rule> =
        set.rules.iter().map(|r| ((&*r.source.file, r.source.line), r)).collect();
    let mut out = String::new();
    let mut omitted = Omitted::default();
    for (name, text) in texts {
        out.push_str(&format!("## {name}\n"));
        for (i, line) in text.lines().enumerate() {
            let rule = by_line.get(&(name.as_str(), i as u32 + 1));
            let Some(rule) = rule else {
                out.push_str(line);
                out.push('\n');
                continue;
            };
            if rule
                .conds
                .iter()
                .any(|c| matches!(c, Cond::Path { field: PathField::ParentExe, .. }))
            {
                omitted.extensions += 1;
                out.push_str(&format!(
                    "# monitor only (parent_exe= has no auditd equivalent): {line}\n"
                ));
                continue;
            }
            if for_host {
                if let Some(dir) = missing_directory(line) {
                    omitted.absent += 1;
                    out.push_str(&format!("# not on this host ({dir} does not exist; auditctl would refuse it): {line}\n"));
                    continue;
                }
            }
            out.push_str(&without_kind(line));
            out.push('\n');
        }
    }
    (out, omitted)
}

/// `line` without its `-F kind=...` fields.
fn without_kind(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    if !words.iter().any(|w| w.starts_with("kind=") || w.starts_with("-Fkind=")) {
        return line.to_string();
    }
    let mut kept = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        match (words[i], words.get(i + 1)) {
            ("-F", Some(next)) if next.starts_with("kind=") => i += 2,
            (w, _) if w.starts_with("-Fkind=") => i += 1,
            (w, _) => {
                kept.push(w);
                i += 1;
            }
        }
    }
    kept.join(" ")
}

/// The first directory `line` needs that does not exist here: a watch's parent, a `dir=`,
/// the parent of a `path=` or `exe=` (what auditctl resolves when it adds the rule).
fn missing_directory(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut needed = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let field = w
            .strip_prefix("-F")
            .filter(|f| !f.is_empty())
            .or_else(|| (*w == "-F").then(|| words.get(i + 1).copied()).flatten());
        if *w == "-w" {
            needed.extend(
                words.get(i + 1).and_then(|p| Path::new(p).parent()).map(Path::to_path_buf),
            );
        } else if let Some(f) = field {
            if let Some(d) = f.strip_prefix("dir=") {
                needed.push(Path::new(d).to_path_buf());
            } else if let Some(p) = f.strip_prefix("path=").or_else(|| f.strip_prefix("exe=")) {
                needed.extend(Path::new(p).parent().map(Path::to_path_buf));
            }
        }
    }
    needed.into_iter().find(|d| !d.is_dir()).map(|d| d.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::parse::SystemIds;

    /// `text` as the one file `t.rules`, exported (`host`: for this host).
    fn exported(text: &str, host: bool) -> (String, Omitted) {
        let texts = vec![("t.rules".to_string(), text.to_string())];
        let set = RuleSet::from_texts(
            texts.iter().map(|(n, t)| (n.clone(), t.as_str())),
            &SystemIds::load(),
        )
        .unwrap();
        export(&texts, &set, host)
    }

    #[test]
    fn extensions_are_left_out_or_dropped_and_the_rest_is_copied_as_written() {
        let text = "# a comment\n-b 8192\n\
            -a always,exit -F arch=b64 -S execve -F path=/usr/sbin/runc -F parent_exe=/usr/bin/containerd-shim-runc-v2 -F kind=event -k rt\n\
            -a always,exit -F arch=b64 -F path=/usr/bin/docker -F perm=r -F kind=event -k read\n\
            -w /etc/docker -p wa -k docker-config\n";
        let (out, omitted) = exported(text, false);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "## t.rules");
        assert_eq!(&lines[1..3], ["# a comment", "-b 8192"]);
        assert!(
            lines[3].starts_with(
                "# monitor only (parent_exe= has no auditd equivalent): -a always,exit"
            ),
            "{}",
            lines[3]
        );
        assert_eq!(
            lines[4],
            "-a always,exit -F arch=b64 -F path=/usr/bin/docker -F perm=r -k read"
        );
        assert_eq!(lines[5], "-w /etc/docker -p wa -k docker-config");
        assert_eq!(omitted, Omitted { extensions: 1, absent: 0 });
    }

    #[test]
    fn for_the_host_rules_naming_absent_directories_are_left_out() {
        let text = "-w /nonexistent-monitor-dir/x -p wa -k a\n-a always,exit -F arch=b64 -F dir=/nonexistent-monitor-dir -k b\n-w /etc/passwd -p wa -k c\n";
        let (out, omitted) = exported(text, true);
        let kept: Vec<&str> = out.lines().filter(|l| l.starts_with('-')).collect();
        assert_eq!(kept, ["-w /etc/passwd -p wa -k c"]);
        assert_eq!(omitted, Omitted { extensions: 0, absent: 2 });
        assert!(
            out.contains("# not on this host (/nonexistent-monitor-dir does not exist"),
            "{out}"
        );
    }
}
