//! `message`: one readable line per alert, for the SIEM analyst's event list. What comes
//! from the event (paths, argv, comm, tamper details) is data chosen by whoever made the
//! syscall: it is shortened, and its control characters and invalid UTF-8 are written as
//! `\xNN` (and `\` as `\\`), as are line separators and bidirectional overrides, so the
//! message is always one printable line that reads as it is.

use crate::detect::docker_api::DockerRequest;
use crate::enrich::container::ContainerInfo;
use crate::event::{Action, Event};
use std::fmt::Write as _;

/// How many characters of one untrusted string a message keeps.
const PART_MAX: usize = 160;

/// Append `b` to `out` printable: see the module doc. At most `max` characters of `b`,
/// then `…`.
pub fn push_escaped(out: &mut String, b: &[u8], max: usize) {
    let mut n = 0;
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if n == max {
                out.push('…');
                return;
            }
            match c {
                '\\' => out.push_str("\\\\"),
                // Control characters, line separators and bidirectional overrides.
                c if c.is_control()
                    || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
                {
                    let mut buf = [0u8; 4];
                    for byte in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(out, "\\x{byte:02x}");
                    }
                }
                c => out.push(c),
            }
            n += 1;
        }
        for byte in chunk.invalid() {
            if n == max {
                out.push('…');
                return;
            }
            let _ = write!(out, "\\x{byte:02x}");
            n += 1;
        }
    }
}

fn part(out: &mut String, b: Option<&[u8]>) {
    match b {
        Some(b) => push_escaped(out, b, PART_MAX),
        None => out.push('?'),
    }
}

/// What an alert's message says beside its event.
pub struct About<'a> {
    /// The rule's title (or key).
    pub label: &'a str,
    /// The effective user's name (or `uid N`).
    pub user: &'a str,
    pub docker: Option<&'a DockerRequest>,
    /// Self-defence: what reached for the monitor.
    pub tamper: Option<&'a str>,
    pub container: Option<&'a ContainerInfo>,
}

/// The message of an alert on `ev`:
/// `label: what by comm[pid] as user[ in container c][ (failed: ret)]`.
pub fn alert(ev: &Event, about: &About) -> String {
    let mut m = String::with_capacity(160);
    push_escaped(&mut m, about.label.as_bytes(), PART_MAX);
    m.push_str(": ");
    let action = super::ecs::action_name(ev);
    if let Some(d) = about.docker {
        let req = &d.request;
        let _ = write!(m, "{} ", req["method"].as_str().unwrap_or("?"));
        push_escaped(&mut m, req["path"].as_str().unwrap_or("?").as_bytes(), PART_MAX);
        m.push_str(" on the Docker API");
    } else if let Some(detail) = about.tamper {
        push_escaped(&mut m, detail.as_bytes(), PART_MAX);
    } else {
        match ev.action {
            Action::Exec => {
                m.push_str("exec ");
                part(&mut m, ev.path.as_deref());
                for arg in ev.argv.iter().skip(1).take(8) {
                    m.push(' ');
                    push_escaped(&mut m, arg, 40);
                }
                if ev.argv.len() > 9 {
                    m.push_str(" …");
                }
            }
            Action::Connect => {
                m.push_str("connect to ");
                part(&mut m, ev.path2.as_deref().or(ev.path.as_deref()));
            }
            Action::SetId => {
                let (b, n) = (&ev.old_ids, &ev.ids);
                let name = crate::vocab::name(ev.syscall as u32).unwrap_or(action);
                if crate::vocab::is_setgid(ev.syscall as u32) {
                    let _ =
                        write!(m, "{name} gid {} → {}, egid {} → {}", b.gid, n.gid, b.egid, n.egid);
                } else {
                    let _ =
                        write!(m, "{name} uid {} → {}, euid {} → {}", b.uid, n.uid, b.euid, n.euid);
                }
            }
            Action::UserMessage => {
                let rtype = ev.args[0] as u16;
                match crate::vocab::records::name(rtype) {
                    Some(t) => m.push_str(t),
                    None => {
                        let _ = write!(m, "UNKNOWN[{rtype}]");
                    }
                }
                m.push(' ');
                push_escaped(&mut m, &ev.payload, PART_MAX);
            }
            Action::Other => {
                m.push_str(crate::vocab::name(ev.syscall as u32).unwrap_or("syscall"));
            }
            _ => {
                m.push_str(action);
                m.push(' ');
                part(&mut m, ev.path.as_deref());
                if let Some(p2) = &ev.path2 {
                    m.push_str(" → ");
                    push_escaped(&mut m, p2, PART_MAX);
                }
            }
        }
    }
    m.push_str(" by ");
    push_escaped(&mut m, &ev.comm, 16);
    let _ = write!(m, "[{}] as ", ev.pid);
    push_escaped(&mut m, about.user.as_bytes(), 64);
    if let Some(c) = about.container {
        m.push_str(" in container ");
        match c.meta.as_ref().and_then(|m| m.name.as_deref()) {
            Some(name) => push_escaped(&mut m, name.as_bytes(), 64),
            None => m.push_str(&c.id[..c.id.len().min(12)]),
        }
    }
    if !ev.success() {
        let _ = write!(m, " (failed: {})", ev.ret);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_stays_one_printable_line() {
        let mut s = String::new();
        push_escaped(&mut s, b"a\nb\x1b[31m\\c\xff\xfe\xe2\x80\xa8 caf\xc3\xa9", 100);
        assert_eq!(s, "a\\x0ab\\x1b[31m\\\\c\\xff\\xfe\\xe2\\x80\\xa8 café");
        assert!(s.chars().all(|c| !c.is_control()));
        let mut s = String::new();
        push_escaped(&mut s, "x".repeat(500).as_bytes(), 10);
        assert_eq!(s, format!("{}…", "x".repeat(10)));
    }
}
