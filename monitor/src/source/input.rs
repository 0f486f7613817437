//! What a replay reads: the inputs named on the command line (files, directories of
//! rotated audit logs, `-` for standard input, FIFOs and other streams), each opened as a
//! byte stream with gzip undone, and what it holds, recognised from its first bytes: a
//! monitor capture (its magic), audit records (a line that parses as one), nothing, or
//! something else, described so that the user learns what they gave.
//!
//! A regular file is looked at and closed, then opened again when its turn comes (a
//! directory of rotations needs no descriptor per file); a stream cannot be read twice, so
//! it is kept open with the bytes already looked at.

use super::audit::record::Record;
use super::capture::MAGIC;
use crate::error::Error;
use std::cell::Cell;
use std::io::Read;
use std::path::PathBuf;
use std::rc::Rc;

/// How much of an input is looked at to recognise it (and to find its first record).
const HEAD_MAX: usize = 64 * 1024;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What the user is told an input should be.
pub const EXPECTED: &str = "expected audit records (lines such as `type=SYSCALL \
    msg=audit(1700000000.123:42): ...`, auditd's raw or enriched format) or a capture \
    written by `monitor run --capture`";

/// Where an input's bytes come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Stdin,
}

/// One input: named by the user, or found in a directory they named.
#[derive(Clone, Debug)]
pub struct Named {
    pub origin: Origin,
    pub from_dir: bool,
}

impl Named {
    /// How messages name it.
    pub fn name(&self) -> String {
        match &self.origin {
            Origin::File(p) => p.display().to_string(),
            Origin::Stdin => "stdin".into(),
        }
    }
}

/// What an input holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// Nothing (or only blank lines).
    Empty,
    Capture,
    AuditLog,
    Unknown,
}

/// An input looked at: what it holds, and its bytes when it cannot be opened again.
pub struct Probe {
    pub named: Named,
    pub content: Content,
    /// What its first bytes look like, for messages.
    pub looks_like: String,
    pub gzip: bool,
    /// Its size on disk, when it is a regular file (progress).
    pub size: Option<u64>,
    /// The time of its first audit record (ms since the epoch), when it has one early on.
    pub first_record_ms: Option<u64>,
    /// A stream's bytes, the looked-at part included.
    pub held: Option<Opened>,
}

/// An input opened for reading: its content (gzip undone) from the start.
pub struct Opened {
    pub reader: Box<dyn Read>,
    /// Bytes read from the file itself so far (compressed ones, for gzip): progress.
    pub consumed: Rc<Cell<u64>>,
}

/// Files and directories as named, `-` as standard input. A directory gives its
/// `audit.log*` files (auditd's log and its rotations, compressed or not).
pub fn expand(paths: &[PathBuf]) -> crate::Result<Vec<Named>> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            if out.iter().any(|n: &Named| n.origin == Origin::Stdin) {
                return Err(Error::Usage("`-` (standard input) is named twice".into()));
            }
            out.push(Named { origin: Origin::Stdin, from_dir: false });
        } else if p.is_dir() {
            let listed = std::fs::read_dir(p)
                .map_err(|e| Error::Input(format!("{}: cannot list: {e}", p.display())))?;
            let mut found: Vec<PathBuf> = listed
                .flatten()
                .map(|e| e.path())
                .filter(|f| {
                    f.is_file()
                        && f.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("audit.log"))
                })
                .collect();
            if found.is_empty() {
                return Err(Error::Input(format!(
                    "{}: no audit.log* files in this directory ({EXPECTED})",
                    p.display()
                )));
            }
            found.sort();
            out.extend(
                found.into_iter().map(|f| Named { origin: Origin::File(f), from_dir: true }),
            );
        } else {
            out.push(Named { origin: Origin::File(p.clone()), from_dir: false });
        }
    }
    Ok(out)
}

/// Counts what is read through it.
struct Counted<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// An input just opened, with its first bytes looked at.
struct Head {
    opened: Opened,
    size: Option<u64>,
    gzip: bool,
    head: Vec<u8>,
}

