//! From an audit event (grouped records) to the source-agnostic `Event` the rules see.
//!
//! A SYSCALL event gives the syscall, its result and arguments, the credentials after the
//! call, the process; PATH records the objects (made absolute against CWD and folded, not
//! resolved: the host that wrote the log may not be this one), EXECVE the argv (arguments
//! split into `aN[i]` pieces joined again), SOCKADDR the unix socket path. A user-space
//! message (sudo, PAM, shadow-utils...) becomes a `UserMessage` event for the `user` list.

use super::group::Group;
use super::record::{decode, unhex, Record};
use crate::event::{Action, Event, Ids};
use crate::vocab::records as types;
use std::collections::HashMap;

/// What became of one audit event.
pub enum Mapped {
    Event(Box<Event>),
    /// A syscall event of another architecture (rules are x86-64's).
    OtherArch,
    /// A known kind of event no rule evaluates (daemon, configuration, AVC...).
    NotEvaluated,
    /// Every record of the event is of a type this monitor does not know.
    Unknown,
}

const AUDIT_ARCH_X86_64: u64 = 0xc000_003e;
/// argv pieces kept at most, and bytes per event (the eBPF source cuts at 4 KiB too).
const ARGV_MAX_BYTES: usize = 4096;

/// State carried between events: the credentials each process last had (so a setuid event
/// can say what changed), bounded.
#[derive(Default)]
pub struct Mapper {
    last_ids: HashMap<u32, Ids>,
}

const MAX_REMEMBERED: usize = 65_536;

impl Mapper {
    pub fn map(&mut self, g: &Group) -> Mapped {
        if let Some(sc) = g.first(types::SYSCALL) {
            return match self.syscall_event(g, sc) {
                Some(ev) => Mapped::Event(Box::new(ev)),
                None => Mapped::OtherArch,
            };
        }
        match g.records.first() {
            Some(r) if types::is_user_message(r.rtype) => {
                Mapped::Event(Box::new(user_message(g, r)))
            }
            Some(_) if g.records.iter().any(|r| types::known(r.rtype)) => Mapped::NotEvaluated,
            _ => Mapped::Unknown,
        }
    }

