//! `monitor check` reports: a grouped table for people (`table`), one ECS JSON line per
//! finding for a SIEM (`json`), SARIF 2.1.0 for code-scanning dashboards (`sarif`) and JUnit
//! XML for CI pipelines (`junit`). Each writer takes the same [`Report`].

pub mod json;
pub mod junit;
pub mod sarif;
pub mod table;

use crate::check::{cis, Check, Finding, Profile, Status, Subject};

/// What every writer needs besides the findings.
pub struct Report<'a> {
    pub findings: &'a [Finding],
    /// The profile asked for: under `cis-docker` findings are headed by benchmark section.
    pub profile: Profile,
    /// When the checks ran (RFC 3339 UTC).
    pub timestamp: String,
    /// How long they took.
    pub seconds: f64,
    pub host: HostInfo,
}

impl Report<'_> {
    /// The heading a finding is listed under.
    pub fn heading(&self, f: &Finding) -> String {
        match f.check.cis {
            Some(c) if self.profile == Profile::CisDocker || !f.check.guide => {
                cis::section(c.id).to_string()
            }
            _ => f.check.group.to_string(),
        }
    }

    pub fn count(&self, status: Status) -> usize {
        self.findings.iter().filter(|f| f.outcome.status == status).count()
    }
}

/// The machine checked (the one `monitor check` runs on), in ECS terms.
pub use crate::enrich::host::HostInfo;

/// `name (id12, state)` of a container, `image tag (id12)` of an image, "" for the host.
pub fn subject_label(s: &Subject) -> String {
    let short = |id: &str| id.trim_start_matches("sha256:").chars().take(12).collect::<String>();
    match s {
        Subject::Host => String::new(),
        Subject::Container { id, name, state, .. } => {
            format!("container {name} ({}, {state})", short(id))
        }
        Subject::Image { id, names, .. } => {
            if names.is_empty() {
                format!("image {}", short(id))
            } else {
                format!("image {} ({})", names.join(", "), short(id))
            }
        }
    }
}

/// A check's id as the reports show it: a guide check that decides a CIS recommendation
/// names it too (`DOCKER-ICC (CIS 2.2)`).
pub fn label(c: &Check) -> String {
    match c.cis {
        Some(cis) if c.guide => format!("{} (CIS {})", c.id, cis.id),
        _ => c.id.to_string(),
    }
}

/// One line saying what a finding found (for messages and summaries).
pub fn summary(f: &Finding) -> String {
    let c = f.check;
    let id = label(c);
    let subject = subject_label(&f.subject);
    let about = if subject.is_empty() { String::new() } else { format!(" [{subject}]") };
    let detail = f.outcome.reason.clone().or_else(|| f.outcome.evidence.first().cloned());
    let detail = detail.map(|d| format!(": {d}")).unwrap_or_default();
    format!("{} {id} {}{about}{detail}", f.outcome.status.as_str(), c.title)
}

#[cfg(test)]
mod tests {
    /// A format's escaping of a string it carries.
    type Escape = fn(&str) -> String;

    /// What each format cannot carry as it is: (format, its escaping, input, output).
    #[test]
    fn each_format_escapes_what_it_cannot_carry() {
        let cases: [(&str, Escape, &str, &str); 6] = [
            (
                "junit: XML stays well-formed",
                super::junit::esc,
                "a<b>&\"c'",
                "a&lt;b&gt;&amp;&quot;c&apos;",
            ),
            ("junit", super::junit::esc, "x\u{1}y\nz", "x\u{FFFD}y\nz"),
            (
                "sarif: URIs",
                super::sarif::file_uri,
                "/etc/docker/daemon.json",
                "file:///etc/docker/daemon.json",
            ),
            ("sarif", super::sarif::file_uri, "/a b/ä#", "file:///a%20b/%C3%A4%23"),
            (
                "table: control characters shown, not sent",
                super::table::clean,
                "/srv/\u{1b}[2Jx\n",
                "/srv/\\u{1b}[2Jx\\n",
            ),
            ("table", super::table::clean, "plain", "plain"),
        ];
        for (what, escape, input, want) in cases {
            assert_eq!(escape(input), want, "{what}: {input:?}");
        }
    }
}
