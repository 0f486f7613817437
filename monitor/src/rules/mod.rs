//! Rules: auditctl-syntax files → parsed rules → kernel filter plan + matcher (with an index
//! of the rules each event can match).

pub mod compile;
pub mod export;
mod fields;
pub mod index;
pub mod matcher;
pub mod metadata;
pub mod model;
pub mod parse;

use model::{Diagnostic, Rule};
use parse::{IdResolver, Line, Placement};
use std::path::{Path, PathBuf};

/// The key of the built-in self-defence detections (`detect::tamper`), and of the watches
/// on the monitor's own files.
pub const SELF_DEFENCE_KEY: &str = "monitor-tamper";
/// `rule.source` of the self-defence detections and watches.
pub const SELF_DEFENCE_SOURCE: &str = "builtin:self-defence";

/// Watch rules for the monitor's own files, as auditctl text (they go first, so that no
/// user `never` rule can hide them).
fn self_defence_watches(exe: Option<&Path>, rule_files: &[String]) -> String {
    let mut text = String::from("# the monitor's own binary and rule files\n");
    for p in exe.into_iter().map(|p| p.display().to_string()).chain(rule_files.iter().cloned()) {
        if !p.contains(char::is_whitespace) && p.starts_with('/') {
            text.push_str(&format!("-w {p} -p wa -k {SELF_DEFENCE_KEY}\n"));
        }
    }
    text
}

/// The default rule pack, built into the binary (files under the repository's `rules/`, in
/// name order, as a directory of them loads).
pub const BUILTIN: &[(&str, &str)] = &[
    ("builtin:docker-runtime.rules", include_str!("../../../rules/docker-runtime.rules")),
    ("builtin:docker.rules", include_str!("../../../rules/docker.rules")),
    ("builtin:hardening.rules", include_str!("../../../rules/hardening.rules")),
    ("builtin:privilege.rules", include_str!("../../../rules/privilege.rules")),
    ("builtin:selinux.rules", include_str!("../../../rules/selinux.rules")),
];

/// A loaded, validated rule set.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub warnings: Vec<Diagnostic>,
    /// The files read, in order.
    pub files: Vec<String>,
    /// Rules put in front of the files' (the self-defence watches), as text: a capture
    /// records it so that a replay applies the same.
    pub prelude: Option<String>,
}

/// Loading failed: every error found, in file order.
#[derive(Debug)]
pub struct RuleErrors(pub Vec<Diagnostic>);

impl std::fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleErrors {}

/// Why rules could not be loaded: a path that cannot be read, or the rules' errors.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Invalid(#[from] RuleErrors),
    /// A rules path that is missing or unreadable.
    #[error("{0}")]
    Path(String),
}

impl RuleSet {
    /// A fingerprint of the loaded rules (each rule's source and meaning), FNV-1a, hex: the
    /// same files give the same hash on every host.
    pub fn hash(&self) -> String {
        let mut text = String::new();
        for r in &self.rules {
            text.push_str(&r.source.to_string());
            text.push(' ');
            text.push_str(&r.describe());
            text.push('\n');
        }
        format!("{:016x}", monitor_common::fnv1a(text.as_bytes()))
    }

    /// The set as an audit source evaluates it: rules that are inactive only because the
    /// eBPF sensors cannot see what they select (user messages, `exclude`, syscalls without
    /// a hook) become active. Returns how many did.
    pub fn for_audit(mut self) -> (RuleSet, usize) {
        let mut activated = 0;
        for r in self.rules.iter_mut().filter(|r| r.audit_only) {
            r.inactive = None;
            r.audit_only = false;
            activated += 1;
        }
        (self, activated)
    }

    /// The load's warnings as a run logs them, once per kind rather than once per rule:
    /// the rules only audit sources can evaluate in one line (none when `audit`: they are
    /// evaluated), the rules that never match in another, the rest as they are (once).
    /// `monitor rules check` prints every warning with its line instead.
    pub fn warning_summary(&self, audit: bool) -> Vec<String> {
        let mut audit_only = Vec::new();
        let mut never = Vec::new();
        let mut out: Vec<String> = Vec::new();
        for w in &self.warnings {
            match self.rules.iter().find(|r| r.source == w.source) {
                Some(r) if r.audit_only => audit_only.push(w.source.to_string()),
                Some(Rule { inactive: Some(why), .. }) => {
                    never.push(format!("{} ({why})", w.source))
                }
                _ => {
                    let text = w.to_string();
                    if !out.contains(&text) {
                        out.push(text);
                    }
                }
            }
        }
        if !audit && !audit_only.is_empty() {
            out.push(format!(
                "{} rule(s) select what no eBPF hook observes and are inactive with the eBPF \
                 source; --source audit and audit log replays evaluate them: {}",
                audit_only.len(),
                audit_only.join(", ")
            ));
        }
        if !never.is_empty() {
            out.push(format!(
                "{} rule(s) are loaded but never match (monitor rules check shows why): {}",
                never.len(),
                never.join(", ")
            ));
        }
        out
    }

