//! Kernel surface: USB storage, SMT against the CPU's vulnerabilities, forwarding and ICMP
//! redirects, the shell login timeout.

use super::{Check, Host, Outcome, Probe, Severity, GUIDE};

pub const CHECKS: &[Check] = &[
    Check {
        id: "KERN-USB-STORAGE",
        group: "kernel",
        title: "usb-storage cannot be loaded",
        severity: Severity::Medium,
        remediation: "Add `install usb-storage /bin/false` (and `blacklist usb-storage`) to /etc/modprobe.d/usb-storage.conf and `rmmod usb-storage`.",
        file: "/etc/modprobe.d",
        probe: Probe::Host(usb_storage),
        ..GUIDE
    },
    Check {
        id: "KERN-SMT",
        group: "kernel",
        title: "SMT is off where the CPU is vulnerable through it",
        severity: Severity::Medium,
        remediation: "Boot with `nosmt` (or `mitigations=auto,nosmt`), or `echo off > /sys/devices/system/cpu/smt/control`.",
        file: "/sys/devices/system/cpu/smt/control",
        probe: Probe::Host(smt),
        ..GUIDE
    },
    Check {
        id: "KERN-IP-FORWARD",
        group: "kernel",
        title: "IP forwarding is off (unless the host routes for containers)",
        severity: Severity::Low,
        remediation: "`sysctl -w net.ipv4.ip_forward=0` unless Docker bridge networking needs it; then restrict FORWARD with firewall rules.",
        file: "/proc/sys/net/ipv4/ip_forward",
        probe: Probe::Host(ip_forward),
        ..GUIDE
    },
    Check {
        id: "KERN-ICMP-REDIRECT",
        group: "kernel",
        title: "ICMP redirects are neither accepted nor sent",
        severity: Severity::Low,
        remediation: "Set net.ipv4.conf.{all,default}.accept_redirects=0 and send_redirects=0 (and net.ipv6.conf.*.accept_redirects=0) in /etc/sysctl.d/.",
        file: "/proc/sys/net/ipv4/conf/all/accept_redirects",
        probe: Probe::Host(icmp_redirects),
        ..GUIDE
    },
    Check {
        id: "KERN-TMOUT",
        group: "kernel",
        title: "Idle shells time out (TMOUT)",
        severity: Severity::Low,
        remediation: "Add `readonly TMOUT=900; export TMOUT` to /etc/profile.d/tmout.sh.",
        file: "/etc/profile.d",
        probe: Probe::Host(tmout),
        ..GUIDE
    },
];

fn usb_storage(h: &Host) -> Outcome {
    let mut evidence = Vec::new();
    let mut disabled = false;
    for f in h
        .dir("/etc/modprobe.d")
        .into_iter()
        .chain(h.dir("/usr/lib/modprobe.d"))
        .chain(h.dir("/lib/modprobe.d"))
    {
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        for line in text.lines().map(str::trim) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["install", m, rest @ ..]
                    if (*m == "usb-storage" || *m == "usb_storage")
                        && rest.iter().any(|w| w.ends_with("/false") || w.ends_with("/true")) =>
                {
                    disabled = true;
                    evidence.push(format!("{}: {line}", f.display()));
                }
                ["blacklist", m] if *m == "usb-storage" || *m == "usb_storage" => {
                    evidence.push(format!("{}: {line} (blocks autoload only)", f.display()))
                }
                _ => {}
            }
        }
    }
    let modules = h.read("/proc/modules").ok();
    let present = h.exists("/sys/module/usb_storage");
    match (modules, present) {
        (None, false) => {
            return Outcome::pass(vec![
                "the kernel cannot load modules (no /proc/modules) and has no usb-storage driver"
                    .into(),
            ]);
        }
        (None, true) => return Outcome::fail(vec!["usb-storage is built into the kernel".into()]),
        (Some(m), _) if m.lines().any(|l| l.starts_with("usb_storage ")) => {
            return Outcome::fail(vec!["usb_storage is loaded".into()]);
        }
        (Some(_), true) => {
            return Outcome::fail(vec!["usb-storage is built into the kernel".into()])
        }
        (Some(_), false) => {}
    }
    if disabled {
        Outcome::pass(evidence)
    } else {
        evidence.push("no `install usb-storage /bin/false` in modprobe.d".into());
        Outcome::fail(evidence)
    }
}

fn smt(h: &Host) -> Outcome {
    let control = match h.read("/sys/devices/system/cpu/smt/control") {
        Ok(c) => c.trim().to_string(),
        Err(e) => {
            return Outcome::unknown(format!(
                "cannot read /sys/devices/system/cpu/smt/control: {e}"
            ))
        }
    };
    if control != "on" {
        return Outcome::pass(vec![format!("SMT {control}")]);
    }
    let vulnerable: Vec<String> = h
        .dir("/sys/devices/system/cpu/vulnerabilities")
        .into_iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(&f).ok()?;
            let name = f.file_name()?.to_string_lossy().into_owned();
            (text.contains("SMT vulnerable") || text.contains("SMT Host state unknown"))
                .then(|| format!("{name}: {}", text.trim()))
        })
        .collect();
    if vulnerable.is_empty() {
        Outcome::pass(vec!["SMT on; no vulnerability depends on it".into()])
    } else {
        let mut e = vec!["SMT on".to_string()];
        e.extend(vulnerable);
        Outcome::fail(e)
    }
}

fn sysctl(h: &Host, name: &str) -> Result<String, Outcome> {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    h.read(&path)
        .map(|v| v.trim().to_string())
        .map_err(|e| Outcome::unknown(format!("cannot read {path}: {e}")))
}

fn ip_forward(h: &Host) -> Outcome {
    match sysctl(h, "net.ipv4.ip_forward") {
        Ok(v) if v == "0" => Outcome::pass(vec!["net.ipv4.ip_forward = 0".into()]),
        Ok(v) => Outcome::fail(vec![format!("net.ipv4.ip_forward = {v}")]),
        Err(o) => o,
    }
}

fn icmp_redirects(h: &Host) -> Outcome {
    let mut against = Vec::new();
    for name in [
        "net.ipv4.conf.all.accept_redirects",
        "net.ipv4.conf.default.accept_redirects",
        "net.ipv4.conf.all.send_redirects",
        "net.ipv4.conf.default.send_redirects",
        "net.ipv6.conf.all.accept_redirects",
        "net.ipv6.conf.default.accept_redirects",
    ] {
        match sysctl(h, name) {
            Ok(v) if v == "0" => {}
            Ok(v) => against.push(format!("{name} = {v}")),
            Err(_) if name.starts_with("net.ipv6") => {}
            Err(o) => return o,
        }
    }
    Outcome::fail_if_any(against)
}

fn tmout(h: &Host) -> Outcome {
    let mut files = vec![h.path("/etc/profile"), h.path("/etc/bash.bashrc"), h.path("/etc/bashrc")];
    files.extend(h.dir("/etc/profile.d"));
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else { continue };
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
            let assignment = line
                .split(|c: char| c.is_whitespace() || c == ';')
                .find(|w| w.starts_with("TMOUT="));
            if let Some(a) = assignment {
                let secs: u64 = a["TMOUT=".len()..]
                    .trim_matches(|c| c == '"' || c == '\'')
                    .parse()
                    .unwrap_or(0);
                if secs > 0 {
                    return Outcome::pass(vec![format!("{}: {line}", f.display())]);
                }
            }
        }
    }
    Outcome::fail(vec![
        "TMOUT is not set in /etc/profile, /etc/profile.d or the system bashrc".into()
    ])
}
