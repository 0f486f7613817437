//! Text output (`monitor replay --output-format text`): one readable line per alert for a
//! person at a terminal, made from the alert's JSON line (so both say the same):
//!
//! `2023-11-14T22:13:20.100Z high     docker-config rename /etc/docker/a -> /etc/docker/b
//!  pid=200 exe=/usr/bin/mv user=root(0) host=web1`
//!
//! Every string in it is the event's data (paths, argv, names): characters that would act
//! on the terminal (control characters, escape sequences, bidirectional overrides) are
//! written as escapes (`\x1b` becomes `\u{1b}`), never as themselves. Colour (the severity,
//! the key) only when the caller says the output takes it.

use anstyle::{AnsiColor, Style};
use serde_json::Value;
use std::fmt::Write;

/// Appends `text` with everything that is not plainly printable escaped.
fn clean(out: &mut String, text: &str) {
    for c in text.chars() {
        let escaped = c.escape_debug();
        // escape_debug escapes quotes too: those print as they are.
        if escaped.len() == 1 || c == '"' || c == '\'' {
            out.push(c);
        } else {
            out.extend(escaped);
        }
    }
}

/// Appends `before`, `text` cleaned, and `after`.
fn put(out: &mut String, before: &str, text: &str, after: &str) {
    out.push_str(before);
    clean(out, text);
    out.push_str(after);
}

fn get<'v>(v: &'v Value, dotted: &str) -> &'v Value {
    dotted.split('.').fold(v, |v, k| v.get(k).unwrap_or(&Value::Null))
}

/// The items of the array at `dotted` (none when it is not an array).
fn items<'v>(v: &'v Value, dotted: &str) -> impl Iterator<Item = &'v Value> {
    get(v, dotted).as_array().into_iter().flatten()
}

fn text<'v>(v: &'v Value, dotted: &str) -> Option<&'v str> {
    get(v, dotted).as_str()
}

/// A severity word's style.
fn severity_style(word: &str) -> Style {
    let colour = |c: AnsiColor| Style::new().fg_color(Some(c.into()));
    match word {
        "critical" => colour(AnsiColor::BrightRed).bold(),
        "high" => colour(AnsiColor::Red),
        "medium" => colour(AnsiColor::Yellow),
        "low" => colour(AnsiColor::Cyan),
        _ => Style::new().dimmed(),
    }
}

/// One JSON line (an alert or an in-band record) as a text line, without its newline.
pub fn render(json: &[u8], colour: bool, out: &mut String) {
    out.clear();
    let Ok(v) = serde_json::from_slice::<Value>(json) else {
        clean(out, &String::from_utf8_lossy(json));
        return;
    };
    let paint = |out: &mut String, style: Style, s: &str| {
        if colour {
            let _ = write!(out, "{}", style.render());
            clean(out, s);
            let _ = write!(out, "{}", style.render_reset());
        } else {
            clean(out, s);
        }
    };
    let ts = text(&v, "@timestamp").unwrap_or("-");
    // Milliseconds are enough to read; the JSON keeps the rest.
    let ts = match ts.len() {
        30 if ts.ends_with('Z') => format!("{}Z", &ts[..23]),
        _ => ts.to_string(),
    };
    clean(out, &ts);
    out.push(' ');
    let action = text(&v, "event.action").unwrap_or("-");
    if text(&v, "event.dataset") == Some("monitor.status") {
        let mut rest = String::from("-- ");
        rest.push_str(action);
        if let Some(m) = v.get("monitor") {
            rest.push(' ');
            rest.push_str(&m.to_string());
        }
        paint(out, Style::new().dimmed(), &rest);
        return;
    }
    let severity = text(&v, "monitor.severity").unwrap_or("info");
    let severity = if text(&v, "event.kind") == Some("event") { "trail" } else { severity };
    paint(out, severity_style(severity), &format!("{severity:<8}"));
    out.push(' ');
    paint(out, Style::new().bold(), text(&v, "rule.id").unwrap_or("-"));
    if let Some(keys) = get(&v, "monitor.audit.key").as_array() {
        let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        if keys.first() != text(&v, "rule.id").as_ref() {
            put(out, " (audit key ", &keys.join(","), ")");
        }
    }
    put(out, " ", action, "");
    if text(&v, "event.outcome") == Some("failure") {
        let _ = write!(out, " failed({})", get(&v, "monitor.syscall.return"));
    }
    object(&v, out);
    if let Some(pid) = get(&v, "process.pid").as_u64() {
        let _ = write!(out, " pid={pid}");
    }
    let exe = text(&v, "process.executable").or(text(&v, "process.name"));
    if let Some(exe) = exe {
        put(out, " exe=", exe, "");
    }
    if let Some(id) = text(&v, "user.id") {
        match text(&v, "user.name") {
            Some(name) => {
                put(out, " user=", name, "");
                put(out, "(", id, ")");
            }
            None => put(out, " user=", id, ""),
        }
    }
    let container = text(&v, "container.name").or(text(&v, "container.id"));
    if let Some(c) = container {
        put(out, " container=", c, "");
    }
    if let Some(host) = text(&v, "host.name").or(text(&v, "host.hostname")) {
        put(out, " host=", host, "");
    }
}

