//! Everything from the log, nothing from the replaying host: `host.name` from `node=`,
//! user and group names from auditd's enriched fields (a user that no longer exists here),
//! the audit key beside our rule key; this host only as `observer.hostname`.

use super::{real_log, replay, this_host};
use monitor_tests::{get, s, write_file};

#[test]
fn host_users_groups_and_keys_come_from_the_log() {
    let Some(real) = real_log() else { return };
    let me = this_host();
    // The log as a host with another name wrote it (auditd's name_format puts node=NAME
    // in front of every record).
    let node = format!("victim-{}", std::process::id());
    assert_ne!(node, me);
    let text: String = real.text().lines().map(|l| format!("node={node} {l}\n")).collect();
    let named = write_file(&real.dir, "node.log", text.as_bytes());
    let plain = replay(&[real.path()], None);
    let with_node = replay(&[named.to_str().unwrap()], None);
    assert_eq!((plain.code, with_node.code), (0, 0), "{}{}", plain.stderr, with_node.stderr);
    for a in plain.alerts() {
        assert!(a.get("host").is_none(), "no node=: the host is unknown, not this one: {a}");
        assert_eq!(s(a, "observer.hostname"), me, "{a}");
    }
    assert!(!with_node.alerts().is_empty());
    for a in with_node.alerts() {
        assert_eq!(s(a, "host.name"), node, "{a}");
        assert_eq!(s(a, "observer.hostname"), me, "{a}");
    }
    // --host names the host of records without node= (and node= wins over it).
    let given = replay(&["--host", "given-host", real.path()], None);
    assert!(given.alerts().iter().all(|a| s(a, "host.name") == "given-host"));
    let both = replay(&["--host", "given-host", named.to_str().unwrap()], None);
    assert!(both.alerts().iter().all(|a| s(a, "host.name") == node));

    // The user (and group) that connected to the Docker socket is gone from this host:
    // its names are the log's.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    assert!(!passwd.lines().any(|l| l.starts_with(&format!("{}:", real.user))));
    let connect = with_node
        .alerts()
        .into_iter()
        .find(|a| get(a, "process.pid").as_u64() == Some(real.connect_pid as u64))
        .unwrap_or_else(|| panic!("no alert for the connect: {:#?}", with_node.lines));
    assert_eq!(s(connect, "rule.id"), "docker-socket-nonroot", "{connect}");
    assert_eq!(s(connect, "user.id"), real.uid.to_string(), "{connect}");
    assert_eq!(s(connect, "user.name"), real.user, "{connect}");
    assert_eq!(s(connect, "user.group.id"), real.uid.to_string(), "{connect}");
    assert_eq!(s(connect, "user.group.name"), real.user, "{connect}");
    // The original audit key, beside ours.
    assert_eq!(get(connect, "monitor.audit.key"), &serde_json::json!(["docker-socket-nonroot"]));
    // Root is named by the log too (UID="root").
    let setuid = with_node
        .alerts()
        .into_iter()
        .find(|a| get(a, "process.pid").as_u64() == Some(real.setuid_pid as u64))
        .expect("the setresuid alert");
    assert_eq!(s(setuid, "user.effective.name"), "root", "{setuid}");

    // Our rules with other keys: the audit key stays what auditd's rule said.
    let rules = write_file(&real.dir, "ours.rules", b"-w /etc/docker -p wa -k our-docker-key\n");
    let ours = replay(&["--rules", rules.to_str().unwrap(), real.path()], None);
    let files: Vec<_> =
        ours.alerts().into_iter().filter(|a| s(a, "rule.id") == "our-docker-key").collect();
    assert!(!files.is_empty(), "{}", ours.stderr);
    for a in files {
        assert_eq!(get(a, "monitor.audit.key"), &serde_json::json!(["docker-config"]), "{a}");
    }
}
