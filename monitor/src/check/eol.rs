//! Docker Engine's release lines and their end of life, shipped with the binary
//! (`docker_eol.json`: its source and the date its figures were taken are in the file),
//! and the verdict on an installed engine version against them.

use serde::Deserialize;
use std::sync::OnceLock;

#[derive(Deserialize)]
struct Table {
    as_of: String,
    releases: Vec<Release>,
}

#[derive(Deserialize, Clone, Debug)]
pub struct Release {
    /// `20.10`, `26.1`, `29`: the version prefix of the line.
    pub cycle: String,
    pub released: String,
    /// End of life (`YYYY-MM-DD`); `None` while not announced.
    pub eol: Option<String>,
    /// The newest patch release of the line when the table was taken.
    pub latest: String,
}

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        serde_json::from_str(include_str!("docker_eol.json")).expect("docker_eol.json is valid")
    })
}

/// The date the shipped figures were taken.
pub fn as_of() -> &'static str {
    &table().as_of
}

/// What the table says about a version.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Its line is maintained; `behind` names the newer patch release of the line, if any.
    Supported { release: Release, behind: Option<String> },
    /// Its line reached end of life on `release.eol`.
    EndOfLife { release: Release },
    /// Not in the table: unparsable, or newer than the table.
    NotListed(String),
}

impl PartialEq for Release {
    fn eq(&self, o: &Release) -> bool {
        self.cycle == o.cycle
    }
}

/// `20.10.24+dfsg1` → [20, 10, 24].
fn numbers(v: &str) -> Vec<u64> {
    let core = v.trim_start_matches('v').split(['+', '-', '~', ' ']).next().unwrap_or("");
    core.split('.').map_while(|p| p.parse().ok()).collect()
}

/// The version in `dockerd --version`'s output (`Docker version 20.10.24+dfsg1, build 5d6db84`).
pub fn parse_dockerd_version(out: &str) -> Option<String> {
    let rest = out.trim().strip_prefix("Docker version ")?;
    Some(rest.split(',').next()?.trim().to_string()).filter(|v| !numbers(v).is_empty())
}

/// Judge `version` on `today` (`YYYY-MM-DD`).
pub fn judge(version: &str, today: &str) -> Verdict {
    let v = numbers(version);
    if v.len() < 2 {
        return Verdict::NotListed(format!("cannot read a version number in {version:?}"));
    }
    // The longest cycle that is a prefix of the version (26.1 before 26).
    let found = table()
        .releases
        .iter()
        .filter(|r| {
            let c = numbers(&r.cycle);
            !c.is_empty() && v.starts_with(&c)
        })
        .max_by_key(|r| numbers(&r.cycle).len());
    let Some(r) = found else {
        let newest = table().releases.iter().map(|r| numbers(&r.cycle)).max().unwrap_or_default();
        let why = if v > newest {
            "newer than every release line in the table"
        } else {
            "not a release line in the table"
        };
        return Verdict::NotListed(format!("{version}: {why} (figures as of {})", as_of()));
    };
    if r.eol.as_deref().is_some_and(|eol| eol <= today) {
        return Verdict::EndOfLife { release: r.clone() };
    }
    let behind = (numbers(&r.latest) > v).then(|| r.latest.clone());
    Verdict::Supported { release: r.clone(), behind }
}

/// `YYYY-MM-DD` one year after `date`.
pub fn year_after(date: &str) -> String {
    match date.split_once('-') {
        Some((y, rest)) => match y.parse::<u32>() {
            Ok(y) => format!("{}-{rest}", y + 1),
            Err(_) => date.to_string(),
        },
        None => date.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_against_the_shipped_table() {
        assert_eq!(
            parse_dockerd_version("Docker version 20.10.24+dfsg1, build 5d6db84\n").as_deref(),
            Some("20.10.24+dfsg1")
        );
        assert_eq!(parse_dockerd_version("something else"), None);
        match judge("20.10.24+dfsg1", "2026-12-06") {
            Verdict::EndOfLife { release } => {
                assert_eq!(release.eol.as_deref(), Some("2023-12-10"))
            }
            v => panic!("{v:?}"),
        }
        // 20.10 was maintained in 2022, but 20.10.24 was not its last patch release.
        match judge("20.10.24", "2022-01-01") {
            Verdict::Supported { behind, .. } => assert_eq!(behind.as_deref(), Some("20.10.27")),
            v => panic!("{v:?}"),
        }
        // 26.1 is its own line, not 26.0's.
        match judge("26.1.5", "2024-08-01") {
            Verdict::Supported { release, behind } => {
                assert_eq!(release.cycle, "26.1");
                assert_eq!(behind, None);
            }
            v => panic!("{v:?}"),
        }
        assert!(matches!(judge("29.7.2", "2026-12-06"), Verdict::Supported { behind: None, .. }));
        assert!(
            matches!(judge("99.0.0", "2026-12-06"), Verdict::NotListed(w) if w.contains("newer"))
        );
        assert!(matches!(judge("x", "2026-12-06"), Verdict::NotListed(_)));
        assert_eq!(year_after("2026-08-22"), "2027-08-22");
        assert!(as_of().starts_with("20"));
    }
}
