//! Built-in detections of tampering with the monitor itself: signals, ptrace and memory
//! access aimed at it (reported by the kernel), writes to its binary and rule files (watch
//! rules added in front of the user's), and runs of auditctl or bpftool that remove audit
//! rules or BPF programs, links and map entries.

use crate::event::{Action, Event};

pub use crate::rules::{SELF_DEFENCE_KEY as KEY, SELF_DEFENCE_SOURCE as SOURCE};
/// A stop request (SIGTERM, SIGINT) from a process that is neither the monitor's parent nor
/// the service manager: an orderly stop, but one worth a look.
pub const UNEXPECTED_STOP_KEY: &str = "monitor-stop-unexpected";

/// `si_code` of a signal the kernel sent on its own behalf (a terminal's ^C or ^Z, a
/// parent-death signal).
const SI_KERNEL: u64 = 0x80;

/// What a tamper event or exec means: the key to alert under and the detail, or `None`
/// when it is not tampering. `parent` is the monitor's parent process (the one that started
/// it: a shell, `timeout`, a service manager).
pub fn judge(ev: &Event, parent: u32) -> Option<(&'static str, String)> {
    match ev.action {
        Action::Signal => signal(ev, parent),
        _ => other(ev).map(|detail| (KEY, detail)),
    }
}

/// A signal sent to the monitor (args: signal, target, result, `si_code`).
///
/// * What the monitor answers without harm (SIGHUP reloads the rules, SIGUSR1 reopens its
///   outputs, SIGCONT, SIGWINCH, SIGCHLD, SIGURG, SIGPIPE) is nothing to report.
/// * A stop request (SIGINT, SIGTERM) from the parent, from the service manager (pid 1) or
///   from the kernel on a terminal's behalf is an orderly stop: its `monitor-stop` record
///   says who asked. From anyone else, it is reported as [`UNEXPECTED_STOP_KEY`].
/// * Anything else (SIGKILL, SIGSTOP, SIGQUIT, SIGUSR2, ...) stops or kills the monitor
///   without its last records: tampering, unless the parent or the service manager sent
///   it (a service manager's final SIGKILL) or the kernel did on a terminal's behalf.
fn signal(ev: &Event, parent: u32) -> Option<(&'static str, String)> {
    let sig = ev.args[0] as i32;
    let by_kernel = ev.args[3] == SI_KERNEL;
    let entitled = ev.pid == parent || ev.pid == 1 || by_kernel;
    let name = signal_name(sig);
    match sig {
        libc::SIGHUP | libc::SIGUSR1 | libc::SIGCONT | libc::SIGWINCH | libc::SIGCHLD | libc::SIGURG | libc::SIGPIPE => None,
        libc::SIGINT | libc::SIGTERM if entitled => None,
        libc::SIGINT | libc::SIGTERM => Some((
            UNEXPECTED_STOP_KEY,
            format!("{name} sent to the monitor by a process that is neither its parent (pid {parent}) nor the service manager: it stops"),
        )),
        libc::SIGQUIT | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU if by_kernel => None,
        _ if entitled => None,
        _ => Some((KEY, format!("{name} sent to the monitor by a process that is neither its parent (pid {parent}) nor the service manager"))),
    }
}

/// `SIGTERM` for 15, `signal 40` for what has no name.
fn signal_name(sig: i32) -> String {
    const NAMES: [&str; 32] = [
        "",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match NAMES.get(sig as usize) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => format!("signal {sig}"),
    }
}

/// ptrace, memory access, and runs of auditctl or bpftool that remove rules or programs.
fn other(ev: &Event) -> Option<String> {
    match ev.action {
        Action::Ptrace => Some(format!("ptrace request {} on the monitor", ev.args[0] as i64)),
        Action::ProcessVm => Some(format!(
            "{} on the monitor's memory",
            crate::vocab::name(ev.syscall as u32).unwrap_or("process_vm_readv")
        )),
        Action::Exec if ev.success() => exec(ev),
        _ => None,
    }
}