    fn syscall_event(&mut self, g: &Group, sc: &Record) -> Option<Event> {
        if sc.hex("arch") != Some(AUDIT_ARCH_X86_64) {
            return None;
        }
        let syscall = sc.num("syscall").unwrap_or(u64::MAX) as i32;
        let ret = sc.get("exit").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let args = [
            sc.hex("a0").unwrap_or(0),
            sc.hex("a1").unwrap_or(0),
            sc.hex("a2").unwrap_or(0),
            sc.hex("a3").unwrap_or(0),
        ];
        let id = |name: &str| sc.num(name).map_or(u32::MAX, |v| v as u32);
        let ids = Ids {
            uid: id("uid"),
            euid: id("euid"),
            suid: id("suid"),
            fsuid: id("fsuid"),
            gid: id("gid"),
            egid: id("egid"),
            sgid: id("sgid"),
            fsgid: id("fsgid"),
        };
        let pid = id("pid");
        let mut ev = base_event(g, pid);
        ev.syscall = syscall;
        ev.ret = if sc.get("success") == Some("no") && ret >= 0 { -1 } else { ret };
        ev.args = args;
        ev.ppid = id("ppid");
        ev.ids = ids;
        ev.auid = id("auid");
        ev.sessionid = id("ses");
        ev.comm = sc.bytes("comm").unwrap_or_default();
        ev.audit_key = super::names::audit_keys(sc);
        ev.action = action_of(syscall as u32, &args);
        if self.last_ids.len() >= MAX_REMEMBERED {
            self.last_ids.clear();
        }
        ev.old_ids = self.last_ids.insert(pid, ids).unwrap_or(ids);

        let cwd = g.first(types::CWD).and_then(|r| r.bytes("cwd"));
        let items = path_items(g, cwd.as_deref());
        let objects: Vec<&PathItem> = items.iter().filter(|p| !p.parent).collect();
        if let Some(first) = objects.first() {
            ev.ino = first.inode;
            ev.dev = first.dev;
            ev.mode = first.mode;
        }
        let object = |i: usize| objects.get(i).and_then(|p| p.name.clone());
        match ev.action {
            Action::Exec => {
                ev.path = if ev.success() { sc.bytes("exe") } else { None }.or_else(|| object(0));
                let (argv, cut) = argv(g);
                ev.argv = argv;
                if cut {
                    ev.flags |= monitor_common::flag::PATH2_TRUNCATED;
                }
            }
            Action::Connect => {
                // Field 1: the caller's spelling; field 2: the socket's path.
                let asked =
                    g.first(types::SOCKADDR).and_then(|r| r.get("saddr")).and_then(unix_path);
                ev.path2 =
                    object(0).or_else(|| asked.as_deref().map(|p| absolute(p, cwd.as_deref())));
                ev.path = asked;
            }
            Action::Rename | Action::Link => {
                // The source is the removed (or existing) name, the destination the created one.
                let created = objects.iter().position(|p| p.nametype == NameType::Create);
                let source = objects.iter().position(|p| p.nametype != NameType::Create);
                ev.path = source.and_then(object).or_else(|| object(0));
                ev.path2 = created.and_then(object).or_else(|| object(1));
            }
            _ => ev.path = object(0),
        }
        ev.open_flags = match syscall {
            2 => args[1] as u32,
            257 => args[2] as u32,
            85 => 0o1101, // creat: O_WRONLY|O_CREAT|O_TRUNC
            437 => g
                .first(types::OPENAT2)
                .and_then(|r| r.get("oflag"))
                .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
                .unwrap_or(0) as u32,
            _ => 0,
        };
        Some(ev)
    }
}

/// The event with what every kind has; `ts_boot_ns` holds the record's wall-clock time
/// (the pipeline turns it into its clock's boot time).
fn base_event(g: &Group, pid: u32) -> Event {
    Event {
        ts_boot_ns: g.sec.saturating_mul(1_000_000_000).saturating_add(g.ms as u64 * 1_000_000),
        pid,
        tid: pid,
        auid: u32::MAX,
        sessionid: u32::MAX,
        ..Event::new(Action::Other, -1)
    }
}

/// A user-space message: `args[0]` is its type, `payload` its text, `path` the sender's
/// executable when it names one.
fn user_message(g: &Group, r: &Record) -> Event {
    let id = |name: &str| r.num(name).map_or(u32::MAX, |v| v as u32);
    let mut ev = base_event(g, id("pid"));
    ev.action = Action::UserMessage;
    ev.args[0] = r.rtype as u64;
    ev.ids.uid = id("uid");
    ev.ids.euid = ev.ids.uid;
    ev.auid = id("auid");
    ev.sessionid = id("ses");
    ev.ret = if matches!(r.get("res"), Some("failed" | "0")) { -1 } else { 0 };
    ev.path = r.bytes("exe");
    ev.comm = r.bytes("comm").unwrap_or_default();
    ev.payload = r.get("msg").map(|m| m.trim_matches('\'').as_bytes().to_vec()).unwrap_or_default();
    ev
}

