//! `monitor check`: the host's hardening posture, checked right now, read-only.
//!
//! Two profiles: the hardening guides' host items (network, users, docker, audit, kernel,
//! MAC, cluster services) and the CIS Docker Benchmark v1.6.0 (sections 1-5 and 7, in
//! `cis/`). A guide item that checks exactly what a CIS recommendation checks carries its CIS
//! id and belongs to both profiles, so `--profile all` never reports one thing twice.
//!
//! Each check reads host state (files under /proc, /sys, /etc, /run, Docker's state files
//! under its data root, and a few read-only commands: `auditctl -l`, `dockerd --version`,
//! never dockerd's API) and says pass, fail (with the evidence found and the remediation),
//! warn (a manual review is needed, and why), not applicable (and why), or unknown (what could
//! not be read: never a silent pass). A per-container check gives one finding per container
//! in Docker's state (running, created or stopped), a per-image check one per image.

pub mod audit;
pub mod cis;
pub mod docker;
pub mod docker_files;
pub mod docker_state;
pub mod eol;
pub mod host;
pub mod kernel;
pub mod mac;
pub mod network;
pub mod services;
pub mod users;

#[cfg(test)]
mod tests;

pub use host::Host;

use docker_state::{Container, Image};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// ECS `event.severity`: 0 info, 21 low, 47 medium, 73 high, 99 critical.
    pub fn ecs(self) -> u8 {
        match self {
            Severity::Info => 0,
            Severity::Low => 21,
            Severity::Medium => 47,
            Severity::High => 73,
            Severity::Critical => 99,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    /// A manual review is needed (the recommendation cannot be decided from files); the
    /// reason says what to review.
    Warn,
    /// The thing checked does not exist here (no sshd, no swarm, no TLS configured).
    NotApplicable,
    /// The check could not tell; the reason says why.
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Warn => "warn",
            Status::NotApplicable => "not-applicable",
            Status::Unknown => "unknown",
        }
    }
}

/// What one check found about one subject.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub status: Status,
    /// Why this result (always set for warn, not-applicable and unknown).
    pub reason: Option<String>,
    /// Facts found, one per line (`/run/docker.sock mode 0666`).
    pub evidence: Vec<String>,
}

impl Outcome {
    pub fn pass(evidence: Vec<String>) -> Outcome {
        Outcome { status: Status::Pass, reason: None, evidence }
    }
    pub fn fail(evidence: Vec<String>) -> Outcome {
        Outcome { status: Status::Fail, reason: None, evidence }
    }
    /// Fail when there is evidence against, pass otherwise.
    pub fn fail_if_any(against: Vec<String>) -> Outcome {
        Outcome::fail_or_pass(against, Vec::new)
    }
    /// Fail with the evidence against, or pass with what `passing` says when there is none.
    pub fn fail_or_pass(against: Vec<String>, passing: impl FnOnce() -> Vec<String>) -> Outcome {
        if against.is_empty() {
            Outcome::pass(passing())
        } else {
            Outcome::fail(against)
        }
    }
    /// Warn with what a person should confirm (`reason`), or pass when there is nothing.
    pub fn warn_or_pass(reason: &str, found: Vec<String>, passing: &str) -> Outcome {
        if found.is_empty() {
            Outcome::pass(vec![passing.to_string()])
        } else {
            Outcome::warn(reason, found)
        }
    }
    /// Pass or fail on one fact, with the evidence for each case.
    pub fn pass_if(ok: bool, pass: impl Into<String>, fail: impl Into<String>) -> Outcome {
        if ok {
            Outcome::pass(vec![pass.into()])
        } else {
            Outcome::fail(vec![fail.into()])
        }
    }
    pub fn warn(reason: impl Into<String>, evidence: Vec<String>) -> Outcome {
        Outcome { status: Status::Warn, reason: Some(reason.into()), evidence }
    }
    /// A recommendation that only a person can judge.
    pub fn manual(reason: impl Into<String>) -> Outcome {
        Outcome::warn(reason, Vec::new())
    }
    pub fn unknown(reason: impl fmt::Display) -> Outcome {
        Outcome { status: Status::Unknown, reason: Some(reason.to_string()), evidence: Vec::new() }
    }
    pub fn not_applicable(why: impl Into<String>) -> Outcome {
        Outcome { status: Status::NotApplicable, reason: Some(why.into()), evidence: Vec::new() }
    }
}

