//! Rule parser and matcher tests.

use super::matcher::Matcher;
use super::parse::IdResolver;
use super::targets;
use super::*;
use crate::event::{Action as Act, Event, Ids};

struct FakeIds;
impl IdResolver for FakeIds {
    fn user(&self, name: &str) -> Option<u32> {
        match name {
            "root" => Some(0),
            "core" => Some(500),
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
        ids: Ids {
            uid: 1000,
            euid: 1000,
            ..Default::default()
        },
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
        flags: 0,
        child_or_code: 0,
    }
}

fn first_key(set: &RuleSet, ev: &Event, exe: Option<&str>) -> Option<String> {
    let plan = targets::plan(&set.rules);
    let m = Matcher {
        rules: &set.rules,
        plan: &plan,
    };
    m.evaluate(ev, exe.map(str::as_bytes))
        .map(|r| r.key().to_string())
}

#[test]
fn builtin_pack_loads_without_errors() {
    let set = RuleSet::builtin(&FakeIds).expect("default pack parses");
    assert!(set.rules.len() > 30);
    // Active, except what only audit records carry (module syscalls have no eBPF hook).
    assert!(
        set.rules.iter().all(|r| r.inactive.is_none() || (r.audit_only && r.key() == "kernel-modules")),
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
    assert_eq!(
        first_key(&set, &event_at(Act::Open, 257, "/usr/bin/docker"), None),
        None
    );
    // a sibling with a common prefix is not below the watch
    assert_eq!(
        first_key(&set, &event_at(Act::Unlink, 87, "/etc/dockerfile"), None),
        None
    );
}

#[test]
fn first_matching_rule_decides_and_never_suppresses() {
    let text = "-a never,exit -F dir=/var/lib/docker -F exe=/usr/sbin/dockerd\n-w /var/lib/docker -k data\n";
    let set = load(text).unwrap();
    let ev = event_at(Act::Unlink, 87, "/var/lib/docker/x");
    assert_eq!(first_key(&set, &ev, Some("/usr/sbin/dockerd")), None);
    assert_eq!(
        first_key(&set, &ev, Some("/usr/bin/vi")).as_deref(),
        Some("data")
    );
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
    assert!(set.warnings[0]
        .to_string()
        .starts_with("t.rules:1:1: rule loaded but inactive"));
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
    assert_eq!(
        plan.by_written("/usr/bin/docker").unwrap().classes,
        class::EXEC
    );
    // setid rule requiring an id of 0: served by the kernel's transition filter
    assert_eq!(plan.unfiltered, 0);
    let set = load("-a always,exit -F arch=b64 -S setuid -F auid>=1000 -k any\n").unwrap();
    assert_eq!(targets::plan(&set.rules).unfiltered, class::SETID);
}

#[test]
fn kernel_dev_encoding() {
    // st_dev 0x0801 (8:1) → kernel (8 << 20) | 1
    assert_eq!(targets::kernel_dev(0x0801), (8 << 20) | 1);
    assert_eq!(targets::kernel_dev(0), 0);
}
