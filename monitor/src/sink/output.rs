//! Where the pipeline's lines go: alerts rendered to JSON and in-band records, in order.
//!
//! `Inline` renders and writes on the pipeline's own thread; live monitoring uses it, and
//! flushes each line as it is made. `Threaded` hands alerts in batches to a render thread
//! that owns the writer: a replay then reads, decodes and matches on one core while the
//! other renders and writes (rendering was half of a replay's time on one core).
//!
//! Either way the renderer keeps the members many alerts share ([`Context`]) and the
//! pipeline sends them only when they change, so the two threads touch no common memory
//! per alert. The render thread also hands each batch back with its items, and the
//! pipeline drops them: memory is freed by the thread that allocated it.

use super::json::{render_into, Alert, Context};
use super::parts::{HostParts, ProcessParts, RuleJson, UserParts};
use crate::enrich::Timestamps;
use std::io::Write;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Alerts per batch sent to the render thread: large enough that the channel's cost per
/// alert is small, small enough that the thread starts early.
const BATCH: usize = 256;
/// Batches in flight: the pipeline waits when the render thread is this far behind, so
/// memory stays bounded whatever the capture's size.
const IN_FLIGHT: usize = 8;

/// How lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LineFormat {
    /// One JSON object per line (for machines: SIEMs, jq).
    #[default]
    Json,
    /// One readable line per alert (see [`super::text`]), coloured or not.
    Text { colour: bool },
}

/// One line to write, or a change to the renderer's [`Context`] for the alerts after it.
pub enum Item {
    Alert(Alert),
    /// A line made elsewhere (an in-band record), without its newline.
    Line(Vec<u8>),
    Process(ProcessParts),
    User(UserParts),
    /// The JSON of the loaded rule at this position.
    Rule(usize, RuleJson),
    /// The host members of the alerts after it (`host`, `observer`).
    Host(HostParts),
}

pub enum Output<W: Write> {
    Inline(Box<Renderer<W>>),
    Threaded(Threaded),
}

/// Renders items into one reused buffer and writes them to `out`.
pub struct Renderer<W: Write> {
    pub out: W,
    line: Vec<u8>,
    timestamps: Timestamps,
    /// For `event.created`: when each line is made, by `now`.
    created: Timestamps,
    now: fn() -> i128,
    context: Context,
    format: LineFormat,
    /// The text line (text output).
    text: String,
}

/// The wall clock, in ns since the epoch.
fn wall_now() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

impl<W: Write> Renderer<W> {
    fn new(out: W, now: fn() -> i128) -> Renderer<W> {
        Renderer {
            out,
            line: Vec::with_capacity(4096),
            timestamps: Timestamps::default(),
            created: Timestamps::default(),
            now,
            context: Context::default(),
            format: LineFormat::Json,
            text: String::new(),
        }
    }

    /// `line` (JSON, without its newline) written in the output's format.
    fn put(&mut self, line: &[u8]) -> std::io::Result<()> {
        match self.format {
            LineFormat::Json => self.out.write_all(line)?,
            LineFormat::Text { colour } => {
                super::text::render(line, colour, &mut self.text);
                self.out.write_all(self.text.as_bytes())?;
            }
        }
        self.out.write_all(b"\n")
    }

    /// Write a line, or take in a change. Changes are taken out of the item (the item is
    /// dropped by the pipeline's thread later; what it still holds is empty).
    fn write(&mut self, item: &mut Item) -> std::io::Result<()> {
        let ctx = &mut self.context;
        match item {
            Item::Alert(a) => {
                let mut line = std::mem::take(&mut self.line);
                line.clear();
                let now = (self.now)();
                let (ts, created) = (self.timestamps.format(a.wall_ns), self.created.format(now));
                render_into(a, ctx, ts, created, &mut line);
                let written = self.put(&line);
                self.line = line;
                return written;
            }
            Item::Line(l) => return self.put(l),
            Item::Process(p) => std::mem::swap(&mut ctx.process, p),
            Item::User(u) => std::mem::swap(&mut ctx.user, u),
            Item::Rule(i, r) => {
                if ctx.rules.len() <= *i {
                    ctx.rules.resize_with(*i + 1, || None);
                }
                ctx.rules[*i] = Some(std::mem::replace(r, RuleJson::empty()));
            }
            Item::Host(h) => std::mem::swap(&mut ctx.host, h),
        }
        Ok(())
    }
}

