//! What clients send on the connections a rule caught (a `connect()` to a watched socket,
//! such as the Docker API's): the kernel reports the bytes of each send, reassembled here
//! per connection into HTTP requests ([`super::http`]) and decoded as Docker API calls
//! ([`super::docker_api`]).

use super::docker_api::{self, DockerRequest};
use super::http::Stream;
use crate::event::Event;
use std::collections::HashMap;

/// Connections whose requests are decoded, at most (the oldest is dropped).
const MAX_STREAMS: usize = 4096;

/// A connection to a watched socket whose outgoing bytes are decoded.
struct Tracked {
    stream: Stream,
    /// The socket's path, for the alerts.
    socket: Vec<u8>,
    /// When it was opened (a counter), for eviction.
    opened: u64,
}

/// Captured connections by (pid, descriptor).
#[derive(Default)]
pub struct Requests {
    streams: HashMap<(u32, u32), Tracked>,
    opened: u64,
}

impl Requests {
    /// A connect a rule caught: what the process sends on its descriptor is decoded.
    pub fn open(&mut self, ev: &Event) {
        if self.streams.len() >= MAX_STREAMS {
            if let Some(oldest) = self.streams.iter().min_by_key(|(_, t)| t.opened).map(|(k, _)| *k)
            {
                self.streams.remove(&oldest);
            }
        }
        self.opened += 1;
        let socket = ev.path2.clone().or_else(|| ev.path.clone()).unwrap_or_default();
        self.streams.insert(
            (ev.pid, ev.args[0] as u32),
            Tracked { stream: Stream::default(), socket, opened: self.opened },
        );
    }

    /// Bytes sent (a payload event: `args` = descriptor, stream offset, bytes sent): the
    /// requests they complete, with the socket's path.
    pub fn feed(&mut self, ev: &Event) -> Vec<(DockerRequest, Vec<u8>)> {
        let Some(tracked) = self.streams.get_mut(&(ev.pid, ev.args[0] as u32)) else {
            return Vec::new();
        };
        let requests = tracked.stream.feed(ev.args[1], ev.args[2], &ev.payload);
        requests.iter().map(|r| (docker_api::decode(r), tracked.socket.clone())).collect()
    }

    /// A process ended: its connections are closed.
    pub fn exit(&mut self, pid: u32) {
        self.streams.retain(|(p, _), _| *p != pid);
    }
}
