//! Rule parser and matcher tests.

use super::compile::{self as targets, Compiled};
use super::matcher::Matcher;
use super::parse::IdResolver;
use super::*;
use crate::event::{Action as Act, Event, Ids};

struct FakeIds;
impl IdResolver for FakeIds {
    fn user(&self, name: &str) -> Option<u32> {
        match name {
            "root" => Some(0),
            "core" => Some(500),
            "daemon" => Some(1),
            _ => None,
        }
    }
    fn group(&self, name: &str) -> Option<u32> {
        (name == "docker").then_some(999)
    }
}

fn load(text: &str) -> std::result::Result<RuleSet, RuleErrors> {
    RuleSet::from_texts([("t.rules".to_string(), text)], &FakeIds)
}

pub(crate) fn event_at(action: Act, syscall: i32, path: &str) -> Event {
    Event {
        action,
        syscall,
        ret: 0,
        args: [0; 4],
        ts_boot_ns: 0,
        pid: 100,
        tid: 100,
        ppid: 1,
        ids: Ids { uid: 1000, euid: 1000, ..Default::default() },
        old_ids: Ids::default(),
        auid: 1000,
        sessionid: 1,
        cgroup_id: 0,
        cgroup_name: Vec::new(),
        payload: Vec::new(),
        comm: b"x".to_vec(),
        path: Some(path.as_bytes().to_vec()),
        path2: None,
        argv: vec![],
        ino: 0,
        dev: 0,
        mode: 0,
        watch: 0,
        watch2: 0,
        open_flags: 0,
        generation: None,
        flags: 0,
        child_or_code: 0,
        audit_key: None,
    }
}

fn first_key(set: &RuleSet, ev: &Event, exe: Option<&str>) -> Option<String> {
    let compiled = Compiled::new(&set.rules);
    let m = Matcher { rules: &set.rules, compiled: &compiled };
    m.evaluate(ev, crate::event::Actor::exe(exe.map(str::as_bytes))).map(|r| r.key().to_string())
}

#[test]
fn builtin_pack_loads_without_errors() {
    let set = RuleSet::builtin(&FakeIds).expect("default pack parses");
    assert!(set.rules.len() > 30);
    // Active, except what only audit records carry (module syscalls have no eBPF hook).
    assert!(
        set.rules
            .iter()
            .all(|r| r.inactive.is_none() || (r.audit_only && r.key() == "kernel-modules")),
        "{:?}",
        set.warnings
    );
    let (audit, activated) = set.for_audit();
    assert_eq!(activated, 1);
    assert!(audit.rules.iter().all(|r| r.inactive.is_none()));
}

