//! The signals a live monitor answers (stop, reload, reopen), with who sent each: a stop's
//! `monitor-stop` record names the process that asked for it.
//!
//! A thread waits in `signal-hook`'s iterator, which reads each signal's `siginfo` (the
//! sender's pid and uid, whether the kernel sent it), and hands the requests to the async
//! loop through a channel.

use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::{Handle, SignalsInfo};
use signal_hook::low_level::siginfo::Cause;

/// One signal received.
#[derive(Clone, Debug)]
pub struct Request {
    pub signal: i32,
    /// The process that sent it, when the kernel says (not for a terminal's ^C).
    pub sender: Option<Sender>,
    /// The kernel sent it on its own behalf (a terminal's ^C, a parent-death signal).
    pub by_kernel: bool,
}

#[derive(Clone, Debug)]
pub struct Sender {
    pub pid: u32,
    pub uid: u32,
    /// Its executable, read when the signal arrived (`None` once it has exited).
    pub executable: Option<String>,
}

impl Request {
    /// `SIGTERM`, `SIGINT`, ...
    pub fn name(&self) -> &'static str {
        match self.signal {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            libc::SIGHUP => "SIGHUP",
            libc::SIGUSR1 => "SIGUSR1",
            _ => "signal",
        }
    }

    /// Who asked, for the `monitor-stop` record: the sender and how it relates to the
    /// monitor (`parent`: the process that started it, `service-manager`: pid 1,
    /// `terminal`: the kernel on a terminal's behalf, `other`).
    pub fn requested_by(&self, parent: u32) -> serde_json::Value {
        let relation = match &self.sender {
            _ if self.by_kernel => "terminal",
            Some(s) if s.pid == parent => "parent",
            Some(s) if s.pid == 1 => "service-manager",
            _ => "other",
        };
        match &self.sender {
            Some(s) => {
                let mut by = serde_json::json!({"pid": s.pid, "uid": s.uid, "relation": relation});
                if let Some(exe) = &s.executable {
                    by["executable"] = serde_json::json!(exe);
                }
                by
            }
            None => serde_json::json!({"relation": relation}),
        }
    }
}

/// The signals being listened to, as a stream of [`Request`]s.
pub struct Signals {
    rx: tokio::sync::mpsc::UnboundedReceiver<Request>,
    handle: Handle,
}

impl Signals {
    /// Start answering `signals` (their default actions no longer apply).
    pub fn listen(signals: &[i32]) -> std::io::Result<Signals> {
        let mut info = SignalsInfo::<WithOrigin>::new(signals)?;
        let handle = info.handle();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        std::thread::Builder::new().name("signals".into()).spawn(move || {
            for origin in info.forever() {
                let sender = origin.process.map(|p| Sender {
                    pid: p.pid as u32,
                    uid: p.uid,
                    executable: std::fs::read_link(format!("/proc/{}/exe", p.pid))
                        .ok()
                        .map(|e| e.display().to_string()),
                });
                let request = Request {
                    signal: origin.signal,
                    sender,
                    by_kernel: origin.cause == Cause::Kernel,
                };
                if tx.send(request).is_err() {
                    break;
                }
            }
        })?;
        Ok(Signals { rx, handle })
    }

    /// The next signal received.
    pub async fn recv(&mut self) -> Option<Request> {
        self.rx.recv().await
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.handle.close();
    }
}
