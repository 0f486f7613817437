//! HTTP/1.x requests reassembled from the bytes a client sent on a captured connection.
//!
//! The kernel reports each send with its offset in the stream and at most the first few KiB
//! of it (see `monitor_common::CAPTURE_*`), so a stream can have holes. The parser keeps
//! what a request's head and a bounded body need, accounts for skipped bytes by the
//! offsets, says when a body was cut, and after losing its place waits for a send that
//! starts a new request line. Everything here is untrusted input: sizes are bounded and
//! malformed input resynchronises, it never panics.

/// Largest request head kept (request line and headers).
const HEAD_MAX: usize = 16 * 1024;
/// Largest body kept for decoding; longer bodies are reported truncated.
pub const BODY_MAX: usize = 256 * 1024;
/// Chunk-size lines longer than this are malformed.
const CHUNK_LINE_MAX: usize = 64;

/// One request as the client sent it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Request target without the query string.
    pub path: String,
    pub query: String,
    /// `HTTP/1.1`
    pub version: String,
    pub headers: Vec<(String, String)>,
    /// The body, or its first `BODY_MAX` bytes.
    pub body: Vec<u8>,
    /// Some of the body was not seen (capture limits or `BODY_MAX`).
    pub body_truncated: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
enum State {
    /// Collecting a request head.
    Head,
    /// Inside a body of known length: bytes still expected.
    Body { remaining: u64 },
    /// Inside a chunked body.
    Chunked(ChunkState),
    /// Lost the place (a hole in the head, garbage): wait for a send that starts a request.
    Lost,
}

#[derive(Debug)]
enum ChunkState {
    /// Reading a chunk-size line.
    Size,
    /// Inside a chunk: bytes still expected, then CRLF.
    Data { remaining: u64 },
    /// The CRLF after a chunk's data.
    DataEnd,
    /// After the zero-size chunk: trailers until an empty line.
    Trailer,
}

/// One direction (client to server) of one connection.
#[derive(Debug)]
pub struct Stream {
    /// Stream offset of the next byte we expect.
    next: u64,
    state: State,
    /// Unparsed bytes (head or chunk-size lines).
    pending: Vec<u8>,
    current: Option<Request>,
}

impl Default for Stream {
    fn default() -> Self {
        Stream { next: 0, state: State::Head, pending: Vec::new(), current: None }
    }
}

/// Whether `data` starts like a request line (`TOKEN SP /...`).
fn starts_request(data: &[u8]) -> bool {
    let Some(sp) = data.iter().take(16).position(|&b| b == b' ') else { return false };
    sp > 0 && data[..sp].iter().all(u8::is_ascii_uppercase) && data.get(sp + 1) == Some(&b'/')
}

impl Stream {
    /// Feed one send: `data` is the captured start of `total` bytes sent at `offset`.
    /// Returns the requests completed by it.
    pub fn feed(&mut self, offset: u64, total: u64, data: &[u8]) -> Vec<Request> {
        let mut done = Vec::new();
        if offset < self.next {
            // Overlap (the stream restarted or offsets are unreliable): start over here.
            self.reset();
        } else if offset > self.next {
            self.skip(offset - self.next, &mut done);
        }
        self.next = offset;
        if matches!(self.state, State::Lost) && starts_request(data) {
            self.reset();
        }
        self.consume(data, &mut done);
        self.next = offset + data.len() as u64;
        let missing = total.saturating_sub(data.len() as u64);
        if missing > 0 {
            self.skip(missing, &mut done);
            self.next = offset + total;
        }
        done
    }

    fn reset(&mut self) {
        self.state = State::Head;
        self.pending.clear();
        self.current = None;
    }

    /// `n` bytes of the stream were not captured.
    fn skip(&mut self, n: u64, done: &mut Vec<Request>) {
        match &mut self.state {
            State::Body { remaining } if n < *remaining => {
                *remaining -= n;
                if let Some(r) = self.current.as_mut() {
                    r.body_truncated = true;
                }
            }
            State::Body { remaining } => {
                let left = n - *remaining;
                if let Some(mut r) = self.current.take() {
                    r.body_truncated = true;
                    done.push(r);
                }
                self.state = if left == 0 { State::Head } else { State::Lost };
                self.pending.clear();
            }
            State::Chunked(_) => {
                // Chunk boundaries are lost with the bytes: report what we have.
                if let Some(mut r) = self.current.take() {
                    r.body_truncated = true;
                    done.push(r);
                }
                self.state = State::Lost;
                self.pending.clear();
            }
            State::Head | State::Lost => {
                self.state = State::Lost;
                self.pending.clear();
            }
        }
    }

