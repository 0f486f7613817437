//! The consumer side of the `EVENTS` ring buffer, with its data pages mapped once.
//!
//! The kernel lays a ring buffer out as a consumer-position page, a producer-position page
//! and the data pages, and inserts every page into a mapping at `mmap` time. aya's and
//! libbpf's readers map the data pages twice in a row, so that a record crossing the end
//! reads as one slice; that puts the buffer twice into the monitor's resident memory (8 MiB
//! of RSS for the default 4 MiB buffer, measured with /proc/PID/smaps). Mapped once, as
//! here, a record that crosses the end (one in `size / record size`) is copied into a
//! scratch buffer instead: the reader is written here for those 4 MiB.
//!
//! The protocol is the kernel's (kernel/bpf/ringbuf.c, and libbpf's `ringbuf_process_ring`):
//! the producer position is read with acquire ordering, each record's 8-byte header with
//! acquire (busy bit: still being written, stop there; discard bit: skip it), and the
//! consumer position is published with release ordering after each record.

use aya::maps::MapData;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// `BPF_RINGBUF_BUSY_BIT`, `BPF_RINGBUF_DISCARD_BIT`, `BPF_RINGBUF_HDR_SZ` (uapi bpf.h).
const BUSY_BIT: u32 = 1 << 31;
const DISCARD_BIT: u32 = 1 << 30;
const HEADER: usize = 8;

/// One shared mapping, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize, prot: i32, offset: usize) -> io::Result<Mapping> {
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The reader of one BPF ring buffer map, which it keeps open.
pub struct RingReader {
    /// The consumer position's page (read-write).
    consumer: Mapping,
    /// The producer position's page followed by the data pages, once (read-only).
    producer: Mapping,
    page: usize,
    mask: usize,
    /// Where this reader is: what it has consumed, published after every record.
    pos: usize,
    /// A record that crosses the end of the data pages, put back together.
    scratch: Vec<u8>,
    /// Last, so that it is closed after the mappings are gone.
    map: MapData,
}

// The mappings are owned by the reader alone; the kernel is the only other party.
unsafe impl Send for RingReader {}

impl RingReader {
    /// Map the ring buffer `map` of `size` bytes (a power of two, a whole number of pages).
    pub fn new(map: MapData, size: usize, page: usize) -> io::Result<RingReader> {
        if !size.is_power_of_two() || !size.is_multiple_of(page) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("ring buffer size {size} is not a power of two in whole pages"),
            ));
        }
        let fd = map.fd().as_fd();
        let consumer = Mapping::new(fd, page, libc::PROT_READ | libc::PROT_WRITE, 0)?;
        let producer = Mapping::new(fd, page + size, libc::PROT_READ, page)?;
        let mut r = RingReader {
            consumer,
            producer,
            page,
            mask: size - 1,
            pos: 0,
            scratch: Vec::new(),
            map,
        };
        r.pos = r.consumer_pos().load(Ordering::Acquire);
        Ok(r)
    }

    fn consumer_pos(&self) -> &AtomicUsize {
        unsafe { self.consumer.ptr.cast::<AtomicUsize>().as_ref() }
    }

    fn producer_pos(&self) -> usize {
        unsafe { self.producer.ptr.cast::<AtomicUsize>().as_ref() }.load(Ordering::Acquire)
    }

    fn data(&self) -> *const u8 {
        unsafe { self.producer.ptr.as_ptr().add(self.page) }
    }

    /// Hand the next record to `f` and consume it; `None` when there is none yet (empty, or
    /// the next one is still being written).
    pub fn next<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        loop {
            if self.pos == self.producer_pos() {
                return None;
            }
            let at = self.pos & self.mask;
            // Records start 8-aligned and the size is a multiple of 8: a header never
            // crosses the end.
            let header = unsafe { &*self.data().add(at).cast::<AtomicU32>() };
            let word = header.load(Ordering::Acquire);
            if word & BUSY_BIT != 0 {
                return None;
            }
            let len = (word & !(BUSY_BIT | DISCARD_BIT)) as usize;
            let next = self.pos + (HEADER + len).next_multiple_of(8);
            if word & DISCARD_BIT != 0 {
                self.consume(next);
                continue;
            }
            let start = (at + HEADER) & self.mask;
            let size = self.mask + 1;
            let out = if start + len <= size {
                let record = unsafe { std::slice::from_raw_parts(self.data().add(start), len) };
                f(record)
            } else {
                let first = size - start;
                self.scratch.clear();
                unsafe {
                    self.scratch.extend_from_slice(std::slice::from_raw_parts(
                        self.data().add(start),
                        first,
                    ));
                    self.scratch
                        .extend_from_slice(std::slice::from_raw_parts(self.data(), len - first));
                }
                f(&self.scratch)
            };
            self.consume(next);
            return Some(out);
        }
    }

    fn consume(&mut self, to: usize) {
        self.pos = to;
        self.consumer_pos().store(to, Ordering::Release);
    }
}

impl AsRawFd for RingReader {
    fn as_raw_fd(&self) -> RawFd {
        self.map.fd().as_fd().as_raw_fd()
    }
}