/// Open `named`: its content from the start (gzip undone), its size if a regular file,
/// and its first bytes.
fn open(named: &Named) -> crate::Result<Head> {
    let name = named.name();
    let consumed = Rc::new(Cell::new(0));
    let (raw, size): (Box<dyn Read>, Option<u64>) = match &named.origin {
        Origin::Stdin => {
            let stdin = std::io::stdin();
            if std::io::IsTerminal::is_terminal(&stdin) {
                // Not piped: whoever types is told what is awaited.
                eprintln!("monitor: reading audit records or a capture from the terminal (end with Ctrl-D)");
            }
            (Box::new(stdin.lock()), None)
        }
        Origin::File(p) => {
            let file = std::fs::File::open(p)
                .map_err(|e| Error::Input(format!("{name}: cannot open: {e}")))?;
            let meta =
                file.metadata().map_err(|e| Error::Input(format!("{name}: cannot stat: {e}")))?;
            (Box::new(file), meta.is_file().then_some(meta.len()))
        }
    };
    let mut raw: Box<dyn Read> = Box::new(Counted { inner: raw, count: consumed.clone() });
    let unreadable = |e: std::io::Error| Error::Input(format!("{name}: cannot read: {e}"));
    let head = read_head(&mut raw, 2).map_err(unreadable)?;
    let (mut reader, gzip): (Box<dyn Read>, bool) = if head.starts_with(&GZIP_MAGIC) {
        let whole = std::io::Cursor::new(head).chain(raw);
        (Box::new(flate2::read::MultiGzDecoder::new(whole)), true)
    } else {
        (Box::new(std::io::Cursor::new(head).chain(raw)), false)
    };
    let head = read_head(&mut reader, HEAD_MAX).map_err(|e| {
        Error::Input(if gzip {
            format!("{name}: gzip-compressed, but the data cannot be unpacked: {e}")
        } else {
            format!("{name}: cannot read: {e}")
        })
    })?;
    let reader = Box::new(std::io::Cursor::new(head.clone()).chain(reader));
    Ok(Head { opened: Opened { reader, consumed }, size, gzip, head })
}

/// Look at `named`: what it holds; a stream is kept open (see the module doc).
pub fn probe(named: Named) -> crate::Result<Probe> {
    let Head { opened, size, gzip, head } = open(&named)?;
    let content = content(&head);
    let first_record_ms = lines(&head)
        .find_map(|l| Record::parse_line(l).ok())
        .map(|r| r.sec.saturating_mul(1000).saturating_add(r.ms as u64));
    let looks_like = looks_like(&head, gzip, content);
    let held = size.is_none().then_some(opened);
    Ok(Probe { named, content, looks_like, gzip, size, first_record_ms, held })
}

impl Probe {
    /// Its content from the start: the stream held, or the file opened again.
    pub fn open(&mut self) -> crate::Result<Opened> {
        match self.held.take() {
            Some(o) => Ok(o),
            None => open(&self.named).map(|h| h.opened),
        }
    }
}