    fn consume(&mut self, mut data: &[u8], done: &mut Vec<Request>) {
        while !data.is_empty() {
            match &mut self.state {
                State::Lost => return,
                State::Head => {
                    let before = self.pending.len();
                    let room = HEAD_MAX.saturating_sub(before);
                    let take = data.len().min(room);
                    self.pending.extend_from_slice(&data[..take]);
                    let search_from = before.saturating_sub(3);
                    match find(&self.pending[search_from..], b"\r\n\r\n") {
                        Some(i) => {
                            let end = search_from + i + 4;
                            let used = end - before;
                            let head = std::mem::take(&mut self.pending);
                            data = &data[used..];
                            match parse_head(&head[..end]) {
                                Some((req, body)) => self.start_body(req, body, done),
                                None => self.state = State::Lost,
                            }
                        }
                        None if take < data.len() || self.pending.len() >= HEAD_MAX => {
                            self.state = State::Lost;
                            self.pending.clear();
                            return;
                        }
                        None => return,
                    }
                }
                State::Body { remaining } => {
                    let take = (data.len() as u64).min(*remaining) as usize;
                    *remaining -= take as u64;
                    let finished = *remaining == 0;
                    keep_body(self.current.as_mut(), &data[..take]);
                    data = &data[take..];
                    if finished {
                        done.extend(self.current.take());
                        self.state = State::Head;
                    }
                }
                State::Chunked(chunk) => match chunk {
                    ChunkState::Size | ChunkState::Trailer => {
                        let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                            self.pending.extend_from_slice(data);
                            if self.pending.len() > CHUNK_LINE_MAX.max(HEAD_MAX) {
                                self.state = State::Lost;
                            }
                            return;
                        };
                        self.pending.extend_from_slice(&data[..nl]);
                        data = &data[nl + 1..];
                        let line = std::mem::take(&mut self.pending);
                        let line = line.strip_suffix(b"\r").unwrap_or(&line);
                        if matches!(chunk, ChunkState::Trailer) {
                            if line.is_empty() {
                                done.extend(self.current.take());
                                self.state = State::Head;
                            }
                            continue;
                        }
                        let size = std::str::from_utf8(line)
                            .ok()
                            .and_then(|l| l.split(';').next())
                            .and_then(|h| u64::from_str_radix(h.trim(), 16).ok());
                        *chunk = match size {
                            Some(0) => ChunkState::Trailer,
                            Some(n) if line.len() <= CHUNK_LINE_MAX => {
                                ChunkState::Data { remaining: n }
                            }
                            _ => {
                                self.state = State::Lost;
                                return;
                            }
                        };
                    }
                    ChunkState::Data { remaining } => {
                        let take = (data.len() as u64).min(*remaining) as usize;
                        *remaining -= take as u64;
                        if *remaining == 0 {
                            *chunk = ChunkState::DataEnd;
                        }
                        keep_body(self.current.as_mut(), &data[..take]);
                        data = &data[take..];
                    }
                    ChunkState::DataEnd => {
                        // CR LF after the data (a bare LF is tolerated; the CR may end a send).
                        if data.starts_with(b"\r\n") {
                            data = &data[2..];
                        } else if data.starts_with(b"\n") {
                            data = &data[1..];
                        } else if data == b"\r" {
                            return;
                        } else {
                            self.state = State::Lost;
                            return;
                        }
                        *chunk = ChunkState::Size;
                    }
                },
            }
        }
    }

    fn start_body(&mut self, req: Request, body: BodyKind, done: &mut Vec<Request>) {
        match body {
            BodyKind::None => {
                done.push(req);
                self.state = State::Head;
            }
            BodyKind::Length(n) => {
                self.current = Some(req);
                self.state = State::Body { remaining: n };
            }
            BodyKind::Chunked => {
                self.current = Some(req);
                self.state = State::Chunked(ChunkState::Size);
            }
        }
    }
}

