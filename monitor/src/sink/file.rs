//! `--output file:PATH`: alert lines appended to a file that rotates by size.
//!
//! Rotation renames PATH to PATH.1 (PATH.1 to PATH.2, ..., the oldest beyond `max_files`
//! removed) and starts a new PATH. It happens before a line that would take the file past
//! `max_size`, so a line is never split across files; a line larger than `max_size` gets a
//! file to itself. [`LineSink::reopen`] starts again on PATH after an outside rotation
//! (logrotate renames the file, then sends SIGUSR1). A PATH that is not a regular file
//! (`/dev/null`, a FIFO, a terminal) is written as it is: never rotated, truncated or synced.
//!
//! Lines are collected and written at [`LineSink::flush`] (the live monitor flushes after
//! each read of the kernel's buffer) or when 64 KiB are waiting, whole lines in one
//! `write(2)`: a reader of the file never sees half a line, and a crash of the monitor
//! loses at most the lines of the read in progress. For the disk, a background thread calls `fdatasync` at most once a
//! second when lines were written since the last one (and a rotation or drop syncs at
//! once): a crash of the machine loses at most the last second.

use super::line::{strip_line, LineSink, SinkError, SinkStats};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Waiting lines are written once they reach this many bytes.
const WRITE_AT: usize = 64 << 10;

/// How often written data is synced to disk at most.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Mode of a file the sink creates: alerts carry command lines and paths, so not for all.
const FILE_MODE: u32 = 0o640;

/// An append-only alert file rotated by size.
pub struct RotatingFile {
    path: PathBuf,
    name: String,
    /// Rotate before a line that would take the file past this (0: never rotate).
    max_size: u64,
    /// Rotated files kept (PATH.1 ... PATH.max_files).
    max_files: usize,
    file: Arc<File>,
    /// PATH is a regular file (else: no rotation, truncation or sync).
    regular: bool,
    /// Bytes in the current file, with those waiting in `buf`.
    size: u64,
    /// Whole lines not yet written, and how many.
    buf: Vec<u8>,
    waiting: u64,
    stats: SinkStats,
    syncer: Syncer,
}