#[test]
fn errors_carry_file_line_and_column() {
    let err =
        load("# comment\n-w /etc/docker -p rwz -k x\n-a always,exit -S nosuchcall\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("t.rules:2:19: permission"), "{text}");
    assert!(text.contains("t.rules:3:19: unknown syscall"), "{text}");
}

#[test]
fn nothing_loads_when_any_line_is_bad() {
    assert!(load("-w /etc/docker -k ok\n-w relative/path\n").is_err());
    assert!(load("-x foo\n").is_err());
    assert!(load("-w\n").is_err());
}

#[test]
fn watch_defaults_and_perms() {
    let set = load("-w /etc/docker -k cfg\n-w /usr/bin/docker -p x -k client\n").unwrap();
    let mut w = event_at(Act::Open, 257, "/etc/docker/daemon.json");
    w.open_flags = 0o1101; // O_WRONLY|O_CREAT|O_TRUNC
    assert_eq!(first_key(&set, &w, None).as_deref(), Some("cfg"));
    assert_eq!(
        first_key(&set, &event_at(Act::Exec, 59, "/usr/bin/docker"), None).as_deref(),
        Some("client")
    );
    // -p x: reading the binary is not an execution
    assert_eq!(first_key(&set, &event_at(Act::Open, 257, "/usr/bin/docker"), None), None);
    // a sibling with a common prefix is not below the watch
    assert_eq!(first_key(&set, &event_at(Act::Unlink, 87, "/etc/dockerfile"), None), None);
}

#[test]
fn first_matching_rule_decides_and_never_suppresses() {
    let text = "-a never,exit -F dir=/var/lib/docker -F exe=/usr/sbin/dockerd\n-w /var/lib/docker -k data\n";
    let set = load(text).unwrap();
    let ev = event_at(Act::Unlink, 87, "/var/lib/docker/x");
    assert_eq!(first_key(&set, &ev, Some("/usr/sbin/dockerd")), None);
    assert_eq!(first_key(&set, &ev, Some("/usr/bin/vi")).as_deref(), Some("data"));
}

#[test]
fn syscall_rules_with_fields() {
    let set = load(
        "-a always,exit -F arch=b64 -S setresuid -F euid=0 -F auid>=1000 -F auid!=unset -k esc\n\
         -a always,exit -F arch=b64 -S 87 -F uid=core -F success=1 -k byname\n",
    )
    .unwrap();
    let mut ev = event_at(Act::SetId, 117, "");
    ev.path = None;
    ev.ids.euid = 0;
    assert_eq!(first_key(&set, &ev, None).as_deref(), Some("esc"));
    ev.auid = u32::MAX;
    assert_eq!(first_key(&set, &ev, None), None);
    let mut u = event_at(Act::Unlink, 87, "/tmp/x");
    u.ids.uid = 500;
    assert_eq!(first_key(&set, &u, None).as_deref(), Some("byname"));
    u.ret = -13;
    assert_eq!(first_key(&set, &u, None), None);
}

#[test]
fn unsupported_constructs_load_inactive_with_a_warning() {
    let set = load(
        "-a always,exit -F arch=b64 -S openat -F subj_type=unconfined_t -k selinux\n\
         -a always,exit -F arch=b32 -S open -k compat\n\
         -b 8192\n-e 1\n--backlog_wait_time 60000\n-D\n-w /etc/x -k after_d\n",
    );
    let set = set.unwrap();
    // -D removed everything before it.
    assert_eq!(set.rules.len(), 1);
    let set = load("-a always,exit -F arch=b64 -S openat -F subj_type=x -k s\n").unwrap();
    assert!(set.rules[0].inactive.is_some());
    assert_eq!(set.warnings.len(), 1);
    assert!(set.warnings[0].to_string().starts_with("t.rules:1:1: rule loaded but inactive"));
}

#[test]
fn field_comparisons() {
    let set = load("-a always,exit -F arch=b64 -S execve -C uid!=euid -k suid_exec\n").unwrap();
    let mut ev = event_at(Act::Exec, 59, "/usr/bin/passwd");
    assert_eq!(first_key(&set, &ev, None), None);
    ev.ids.euid = 0;
    assert_eq!(first_key(&set, &ev, None).as_deref(), Some("suid_exec"));
}

#[test]
fn plan_selects_classes_and_unfiltered() {
    let set = load(
        "-w /run/docker.sock -p wa -k sock\n-w /usr/bin/docker -p x -k client\n\
         -a always,exit -F arch=b64 -S setuid -F euid=0 -k root\n",
    )
    .unwrap();
    let plan = targets::plan(&set.rules);
    use monitor_common::class;
    let sock = plan.by_written("/run/docker.sock").unwrap();
    assert_eq!(sock.classes, class::FILE | class::CONNECT);
    assert_eq!(plan.by_written("/usr/bin/docker").unwrap().classes, class::EXEC);
    // setid rule requiring an id of 0: served by the kernel's transition filter
    assert_eq!(plan.unfiltered, 0);
    let set = load("-a always,exit -F arch=b64 -S setuid -F auid>=1000 -k any\n").unwrap();
    assert_eq!(targets::plan(&set.rules).unfiltered, class::SETID);
}

#[test]
fn read_opens_reach_userspace_only_when_a_rule_can_match_them() {
    let wants = |text: &str| targets::plan(&load(text).unwrap().rules).read_opens;
    assert!(!wants("-w /etc/docker -p wa -k a\n-w /usr/bin/docker -p x -k b\n"));
    assert!(!wants("-a always,exit -F arch=b64 -S unlink -k c\n"));
    assert!(!wants("-a always,exit -F arch=b64 -S openat -F perm=w -k d\n"));
    assert!(!wants("-a never,exit -F arch=b64 -F dir=/var/lib/docker\n"));
    assert!(wants("-w /etc/shadow -p r -k e\n"));
    assert!(wants("-w /etc/shadow -p rwa -k f\n"));
    assert!(wants("-a always,exit -F arch=b64 -F dir=/etc -k g\n"));
    assert!(wants("-a always,exit -F arch=b64 -S openat2 -k h\n"));
    // The CIS watches (`-w /usr/bin/docker -k docker`, no -p) mean every access, reads too.
    let builtin = RuleSet::builtin(&FakeIds).unwrap();
    assert!(targets::plan(&builtin.rules).read_opens, "the default pack watches reads");
    assert!(wants("-w /usr/bin/docker -k docker\n"));
    let word = |text: &str| targets::plan(&load(text).unwrap().rules).filter_word();
    assert_eq!(word("-w /etc/shadow -p r -k e\n"), monitor_common::FILTER_READ_OPENS);
}

#[test]
fn kernel_dev_encoding() {
    // st_dev 0x0801 (8:1) → kernel (8 << 20) | 1
    assert_eq!(crate::plan::kernel_dev(0x0801), (8 << 20) | 1);
    assert_eq!(crate::plan::kernel_dev(0), 0);
}

const COMMUNITY: &str = include_str!("../../../tests/fixtures/community.rules");
const PARSE_ONLY: &str = include_str!("../../../tests/fixtures/parse-only.rules");

#[test]
fn a_community_style_rule_set_loads_with_every_construct() {
    let set = load(COMMUNITY).unwrap_or_else(|e| panic!("{e}"));
    let mut inactive: Vec<String> =
        set.rules.iter().filter(|r| r.inactive.is_some()).map(|r| r.source.to_string()).collect();
    // Inactive with the eBPF sensors: b32 rules, the filesystem list, the user and exclude
    // lists and syscalls without a hook (the last three are evaluated from audit records).
    // The swapon rule (line 111) was warned about, then deleted by -d.
    assert!(
        load("-a always,exit -F arch=b64 -S open -F inode>0\n").is_err(),
        "auditctl refuses it too"
    );
    let mut warned: Vec<String> =
        set.warnings.iter().map(|w| w.source.to_string()).filter(|s| s != "t.rules:111").collect();
    inactive.sort();
    warned.sort();
    assert_eq!(inactive, warned, "every inactive rule has its warning, and only those");
    let (audit, _) = set.clone().for_audit();
    let still: Vec<&str> = audit.rules.iter().filter_map(|r| r.inactive.as_deref()).collect();
    assert!(
        still.iter().all(|why| why.contains("32-bit") || why.contains("filesystem")),
        "{still:?}"
    );
    // -d removed the swapon rule again; -A put personality first.
    assert!(!set.rules.iter().any(|r| r.key() == "swap"));
    assert_eq!(set.rules[0].key(), "personality");
    // Several keys on one rule.
    assert!(set.rules.iter().any(|r| r.keys == ["delete", "file-deletion"]));

    // Semantics on events: octal bit tests, errno names, login-uid filters, comparisons.
    let mut create = event_at(Act::Open, 257, "/etc/new-file");
    create.args[2] = 0o100; // O_CREAT
    create.open_flags = 0o101;
    assert_eq!(first_key(&set, &create, None).as_deref(), Some("etc-create"));
    let mut denied = event_at(Act::Open, 257, "/home/u/secret");
    denied.ret = -13;
    assert_eq!(first_key(&set, &denied, None).as_deref(), Some("access"));
    let mut system = denied.clone();
    system.auid = u32::MAX; // unset: the CIS filters skip it, the numeric rule does not
    assert_eq!(first_key(&set, &system, None).as_deref(), Some("access-num"));
    let mut suid = event_at(Act::Exec, 59, "/usr/bin/passwd");
    suid.ids.euid = 0;
    assert_eq!(
        first_key(&set, &suid, Some("/usr/bin/passwd")).as_deref(),
        Some("privileged-passwd")
    );
    let mut kill = event_at(Act::Other, 62, "");
    kill.path = None;
    kill.args[1] = 9;
    kill.ppid = 50;
    assert_eq!(first_key(&audit, &kill, None).as_deref(), Some("kill9"));
    assert_eq!(first_key(&set, &kill, None), None, "kill has no eBPF hook: inactive there");
    // The exclude list drops CWD, AVC and EOE records (audit sources).
    let compiled = Compiled::new(&audit.rules);
    let m = Matcher { rules: &audit.rules, compiled: &compiled };
    assert!(m.excluded(1307) && m.excluded(1400) && m.excluded(1320) && !m.excluded(1300));
    // A user message from a login user alerts, root's USER_LOGIN is suppressed.
    let mut cmd = event_at(Act::UserMessage, -1, "/usr/bin/sudo");
    cmd.args[0] = 1123;
    assert_eq!(first_key(&audit, &cmd, None).as_deref(), Some(""));
}

#[test]
fn locking_selinux_and_other_lists_parse_and_load_inactive() {
    let set = load(PARSE_ONLY).unwrap_or_else(|e| panic!("{e}"));
    assert!(!set.rules.is_empty());
    assert!(set.rules.iter().all(|r| r.inactive.is_some() && !r.audit_only), "{:?}", set.rules);
    assert_eq!(set.warnings.len(), set.rules.len());
    assert!(set.warnings.iter().all(|w| w.to_string().starts_with("t.rules:")));
}

/// The candidate index must never change a verdict: over the builtin pack and the
/// community-style set (with the audit-only rules active), every event built from the
/// rules' own paths, their parents and children, inode and watch matches, executables and
/// ids gets the same first rule with and without the index.
#[test]
fn the_candidate_index_gives_the_verdicts_of_trying_every_rule() {
    let builtin = RuleSet::builtin(&FakeIds).unwrap();
    let (community, _) = load(COMMUNITY).unwrap().for_audit();
    // The root directory; the highest call number a rule may name.
    let edges = load(
        "-a always,exit -F arch=b64 -S open,openat -F dir=/ -F euid=0 -k root-dir\n\
         -a always,exit -F arch=b64 -S 511 -F path=/tmp/elsewhere -k high-call\n",
    )
    .unwrap();
    let calls: &[(Act, i32)] = &[
        (Act::Open, 2),
        (Act::Open, 257),
        (Act::Exec, 59),
        (Act::Exec, 322),
        (Act::Unlink, 87),
        (Act::Unlink, 263),
        (Act::Rename, 82),
        (Act::Rename, 316),
        (Act::Connect, 42),
        (Act::Chmod, 90),
        (Act::Chown, 92),
        (Act::SetXattr, 188),
        (Act::Mkdir, 83),
        (Act::Truncate, 76),
        (Act::SetId, 105),
        (Act::SetId, 117),
        (Act::Other, 62),
        (Act::Other, 175),
        (Act::Other, 511),
        (Act::Other, 600),
    ];
    let mut compared = 0;
    let mut alerts = 0;
    for set in [&builtin, &community, &edges] {
        let compiled = Compiled::new(&set.rules);
        assert!(compiled.index().is_some());
        let unindexed = compiled.unindexed();
        let plan = &compiled.plan;
        let fast = Matcher { rules: &set.rules, compiled: &compiled };
        let slow = Matcher { rules: &set.rules, compiled: &unindexed };
        let mut paths: Vec<String> =
            vec!["/".into(), "/tmp/elsewhere".into(), "relative/file".into(), String::new()];
        for t in &plan.targets {
            for p in [&t.written, &t.canonical] {
                paths.push(p.clone());
                paths.push(format!("{p}/child"));
                paths.push(format!("{p}x"));
                if let Some((parent, _)) = p.rsplit_once('/') {
                    paths.push(parent.to_string());
                }
            }
        }
        let exes: Vec<Option<String>> = std::iter::once(None)
            .chain(paths.iter().take(40).map(|p| Some(p.clone())))
            .chain(set.rules.iter().flat_map(|r| &r.conds).filter_map(|c| match c {
                model::Cond::Path { field: model::PathField::Exe, path, .. } => {
                    Some(Some(path.clone()))
                }
                _ => None,
            }))
            .collect();
        for (i, path) in paths.iter().enumerate() {
            for &(action, nr) in calls {
                for variant in 0..6 {
                    let mut ev = event_at(action, nr, path);
                    match variant {
                        1 => ev.ids = Ids { uid: 0, euid: 0, ..Default::default() },
                        2 => ev.open_flags = 0o1101,
                        3 => {
                            // Matched by the kernel: by inode, and under a watch.
                            let t = &plan.targets[i % plan.targets.len()];
                            (ev.dev, ev.ino) = t.identity.unwrap_or((8, 1234));
                            ev.watch = t.id;
                            ev.watch2 = plan.targets[(i * 7) % plan.targets.len()].id;
                        }
                        4 => ev.path2 = Some(paths[(i * 13 + 5) % paths.len()].as_bytes().to_vec()),
                        5 => {
                            ev.ret = -13;
                            ev.auid = u32::MAX;
                        }
                        _ => {}
                    }
                    let exe = &exes[(i + variant) % exes.len()];
                    let exe = exe.as_deref().map(str::as_bytes);
                    let want = slow
                        .evaluate(&ev, crate::event::Actor::exe(exe))
                        .map(|r| r.source.to_string());
                    let got = fast
                        .evaluate(&ev, crate::event::Actor::exe(exe))
                        .map(|r| r.source.to_string());
                    assert_eq!(got, want, "{action:?} {nr} {path} variant {variant}");
                    compared += 1;
                    alerts += want.is_some() as usize;
                }
            }
        }
    }
    // The events must exercise both verdicts, or the comparison proves nothing.
    assert!(
        compared > 10_000 && alerts > 1_000 && alerts < compared,
        "{alerts} alerts of {compared}"
    );
}

/// After the plan re-reads its targets (a watched symlink now points elsewhere), the index
/// files the rule under the new canonical spelling, and stays in use.
#[test]
fn the_candidate_index_follows_a_retargeted_symlink() {
    let dir = std::env::temp_dir().join(format!("monitor-index-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["one", "two"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let link = dir.join("link");
    std::os::unix::fs::symlink(dir.join("one"), &link).unwrap();
    let set = load(&format!("-w {} -p wa -k moved\n", link.display())).unwrap();
    let mut plan = Compiled::new(&set.rules);
    let mut ev = event_at(Act::Unlink, 87, &format!("{}/two/f", dir.display()));
    ev.ret = 0;
    let key = |compiled: &Compiled| {
        Matcher { rules: &set.rules, compiled }
            .evaluate(&ev, crate::event::Actor::default())
            .map(|r| r.key().to_string())
    };
    assert_eq!(key(&plan), None);
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(dir.join("two"), &link).unwrap();
    assert!(plan.refresh());
    assert!(plan.index().is_some(), "the index survives a refresh");
    assert_eq!(key(&plan).as_deref(), Some("moved"));
    assert_eq!(key(&plan.unindexed()).as_deref(), Some("moved"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The default pack tells the container runtime's own work (a parent it always has, its
/// own binary) from the same action by anything else: the first is a line of the audit
/// trail (`kind=event`), the second an alert under the file's key.
#[test]
fn the_runtime_at_work_is_audit_trail_and_the_same_act_by_others_alerts() {
    let set = RuleSet::builtin(&FakeIds).unwrap();
    let compiled = Compiled::new(&set.rules);
    let m = Matcher { rules: &set.rules, compiled: &compiled };
    let judge = |ev: &Event, exe: &str, parent: &str| {
        let actor =
            crate::event::Actor { exe: Some(exe.as_bytes()), parent_exe: Some(parent.as_bytes()) };
        m.evaluate(ev, actor).map(|r| (r.key().to_string(), r.kind))
    };
    let exec = |path: &str| event_at(Act::Exec, 59, path);
    let shim = "/usr/bin/containerd-shim-runc-v2";
    let trail = |key: &str| Some((key.to_string(), model::Kind::Event));
    let alert = |key: &str| Some((key.to_string(), model::Kind::Alert));
    assert_eq!(judge(&exec("/usr/sbin/runc"), "/usr/sbin/runc", shim), trail("docker-runtime"));
    assert_eq!(
        judge(&exec("/usr/sbin/runc"), "/usr/sbin/runc", "/usr/sbin/runc"),
        trail("docker-runtime"),
        "runc init"
    );
    assert_eq!(
        judge(&exec("/usr/sbin/runc"), "/usr/sbin/runc", "/usr/bin/bash"),
        alert("runc"),
        "runc from a shell"
    );
    assert_eq!(judge(&exec(shim), shim, "/usr/bin/containerd"), trail("docker-runtime"));
    assert_eq!(judge(&exec(shim), shim, "/tmp/evil"), alert("containerd"));
    assert_eq!(
        judge(&exec("/usr/sbin/dockerd"), "/usr/sbin/dockerd", "/usr/sbin/runc"),
        trail("docker-runtime"),
        "libnetwork-setkey"
    );
    assert_eq!(
        judge(&exec("/usr/sbin/dockerd"), "/usr/sbin/dockerd", "/usr/bin/bash"),
        alert("docker-daemon")
    );
    // Reading a runtime binary is a record; writing it is an alert, whoever does it.
    let read = event_at(Act::Open, 257, "/usr/sbin/runc");
    assert_eq!(judge(&read, "/usr/sbin/runc", shim), trail("docker-file-read"));
    let mut write = event_at(Act::Open, 257, "/usr/sbin/runc");
    write.open_flags = 0o1001; // O_WRONLY|O_TRUNC
    assert_eq!(judge(&write, "/usr/sbin/runc", shim), alert("runc"));
    assert_eq!(
        judge(&exec("/usr/bin/docker"), "/usr/bin/docker", "/usr/bin/bash"),
        trail("docker-client-run")
    );
    let mut sysctl = event_at(Act::Open, 257, "/proc/sys/net/ipv6/conf/all/disable_ipv6");
    sysctl.open_flags = 0o1001;
    assert_eq!(
        judge(&sysctl, "/usr/sbin/dockerd", "/usr/lib/systemd/systemd"),
        trail("docker-runtime")
    );
    assert_eq!(judge(&sysctl, "/usr/bin/python3", "/usr/bin/bash"), alert("sysctl"));
}

#[test]
fn kind_and_parent_exe_parse_and_print_as_written() {
    let set = load("-a always,exit -F arch=b64 -S execve -F path=/bin/x -F parent_exe=/bin/sh -F kind=event -k k\n").unwrap();
    assert_eq!(set.rules[0].kind, model::Kind::Event);
    assert_eq!(
        set.rules[0].describe(),
        "-a always,exit -S execve -F path=/bin/x -F parent_exe=/bin/sh -F kind=event -k k"
    );
    assert!(load("-a always,exit -S execve -F kind=loud -k k\n")
        .unwrap_err()
        .to_string()
        .contains("kind is alert or event"));
    assert!(load("-a never,exit -S execve -F path=/bin/x -F kind=event\n")
        .unwrap_err()
        .to_string()
        .contains("kind=event applies to always rules"));
    assert!(load("-a always,exit -S execve -F parent_exe=relative\n").is_err());
}
