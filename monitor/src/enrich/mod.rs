//! Enrichment, the second stage: what the host adds to an event. Paths made canonical, the
//! process table (kept from fork/exec/exit events, seeded from /proc), user and group
//! names, the container an event came from, and which host it happened on.
//! [`Enricher::observe`] takes each event in; what matching and the sinks need is then read
//! from it: the acting process ([`Enricher::actor`]), and for an alert its process, user,
//! container and host ([`Enricher::process_view`], [`Enricher::user_name`],
//! [`Enricher::container`], [`Enricher::host_of`]).
//!
//! A replay takes all of it from the recording, none from the host it runs on: the
//! capture's tables and header, or what an audit log says (`node=`, its enriched names).

pub mod clock;
pub mod container;
pub mod host;
pub mod paths;
pub mod process;
pub mod users;

pub use clock::{rfc3339, today, Clock, Timestamps};
pub use host::{hostname, kernel_release, HostInfo};

use crate::event::{Action, Actor, Event};
use crate::plan::FilterPlan;
use container::{ContainerInfo, Containers};
use process::{ProcInfo, ProcessTable};
use std::sync::Arc;
use users::Users;

/// A stamp no other call in this process returns: the version of a table whose contents
/// something was worked out from (an alert's process or user members), so that a change, or
/// another table put in its place, is never mistaken for the one it was worked out from.
pub fn next_version() -> u64 {
    static VERSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    VERSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
}

/// An alert's process, as the table has it: executable, argv, start time (clock ticks since
/// boot), parent and ancestors.
pub struct ProcessView<'t> {
    pub pid: u32,
    pub exe: Option<&'t [u8]>,
    pub args: &'t [Vec<u8>],
    pub start: Option<u64>,
    pub ppid: u32,
    /// The parent's entry, when the table has it.
    pub parent: Option<&'t ProcInfo>,
    /// (pid, executable, start), parent first, up to pid 1.
    pub ancestors: Vec<process::Ancestor<'t>>,
}

/// Which host events happened on.
#[derive(Clone, Debug)]
pub enum HostOf {
    /// This one, by this name (live), or the one a capture's header names.
    Named(String),
    /// The one an audit log names per record (`node=`), else this fallback (`--host`),
    /// else unknown.
    FromLog(Option<String>),
}

/// What the host adds to events.
pub struct Enricher {
    table: ProcessTable,
    users: Users,
    containers: Containers,
    host: HostOf,
    /// Paths are canonicalised and containers looked up on this host (live); a replay
    /// takes what the recording says.
    live: bool,
}

impl Enricher {
    /// Live: the process table from /proc, user names from /etc/passwd, containers from
    /// the runtime's state on this host.
    pub fn live() -> Enricher {
        let mut table = ProcessTable::new();
        table.seed_from_proc();
        Enricher {
            table,
            users: Users::new(),
            containers: Containers::new(),
            host: HostOf::Named(hostname()),
            live: true,
        }
    }

    /// Replay: nothing is read from this host; the recording tells (`insert`,
    /// `set_users`, `set_groups`, `learn_names`, and `host`).
    pub fn offline(host: HostOf) -> Enricher {
        Enricher {
            table: ProcessTable::offline(),
            users: Users::from_map(Default::default()),
            containers: Containers::with_docker_root("/nonexistent".into()),
            host,
            live: false,
        }
    }

    /// The host of an event whose source names `node` (an audit log's `node=`).
    pub fn host_of<'s>(&'s self, node: Option<&'s str>) -> Option<&'s str> {
        match &self.host {
            HostOf::Named(name) => Some(name),
            HostOf::FromLog(fallback) => node.or(fallback.as_deref()),
        }
    }

    /// Names the recording gives ids (an audit log's enriched fields).
    pub fn learn_names(&mut self, users: &[(u32, String)], groups: &[(u32, String)]) {
        self.users.learn(users, groups);
    }

    /// Take an event in: its paths made canonical (live) and a detached object named by
    /// its watch (`plan`), the process table updated, an exec's container noted. Both the
    /// process and its parent are then in the table for [`Enricher::actor`].
    pub fn observe(&mut self, mut ev: Event, plan: &FilterPlan) -> Arc<Event> {
        if self.live {
            paths::canonicalise_event(&mut ev);
        }
        paths::name_detached(&mut ev, |dev, ino, generation| {
            plan.by_identity(dev, ino, generation).map(|t| t.canonical.clone())
        });
        self.table.observe(&ev);
        if ev.action == Action::Exec && self.live {
            // A container's metadata is read while it runs (see `note_exec`).
            self.containers.note_exec(&ev.cgroup_name);
        }
        if !matches!(ev.action, Action::Fork | Action::Exit) {
            self.table.get(ev.pid);
            if ev.ppid != 0 {
                self.table.get(ev.ppid);
            }
        }
        Arc::new(ev)
    }