/// A CIS Docker Benchmark recommendation: its number, profile level (1 or 2) and title in
/// the benchmark (a guide check keeps its own title; this one is the benchmark's).
#[derive(Clone, Copy, Debug)]
pub struct Cis {
    pub id: &'static str,
    pub level: u8,
    pub title: &'static str,
}

pub const CIS_BENCHMARK: &str = "CIS Docker Benchmark v1.6.0";
pub const GUIDES: &str = "hardening-guides";

/// How a check looks at the host.
#[derive(Clone, Copy)]
pub enum Probe {
    /// Once for the host.
    Host(fn(&Host) -> Outcome),
    /// Once for the host, with a static argument (one function serving several items).
    HostArg(fn(&Host, &'static str) -> Outcome, &'static str),
    /// Once per container in Docker's state.
    Container(fn(&Host, &Container) -> Outcome),
    /// Once per image in Docker's image store.
    Image(fn(&Host, &Image) -> Outcome),
}

/// A check: what it is, and how to run it.
pub struct Check {
    pub id: &'static str,
    pub group: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub remediation: &'static str,
    /// The CIS recommendation this check decides, when it decides one exactly.
    pub cis: Option<Cis>,
    /// Whether it belongs to the hardening-guides profile.
    pub guide: bool,
    /// Where the recommendation is documented (empty: nowhere beyond this tool).
    pub reference: &'static str,
    /// The file (or directory) the check reads, for reports that need a location.
    pub file: &'static str,
    pub probe: Probe,
}

fn no_probe(_: &Host) -> Outcome {
    Outcome::unknown("no probe")
}

/// Defaults for a hardening-guides check: `Check { id: .., ..GUIDE }`.
pub const GUIDE: Check = Check {
    id: "",
    group: "",
    title: "",
    severity: Severity::Info,
    remediation: "",
    cis: None,
    guide: true,
    reference: "",
    file: "/",
    probe: Probe::Host(no_probe),
};

impl Check {
    /// `CIS Docker Benchmark v1.6.0` for a check that decides a CIS recommendation, else
    /// `hardening-guides`.
    pub fn ruleset(&self) -> &'static str {
        if self.cis.is_some() {
            CIS_BENCHMARK
        } else {
            GUIDES
        }
    }

    /// The profiles it belongs to.
    pub fn profiles(&self) -> Vec<&'static str> {
        let mut p = Vec::new();
        if self.cis.is_some() {
            p.push("cis-docker");
        }
        if self.guide {
            p.push(GUIDES);
        }
        p
    }

    pub fn per_container(&self) -> bool {
        matches!(self.probe, Probe::Container(_))
    }
}

/// What a finding is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Host,
    Container { id: String, name: String, image: String, state: &'static str, dir: String },
    Image { id: String, names: Vec<String>, file: String },
}

/// A check with its outcome for one subject.
pub struct Finding {
    pub check: &'static Check,
    pub outcome: Outcome,
    pub subject: Subject,
}

impl Finding {
    /// The file this finding is about (the container's or image's state file, else the
    /// check's own).
    pub fn location(&self) -> String {
        match &self.subject {
            Subject::Host => self.check.file.to_string(),
            Subject::Container { dir, .. } => format!("{dir}/hostconfig.json"),
            Subject::Image { file, .. } => file.clone(),
        }
    }
}

/// Every check, in report order: the guides' groups, then the CIS sections.
pub fn all() -> Vec<&'static Check> {
    let mut v: Vec<&'static Check> = Vec::new();
    for group in [
        network::CHECKS,
        users::CHECKS,
        docker::CHECKS,
        audit::CHECKS,
        kernel::CHECKS,
        mac::CHECKS,
        services::CHECKS,
    ] {
        v.extend(group.iter());
    }
    v.extend(cis::checks());
    v
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    All,
    CisDocker,
    HardeningGuides,
}