    /// Parse `(name, text)` sources in order. Any error fails the whole set.
    pub fn from_texts<'a>(
        texts: impl IntoIterator<Item = (String, &'a str)>,
        ids: &dyn IdResolver,
    ) -> std::result::Result<RuleSet, RuleErrors> {
        let mut set = RuleSet::default();
        let mut errors = Vec::new();
        for (name, text) in texts {
            let (lines, report) = parse::parse_text(text, &name, ids);
            errors.extend(report.errors);
            set.warnings.extend(report.warnings);
            set.files.push(name);
            for (line, _) in lines {
                match line {
                    Line::Rule(rule, Placement::Append) => set.rules.push(*rule),
                    Line::Rule(rule, Placement::Prepend) => set.rules.insert(0, *rule),
                    Line::DeleteAll => set.rules.clear(),
                    Line::Delete(rule) => {
                        if let Some(pos) = set.rules.iter().position(|r| same_rule(r, &rule)) {
                            set.rules.remove(pos);
                        }
                    }
                    Line::Control => {}
                }
            }
        }
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(RuleErrors(errors))
        }
    }

    /// Put the self-defence watches (the monitor's binary and rule files) in front of every
    /// other rule, where no `never` rule or `-D` of the user's can remove them.
    pub fn with_self_defence(
        self,
        ids: &dyn IdResolver,
    ) -> std::result::Result<RuleSet, RuleErrors> {
        let exe = std::fs::canonicalize("/proc/self/exe").ok();
        let text = self_defence_watches(exe.as_deref(), &self.files);
        self.with_prelude(text, ids)
    }

    /// Put the rules of `text` in front of every other rule.
    pub fn with_prelude(
        mut self,
        text: String,
        ids: &dyn IdResolver,
    ) -> std::result::Result<RuleSet, RuleErrors> {
        let own = RuleSet::from_texts([(SELF_DEFENCE_SOURCE.to_string(), text.as_str())], ids)?;
        let mut rules = own.rules;
        rules.append(&mut self.rules);
        self.rules = rules;
        self.prelude = Some(text);
        Ok(self)
    }

    /// The built-in default pack.
    pub fn builtin(ids: &dyn IdResolver) -> std::result::Result<RuleSet, RuleErrors> {
        RuleSet::from_texts(BUILTIN.iter().map(|(n, t)| (n.to_string(), *t)), ids)
    }

    /// Load files and directories (every `*.rules` file inside, sorted by name).
    pub fn load(paths: &[PathBuf], ids: &dyn IdResolver) -> Result<RuleSet, LoadError> {
        let files = expand(paths)?;
        let mut texts = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).map_err(|e| {
                LoadError::Path(format!("cannot read rules file {}: {e}", f.display()))
            })?;
            texts.push((f.display().to_string(), text));
        }
        Ok(RuleSet::from_texts(texts.iter().map(|(n, t)| (n.clone(), t.as_str())), ids)?)
    }
}

fn same_rule(a: &Rule, b: &Rule) -> bool {
    a.list == b.list
        && a.action == b.action
        && a.syscalls == b.syscalls
        && a.conds == b.conds
        && a.keys == b.keys
}

/// Files named directly, and the `*.rules` files of directories.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    for p in paths {
        let md = std::fs::metadata(p)
            .map_err(|e| LoadError::Path(format!("rules path {}: {e}", p.display())))?;
        if md.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| LoadError::Path(format!("cannot list {}: {e}", p.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|e| e == "rules") && f.is_file())
                .collect();
            entries.sort();
            if entries.is_empty() {
                return Err(LoadError::Path(format!(
                    "rules directory {} has no *.rules files",
                    p.display()
                )));
            }
            out.extend(entries);
        } else {
            out.push(Path::new(p).to_path_buf());
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests;