    /// What an audit event's records say of its process (audit sources have no
    /// fork/exit events): it wins over what the table held.
    pub fn note(
        &mut self,
        ev: &Event,
        exe: Option<Vec<u8>>,
        args: Option<Vec<Vec<u8>>>,
        syscall: bool,
    ) {
        let ppid = syscall.then_some(ev.ppid);
        self.table.note(ev.pid, ppid, exe, &ev.comm, if syscall { args } else { None });
    }

    /// The acting process of `ev` (taken in by `observe`).
    pub fn actor<'s>(&'s self, ev: &'s Event) -> Actor<'s> {
        let exe = if ev.action == Action::Exec && ev.success() {
            ev.path.as_deref()
        } else {
            self.table.peek(ev.pid).and_then(|p| p.exe.as_deref())
        };
        Actor { exe, parent_exe: self.table.peek(ev.ppid).and_then(|p| p.exe.as_deref()) }
    }

    /// What an alert's process members are made of is the same while this is: (table
    /// version, pid, ppid).
    pub fn process_key(&self, ev: &Event) -> (u64, u32, u32) {
        (self.table.version(), ev.pid, ev.ppid)
    }

    /// An alert's process: from the table, which has taken the event in first (an exec's
    /// new image and argv included); its lineage is read from /proc if new (live). With it,
    /// its [`Enricher::process_key`] once that is loaded.
    pub fn process_view(&mut self, ev: &Event) -> ((u64, u32, u32), ProcessView<'_>) {
        self.table.load_lineage(ev.pid);
        self.table.get(ev.ppid);
        let key = self.process_key(ev);
        let process = self.table.peek(ev.pid);
        let view = ProcessView {
            pid: ev.pid,
            exe: process.and_then(|p| p.exe.as_deref()),
            args: process.map(|p| p.args.as_slice()).unwrap_or_default(),
            start: process.and_then(|p| p.start),
            ppid: ev.ppid,
            parent: self.table.peek(ev.ppid),
            ancestors: self.table.ancestors(ev.pid),
        };
        (key, view)
    }

    /// An alert's user members are the same while this is: (names version, the ids).
    pub fn user_key(&self, ev: &Event) -> (u64, [u32; 7]) {
        let i = &ev.ids;
        (self.users.version(), [i.uid, i.euid, i.suid, ev.auid, i.gid, i.egid, i.sgid])
    }

    /// The name of user `uid`.
    pub fn user_name(&self, uid: u32) -> Option<&str> {
        self.users.name(uid)
    }

    /// The name of group `gid`.
    pub fn group_name(&self, gid: u32) -> Option<&str> {
        self.users.group(gid)
    }

    /// `pid` and its ancestors as the table knows them, the process first.
    pub fn lineage(&self, pid: u32) -> Vec<u32> {
        std::iter::once(pid).chain(self.table.ancestors(pid).into_iter().map(|(p, ..)| p)).collect()
    }

    /// The container `ev` came from (live: looked up on this host).
    pub fn container(&mut self, ev: &Event) -> Option<ContainerInfo> {
        if !self.live {
            return None;
        }
        self.containers.of_event(ev)
    }

    /// How many processes the table holds.
    pub fn processes(&self) -> usize {
        self.table.len()
    }

    /// Live upkeep: re-read user names if /etc/passwd changed (whether it did), and forget
    /// containers long gone.
    pub fn refresh(&mut self) -> bool {
        self.containers.prune();
        self.users.refresh()
    }

    /// A process-table entry (replay: the recording read it from /proc).
    pub fn insert(&mut self, pid: u32, info: ProcInfo) {
        self.table.insert(pid, info);
    }

    /// The recording's user names (replay); its group names stay.
    pub fn set_users(&mut self, names: std::collections::HashMap<u32, String>) {
        let groups = self.users.groups_snapshot().clone().into_iter().collect();
        self.users = Users::from_map(names);
        self.users.set_groups(groups);
    }

    /// The recording's group names (replay).
    pub fn set_groups(&mut self, names: std::collections::HashMap<u32, String>) {
        self.users.set_groups(names);
    }

    /// For a capture: the table as it is now.
    pub fn processes_now(&self) -> Vec<(u32, ProcInfo)> {
        self.table.entries()
    }

    /// For a capture: the entries read from /proc since the last call.
    pub fn take_learned(&mut self) -> Vec<(u32, ProcInfo)> {
        self.table.take_learned()
    }

    /// For a capture: the user names.
    pub fn users_now(&self) -> &crate::hash::FastMap<u32, String> {
        self.users.snapshot()
    }

    /// For a capture: the group names.
    pub fn groups_now(&self) -> &crate::hash::FastMap<u32, String> {
        self.users.groups_snapshot()
    }
}