/// The render thread and the batch being filled for it.
pub struct Threaded {
    batch: Vec<Item>,
    /// `None` once the thread has stopped (its result is then in `thread`).
    to_thread: Option<SyncSender<Vec<Item>>>,
    /// Emptied batches coming back for reuse.
    spare: Receiver<Vec<Item>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl<W: Write> Output<W> {
    pub fn inline(out: W) -> Output<W> {
        Output::Inline(Box::new(Renderer::new(out, wall_now)))
    }

    /// An inline output whose `event.created` times come from `now` (tests compare
    /// outputs byte for byte).
    pub fn inline_at(out: W, now: fn() -> i128) -> Output<W> {
        Output::Inline(Box::new(Renderer::new(out, now)))
    }

    /// Write lines in `format` (set before the output moves to a thread).
    pub fn set_format(&mut self, format: LineFormat) {
        if let Output::Inline(r) = self {
            r.format = format;
        }
    }

    pub fn send(&mut self, item: Item) -> std::io::Result<()> {
        match self {
            Output::Inline(r) => r.write(&mut { item }),
            Output::Threaded(t) => t.send(item),
        }
    }

    /// Flush the writer of an inline output (live: after every line). A render thread
    /// writes on its own and flushes when it ends (`finish`).
    pub fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::Inline(r) => r.out.flush(),
            Output::Threaded(_) => Ok(()),
        }
    }

    /// Write out everything sent and flush: the end of the output (a render thread stops
    /// and reports its write error, if it had one).
    pub fn finish(&mut self) -> std::io::Result<()> {
        match self {
            Output::Inline(r) => r.out.flush(),
            Output::Threaded(t) => t.finish(),
        }
    }

    /// The writer of an inline output (tests and fuzz targets read what was written).
    /// Panics on a threaded output, whose writer the render thread owns.
    pub fn inline_writer(&self) -> &W {
        match self {
            Output::Inline(r) => &r.out,
            Output::Threaded(_) => panic!("the writer belongs to the render thread"),
        }
    }
}

impl<W: Write + Send + 'static> Output<W> {
    /// The same output rendered on a thread of its own (an inline output's writer moves
    /// there; a threaded one stays as it is).
    pub fn threaded(self) -> std::io::Result<Output<W>> {
        let Output::Inline(renderer) = self else { return Ok(self) };
        let (to_thread, from_pipeline) = sync_channel::<Vec<Item>>(IN_FLIGHT);
        let (give_back, spare) = sync_channel::<Vec<Item>>(IN_FLIGHT + 1);
        let thread = std::thread::Builder::new().name("render".into()).spawn(move || {
            let mut renderer = renderer;
            for mut batch in from_pipeline {
                for item in batch.iter_mut() {
                    renderer.write(item)?;
                }
                // Back to the pipeline, items and all (see the module doc). If it has
                // enough batches in hand, this one is dropped here.
                let _ = give_back.try_send(batch);
            }
            renderer.out.flush()
        })?;
        Ok(Output::Threaded(Threaded {
            batch: Vec::with_capacity(BATCH),
            to_thread: Some(to_thread),
            spare,
            thread: Some(thread),
        }))
    }
}

impl Threaded {
    fn send(&mut self, item: Item) -> std::io::Result<()> {
        self.batch.push(item);
        if self.batch.len() >= BATCH {
            self.ship()?;
        }
        Ok(())
    }

    /// Hand the (full) batch to the thread. If the thread has stopped, it stopped on a
    /// write error: that error is returned here (and the batch is dropped with it).
    fn ship(&mut self) -> std::io::Result<()> {
        let next = match self.spare.try_recv() {
            Ok(mut spare) => {
                spare.clear();
                spare
            }
            Err(_) => Vec::with_capacity(BATCH),
        };
        let batch = std::mem::replace(&mut self.batch, next);
        let sent = self.to_thread.as_ref().map(|tx| tx.send(batch).is_ok());
        if sent != Some(true) {
            return self.finish();
        }
        Ok(())
    }

    /// Send what is left, close the channel and wait for the thread: its write error, if
    /// it had one. There is no thread after that: a later call is an error.
    fn finish(&mut self) -> std::io::Result<()> {
        if let (Some(tx), false) = (&self.to_thread, self.batch.is_empty()) {
            let batch = std::mem::take(&mut self.batch);
            let _ = tx.send(batch);
        }
        self.to_thread = None;
        match self.thread.take() {
            Some(t) => match t.join() {
                Ok(result) => result,
                Err(_) => Err(std::io::Error::other("the render thread panicked")),
            },
            None => Err(std::io::Error::other("the output was already closed")),
        }
    }
}