impl RotatingFile {
    /// Open (or create, mode 0640) PATH for appending. Its directory must exist.
    pub fn open(
        path: impl Into<PathBuf>,
        max_size: u64,
        max_files: usize,
    ) -> Result<RotatingFile, SinkError> {
        let path = path.into();
        let (file, size, regular) = open_append(&path)?;
        if !regular && max_size > 0 {
            tracing::debug!(path = %path.display(), "not a regular file: written without rotation");
        }
        let file = Arc::new(file);
        Ok(RotatingFile {
            name: format!("file:{}", path.display()),
            syncer: Syncer::start(file.clone()),
            path,
            max_size,
            max_files,
            file,
            regular,
            size,
            buf: Vec::new(),
            waiting: 0,
            stats: SinkStats::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `fdatasync` calls made so far (background and explicit).
    pub fn syncs(&self) -> u64 {
        self.syncer.shared.syncs.load(Ordering::Relaxed)
    }

    /// PATH.n, the n-th rotated file.
    pub fn rotated_path(&self, n: usize) -> PathBuf {
        numbered(&self.path, n)
    }

    fn rotate(&mut self) -> Result<(), SinkError> {
        self.write_out()?;
        self.syncer.sync_now(&self.file).map_err(|e| SinkError::io(&self.path, "fdatasync", e))?;
        if self.max_files == 0 {
            remove_if_present(&self.path)?;
        } else {
            remove_if_present(&numbered(&self.path, self.max_files))?;
            for n in (1..self.max_files).rev() {
                rename_if_present(&numbered(&self.path, n), &numbered(&self.path, n + 1))?;
            }
            rename_if_present(&self.path, &numbered(&self.path, 1))?;
        }
        self.start_file()?;
        self.stats.rotations += 1;
        // The renames reach the disk with the directory.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// Open PATH afresh and hand it to the syncer.
    fn start_file(&mut self) -> Result<(), SinkError> {
        let (file, size, regular) = open_append(&self.path)?;
        self.file = Arc::new(file);
        self.size = size;
        self.regular = regular;
        self.syncer.replace(self.file.clone());
        Ok(())
    }

    /// Write the waiting lines in one `write(2)`; when that fails they are lost, and
    /// counted.
    fn write_out(&mut self) -> Result<(), SinkError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let (len, lines) = (self.buf.len() as u64, std::mem::take(&mut self.waiting));
        let result = (&*self.file).write_all(&self.buf);
        self.buf.clear();
        if self.buf.capacity() > 2 * WRITE_AT {
            self.buf.shrink_to(WRITE_AT);
        }
        match result {
            Ok(()) => {
                self.stats.lines += lines;
                self.stats.bytes += len;
                if self.regular {
                    self.syncer.shared.dirty.store(true, Ordering::Release);
                }
                Ok(())
            }
            Err(e) => {
                // A short write (disk full) must not leave half a line that the next line
                // would be glued to.
                self.size -= len;
                if self.regular {
                    let _ = self.file.set_len(self.size);
                }
                self.stats.lost += lines;
                Err(SinkError::io(&self.path, "write", e))
            }
        }
    }
}

impl LineSink for RotatingFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn write_line(&mut self, line: &[u8]) -> Result<(), SinkError> {
        let line = strip_line(line).inspect_err(|_| self.stats.lost += 1)?;
        let len = line.len() as u64 + 1;
        if self.regular && self.max_size > 0 && self.size > 0 && self.size + len > self.max_size {
            // A failed rotation keeps writing to the current file: a lost alert is worse
            // than an oversized file.
            if let Err(e) = self.rotate() {
                tracing::warn!(output = %self.name, "rotation failed, still writing to the current file: {e}");
            }
        }
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        self.size += len;
        self.waiting += 1;
        if self.buf.len() >= WRITE_AT {
            self.write_out()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.write_out()
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        self.write_out()?;
        self.syncer.sync_now(&self.file).map_err(|e| SinkError::io(&self.path, "fdatasync", e))
    }

    fn reopen(&mut self) -> Result<(), SinkError> {
        self.sync()?;
        self.start_file()?;
        tracing::info!(output = %self.name, size = self.size, "reopened");
        Ok(())
    }

    fn stats(&self) -> SinkStats {
        self.stats
    }
}

/// PATH opened for appending (created when missing), its size, and whether it is a regular
/// file.
fn open_append(path: &Path) -> Result<(File, u64, bool), SinkError> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| SinkError::io(path, "open", e))?;
    let meta = file.metadata().map_err(|e| SinkError::io(path, "stat", e))?;
    Ok((file, meta.len(), meta.file_type().is_file()))
}

fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn remove_if_present(path: &Path) -> Result<(), SinkError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(SinkError::io(path, "remove", e)),
        _ => Ok(()),
    }
}

fn rename_if_present(from: &Path, to: &Path) -> Result<(), SinkError> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(SinkError::io(from, "rename", e)),
        _ => Ok(()),
    }
}

impl Drop for RotatingFile {
    fn drop(&mut self) {
        if let Err(e) = self.write_out() {
            tracing::warn!(output = %self.name, "final write: {e}");
        }
        self.syncer.stop();
        if self.syncer.shared.dirty.swap(false, Ordering::AcqRel) {
            if let Err(e) = self.file.sync_data() {
                tracing::warn!(output = %self.name, "final fdatasync: {e}");
            }
        }
    }
}

/// The background thread that syncs the current file at most once per [`SYNC_INTERVAL`].
struct Syncer {
    shared: Arc<SyncShared>,
    thread: Option<JoinHandle<()>>,
}

struct SyncShared {
    /// The file being written; replaced at rotation and reopen.
    file: Mutex<Arc<File>>,
    stop: Mutex<bool>,
    wake: Condvar,
    /// Lines were written since the last sync.
    dirty: AtomicBool,
    syncs: AtomicU64,
}

