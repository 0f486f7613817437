//! The kernel audit subsystem as a live source: the read-only multicast group every record
//! is copied to, read beside auditd (which keeps its own link and its rules). auditd's
//! rules, loaded into the kernel, decide what arrives.
//!
//! Before the monitor says it runs, the path is proven: a message of the monitor's own
//! (`op=monitor-ready` with a nonce, a TRUSTED_APP record auditd logs too) must come back
//! through the multicast group. Records that arrive meanwhile are kept.

use super::events::Events;
use super::netlink::{self, Multicast};
use super::record::Record;
use crate::source::{Input, Source};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;
use tracing::{info, warn};

/// An audit event still open after this long without a record is complete.
const QUIET_MS: u64 = 200;
/// How long the probe may take to come back.
const PROOF_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct AuditLive {
    socket: Multicast,
    events: Events,
    /// The kernel's loss counter when the monitor started.
    lost_at_start: u32,
    started: Instant,
    /// Whether (and how fast) the probe came back, or why it was not sent.
    proof: String,
}

impl AuditLive {
    /// Subscribe, and say what the kernel's audit state means for what will arrive.
    pub fn start(clock_offset_ns: i128) -> crate::Result<AuditLive> {
        let socket = Multicast::subscribe()?;
        let status = netlink::status()?;
        if status.enabled == 0 {
            warn!("kernel auditing is disabled (auditctl -e 1 enables it): no records will arrive");
        }
        // The kernel gives a process an audit context when it forks, and only once
        // auditing has been enabled since boot: what ran before is never audited.
        let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        if !cmdline.split_whitespace().any(|w| w == "audit=1") {
            warn!("the kernel was booted without audit=1: processes started before auditing was first enabled are never audited (add audit=1 to the kernel command line)");
        }
        match netlink::rule_count() {
            Ok(0) => warn!("the kernel has no audit rules loaded: only user-space messages will arrive (load rules with auditctl -R FILE)"),
            Ok(n) => info!(kernel_rules = n, auditd_pid = status.pid, "reading the audit multicast"),
            Err(e) => warn!(error = %e, "cannot list the kernel's audit rules"),
        }
        let mut live = AuditLive {
            socket,
            events: Events::new(clock_offset_ns, true),
            lost_at_start: status.lost,
            started: Instant::now(),
            proof: String::new(),
        };
        live.proof = if status.enabled == 0 {
            "not proven: auditing is disabled".into()
        } else {
            live.prove()?
        };
        Ok(live)
    }

    /// Send the probe and wait for it on the multicast group; what happened, in words.
    fn prove(&mut self) -> crate::Result<String> {
        let nonce =
            format!("{}-{}", std::process::id(), crate::enrich::Clock::measure().boot_now());
        let text = format!("op=monitor-ready nonce={nonce}");
        if let Err(e) = netlink::send_user_message(netlink::AUDIT_TRUSTED_APP, &text) {
            warn!(error = %e, "cannot send the probe message that proves the audit record path (CAP_AUDIT_WRITE?); starting without that proof");
            return Ok(format!("not proven: {e}"));
        }
        let sent = Instant::now();
        let needle = format!("nonce={nonce}");
        loop {
            let left = PROOF_WAIT.saturating_sub(sent.elapsed());
            if left.is_zero() {
                warn!("the probe message did not come back through the audit multicast within {}s (a never,user or exclude rule, or a full backlog?); starting without that proof", PROOF_WAIT.as_secs());
                return Ok("not proven: the probe did not come back".into());
            }
            let mut pfd =
                libc::pollfd { fd: self.socket.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd for the duration of the call.
            unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(1000) as i32) };
            if self.drain(Some(&needle))? {
                let ms = sent.elapsed().as_millis();
                info!(ms, "the audit record path is proven: the probe came back");
                return Ok(format!("proven: the probe came back in {ms} ms"));
            }
        }
    }

    /// Read every waiting record into the events; with `probe`, the probe (the record
    /// holding it) is taken out, and whether it came is returned.
    fn drain(&mut self, probe: Option<&str>) -> crate::Result<bool> {
        let now = self.now_ms();
        let events = &mut self.events;
        let mut seen = false;
        let drained = self.socket.drain(|rtype, body| {
            if let Some(needle) = probe {
                if rtype == netlink::AUDIT_TRUSTED_APP
                    && body.windows(needle.len()).any(|w| w == needle.as_bytes())
                {
                    seen = true;
                    return Ok(());
                }
            }
            events.stats.lines += 1;
            match Record::parse_netlink(rtype, body) {
                Ok(r) => {
                    events.stats.records += 1;
                    events.push(r, now);
                }
                Err(why) => {
                    events.stats.malformed += 1;
                    warn!(rtype, "audit message is not a record ({why}); skipped");
                }
            }
            Ok(())
        });
        drained.map_err(|source| crate::Error::Io {
            context: "reading the audit multicast".into(),
            source,
        })?;
        Ok(seen)
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

impl Source for AuditLive {
    fn next(&mut self) -> crate::Result<Option<Input>> {
        if let Some(a) = self.events.pop() {
            return Ok(Some(Input::Event(Box::new(a))));
        }
        let now = self.now_ms();
        self.drain(None)?;
        self.events.expire(now.saturating_sub(QUIET_MS));
        Ok(self.events.pop().map(|a| Input::Event(Box::new(a))))
    }

    fn finish(&mut self) {
        self.events.finish();
    }

    /// The records the kernel lost since the start, plus socket overruns (each is at least
    /// one record).
    fn lost(&self) -> Option<u64> {
        let kernel = netlink::status().ok()?.lost.wrapping_sub(self.lost_at_start) as u64;
        Some(kernel + self.socket.overruns)
    }

    fn readiness(&self) -> Option<RawFd> {
        Some(self.socket.as_raw_fd())
    }

    fn proof(&self) -> Option<&str> {
        Some(&self.proof)
    }

    /// The record types the rules exclude (auditd's own rules decide what arrives).
    fn arm(&mut self, plan: &crate::plan::FilterPlan) -> crate::Result<()> {
        self.events.set_excluded(plan.excluded_types.clone());
        Ok(())
    }
}