/// What the alert is about: the request, the file or socket, the ids, the message, argv.
fn object(v: &Value, out: &mut String) {
    if let Some(method) = text(v, "http.request.method") {
        for s in [Some(method), text(v, "url.path")].into_iter().flatten() {
            put(out, " ", s, "");
        }
        let findings: Vec<&str> = items(v, "monitor.docker.findings")
            .filter_map(|f| f.get("key").and_then(Value::as_str))
            .collect();
        if !findings.is_empty() {
            put(out, " [", &findings.join(","), "]");
        }
        return;
    }
    if let Some(kind) = text(v, "monitor.audit.message.type") {
        put(out, " ", kind, "");
        if let Some(t) = text(v, "monitor.audit.message.text") {
            put(out, " '", t, "'");
        }
        return;
    }
    if let Some(before) = get(v, "monitor.setid.before.euid").as_u64() {
        let after = get(v, "monitor.setid.after.euid");
        let _ = write!(out, " euid {before}->{after}");
        return;
    }
    if text(v, "event.action") == Some("exec") {
        let args: Vec<&str> = items(v, "process.args").filter_map(Value::as_str).collect();
        if !args.is_empty() {
            put(out, " `", &args.join(" "), "`");
            return;
        }
    }
    if let Some(path) = text(v, "file.path") {
        put(out, " ", path, "");
        if let Some(to) = text(v, "monitor.file.new_path").or(text(v, "file.target_path")) {
            put(out, " -> ", to, "");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(json: Value, colour: bool) -> String {
        let mut out = String::new();
        render(json.to_string().as_bytes(), colour, &mut out);
        out
    }

    #[test]
    fn an_alert_is_one_readable_line() {
        let a = serde_json::json!({
            "@timestamp": "2023-11-14T22:13:20.100000000Z",
            "event": {"kind": "alert", "action": "rename", "outcome": "success", "dataset": "monitor.runtime"},
            "rule": {"id": "docker-config"},
            "monitor": {"severity": "high", "audit": {"key": ["docker"]}, "file": {"new_path": "/etc/docker/b"}},
            "process": {"pid": 200, "executable": "/usr/bin/mv", "name": "mv"},
            "user": {"id": "1001", "name": "alice"},
            "file": {"path": "/etc/docker/a"},
            "host": {"name": "web1"},
        });
        assert_eq!(
            line(a.clone(), false),
            "2023-11-14T22:13:20.100Z high     docker-config (audit key docker) rename \
             /etc/docker/a -> /etc/docker/b pid=200 exe=/usr/bin/mv user=alice(1001) host=web1"
        );
        let coloured = line(a, true);
        assert!(coloured.contains("\x1b[31mhigh"), "{coloured:?}");
    }

    #[test]
    fn what_the_event_named_cannot_act_on_the_terminal() {
        let a = serde_json::json!({
            "@timestamp": "t",
            "event": {"kind": "alert", "action": "write", "outcome": "failure", "dataset": "monitor.runtime"},
            "rule": {"id": "k"},
            "monitor": {"syscall": {"return": -13}},
            "process": {"pid": 1, "executable": "/tmp/\u{1b}[2J\u{7}x\u{202e}gpj.exe"},
            "file": {"path": "/etc/a\nb\r\u{9b}c\\d"},
        });
        let out = line(a, false);
        assert!(!out.chars().any(|c| c.is_control()), "{out:?}");
        assert!(!out.contains('\u{202e}') && !out.contains('\u{9b}'), "{out:?}");
        assert!(out.contains(r"/tmp/\u{1b}[2J\u{7}x\u{202e}gpj.exe"), "{out}");
        assert!(out.contains(r"/etc/a\nb\r\u{9b}c\\d"), "{out}");
        assert!(out.contains("info     k write failed(-13)"), "{out}");
    }
}