impl Syncer {
    fn start(file: Arc<File>) -> Syncer {
        let shared = Arc::new(SyncShared {
            file: Mutex::new(file),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            dirty: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("file-sync".into())
            .spawn(move || s.run())
            .inspect_err(|e| {
                tracing::warn!(
                    "no background sync thread ({e}): the file is synced at rotation and stop only"
                )
            })
            .ok();
        Syncer { shared, thread }
    }

    fn replace(&self, file: Arc<File>) {
        *self.shared.file.lock().unwrap_or_else(|e| e.into_inner()) = file;
    }

    /// Sync `file` now if anything was written since the last sync.
    fn sync_now(&self, file: &File) -> io::Result<()> {
        if self.shared.dirty.swap(false, Ordering::AcqRel) {
            self.shared.syncs.fetch_add(1, Ordering::Relaxed);
            file.sync_data()?;
        }
        Ok(())
    }

    fn stop(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl SyncShared {
    fn run(&self) {
        let mut stop = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        // Checked before each wait too: a stop asked for during a sync found nobody waiting.
        while !*stop {
            stop = self.wake.wait_timeout(stop, SYNC_INTERVAL).unwrap_or_else(|e| e.into_inner()).0;
            if *stop {
                return;
            }
            if !self.dirty.swap(false, Ordering::AcqRel) {
                continue;
            }
            let file = self.file.lock().unwrap_or_else(|e| e.into_inner()).clone();
            self.syncs.fetch_add(1, Ordering::Relaxed);
            // The stop lock is not held while syncing: a drop must not wait for the disk.
            drop(stop);
            if let Err(e) = file.sync_data() {
                tracing::warn!("fdatasync of the alert file: {e}");
            }
            stop = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn lines_of(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path).unwrap_or_default().lines().map(String::from).collect()
    }

    /// A rotating file `NAME` in a fresh directory (removed when the `TempDir` is dropped).
    fn rotating(
        name: &str,
        max_size: u64,
        max_files: usize,
    ) -> (tempfile::TempDir, PathBuf, RotatingFile) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        let f = RotatingFile::open(&path, max_size, max_files).unwrap();
        (dir, path, f)
    }

    /// A line of exactly `len` bytes with its newline.
    fn line(n: usize, len: usize) -> Vec<u8> {
        let mut s = format!("{{\"n\":{n},\"pad\":\"");
        let fill = len - 1 - s.len() - 2;
        s.push_str(&"x".repeat(fill));
        s.push_str("\"}");
        assert_eq!(s.len() + 1, len);
        s.into_bytes()
    }

    #[test]
    fn a_line_that_fits_exactly_stays_and_the_next_one_rotates() {
        let (_dir, path, mut f) = rotating("alerts.json", 100, 3);
        f.write_line(&line(1, 50)).unwrap();
        f.write_line(&line(2, 50)).unwrap();
        f.flush().unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            100,
            "two 50-byte lines fill 100 exactly"
        );
        assert!(!f.rotated_path(1).exists());
        f.write_line(&line(3, 50)).unwrap();
        f.flush().unwrap();
        assert_eq!(lines_of(&f.rotated_path(1)).len(), 2);
        assert_eq!(lines_of(&path).len(), 1);
        assert_eq!(f.stats().rotations, 1);
        assert_eq!(f.stats().lines, 3);
        assert_eq!(f.stats().bytes, 150);
    }

    #[test]
    fn a_line_larger_than_the_limit_gets_a_file_of_its_own_unsplit() {
        let (_dir, path, mut f) = rotating("a", 100, 5);
        f.write_line(&line(1, 30)).unwrap();
        let big = line(2, 250);
        f.write_line(&big).unwrap();
        f.write_line(&line(3, 30)).unwrap();
        f.flush().unwrap();
        assert_eq!(lines_of(&f.rotated_path(2)).len(), 1);
        assert_eq!(lines_of(&f.rotated_path(1)), vec![String::from_utf8(big).unwrap()]);
        assert_eq!(lines_of(&path).len(), 1);
    }

    #[test]
    fn the_oldest_file_beyond_max_files_is_dropped_and_order_is_kept() {
        let (_dir, path, mut f) = rotating("a", 60, 2);
        for n in 0..10 {
            f.write_line(&line(n, 40)).unwrap();
        }
        f.flush().unwrap();
        // One line per file: 9 in PATH, 8 in PATH.1, 7 in PATH.2; older ones gone.
        let n_of = |p: &Path| -> Vec<u64> {
            lines_of(p)
                .iter()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["n"].as_u64().unwrap()
                })
                .collect()
        };
        assert_eq!(n_of(&path), vec![9]);
        assert_eq!(n_of(&f.rotated_path(1)), vec![8]);
        assert_eq!(n_of(&f.rotated_path(2)), vec![7]);
        assert!(!f.rotated_path(3).exists());
        assert_eq!(f.stats().rotations, 9);
    }

    #[test]
    fn max_files_zero_starts_over_in_place() {
        let (_dir, path, mut f) = rotating("a", 60, 0);
        f.write_line(&line(1, 40)).unwrap();
        f.write_line(&line(2, 40)).unwrap();
        f.flush().unwrap();
        assert_eq!(lines_of(&path).len(), 1);
        assert!(!f.rotated_path(1).exists());
    }

    #[test]
    fn a_fifo_is_written_as_it_is_never_rotated() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipe");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let reader = {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut text = String::new();
                File::open(path).unwrap().read_to_string(&mut text).unwrap();
                text
            })
        };
        let mut f = RotatingFile::open(&path, 100, 2).unwrap();
        for n in 0..50 {
            f.write_line(&line(n, 40)).unwrap();
        }
        f.flush().unwrap();
        assert_eq!(f.stats().rotations, 0);
        drop(f);
        assert_eq!(reader.join().unwrap().lines().count(), 50);
        assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_fifo(), "still the FIFO");
        assert!(!path.with_file_name("pipe.1").exists(), "nothing renamed");
    }

    #[test]
    fn an_existing_file_is_appended_to_and_its_size_counts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        std::fs::write(&path, [b'{', b'}', b'\n'].repeat(30)).unwrap();
        let mut f = RotatingFile::open(&path, 100, 1).unwrap();
        f.write_line(&line(1, 20)).unwrap();
        f.flush().unwrap();
        assert_eq!(lines_of(&path).len(), 1, "90 + 20 > 100: rotated first");
        assert_eq!(lines_of(&f.rotated_path(1)).len(), 30);
    }

    #[test]
    fn reopen_starts_a_new_file_after_an_outside_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        let moved = dir.path().join("a.old");
        let mut f = RotatingFile::open(&path, 0, 0).unwrap();
        f.write_line(b"{\"n\":1}\n").unwrap();
        std::fs::rename(&path, &moved).unwrap();
        f.write_line(b"{\"n\":2}").unwrap();
        f.reopen().unwrap();
        f.write_line(b"{\"n\":3}").unwrap();
        f.flush().unwrap();
        assert_eq!(lines_of(&moved), vec!["{\"n\":1}", "{\"n\":2}"]);
        assert_eq!(lines_of(&path), vec!["{\"n\":3}"]);
    }

    #[test]
    fn syncs_are_batched_to_at_most_one_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = RotatingFile::open(dir.path().join("a"), 0, 0).unwrap();
        let started = std::time::Instant::now();
        for n in 0..2000 {
            f.write_line(format!("{{\"n\":{n}}}").as_bytes()).unwrap();
        }
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let secs = started.elapsed().as_secs_f64();
        let syncs = f.syncs();
        assert!(syncs >= 1, "lines written 1.5 s ago must have been synced");
        assert!((syncs as f64) <= secs.ceil(), "{syncs} syncs in {secs:.1} s");
        f.write_line(b"{}").unwrap();
        f.sync().unwrap();
        assert_eq!(f.syncs(), syncs + 1, "an explicit sync of new lines syncs once");
        f.sync().unwrap();
        assert_eq!(f.syncs(), syncs + 1, "nothing new: no sync");
    }

    #[test]
    fn dropping_the_sink_does_not_wait_for_the_sync_interval() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..5 {
            let mut f = RotatingFile::open(dir.path().join("a"), 0, 0).unwrap();
            f.write_line(b"{}").unwrap();
            let started = std::time::Instant::now();
            drop(f);
            assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
        }
        assert_eq!(lines_of(&dir.path().join("a")).len(), 5);
    }

    #[test]
    fn a_failed_write_is_a_typed_error_and_a_counted_loss() {
        // /dev/full refuses every write with ENOSPC.
        let mut f = RotatingFile::open("/dev/full", 0, 0).unwrap();
        // Lines wait for the flush, which writes them and finds the error.
        f.write_line(b"{}").unwrap();
        match f.flush() {
            Err(SinkError::Io { op: "write", source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc::ENOSPC))
            }
            other => panic!("expected a write error, got {other:?}"),
        }
        assert_eq!(f.stats(), SinkStats { lost: 1, ..Default::default() });
    }

    #[test]
    fn a_missing_directory_is_an_open_error_naming_the_path() {
        let e = RotatingFile::open("/nonexistent-dir/alerts.json", 0, 0).err().unwrap();
        assert!(e.to_string().starts_with("/nonexistent-dir/alerts.json: open: "), "{e}");
    }
}