/// Which checks to run.
pub struct Selection {
    pub profile: Profile,
    /// CIS profile level: 1 keeps the level-1 recommendations, 2 (or none) all of them.
    pub level: Option<u8>,
    /// Ids, CIS ids (`5.4`), or prefixes (`DOCKER-`, `CIS-5.`, `5.`).
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

impl Default for Selection {
    fn default() -> Selection {
        Selection { profile: Profile::All, level: None, only: Vec::new(), skip: Vec::new() }
    }
}

/// Whether a selector names a check: its id, its CIS id (with or without `CIS-`), or a
/// prefix of either ending in `-` or `.`.
fn selects(check: &Check, sel: &str) -> bool {
    let sel = sel.to_ascii_uppercase();
    if check.id == sel || (sel.ends_with('-') && check.id.starts_with(&sel)) {
        return true;
    }
    let Some(cis) = check.cis else { return false };
    let bare = sel.strip_prefix("CIS-").unwrap_or(&sel);
    cis.id == bare || (bare.ends_with('.') && cis.id.starts_with(bare)) || (sel == "CIS-")
}

impl Selection {
    /// Whether the profile and level keep this check.
    pub fn keeps(&self, c: &Check) -> bool {
        let cis = c.cis.is_some_and(|cis| self.level.is_none_or(|l| cis.level <= l));
        match self.profile {
            Profile::All => c.guide || cis,
            Profile::CisDocker => cis,
            Profile::HardeningGuides => c.guide,
        }
    }

    /// The checks selected, in report order (CIS order under `--profile cis-docker`);
    /// an error names a selector that matches no check.
    pub fn checks(&self) -> Result<Vec<&'static Check>, String> {
        let checks = all();
        for sel in self.only.iter().chain(&self.skip) {
            if !checks.iter().any(|c| selects(c, sel)) {
                return Err(format!("no check has the id {sel:?} (see `monitor check --list`)"));
            }
        }
        let mut v: Vec<&'static Check> = checks
            .into_iter()
            .filter(|c| self.keeps(c))
            .filter(|c| self.only.is_empty() || self.only.iter().any(|s| selects(c, s)))
            .filter(|c| !self.skip.iter().any(|s| selects(c, s)))
            .collect();
        if self.profile == Profile::CisDocker {
            v.sort_by_key(|c| cis::sort_key(c.cis.map(|c| c.id).unwrap_or("")));
        }
        Ok(v)
    }
}

/// Run the selected checks.
pub fn run(host: &Host, selection: &Selection) -> Result<Vec<Finding>, String> {
    let mut out = Vec::new();
    for check in selection.checks()? {
        run_check(host, check, &mut out);
    }
    Ok(out)
}

fn run_check(host: &Host, check: &'static Check, out: &mut Vec<Finding>) {
    match check.probe {
        Probe::Host(f) => out.push(Finding { check, outcome: f(host), subject: Subject::Host }),
        Probe::HostArg(f, arg) => {
            out.push(Finding { check, outcome: f(host, arg), subject: Subject::Host })
        }
        Probe::Container(f) => {
            let found = host.containers();
            each(check, found, "no container in Docker's state", out, |c| (f(host, c), c.subject()))
        }
        Probe::Image(f) => {
            let found = host.images();
            each(check, found, "no image in Docker's image store", out, |i| {
                (f(host, i), i.subject())
            })
        }
    }
}

/// One finding per item (container, image), or one for the host when there is none to
/// look at (`none` says why) or they cannot be read.
fn each<T>(
    check: &'static Check,
    items: Result<&[T], &str>,
    none: &str,
    out: &mut Vec<Finding>,
    judge: impl Fn(&T) -> (Outcome, Subject),
) {
    let outcome = match items {
        Ok([]) => Outcome::not_applicable(none),
        Ok(items) => {
            for item in items {
                let (outcome, subject) = judge(item);
                out.push(Finding { check, outcome, subject });
            }
            return;
        }
        Err(e) => Outcome::unknown(e),
    };
    out.push(Finding { check, outcome, subject: Subject::Host });
}

/// Exit code 9: nothing failed, but some check could not tell (unknown).
pub const EXIT_ONLY_UNKNOWN: u8 = 9;

/// Exit code: 10 + the worst failed severity (info 10 ... critical 14) when anything
/// failed; else 9 when something is unknown; else 0 (pass, warn and not-applicable only).
pub fn exit_code(findings: &[Finding]) -> u8 {
    let worst = findings
        .iter()
        .filter(|f| f.outcome.status == Status::Fail)
        .map(|f| 10 + f.check.severity as u8)
        .max();
    match worst {
        Some(code) => code,
        None if findings.iter().any(|f| f.outcome.status == Status::Unknown) => EXIT_ONLY_UNKNOWN,
        None => 0,
    }
}