fn exec(ev: &Event) -> Option<String> {
    let exe = ev.path.as_deref()?;
    let name = exe.rsplit(|&b| b == b'/').next()?;
    let args: Vec<String> =
        ev.argv.iter().skip(1).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let has = |w: &str| args.iter().any(|a| a == w);
    match name {
        b"auditctl" => {
            let removing = has("-D")
                || has("-d")
                || has("-W")
                || args.windows(2).any(|w| w[0] == "-e" && w[1] == "0");
            removing.then(|| {
                format!("auditctl {}: removes audit rules or disables audit", args.join(" "))
            })
        }
        b"bpftool" => {
            let removing = ["detach", "delete", "update", "unload"].iter().any(|w| has(w));
            removing
                .then(|| format!("bpftool {}: changes BPF programs, links or maps", args.join(" ")))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal_from(sender: u32, sig: i32, si_code: u64) -> Event {
        let mut ev = crate::rules::tests::event_at(Action::Signal, -1, "");
        ev.pid = sender;
        ev.args = [sig as u64, 4242, 0, si_code];
        ev
    }

    /// An orderly stop (its parent, the service manager, a terminal's ^C) is no alert; the
    /// same request from a stranger is reported, and a kill or stop by a stranger is
    /// tampering. Signals the monitor answers (reload, reopen, continue) are nothing.
    #[test]
    fn signals_are_judged_by_what_they_do_and_who_sent_them() {
        let parent = 500;
        let judged =
            |sender, sig, code| judge(&signal_from(sender, sig, code), parent).map(|(key, _)| key);
        assert_eq!(judged(parent, libc::SIGTERM, 0), None, "parent (a shell, timeout)");
        assert_eq!(judged(1, libc::SIGTERM, 0), None, "the service manager");
        assert_eq!(judged(77, libc::SIGINT, SI_KERNEL), None, "^C on its terminal");
        assert_eq!(
            judged(77, libc::SIGTERM, 0),
            Some(UNEXPECTED_STOP_KEY),
            "a stranger's stop request"
        );
        assert_eq!(judged(77, libc::SIGKILL, 0), Some(KEY));
        assert_eq!(judged(77, libc::SIGSTOP, 0), Some(KEY));
        assert_eq!(judged(1, libc::SIGKILL, 0), None, "the service manager's final kill");
        assert_eq!(judged(parent, libc::SIGSTOP, 0), None);
        for benign in [libc::SIGHUP, libc::SIGUSR1, libc::SIGCONT, libc::SIGWINCH] {
            assert_eq!(judged(77, benign, 0), None, "signal {benign}");
        }
        let (_, detail) = judge(&signal_from(77, libc::SIGKILL, 0), parent).unwrap();
        assert!(detail.starts_with("SIGKILL sent to the monitor"), "{detail}");
    }

    fn exec_of(path: &str, args: &[&str]) -> Event {
        let mut ev = crate::rules::tests::event_at(Action::Exec, 59, path);
        ev.path = Some(path.as_bytes().to_vec());
        ev.argv = std::iter::once(path)
            .chain(args.iter().copied())
            .map(|a| a.as_bytes().to_vec())
            .collect();
        ev
    }

    #[test]
    fn removing_runs_of_auditctl_and_bpftool() {
        let judge = |ev: &Event| judge(ev, 1);
        assert!(judge(&exec_of("/usr/sbin/auditctl", &["-D"])).is_some());
        assert!(judge(&exec_of("/sbin/auditctl", &["-e", "0"])).is_some());
        assert!(judge(&exec_of("/usr/sbin/auditctl", &["-l"])).is_none());
        assert!(judge(&exec_of("/usr/sbin/auditctl", &["-e", "1"])).is_none());
        assert!(judge(&exec_of("/usr/sbin/bpftool", &["link", "detach", "id", "4"])).is_some());
        assert!(judge(&exec_of("/usr/sbin/bpftool", &["map", "update", "id", "7", "key", "0"]))
            .is_some());
        assert!(judge(&exec_of("/usr/sbin/bpftool", &["prog", "show"])).is_none());
        assert!(judge(&exec_of("/usr/bin/true", &["-D"])).is_none());
    }
}
