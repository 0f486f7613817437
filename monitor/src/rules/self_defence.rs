//! Built-in detections of tampering with the monitor itself: signals, ptrace and memory
//! access aimed at it (reported by the kernel), writes to its binary and rule files (watch
//! rules added in front of the user's), and runs of auditctl or bpftool that remove audit
//! rules or BPF programs, links and map entries.

use crate::event::{Action, Event};
use std::path::Path;

pub const KEY: &str = "monitor-tamper";
pub const SOURCE: &str = "builtin:self-defence";

/// Watch rules for the monitor's own files, as auditctl text (they go first, so that no
/// user `never` rule can hide them).
pub fn watch_rules(exe: Option<&Path>, rule_files: &[String]) -> String {
    let mut text = String::from("# the monitor's own binary and rule files\n");
    for p in exe.into_iter().map(|p| p.display().to_string()).chain(rule_files.iter().cloned()) {
        if !p.contains(char::is_whitespace) && p.starts_with('/') {
            text.push_str(&format!("-w {p} -p wa -k {KEY}\n"));
        }
    }
    text
}

/// What a tamper event or exec means, or `None` when it is not tampering.
pub fn judge(ev: &Event) -> Option<String> {
    match ev.action {
        Action::Signal => Some(format!("signal {} sent to the monitor", ev.args[0] as i32)),
        Action::Ptrace => Some(format!("ptrace request {} on the monitor", ev.args[0] as i64)),
        Action::ProcessVm => Some(format!("{} on the monitor's memory", if ev.syscall == 311 { "process_vm_writev" } else { "process_vm_readv" })),
        Action::Exec if ev.success() => exec(ev),
        _ => None,
    }
}

fn exec(ev: &Event) -> Option<String> {
    let exe = ev.path.as_deref()?;
    let name = exe.rsplit(|&b| b == b'/').next()?;
    let args: Vec<String> = ev.argv.iter().skip(1).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let has = |w: &str| args.iter().any(|a| a == w);
    match name {
        b"auditctl" => {
            let removing = has("-D") || has("-d") || has("-W") || args.windows(2).any(|w| w[0] == "-e" && w[1] == "0");
            removing.then(|| format!("auditctl {}: removes audit rules or disables audit", args.join(" ")))
        }
        b"bpftool" => {
            let removing = ["detach", "delete", "update", "unload"].iter().any(|w| has(w));
            removing.then(|| format!("bpftool {}: changes BPF programs, links or maps", args.join(" ")))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec_of(path: &str, args: &[&str]) -> Event {
        let mut ev = crate::rules::tests::event_at(Action::Exec, 59, path);
        ev.path = Some(path.as_bytes().to_vec());
        ev.argv = std::iter::once(path).chain(args.iter().copied()).map(|a| a.as_bytes().to_vec()).collect();
        ev
    }

    #[test]
    fn removing_runs_of_auditctl_and_bpftool() {
        assert!(judge(&exec_of("/usr/sbin/auditctl", &["-D"])).is_some());
        assert!(judge(&exec_of("/sbin/auditctl", &["-e", "0"])).is_some());
        assert!(judge(&exec_of("/usr/sbin/auditctl", &["-l"])).is_none());
        assert!(judge(&exec_of("/usr/sbin/auditctl", &["-e", "1"])).is_none());
        assert!(judge(&exec_of("/usr/sbin/bpftool", &["link", "detach", "id", "4"])).is_some());
        assert!(judge(&exec_of("/usr/sbin/bpftool", &["map", "update", "id", "7", "key", "0"])).is_some());
        assert!(judge(&exec_of("/usr/sbin/bpftool", &["prog", "show"])).is_none());
        assert!(judge(&exec_of("/usr/bin/true", &["-D"])).is_none());
    }

    #[test]
    fn watch_rules_cover_binary_and_rule_files() {
        let t = watch_rules(Some(Path::new("/usr/local/bin/monitor")), &["/etc/monitor/a.rules".into(), "builtin:docker.rules".into()]);
        assert!(t.contains("-w /usr/local/bin/monitor -p wa -k monitor-tamper\n"));
        assert!(t.contains("-w /etc/monitor/a.rules -p wa"));
        assert!(!t.contains("builtin"));
    }
}