/// The action of syscall `nr` (x86-64), as the eBPF sensors name it.
fn action_of(nr: u32, args: &[u64; 4]) -> Action {
    use monitor_common::sys::*;
    const AT_REMOVEDIR: u64 = 0x200;
    match nr {
        EXECVE | EXECVEAT => Action::Exec,
        CONNECT => Action::Connect,
        n if is_setid(n) => Action::SetId,
        OPEN | CREAT | OPENAT | OPENAT2 => Action::Open,
        UNLINK => Action::Unlink,
        UNLINKAT if args[2] & AT_REMOVEDIR != 0 => Action::Rmdir,
        UNLINKAT => Action::Unlink,
        RMDIR => Action::Rmdir,
        RENAME | RENAMEAT | RENAMEAT2 => Action::Rename,
        LINK | LINKAT => Action::Link,
        SYMLINK | SYMLINKAT => Action::Symlink,
        MKDIR | MKDIRAT => Action::Mkdir,
        MKNOD | MKNODAT => Action::Mknod,
        TRUNCATE | FTRUNCATE => Action::Truncate,
        CHMOD | FCHMOD | FCHMODAT | FCHMODAT2 => Action::Chmod,
        CHOWN | FCHOWN | LCHOWN | FCHOWNAT => Action::Chown,
        SETXATTR | LSETXATTR | FSETXATTR | SETXATTRAT => Action::SetXattr,
        REMOVEXATTR | LREMOVEXATTR | FREMOVEXATTR | REMOVEXATTRAT => Action::RemoveXattr,
        _ => Action::Other,
    }
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum NameType {
    Create,
    Delete,
    Other,
}

struct PathItem {
    name: Option<Vec<u8>>,
    inode: u64,
    dev: u32,
    mode: u32,
    parent: bool,
    nametype: NameType,
}

/// The PATH records in item order, names made absolute.
fn path_items(g: &Group, cwd: Option<&[u8]>) -> Vec<PathItem> {
    let mut items: Vec<(u64, PathItem)> = g
        .all(types::PATH)
        .map(|r| {
            let nametype = r.get("nametype").unwrap_or("");
            (
                r.num("item").unwrap_or(u64::MAX),
                PathItem {
                    name: r.bytes("name").map(|n| absolute(&n, cwd)),
                    inode: r.num("inode").unwrap_or(0),
                    dev: r.get("dev").and_then(kernel_dev).unwrap_or(0),
                    mode: r.get("mode").and_then(|m| u32::from_str_radix(m, 8).ok()).unwrap_or(0),
                    parent: nametype == "PARENT",
                    nametype: match nametype {
                        "CREATE" => NameType::Create,
                        "DELETE" => NameType::Delete,
                        _ => NameType::Other,
                    },
                },
            )
        })
        .collect();
    items.sort_by_key(|(i, _)| *i);
    items.into_iter().map(|(_, p)| p).collect()
}

/// `major:minor` in hex, as audit writes it, to the kernel's internal dev_t.
fn kernel_dev(v: &str) -> Option<u32> {
    let (major, minor) = v.split_once(':')?;
    Some(u32::from_str_radix(major, 16).ok()? << 20 | u32::from_str_radix(minor, 16).ok()?)
}

/// `name` against `cwd` when relative, with `.`, `..` and `//` folded.
fn absolute(name: &[u8], cwd: Option<&[u8]>) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    let joined: Vec<u8>;
    let full: &[u8] = if name.first() == Some(&b'/') {
        name
    } else {
        joined = [cwd.unwrap_or(b"/"), b"/", name].concat();
        &joined
    };
    for part in full.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = Vec::with_capacity(full.len());
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// argv from EXECVE records: `aN` or, for long arguments, `aN_len` and pieces `aN[i]`.
/// Returns the arguments and whether they were cut.
fn argv(g: &Group) -> (Vec<Vec<u8>>, bool) {
    let mut fields: HashMap<&str, &str> = HashMap::new();
    let mut argc = 0usize;
    for r in g.all(types::EXECVE) {
        for (k, v) in r.fields() {
            if k == "argc" {
                argc = v.parse().unwrap_or(0);
            } else {
                fields.insert(k, v);
            }
        }
    }
    let mut out = Vec::new();
    let mut total = 0;
    let mut cut = false;
    let mut key = String::new();
    for i in 0..argc.min(65_536) {
        key.clear();
        key.push_str(&format!("a{i}"));
        let arg = match fields.get(key.as_str()) {
            Some(v) => decode(v).unwrap_or_default(),
            None => {
                // Split argument: pieces are hex (or quoted) parts of one string.
                let mut joined = Vec::new();
                let mut j = 0;
                while let Some(piece) = fields.get(format!("a{i}[{j}]").as_str()) {
                    joined.extend(decode(piece).unwrap_or_default());
                    j += 1;
                }
                if j == 0 {
                    cut = true; // auditd could not log it all (the kernel says so)
                    break;
                }
                joined
            }
        };
        total += arg.len() + 1;
        if total > ARGV_MAX_BYTES {
            cut = true;
            break;
        }
        out.push(arg);
    }
    (out, cut)
}

/// The path of a unix socket address (`saddr` hex: family, then sun_path). An abstract
/// address (leading NUL) is written `@name`.
fn unix_path(saddr: &str) -> Option<Vec<u8>> {
    if !saddr.len().is_multiple_of(2) || !saddr.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let raw = unhex(saddr);
    if raw.len() < 3 || u16::from_le_bytes([raw[0], raw[1]]) != 1 {
        return None;
    }
    let path = &raw[2..];
    if path[0] == 0 {
        let name = &path[1..];
        let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
        return Some([b"@", &name[..end]].concat());
    }
    let end = path.iter().position(|b| *b == 0).unwrap_or(path.len());
    Some(path[..end].to_vec())
}

/// (kernel dev, inode) of every PATH item (parent directories too), in record order.
pub fn identities(g: &Group) -> impl Iterator<Item = (u32, u64)> + '_ {
    g.all(types::PATH).filter_map(|r| Some((kernel_dev(r.get("dev")?)?, r.num("inode")?)))
}

