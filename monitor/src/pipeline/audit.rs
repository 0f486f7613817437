//! Audit records into the pipeline: exclusion, grouping, mapping, then the same enrichment,
//! matching and output as kernel events. Used by `monitor replay --format auditd` (log
//! files) and `monitor run --source audit` (netlink multicast).

use super::Pipeline;
use crate::enrich::Clock;
use crate::event::Event;
use crate::rules::matcher::Matcher;
use crate::rules::RuleSet;
use crate::source::audit::{self, group::{Assembler, Group}, map::{Mapped, Mapper}, record::Record, types, Stats};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;

/// Records in, alerts out.
#[derive(Default)]
pub struct AuditFeed {
    assembler: Assembler,
    mapper: Mapper,
    done: Vec<Group>,
    pub stats: Stats,
    /// Live: the container of an event is looked up from the process's cgroup.
    live: bool,
}

impl AuditFeed {
    pub fn live() -> AuditFeed {
        AuditFeed { live: true, ..AuditFeed::default() }
    }

    /// One record; complete events go through `p`. `now`: a monotonic clock in ms.
    pub fn push<W: Write>(&mut self, r: Record, now: u64, p: &mut Pipeline<W>) -> std::io::Result<()> {
        if !types::known(r.rtype) {
            self.stats.unknown_type(&r);
            return Ok(());
        }
        if (Matcher { rules: &p.rules.rules, plan: &p.plan }).excluded(r.rtype) {
            self.stats.excluded += 1;
            return Ok(());
        }
        self.assembler.push(r, now, &mut self.done);
        self.flush(p)
    }

    /// A netlink message (live).
    pub fn push_netlink<W: Write>(&mut self, rtype: u16, body: &[u8], now: u64, p: &mut Pipeline<W>) -> std::io::Result<()> {
        self.stats.lines += 1;
        match Record::parse_netlink(rtype, body) {
            Ok(r) => {
                self.stats.records += 1;
                self.push(r, now, p)
            }
            Err(why) => {
                self.stats.malformed += 1;
                tracing::warn!(rtype, "audit message is not a record ({why}); skipped");
                Ok(())
            }
        }
    }

    /// Live: complete events that got no record since `before` ms.
    pub fn expire<W: Write>(&mut self, before: u64, p: &mut Pipeline<W>) -> std::io::Result<()> {
        self.assembler.expire(before, &mut self.done);
        self.flush(p)
    }

    /// The end of the input.
    pub fn finish<W: Write>(&mut self, p: &mut Pipeline<W>) -> std::io::Result<()> {
        self.assembler.finish(&mut self.done);
        self.flush(p)
    }

    fn flush<W: Write>(&mut self, p: &mut Pipeline<W>) -> std::io::Result<()> {
        let done = std::mem::take(&mut self.done);
        for g in &done {
            match self.mapper.map(g) {
                Mapped::Event(mut ev) => {
                    self.stats.events += 1;
                    if self.live {
                        ev.cgroup_name = cgroup_leaf(ev.pid);
                    }
                    p.handle_audit_event(*ev, g)?;
                }
                Mapped::OtherArch => self.stats.other_arch += 1,
                Mapped::NotEvaluated => self.stats.not_evaluated += 1,
                Mapped::Unknown => {}
            }
        }
        self.done = done;
        self.done.clear();
        Ok(())
    }
}

/// The last component of the process's cgroup (v2) path: what the eBPF source sends.
fn cgroup_leaf(pid: u32) -> Vec<u8> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else { return Vec::new() };
    let path = text.lines().find_map(|l| l.strip_prefix("0::")).or_else(|| text.lines().last().and_then(|l| l.splitn(3, ':').nth(2)));
    match path {
        Some("/") => b"/".to_vec(),
        Some(p) => p.rsplit('/').next().unwrap_or_default().as_bytes().to_vec(),
        None => Vec::new(),
    }
}

impl<W: Write> Pipeline<W> {
    /// An event mapped from audit records: what the kernel sensor would have added (watch
    /// ids by inode, the process as it is now) is added from the records, then as usual.
    pub fn handle_audit_event(&mut self, mut ev: Event, g: &Group) -> std::io::Result<()> {
        self.events += 1;
        // Audit stamps events with the wall clock; the pipeline's clock maps boot time to
        // wall time (offset 0 when replaying logs).
        ev.ts_boot_ns = (ev.ts_boot_ns as i128 - self.clock.offset_ns).max(0) as u64;
        if let Some(node) = g.node() {
            if node != &*self.hostname {
                self.hostname = node.into();
            }
        }
        let mut watched = audit::map::identities(g).filter_map(|(dev, ino)| self.plan.by_identity(dev, ino, None).map(|t| t.id));
        ev.watch = watched.next().unwrap_or(0);
        ev.watch2 = watched.next().unwrap_or(0);
        if let Some(sc) = g.first(types::SYSCALL) {
            let args = audit::map::proctitle(g);
            self.table.note(ev.pid, Some(ev.ppid), sc.bytes("exe"), &ev.comm, args);
        } else if ev.action == crate::event::Action::UserMessage {
            self.table.note(ev.pid, None, ev.path.clone(), &ev.comm, None);
        }
        self.handle_event(ev)
    }
}

/// What a replay of audit logs did, for the summary.
pub struct AuditReplayStats {
    pub audit: Stats,
    pub alerts: u64,
    pub files: Vec<PathBuf>,
}

/// Run audit logs through `rules` and write the alerts to `out`. `progress(read, total)` is
/// called now and then with bytes read.
pub fn replay_audit<W: Write + Send + 'static>(paths: &[PathBuf], rules: RuleSet, out: W, audit_trail: bool, progress: &mut dyn FnMut(u64, u64)) -> Result<AuditReplayStats> {
    let mut logs = audit::LogFiles::open(paths)?;
    let (rules, activated) = rules.for_audit();
    if activated > 0 {
        tracing::info!(rules = activated, "rules the eBPF source cannot evaluate are active for audit records");
    }
    let plan = crate::rules::targets::plan(&rules.rules);
    // Audit times are wall-clock already: no offset.
    let mut p = Pipeline::offline(rules, plan, out, Clock { offset_ns: 0 }, crate::enrich::hostname().into(), 0).render_on_thread().context("starting the render thread")?;
    // Audit logs are read where they were written, mostly: names come from this host's
    // /etc/passwd (the ids in the alerts are the log's either way).
    p.users = crate::enrich::users::Users::new();
    p.audit_trail = audit_trail;
    let mut feed = AuditFeed::default();
    let mut n = 0u64;
    while let Some(r) = logs.next_record(&mut feed.stats)? {
        feed.push(r, 0, &mut p)?;
        n += 1;
        if n % 4096 == 0 {
            progress(logs.read, logs.total);
        }
    }
    feed.finish(&mut p)?;
    p.out.finish()?;
    progress(logs.total, logs.total);
    Ok(AuditReplayStats { audit: feed.stats, alerts: p.alerts, files: logs.files().to_vec() })
}
