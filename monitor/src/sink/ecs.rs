//! The ECS values the lines carry beside their fields: `event.category` and `event.type`
//! of each action and record (ECS's allowed values), severity words, the observer.

use crate::event::{Action, Event};

/// `event.action`: the action, refined where the syscall alone says more — an open that can
/// modify the file is a `write`, and the setid family splits into `setuid` and `setgid`.
pub fn action_name(ev: &Event) -> &'static str {
    ev.action_name()
}

/// `event.category` and `event.type` of an alert's `event.action` (as [`action_name`]
/// names it). A Docker API request's type depends on the request: see [`docker_request`].
pub fn of_action(action: Action, name: &str) -> (&'static [&'static str], &'static [&'static str]) {
    const PROCESS: &[&str] = &["process"];
    const FILE: &[&str] = &["file"];
    match action {
        Action::Exec | Action::Fork => (PROCESS, &["start"]),
        Action::Exit => (PROCESS, &["end"]),
        Action::SetId => (PROCESS, &["change"]),
        Action::Signal | Action::Ptrace | Action::ProcessVm => (PROCESS, &["access"]),
        Action::Other => (PROCESS, &["info"]),
        Action::Open if name == "open" => (FILE, &["access"]),
        Action::Open
        | Action::Rename
        | Action::Truncate
        | Action::Chmod
        | Action::Chown
        | Action::SetXattr
        | Action::RemoveXattr => (FILE, &["change"]),
        Action::Unlink | Action::Rmdir => (FILE, &["deletion"]),
        Action::Link | Action::Symlink | Action::Mkdir | Action::Mknod => (FILE, &["creation"]),
        Action::Connect => (&["network"], &["connection", "start"]),
        Action::Payload => (&["network"], &["info"]),
        Action::UserMessage => (&["host"], &["info"]),
    }
}

/// A Docker API request: category `api`, and the type from what it asks: `creation` (a
/// create endpoint), `deletion` (DELETE), `access` (GET, HEAD), `change` (anything else).
pub fn docker_request(
    method: &str,
    path: &str,
) -> (&'static [&'static str], &'static [&'static str]) {
    let t: &'static [&'static str] = match method {
        _ if path.ends_with("/create") => &["creation"],
        "DELETE" => &["deletion"],
        "GET" | "HEAD" => &["access"],
        _ => &["change"],
    };
    (&["api"], t)
}

/// A user-space audit message, by record type: logins and authentication, sessions, account
/// management, commands run (sudo), the rest `host`.
pub fn user_message(rtype: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match rtype {
        "USER_START" | "USER_LOGIN" => (&["session"], &["start"]),
        "USER_END" | "USER_LOGOUT" => (&["session"], &["end"]),
        "USER_AUTH" | "USER_ACCT" | "USER_ERR" | "CRED_ACQ" | "CRED_DISP" | "CRED_REFR"
        | "USER_CHAUTHTOK" | "GRP_AUTH" => (&["authentication"], &["info"]),
        "ADD_USER" | "ADD_GROUP" => (&["iam"], &["creation"]),
        "DEL_USER" | "DEL_GROUP" => (&["iam"], &["deletion"]),
        "USER_MGMT" | "GRP_MGMT" | "GRP_CHAUTHTOK" | "ROLE_ASSIGN" | "ROLE_REMOVE" => {
            (&["iam"], &["change"])
        }
        "USER_CMD" => (&["process"], &["start"]),
        _ => (&["host"], &["info"]),
    }
}

/// `event.kind`, `event.category` and `event.type` of an in-band record, by its action.
pub fn of_record(action: &str) -> (&'static str, &'static [&'static str], &'static [&'static str]) {
    match action {
        "monitor-start" => ("event", &["process"], &["start"]),
        "monitor-stop" => ("event", &["process"], &["end"]),
        "rules-reloaded" | "rules-reload-failed" => ("event", &["configuration"], &["change"]),
        "outputs-reopened" => ("event", &["configuration"], &["change"]),
        "alerts-suppressed" => ("metric", &["intrusion_detection"], &["info"]),
        _ => ("metric", &["host"], &["info"]),
    }
}

/// `monitor.severity`: the word of an ECS severity number.
pub fn severity_word(n: u8) -> &'static str {
    match n {
        0..=20 => "info",
        21..=46 => "low",
        47..=72 => "medium",
        73..=98 => "high",
        _ => "critical",
    }
}

/// The `observer` object: this monitor, on `hostname`, as a `sensor` (run, replay) or a
/// `scanner` (check).
pub fn observer(hostname: &str, kind: &str) -> serde_json::Value {
    serde_json::json!({
        "product": "monitor",
        "vendor": "monitor",
        "version": env!("CARGO_PKG_VERSION"),
        "hostname": hostname,
        "type": kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ECS 9.4.0's allowed values (event.category, event.type).
    const CATEGORIES: &[&str] = &[
        "api",
        "authentication",
        "configuration",
        "database",
        "driver",
        "email",
        "file",
        "host",
        "iam",
        "intrusion_detection",
        "library",
        "malware",
        "network",
        "package",
        "process",
        "registry",
        "session",
        "threat",
        "vulnerability",
        "web",
    ];
    const TYPES: &[&str] = &[
        "access",
        "admin",
        "allowed",
        "change",
        "connection",
        "creation",
        "deletion",
        "denied",
        "end",
        "error",
        "group",
        "indicator",
        "info",
        "installation",
        "protocol",
        "start",
        "user",
    ];

    fn allowed(c: &[&str], t: &[&str]) {
        assert!(c.iter().all(|x| CATEGORIES.contains(x)), "{c:?}");
        assert!(t.iter().all(|x| TYPES.contains(x)), "{t:?}");
        assert!(!c.is_empty() && !t.is_empty());
    }

    #[test]
    fn every_action_and_record_has_allowed_values() {
        use Action::*;
        for a in [
            Exec,
            Connect,
            SetId,
            Fork,
            Exit,
            Open,
            Unlink,
            Rmdir,
            Rename,
            Link,
            Symlink,
            Mkdir,
            Mknod,
            Truncate,
            Chmod,
            Chown,
            SetXattr,
            RemoveXattr,
            Payload,
            Signal,
            Ptrace,
            ProcessVm,
            Other,
            UserMessage,
        ] {
            let (c, t) = of_action(a, a.as_str());
            allowed(c, t);
        }
        assert_eq!(of_action(Open, "open").1, ["access"]);
        assert_eq!(of_action(Open, "write").1, ["change"]);
        for (m, p) in [("POST", "/v1.41/containers/create"), ("GET", "/_ping"), ("DELETE", "/x")] {
            let (c, t) = docker_request(m, p);
            allowed(c, t);
        }
        for r in ["USER_CMD", "USER_LOGIN", "ADD_USER", "USER_AUTH", "ANOM_X"] {
            let (c, t) = user_message(r);
            allowed(c, t);
        }
        for r in ["monitor-start", "heartbeat", "events-lost", "alerts-suppressed", "monitor-stop"]
        {
            let (k, c, t) = of_record(r);
            assert!(["event", "metric"].contains(&k));
            allowed(c, t);
        }
        assert_eq!(
            [0, 21, 47, 73, 99].map(severity_word),
            ["info", "low", "medium", "high", "critical"]
        );
    }
}