/// The process title (PROCTITLE: argv joined by NUL, cut by the kernel at 128 bytes).
pub fn proctitle(g: &Group) -> Option<Vec<Vec<u8>>> {
    let v = g.first(types::PROCTITLE)?.bytes("proctitle")?;
    Some(v.split(|b| *b == 0).filter(|a| !a.is_empty()).map(<[u8]>::to_vec).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(lines: &[&str]) -> Event {
        match Mapper::default().map(&Group::of_lines(lines)) {
            Mapped::Event(ev) => *ev,
            _ => panic!("not an event"),
        }
    }

    #[test]
    fn maps_a_rename_with_relative_names() {
        let ev = event(&[
            "type=SYSCALL msg=audit(1795454091.289:5): arch=c000003e syscall=82 success=yes exit=0 a0=7ffe a1=7ffd a2=20 a3=0 items=4 ppid=1 pid=23202 auid=4294967295 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=4294967295 comm=\"xtask\" exe=\"/x\" key=\"k\"",
            "type=CWD msg=audit(1795454091.289:5): cwd=\"/etc/docker\"",
            "type=PATH msg=audit(1795454091.289:5): item=0 name=\"./\" inode=9 dev=fe:00 mode=040755 nametype=PARENT",
            "type=PATH msg=audit(1795454091.289:5): item=1 name=\"./\" inode=9 dev=fe:00 mode=040755 nametype=PARENT",
            "type=PATH msg=audit(1795454091.289:5): item=3 name=\"../docker/b\" inode=11 dev=fe:00 mode=0100644 nametype=CREATE",
            "type=PATH msg=audit(1795454091.289:5): item=2 name=\"a\" inode=11 dev=fe:00 mode=0100644 nametype=DELETE",
            "type=PROCTITLE msg=audit(1795454091.289:5): proctitle=78",
        ]);
        assert_eq!(
            (ev.action, ev.path.as_deref(), ev.path2.as_deref()),
            (Action::Rename, Some(&b"/etc/docker/a"[..]), Some(&b"/etc/docker/b"[..]))
        );
        assert_eq!((ev.ino, ev.dev, ev.mode), (11, 0xfe << 20, 0o100644));
        assert_eq!(ev.ts_boot_ns, 1_795_454_091_289_000_000);
        assert_eq!((ev.pid, ev.auid, ev.ids.uid), (23202, u32::MAX, 0));
    }

    #[test]
    fn maps_exec_with_split_and_hex_arguments() {
        let ev = event(&[
            "type=SYSCALL msg=audit(1.000:6): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=0 items=2 ppid=10 pid=11 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 ses=3 comm=\"docker\" exe=\"/usr/bin/docker\"",
            "type=EXECVE msg=audit(1.000:6): argc=3 a0=\"docker\" a1=2D7620 a2_len=6",
            "type=EXECVE msg=audit(1.000:6): a2[0]=2F3A2F a2[1]=686F7374",
        ]);
        assert_eq!((ev.action, ev.path.as_deref()), (Action::Exec, Some(&b"/usr/bin/docker"[..])));
        assert_eq!(ev.argv, vec![b"docker".to_vec(), b"-v ".to_vec(), b"/:/host".to_vec()]);
    }

    #[test]
    fn maps_connect_setid_and_user_messages() {
        let ev = event(&[
            "type=SYSCALL msg=audit(1.000:7): arch=c000003e syscall=42 success=yes exit=0 a0=3 a1=1 a2=6e a3=0 items=1 ppid=1 pid=50 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 ses=1 comm=\"curl\" exe=\"/usr/bin/curl\"",
            "type=SOCKADDR msg=audit(1.000:7): saddr=01002F7661722F72756E2F646F636B65722E736F636B00",
            "type=PATH msg=audit(1.000:7): item=0 name=\"/var/run/docker.sock\" inode=5 dev=00:19 mode=0140660 nametype=NORMAL",
        ]);
        assert_eq!(
            (ev.action, ev.path.as_deref(), ev.mode),
            (Action::Connect, Some(&b"/var/run/docker.sock"[..]), 0o140660)
        );
        let mut m = Mapper::default();
        let before = Group::of_lines(&["type=SYSCALL msg=audit(1.000:8): arch=c000003e syscall=2 success=no exit=-13 pid=60 uid=1000 euid=1000 suid=1000 fsuid=1000"]);
        let Mapped::Event(open) = m.map(&before) else { panic!() };
        assert!(!open.success());
        let set = Group::of_lines(&["type=SYSCALL msg=audit(1.000:9): arch=c000003e syscall=105 success=yes exit=0 a0=0 pid=60 uid=0 euid=0 suid=0 fsuid=0"]);
        let Mapped::Event(set) = m.map(&set) else { panic!() };
        assert_eq!(set.action, Action::SetId);
        assert_eq!((set.old_ids.euid, set.ids.euid), (1000, 0));
        let i386 =
            Group::of_lines(&["type=SYSCALL msg=audit(1.000:10): arch=40000003 syscall=11 pid=1"]);
        assert!(matches!(m.map(&i386), Mapped::OtherArch));
        let u = Group::of_lines(&["type=USER_CMD msg=audit(1.000:11): pid=5 uid=1000 auid=1000 ses=2 msg='cwd=\"/\" cmd=6964 exe=\"/usr/bin/sudo\" res=success'"]);
        let Mapped::Event(u) = m.map(&u) else { panic!() };
        assert_eq!(
            (u.action, u.args[0], u.path.as_deref()),
            (Action::UserMessage, 1123, Some(&b"/usr/bin/sudo"[..]))
        );
        let d = Group::of_lines(&["type=DAEMON_START msg=audit(1.000:12): op=start"]);
        assert!(matches!(m.map(&d), Mapped::NotEvaluated));
        let x = Group::of_lines(&["type=UNKNOWN[1999] msg=audit(1.000:13): op=start"]);
        assert!(matches!(m.map(&x), Mapped::Unknown));
    }

    #[test]
    fn unix_addresses_and_folding() {
        assert_eq!(unix_path("0100006162630000").unwrap(), b"@abc");
        assert_eq!(unix_path("02000050"), None);
        assert_eq!(unix_path("01"), None);
        assert_eq!(absolute(b"../../x", Some(b"/a")), b"/x");
        assert_eq!(absolute(b"x//y/.", None), b"/x/y");
    }
}
