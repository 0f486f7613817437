//! From audit records to events, for both audit sources: records of excluded types dropped
//! (the rules' `exclude` list), the rest grouped by serial ([`super::group`]) and mapped
//! onto the events the eBPF sensors produce ([`super::map`]), each with what its records
//! say beyond the event ([`AuditContext`]).

use super::group::{Assembler, Group};
use super::map::{Mapped, Mapper};
use super::record::Record;
use super::Stats;
use crate::source::{Arrival, AuditContext};
use crate::vocab::records as types;
use std::collections::VecDeque;

pub struct Events {
    assembler: Assembler,
    mapper: Mapper,
    done: Vec<Group>,
    ready: VecDeque<Arrival>,
    pub stats: Stats,
    /// The record types the rules' `exclude` list drops (sorted; auditd drops them before
    /// anything else).
    excluded: Vec<u16>,
    /// Realtime minus boottime: audit stamps events with the wall clock, events carry
    /// boot time (0 for logs read elsewhere: their times stay wall-clock).
    clock_offset_ns: i128,
    /// Live: the container of an event is read from its process's cgroup.
    live: bool,
}

impl Events {
    pub fn new(clock_offset_ns: i128, live: bool) -> Events {
        Events {
            assembler: Assembler::default(),
            mapper: Mapper::default(),
            done: Vec::new(),
            ready: VecDeque::new(),
            stats: Stats::default(),
            excluded: Vec::new(),
            clock_offset_ns,
            live,
        }
    }

    /// Which record types are dropped (the plan's `excluded_types`).
    pub fn set_excluded(&mut self, mut types: Vec<u16>) {
        types.sort_unstable();
        self.excluded = types;
    }

    /// One record. `now`: a monotonic clock in ms (live; 0 for logs).
    pub fn push(&mut self, r: Record, now: u64) {
        if !types::known(r.rtype) {
            self.stats.unknown_type(&r);
            return;
        }
        if self.excluded.binary_search(&r.rtype).is_ok() {
            self.stats.excluded += 1;
            return;
        }
        self.assembler.push(r, now, &mut self.done);
        self.map_done();
    }

    /// Live: events that got no record since `before` ms are complete.
    pub fn expire(&mut self, before: u64) {
        self.assembler.expire(before, &mut self.done);
        self.map_done();
    }

    /// The end of the input: every open event is complete.
    pub fn finish(&mut self) {
        self.assembler.finish(&mut self.done);
        self.map_done();
    }

    /// The next complete event.
    pub fn pop(&mut self) -> Option<Arrival> {
        self.ready.pop_front()
    }

    fn map_done(&mut self) {
        for g in self.done.drain(..) {
            match self.mapper.map(&g) {
                Mapped::Event(mut ev) => {
                    self.stats.events += 1;
                    if self.live {
                        ev.cgroup_name = cgroup_leaf(ev.pid);
                    }
                    ev.ts_boot_ns = (ev.ts_boot_ns as i128 - self.clock_offset_ns).max(0) as u64;
                    let syscall = g.first(types::SYSCALL);
                    let audit = AuditContext {
                        node: g.node().map(str::to_string),
                        names: super::names::names(&g),
                        identities: super::map::identities(&g).collect(),
                        exe: match syscall {
                            Some(sc) => sc.bytes("exe"),
                            None => ev.path.clone(),
                        },
                        args: super::map::proctitle(&g),
                        syscall: syscall.is_some(),
                    };
                    self.ready.push_back(Arrival { audit: Some(audit), ..Arrival::event(*ev) });
                }
                Mapped::OtherArch => self.stats.other_arch += 1,
                Mapped::NotEvaluated => self.stats.not_evaluated += 1,
                Mapped::Unknown => {}
            }
        }
    }
}

/// The last component of the process's cgroup (v2) path: what the eBPF source sends.
fn cgroup_leaf(pid: u32) -> Vec<u8> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return Vec::new();
    };
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .or_else(|| text.lines().last().and_then(|l| l.splitn(3, ':').nth(2)));
    match path {
        Some("/") => b"/".to_vec(),
        Some(p) => p.rsplit('/').next().unwrap_or_default().as_bytes().to_vec(),
        None => Vec::new(),
    }
}
