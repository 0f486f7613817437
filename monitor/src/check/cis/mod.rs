//! The CIS Docker Benchmark v1.6.0: every recommendation of sections 1-5 and 7 (section 6
//! is two organisational reviews), numbered and titled as in the benchmark, with its
//! profile level. Recommendations a guide check already decides exactly (`DOCKER-ICC` is
//! 2.2, ...) are that check, not a second one. What cannot be decided from files is reported
//! as `warn` with what to review; per-container recommendations give one finding per
//! container in Docker's state, per-image ones one per image.
//!
//! Checks by section: `host` (1), `daemon` (2), `files` (3), `images` (4), `isolation` and
//! `runtime` (5), `swarm` (5.1 and 7).

pub mod daemon;
pub mod files;
pub mod host;
pub mod images;
pub mod isolation;
pub mod runtime;
pub mod swarm;

#[cfg(test)]
mod fixture_tests;

use super::{Check, Host, Outcome};

/// Where the benchmark is published.
pub const REFERENCE: &str = "https://www.cisecurity.org/benchmark/docker";

/// A CIS check: `cis!(ID, LEVEL, SEVERITY, GROUP, FILE, TITLE, REMEDIATION, PROBE)`; its
/// check id is `CIS-ID`.
macro_rules! cis {
    ($id:literal, $level:literal, $sev:ident, $group:expr, $file:expr, $title:literal, $fix:expr, $probe:expr $(,)?) => {
        $crate::check::Check {
            id: concat!("CIS-", $id),
            group: $group,
            title: $title,
            severity: $crate::check::Severity::$sev,
            remediation: $fix,
            cis: Some($crate::check::Cis { id: $id, level: $level, title: $title }),
            guide: false,
            reference: $crate::check::cis::REFERENCE,
            file: $file,
            probe: $probe,
        }
    };
}
pub(crate) use cis;

/// Every CIS-only check, in benchmark order.
pub fn checks() -> Vec<&'static Check> {
    let mut v: Vec<&'static Check> = [
        host::CHECKS,
        daemon::CHECKS,
        files::CHECKS,
        images::CHECKS,
        swarm::SECTION_5,
        isolation::CHECKS,
        runtime::CHECKS,
        swarm::CHECKS,
    ]
    .into_iter()
    .flatten()
    .collect();
    v.sort_by_key(|c| sort_key(c.cis.map(|c| c.id).unwrap_or("")));
    v
}

/// `5.12` → [5, 12], for benchmark order.
pub fn sort_key(id: &str) -> Vec<u32> {
    id.split('.').filter_map(|p| p.parse().ok()).collect()
}

/// The benchmark's section a recommendation is in, for headings.
pub fn section(id: &str) -> &'static str {
    match id.split('.').next() {
        Some("1") => "CIS 1 Host configuration",
        Some("2") => "CIS 2 Docker daemon configuration",
        Some("3") => "CIS 3 Docker daemon configuration files",
        Some("4") => "CIS 4 Container images and build file",
        Some("5") => "CIS 5 Container runtime",
        Some("7") => "CIS 7 Docker Swarm configuration",
        _ => "CIS",
    }
}

/// A recommendation only a person can judge: the argument says what to review.
pub fn manual(_: &Host, what: &'static str) -> Outcome {
    Outcome::manual(what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{all, Probe};
    use std::collections::BTreeMap;

    /// The benchmark's recommendations per section (v1.6.0), against which coverage is
    /// counted: 20, 18, 24, 12, 32, (6: 2, not covered), 9.
    const TOTALS: &[(&str, usize)] =
        &[("1", 20), ("2", 18), ("3", 24), ("4", 12), ("5", 32), ("7", 9)];

    #[test]
    fn every_recommendation_once_with_a_well_formed_id() {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for c in all() {
            let Some(cis) = c.cis else { continue };
            assert!(seen.insert(cis.id, c.id).is_none(), "CIS {} decided twice", cis.id);
            assert!(cis.level == 1 || cis.level == 2, "{}", cis.id);
            if !c.guide {
                assert_eq!(c.id, format!("CIS-{}", cis.id));
            }
            assert!(!c.title.starts_with("Ensure") || c.title.len() > 20);
        }
        for (section, total) in TOTALS {
            let n = seen.keys().filter(|id| id.split('.').next() == Some(section)).count();
            assert_eq!(n, *total, "section {section}");
        }
        // Ids in each section are contiguous: 1.1.1..1.1.18, 1.2.1, 1.2.2, 2.1..2.18, ...
        let mut ids: Vec<&&str> = seen.keys().collect();
        ids.sort_by_key(|i| sort_key(i));
        for w in ids.windows(2) {
            let (a, b) = (sort_key(w[0]), sort_key(w[1]));
            let next_in_same = a.len() == b.len()
                && a[..a.len() - 1] == b[..b.len() - 1]
                && b[b.len() - 1] == a[a.len() - 1] + 1;
            let new_group = b[b.len() - 1] == 1 || (a[0] != b[0]);
            assert!(next_in_same || new_group, "{} then {}", w[0], w[1]);
        }
    }

    #[test]
    fn manual_items_say_what_to_review() {
        let host = crate::check::tests::fixture("cis-manual", &[]);
        for c in checks() {
            if let Probe::HostArg(f, arg) = c.probe {
                let o = f(&host, arg);
                if o.status == crate::check::Status::Warn {
                    assert!(o.reason.is_some_and(|r| r.len() > 30), "{}", c.id);
                }
            }
        }
    }
}