/// Up to `max` bytes, fewer only at the end of the input. Stops early, for a stream that
/// is still being written (`tail -f log | monitor replay -`), once what it holds is known.
fn read_head(input: &mut dyn Read, max: usize) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(max.min(HEAD_MAX));
    let mut chunk = vec![0u8; max.min(16 * 1024)];
    while head.len() < max {
        let want = (max - head.len()).min(chunk.len());
        let n = match input.read(&mut chunk[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        head.extend_from_slice(&chunk[..n]);
        if max > 2 && matches!(content(&head), Content::Capture | Content::AuditLog) {
            break;
        }
    }
    Ok(head)
}

/// The whole lines of `head` (a last line without its newline included).
fn lines(head: &[u8]) -> impl Iterator<Item = &str> {
    head.split(|b| *b == b'\n').filter_map(|l| std::str::from_utf8(l).ok())
}

/// What the first bytes of an input's content say it holds.
pub fn content(head: &[u8]) -> Content {
    if head.iter().all(|b| b.is_ascii_whitespace()) {
        return Content::Empty;
    }
    if head.starts_with(MAGIC) {
        return Content::Capture;
    }
    if lines(head).any(|l| Record::parse_line(l).is_ok()) {
        return Content::AuditLog;
    }
    Content::Unknown
}

/// What the first bytes look like, in words: a known format's name, and the bytes
/// themselves (escaped: they are the user's data).
pub fn looks_like(head: &[u8], gzip: bool, content: Content) -> String {
    const KNOWN: &[(&[u8], &str)] = &[
        (b"\x7fELF", "an executable (ELF)"),
        (b"PK\x03\x04", "a zip archive: unpack it first"),
        (b"BZh", "bzip2-compressed: bunzip2 it first, or `bzcat FILE | monitor replay -`"),
        (b"\xfd7zXZ\x00", "xz-compressed: unxz it first, or `xzcat FILE | monitor replay -`"),
        (b"\x28\xb5\x2f\xfd", "zstd-compressed: `zstdcat FILE | monitor replay -`"),
        (b"LPKSHHRH", "a systemd journal file: `journalctl --file FILE -o cat`"),
        (b"MONCAP", "a monitor capture of another format version"),
        (b"{", "JSON (the monitor's alert lines are its output, not its input)"),
        (b"type=", "audit-like lines, none of them a whole audit record"),
        (b"node=", "audit-like lines, none of them a whole audit record"),
    ];
    let shown: String =
        head.iter().take(24).flat_map(|b| std::ascii::escape_default(*b)).map(char::from).collect();
    let tar = head.get(257..262) == Some(b"ustar");
    let kind = match content {
        Content::AuditLog => Some("audit records"),
        Content::Capture => Some("a monitor capture"),
        Content::Empty => Some("empty"),
        Content::Unknown => KNOWN
            .iter()
            .find(|(magic, _)| head.starts_with(magic))
            .map(|(_, k)| *k)
            .or(tar.then_some("a tar archive: unpack it (tar -xf) and name the directory")),
    };
    let gz = if gzip { "gzip-compressed; inside, " } else { "" };
    match kind {
        Some(k) => format!("{gz}{k}; it starts with \"{shown}\""),
        None => format!("{gz}it starts with \"{shown}\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn recognises_captures_logs_gzip_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let log = b"type=SYSCALL msg=audit(1700000000.250:7): arch=c000003e syscall=2\n";
        let write = |name: &str, data: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, data).unwrap();
            Named { origin: Origin::File(p), from_dir: false }
        };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(log).unwrap();
        let gz = gz.finish().unwrap();
        let cases = [
            ("audit.log", log.to_vec(), Content::AuditLog, false),
            ("audit.log.1.gz", gz.clone(), Content::AuditLog, true),
            ("c.cap", [&MAGIC[..], b"\x05\0\0\0\x01{}"].concat(), Content::Capture, false),
            ("empty", Vec::new(), Content::Empty, false),
            ("blank", b"\n\n  \n".to_vec(), Content::Empty, false),
            ("elf", b"\x7fELF\x02\x01\x01\0garbage".to_vec(), Content::Unknown, false),
        ];
        for (name, data, want, gzip) in cases {
            let mut p = probe(write(name, &data)).unwrap();
            assert_eq!((p.content, p.gzip), (want, gzip), "{name}");
            assert!(p.held.is_none(), "a regular file is opened again, not held");
            let mut back = Vec::new();
            p.open().unwrap().reader.read_to_end(&mut back).unwrap();
            let plain = if gzip { log.to_vec() } else { data.clone() };
            assert_eq!(back, plain, "{name}: the content from the start");
        }
        let elf = probe(write("e", b"\x7fELF\x1b[31mred")).unwrap();
        assert!(elf.looks_like.contains("an executable (ELF)"), "{}", elf.looks_like);
        assert!(elf.looks_like.contains("\\x7fELF\\x1b[31mred"), "escaped: {}", elf.looks_like);
        let first = probe(write("f", log)).unwrap().first_record_ms;
        assert_eq!(first, Some(1_700_000_000_250));
        // A cut gzip stream is an error that says so.
        let cut = probe(write("cut.gz", &gz[..gz.len() / 2]));
        assert!(cut.is_err_and(|e| e.to_string().contains("cannot be unpacked")));
    }

    #[test]
    fn directories_give_their_audit_logs_and_stdin_is_named_once() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["audit.log", "audit.log.1", "audit.log.2.gz", "other.txt"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        let named = expand(&[dir.path().to_path_buf(), "-".into()]).unwrap();
        let names: Vec<String> = named.iter().map(Named::name).collect();
        assert_eq!(names.len(), 4);
        assert!(names[..3].iter().all(|n| n.contains("audit.log")) && names[3] == "stdin");
        assert!(named[..3].iter().all(|n| n.from_dir) && !named[3].from_dir);
        assert!(matches!(expand(&["-".into(), "-".into()]), Err(Error::Usage(_))));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(expand(&[empty.path().to_path_buf()]), Err(Error::Input(_))));
    }
}
