//! Posture findings as JUnit XML, for CI pipelines: a test suite per heading (guide group or
//! CIS section), a test case per finding. A failure is `<failure>`, an unknown is `<error>`
//! (the check could not run), warn and not-applicable are `<skipped>` with the reason
//! (manual review, or why it does not apply); evidence goes to `<system-out>`.
//!
//! The XML is written here rather than with an XML crate: it is a handful of elements, and
//! the escaping must also drop the control characters XML 1.0 cannot carry at all (a
//! container name or a file's content can hold them), which plain entity escaping does not.

use super::{label, subject_label, Report};
use crate::check::{Finding, Status};
use std::io::Write;

/// Text for an XML attribute or element: the five entities escaped, characters XML 1.0
/// forbids replaced by U+FFFD.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn case(f: &Finding) -> String {
    let c = f.check;
    let id = label(c);
    let subject = subject_label(&f.subject);
    let name = if subject.is_empty() {
        format!("{id} {}", c.title)
    } else {
        format!("{id} {} [{subject}]", c.title)
    };
    let o = &f.outcome;
    let reason = o.reason.clone().unwrap_or_default();
    let mut x = format!(
        "    <testcase classname=\"monitor.check.{}\" name=\"{}\" time=\"0\">\n",
        esc(c.group),
        esc(&name)
    );
    match o.status {
        Status::Pass => {}
        Status::Fail => {
            let message = o.evidence.first().cloned().unwrap_or_else(|| c.title.to_string());
            let body = format!("{}\nfix: {}", o.evidence.join("\n"), c.remediation);
            x.push_str(&format!(
                "      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
                esc(&message),
                c.severity.as_str(),
                esc(&body)
            ));
        }
        Status::Unknown => {
            x.push_str(&format!("      <error message=\"{}\" type=\"unknown\"/>\n", esc(&reason)))
        }
        Status::Warn => x.push_str(&format!(
            "      <skipped message=\"{}\"/>\n",
            esc(&format!("manual review: {reason}"))
        )),
        Status::NotApplicable => x.push_str(&format!(
            "      <skipped message=\"{}\"/>\n",
            esc(&format!("not applicable: {reason}"))
        )),
    }
    if !o.evidence.is_empty() && o.status != Status::Fail {
        x.push_str(&format!("      <system-out>{}</system-out>\n", esc(&o.evidence.join("\n"))));
    }
    x.push_str("    </testcase>\n");
    x
}

pub fn write(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    // Suites in order of first appearance.
    let mut suites: Vec<(String, Vec<&Finding>)> = Vec::new();
    for f in r.findings {
        let h = r.heading(f);
        match suites.iter_mut().find(|(name, _)| *name == h) {
            Some((_, v)) => v.push(f),
            None => suites.push((h, vec![f])),
        }
    }
    let count = |fs: &[&Finding], s: Status| fs.iter().filter(|f| f.outcome.status == s).count();
    let all: Vec<&Finding> = r.findings.iter().collect();
    let skipped = |fs: &[&Finding]| count(fs, Status::Warn) + count(fs, Status::NotApplicable);
    writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
    writeln!(
        out,
        "<testsuites name=\"monitor check\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\" timestamp=\"{}\">",
        all.len(),
        count(&all, Status::Fail),
        count(&all, Status::Unknown),
        skipped(&all),
        r.seconds,
        esc(&r.timestamp)
    )?;
    for (name, fs) in &suites {
        writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" hostname=\"{}\" timestamp=\"{}\">",
            esc(name),
            fs.len(),
            count(fs, Status::Fail),
            count(fs, Status::Unknown),
            skipped(fs),
            esc(&r.host.name),
            esc(&r.timestamp)
        )?;
        for f in fs {
            out.write_all(case(f).as_bytes())?;
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")?;
    out.flush()
}
