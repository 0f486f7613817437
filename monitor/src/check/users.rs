//! Local users: root-equivalent groups, sudo, empty or locked passwords, passwordless sudo.

use super::{Check, Host, Outcome, Probe, Severity, GUIDE};

pub const CHECKS: &[Check] = &[
    Check {
        id: "USR-DOCKER-GROUP",
        group: "users",
        title: "No user is in the docker or rkt group (root-equivalent)",
        severity: Severity::High,
        remediation: "Remove users from the docker and rkt groups (`gpasswd -d USER docker`); on Flatcar/CoreOS remove `core` too. Grant access through sudo with an audit trail instead.",
        file: "/etc/group",
        probe: Probe::Host(docker_group),
        ..GUIDE
    },
    Check {
        id: "USR-SUDO-GROUP",
        group: "users",
        title: "No user is in wheel, sudo or admin",
        severity: Severity::Medium,
        remediation: "Review members of wheel/sudo/admin (the default `core` user especially) and remove those who need no root.",
        file: "/etc/group",
        probe: Probe::Host(sudo_group),
        ..GUIDE
    },
    Check {
        id: "USR-EMPTY-PASSWORD",
        group: "users",
        title: "No account with a login shell has an empty password",
        severity: Severity::Critical,
        remediation: "Set a password or lock the account (`passwd -l USER`), or give it /usr/sbin/nologin.",
        file: "/etc/shadow",
        probe: Probe::Host(empty_password),
        ..GUIDE
    },
    Check {
        id: "USR-LOCKED-SHELL",
        group: "users",
        title: "Accounts with a login shell are not left with a locked password",
        severity: Severity::Low,
        remediation: "Give accounts that must not log in /usr/sbin/nologin; a locked password still allows key-based logins.",
        file: "/etc/shadow",
        probe: Probe::Host(locked_with_shell),
        ..GUIDE
    },
    Check {
        id: "USR-NOPASSWD-SUDO",
        group: "users",
        title: "No sudoers rule grants root without a password",
        severity: Severity::High,
        remediation: "Remove NOPASSWD from /etc/sudoers and /etc/sudoers.d/* (Flatcar/CoreOS: /etc/sudoers.d/waagent, 90-cloud-init-users).",
        file: "/etc/sudoers",
        probe: Probe::Host(nopasswd),
        ..GUIDE
    },
];

fn members(h: &Host, groups: &[&str]) -> Outcome {
    let all = match h.groups() {
        Ok(g) => g,
        Err(e) => return Outcome::unknown(format!("cannot read /etc/group or /etc/passwd: {e}")),
    };
    let mut against = Vec::new();
    for g in groups {
        if let Some(m) = all.get(*g).filter(|m| !m.is_empty()) {
            let core = if m.iter().any(|u| u == "core") { " (including core)" } else { "" };
            against.push(format!("group {g}: {}{core}", m.join(", ")));
        }
    }
    Outcome::fail_if_any(against)
}

fn docker_group(h: &Host) -> Outcome {
    members(h, &["docker", "rkt"])
}

fn sudo_group(h: &Host) -> Outcome {
    members(h, &["wheel", "sudo", "admin"])
}

fn password_state(h: &Host, want: fn(&str) -> bool, what: &str) -> Outcome {
    let users = match h.users() {
        Ok(u) => u,
        Err(e) => return Outcome::unknown(format!("cannot read /etc/passwd: {e}")),
    };
    let shadow = match h.shadow() {
        Ok(s) => s,
        Err(e) => return Outcome::unknown(format!("cannot read /etc/shadow (needs root): {e}")),
    };
    Outcome::fail_if_any(
        users
            .iter()
            .filter(|u| u.has_login_shell())
            .filter(|u| shadow.get(&u.name).is_some_and(|p| want(p)))
            .map(|u| format!("{} (uid {}, shell {}) {what}", u.name, u.uid, u.shell))
            .collect(),
    )
}

fn empty_password(h: &Host) -> Outcome {
    password_state(h, |p| p.is_empty(), "has an empty password")
}

fn locked_with_shell(h: &Host) -> Outcome {
    password_state(h, |p| p.starts_with('!') || p == "*", "has a locked password but a login shell")
}

fn nopasswd(h: &Host) -> Outcome {
    let mut files = vec![h.path("/etc/sudoers")];
    files.extend(h.dir("/etc/sudoers.d"));
    if !files[0].exists() && files.len() == 1 {
        return Outcome::not_applicable("no /etc/sudoers");
    }
    let mut against = Vec::new();
    for f in files {
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Outcome::unknown(format!("cannot read {}: {e}", f.display())),
        };
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if !l.starts_with('#') && l.contains("NOPASSWD") {
                against.push(format!("{}:{}: {l}", f.display(), i + 1));
            }
        }
    }
    Outcome::fail_if_any(against)
}