impl Drop for Threaded {
    /// An abandoned output (an error elsewhere) still ends its thread.
    fn drop(&mut self) {
        self.to_thread = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Action;
    use crate::rules::tests::event_at;
    use crate::sink::json::{RaisedBy, RuleRef, RuleSource};
    use std::sync::{Arc, Mutex};

    fn fixed_now() -> i128 {
        1_800_000_000_000_000_000
    }

    /// A stream of alerts with the shared members changing along the way: new process
    /// parts every 100 alerts, new user parts every 300, four rules, two host names, and
    /// in-band lines in between. Long enough for many batches.
    fn items() -> Vec<Item> {
        let mut out = Vec::new();
        let keys: Vec<Vec<String>> = (0..4).map(|i| vec![format!("key-{i}")]).collect();
        for i in 0..2000u64 {
            if i % 100 == 0 {
                let mut p = ProcessParts::default();
                let exe = format!("/bin/p{i}").into_bytes();
                let args = [b"p".to_vec(), vec![0xff, b'"']];
                let view = crate::enrich::ProcessView {
                    pid: 100,
                    exe: Some(&exe),
                    args: &args,
                    start: Some(5),
                    ppid: 1,
                    parent: None,
                    ancestors: vec![(1, Some(b"/sbin/init"), Some(1))],
                };
                p.render(&view, "host", crate::enrich::Clock { offset_ns: 0 });
                out.push(Item::Process(p));
            }
            let mut ev = event_at(Action::Open, 257, &format!("/etc/docker/f{i}"));
            ev.ids.uid = (i / 300) as u32;
            if i % 300 == 0 {
                let mut u = UserParts::default();
                u.render(&ev, |uid| (uid == 0).then_some("root"), |_| None);
                out.push(Item::User(u));
            }
            if i < 4 {
                out.push(Item::Rule(
                    i as usize,
                    RuleJson::render(&RuleRef {
                        keys: &keys[i as usize],
                        source: RuleSource::Builtin("test"),
                    }),
                ));
            }
            if i % 1000 == 0 {
                let host = crate::enrich::HostInfo::named(&format!("host-{i}"));
                out.push(Item::Host(HostParts::render(Some(&host), "observer")));
            }
            if i % 700 == 0 {
                out.push(Item::Line(format!("{{\"line\":{i}}}").into_bytes()));
            }
            let rule = if i % 5 == 4 {
                RaisedBy::Builtin(RuleJson::render(&RuleRef {
                    keys: &keys[0],
                    source: RuleSource::Builtin("b"),
                }))
            } else {
                RaisedBy::Loaded((i % 4) as usize)
            };
            out.push(Item::Alert(Alert {
                ev: Arc::new(ev),
                kind: crate::rules::model::Kind::Alert,
                rule,
                sequence: i + 1,
                wall_ns: 1_700_000_000_000_000_000 + i as i128 * 1_000_003,
                container: None,
                docker: None,
                tamper: (i % 7 == 0).then(|| "detail".to_string()),
                monitor_pid: 42,
            }));
        }
        out
    }

    /// A writer whose bytes the test can read after the render thread has it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_render_thread_writes_what_inline_rendering_writes() {
        let mut inline = Output::inline_at(Vec::new(), fixed_now);
        for item in items() {
            inline.send(item).unwrap();
        }
        inline.finish().unwrap();
        let expected = inline.inline_writer().clone();
        assert_eq!(expected.iter().filter(|&&b| b == b'\n').count(), 2003);

        let written = Shared::default();
        let mut threaded = Output::inline_at(written.clone(), fixed_now).threaded().unwrap();
        assert!(matches!(threaded, Output::Threaded(_)));
        for item in items() {
            threaded.send(item).unwrap();
        }
        threaded.finish().unwrap();
        let got = written.0.lock().unwrap().clone();
        assert!(got == expected, "threaded output differs from inline output");
        // Every line is one JSON object; the context changes show where they were sent.
        let lines: Vec<serde_json::Value> = got
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        let alerts: Vec<&serde_json::Value> =
            lines.iter().filter(|v| v.get("line").is_none()).collect();
        assert_eq!(alerts.len(), 2000);
        assert_eq!(alerts[99]["process"]["executable"], "/bin/p0");
        assert_eq!(alerts[100]["process"]["executable"], "/bin/p100");
        assert_eq!(alerts[999]["host"]["hostname"], "host-0");
        assert_eq!(alerts[1000]["host"]["hostname"], "host-1000");
        assert_eq!(alerts[1]["rule"]["id"], "key-1");
        assert_eq!(alerts[1999]["user"]["id"], "6");
        assert_eq!(alerts[5]["event"]["created"], "2027-01-15T08:00:00.000000000Z");
    }

    /// Fails every write after the first `ok` bytes, like a closed pipe.
    struct Breaks {
        ok: usize,
    }

    impl Write for Breaks {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.ok < b.len() {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            self.ok -= b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_on_the_render_thread_reaches_the_pipeline() {
        let mut out = Output::inline(Breaks { ok: 5000 }).threaded().unwrap();
        let mut error = None;
        for item in items() {
            if let Err(e) = out.send(item) {
                error = Some(e);
                break;
            }
        }
        let error = error.or_else(|| out.finish().err()).expect("the error was lost");
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn an_abandoned_render_thread_ends() {
        let written = Shared::default();
        let mut out = Output::inline(written.clone()).threaded().unwrap();
        for item in items().into_iter().take(300) {
            out.send(item).unwrap();
        }
        drop(out);
        // The thread ended and dropped its writer: this handle is the last one.
        assert_eq!(Arc::strong_count(&written.0), 1);
    }
}