fn keep_body(req: Option<&mut Request>, bytes: &[u8]) {
    if let Some(r) = req {
        let room = BODY_MAX.saturating_sub(r.body.len());
        if bytes.len() > room {
            r.body_truncated = true;
        }
        r.body.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parse a complete head (ending in CRLF CRLF).
fn parse_head(head: &[u8]) -> Option<(Request, BodyKind)> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?;
    let target = first.next()?;
    let version = first.next()?;
    if first.next().is_some()
        || method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !target.starts_with('/')
        || !version.starts_with("HTTP/1.")
    {
        return None;
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let req = Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        version: version.to_string(),
        headers,
        body: Vec::new(),
        body_truncated: false,
    };
    let body = if req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        BodyKind::Chunked
    } else {
        match req.header("content-length").map(|v| v.parse::<u64>()) {
            Some(Ok(0)) | None => BodyKind::None,
            Some(Ok(n)) => BodyKind::Length(n),
            Some(Err(_)) => return None,
        }
    };
    Some((req, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The requests a fresh connection's `sends` make, each send captured whole.
    fn requests(sends: &[&[u8]]) -> Vec<Request> {
        let mut s = Stream::default();
        let mut off = 0;
        let mut out = Vec::new();
        for d in sends {
            out.extend(s.feed(off, d.len() as u64, d));
            off += d.len() as u64;
        }
        out
    }

    #[test]
    fn requests_with_and_without_bodies_on_one_connection() {
        let reqs = requests(&[
            b"HEAD /_ping HTTP/1.1\r\nHost: docker\r\n\r\n",
            b"POST /v1.41/containers/create?name=x HTTP/1.1\r\nContent-Length: 10\r\n",
            b"Content-Type: application/json\r\n\r\n{\"a\":",
            b"true}GET /v1.41/containers/json HTTP/1.1\r\n\r\n",
        ]);
        assert_eq!(reqs.len(), 3);
        assert_eq!((reqs[0].method.as_str(), reqs[0].path.as_str()), ("HEAD", "/_ping"));
        assert_eq!(reqs[1].path, "/v1.41/containers/create");
        assert_eq!(reqs[1].query, "name=x");
        assert_eq!(reqs[1].body, b"{\"a\":true}");
        assert!(!reqs[1].body_truncated);
        assert_eq!(reqs[2].path, "/v1.41/containers/json");
    }

    #[test]
    fn chunked_bodies() {
        let reqs = requests(&[
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n",
            b"5;ext=1\r\n:1}  \r\n0\r\n\r\n",
        ]);
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].body, b"{\"a\":1}  ");
    }

    #[test]
    fn holes_truncate_bodies_and_resync_on_a_request_line() {
        let mut s = Stream::default();
        let head = b"POST /load HTTP/1.1\r\nContent-Length: 100000\r\n\r\n";
        let mut out = s.feed(0, head.len() as u64, head);
        // 100000 body bytes sent in 25 sends of 4000, of which only 100 were captured each.
        let mut off = head.len() as u64;
        for _ in 0..25 {
            out.extend(s.feed(off, 4000, &[b'x'; 100]));
            off += 4000;
        }
        assert_eq!(out.len(), 1);
        assert!(out[0].body_truncated);
        let next = b"GET /after HTTP/1.1\r\n\r\n";
        out = s.feed(off, next.len() as u64, next);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].path, "/after");
        // A hole inside a head: lost until a send starts a request.
        let mut s = Stream::default();
        assert!(s.feed(0, 1000, b"GET /a HTTP/1.1\r\nX: ").is_empty());
        assert!(s.feed(1000, 5, b"zz\r\n\r").is_empty());
        let r = s.feed(1005, 19, b"GET /b HTTP/1.1\r\n\r\n");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].path, "/b");
    }

    #[test]
    fn garbage_and_oversized_heads_never_panic() {
        let mut s = Stream::default();
        assert!(s.feed(0, 5, b"\x00\xff\r\n\r").is_empty());
        let big = vec![b'a'; HEAD_MAX + 10];
        assert!(s.feed(5, big.len() as u64, &big).is_empty());
        assert!(s.feed(0, 23, b"GET /x HTTP/1.1\r\nbad\r\n\r\n").is_empty());
        let mut s = Stream::default();
        assert!(s.feed(0, 37, b"POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n").is_empty());
        let mut s = Stream::default();
        assert!(s
            .feed(0, 60, b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            .is_empty());
    }
}
