//! The kernel filter plan: which paths are watched, by which event classes, and which
//! classes must reach userspace unfiltered. Rules make it (`rules::compile`), the eBPF
//! sensors put it in the kernel's maps (`source::ebpf`), matching names objects by it, and
//! a capture records it.
//!
//! Each distinct path named by a watch or a `path=`/`dir=` field is a [`Target`] with a
//! numeric id. The kernel gets its identity (device, inode, generation), the hash of its
//! written spelling and the hash of its canonical (symlink-free) spelling; events carry the
//! id back. Identities are read from this host ([`identity`], [`generation`]).

use crate::hash::FastHash;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Target {
    pub id: u32,
    /// As written in the rules (normalised).
    pub written: String,
    /// With every existing symlink resolved.
    pub canonical: String,
    /// `class::*` bits of events this target selects.
    pub classes: u32,
    /// (kernel dev_t, inode) when the path exists.
    pub identity: Option<(u32, u64)>,
    /// The inode's generation, when the filesystem tells it (see [`generation`]): with it,
    /// an inode that reuses the number of the one watched is not taken for it.
    #[serde(default)]
    pub generation: Option<u32>,
}

impl Target {
    /// Whether the object (`dev`, `ino`, `generation` when known) is this target's inode.
    pub fn is_object(&self, dev: u32, ino: u64, generation: Option<u32>) -> bool {
        ino != 0
            && self.identity == Some((dev, ino))
            && match (self.generation, generation) {
                (Some(mine), Some(theirs)) => mine == theirs,
                _ => true,
            }
    }
}

/// The plan: targets by id (from 1), and what the kernel forwards unfiltered.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct FilterPlan {
    pub targets: Vec<Target>,
    /// Classes for which some rule has no path condition: everything goes to userspace.
    pub unfiltered: u32,
    /// Whether some rule can match an open for reading only; without one the kernel drops
    /// such opens at once (`monitor_common::FILTER_READ_OPENS`).
    #[serde(default)]
    pub read_opens: bool,
    /// Audit record types the rules' `exclude` list drops (audit sources), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_types: Vec<u16>,
    /// `written` → index in `targets`, built on first use (rule matching looks paths up
    /// for every event; `written` never changes after planning).
    #[serde(skip)]
    by_written: std::sync::OnceLock<std::collections::HashMap<String, usize, FastHash>>,
}

impl FilterPlan {
    /// The kernel's filter word: `unfiltered` and `FILTER_READ_OPENS`.
    pub fn filter_word(&self) -> u32 {
        self.unfiltered | if self.read_opens { monitor_common::FILTER_READ_OPENS } else { 0 }
    }

    pub fn target(&self, id: u32) -> Option<&Target> {
        self.targets.get((id as usize).checked_sub(1)?)
    }

    /// The target that is this very object (device, inode, generation when known).
    pub fn by_identity(&self, dev: u32, ino: u64, generation: Option<u32>) -> Option<&Target> {
        self.targets.iter().find(|t| t.is_object(dev, ino, generation))
    }

    /// Add a target (replay: a recorded watch these rules do not name); returns its id.
    pub fn add(&mut self, target: Target) -> u32 {
        let id = self.targets.len() as u32 + 1;
        self.targets.push(Target { id, ..target });
        self.by_written = Default::default();
        id
    }

    pub fn by_written(&self, path: &str) -> Option<&Target> {
        let index = self.by_written.get_or_init(|| {
            let mut index = std::collections::HashMap::with_hasher(FastHash);
            for (i, t) in self.targets.iter().enumerate() {
                index.entry(t.written.clone()).or_insert(i);
            }
            index
        });
        self.targets.get(*index.get(path)?)
    }

    /// Re-read identities and canonical spellings (a file recreated or a symlink changed).
    /// Returns whether anything changed.
    pub fn refresh(&mut self) -> bool {
        let mut changed = false;
        for t in &mut self.targets {
            let canonical = canonicalise(&t.written);
            let identity = identity(&canonical);
            let generation = identity.and_then(|(_, ino)| generation(Path::new(&canonical), ino));
            if canonical != t.canonical || identity != t.identity || generation != t.generation {
                t.canonical = canonical;
                t.identity = identity;
                t.generation = generation;
                changed = true;
            }
        }
        changed
    }

    /// A target for `written` (ids are given by [`FilterPlan::add`]), resolved on this host.
    pub fn resolve(written: &str, classes: u32) -> Target {
        let canonical = canonicalise(written);
        let identity = identity(&canonical);
        Target {
            id: 0,
            written: written.to_string(),
            generation: identity.and_then(|(_, ino)| generation(Path::new(&canonical), ino)),
            identity,
            canonical,
            classes,
        }
    }
}

/// Resolve symlinks in the longest existing prefix of `path`; keep the rest as written.
pub fn canonicalise(path: &str) -> String {
    let mut existing = PathBuf::from(path);
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out.to_string_lossy().into_owned();
        }
        match (existing.file_name().map(|f| f.to_owned()), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path.to_string(),
        }
    }
}

/// (kernel dev_t, inode) of an existing path, following symlinks.
pub fn identity(path: &str) -> Option<(u32, u64)> {
    let md = std::fs::metadata(Path::new(path)).ok()?;
    Some((kernel_dev(md.dev()), md.ino()))
}

/// The generation (`i_generation`) of the inode `ino` at `path` (symlinks followed), read
/// from the file handle its filesystem encodes (`name_to_handle_at`, which needs no open and
/// works on sockets and FIFOs alike). Handle layouts are the filesystem's own; the ones
/// known to carry the generation are decoded, checked against `ino`:
/// * `FILEID_INO32_GEN` (ext2/3/4, XFS with 32-bit inodes, and the kernel's generic
///   encoder): `[ino, gen]`, or `[ino, gen, parent ino, parent gen]`;
/// * tmpfs (also type 1, three words): `[gen, ino low, ino high]`;
/// * XFS with 64-bit inodes (type 0x81): `[ino low, ino high, gen]`;
/// * btrfs (types 0x4d-0x4f): `[objectid low, objectid high, root low, root high, gen]`.
///
/// Anything else (overlayfs, network filesystems) gives `None`: such a watch is then
/// matched by device and inode, with the epochs (`monitor_common::epoch`) alone guarding
/// against a reused number. No crate decodes these handles; the layouts come from each
/// filesystem's `encode_fh`.
pub fn generation(path: &Path, ino: u64) -> Option<u32> {
    use std::os::unix::ffi::OsStrExt;
    const MAX_HANDLE: usize = 128;
    #[repr(C)]
    struct Handle {
        bytes: libc::c_uint,
        kind: libc::c_int,
        words: [u32; MAX_HANDLE / 4],
    }
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut h = Handle { bytes: MAX_HANDLE as u32, kind: 0, words: [0; MAX_HANDLE / 4] };
    let mut mount_id: libc::c_int = 0;
    // SAFETY: `h` starts like `struct file_handle` with room for MAX_HANDLE bytes after it.
    let rc = unsafe {
        libc::name_to_handle_at(
            libc::AT_FDCWD,
            c.as_ptr(),
            (&mut h as *mut Handle).cast(),
            &mut mount_id,
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc != 0 {
        return None;
    }
    decode_generation(h.kind, &h.words[..(h.bytes as usize / 4).min(MAX_HANDLE / 4)], ino)
}

/// The generation in a file handle of type `kind` with `words`, for inode `ino` (see
/// [`generation`]).
fn decode_generation(kind: i32, w: &[u32], ino: u64) -> Option<u32> {
    let (lo, hi) = (ino as u32, (ino >> 32) as u32);
    match (kind, w.len()) {
        (1 | 2, 2 | 4) if w[0] == lo && hi == 0 => Some(w[1]),
        (1, 3) if w[1] == lo && w[2] == hi => Some(w[0]),
        (0x81 | 0x82, 3..) if w[0] == lo && w[1] == hi => Some(w[2]),
        (0x4d..=0x4f, 5..) if w[0] == lo && w[1] == hi => Some(w[4]),
        _ => None,
    }
}

/// Convert a userspace `st_dev` into the kernel's internal `dev_t` (major << 20 | minor),
/// which is what `super_block.s_dev` holds.
pub fn kernel_dev(st_dev: u64) -> u32 {
    let major = ((st_dev >> 8) & 0xfff) | ((st_dev >> 32) & !0xfff);
    let minor = (st_dev & 0xff) | ((st_dev >> 12) & !0xff);
    ((major << 20) | minor) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_are_decoded_from_each_known_handle_layout() {
        let ino = 0x1_0000_0007u64;
        assert_eq!(decode_generation(1, &[7, 99], 7), Some(99), "ext4: [ino, gen]");
        assert_eq!(decode_generation(2, &[7, 99, 2, 5], 7), Some(99), "ext4 with parent");
        assert_eq!(
            decode_generation(1, &[99, 7, 1], ino),
            Some(99),
            "tmpfs: [gen, ino lo, ino hi]"
        );
        assert_eq!(decode_generation(0x81, &[7, 1, 99], ino), Some(99), "xfs 64-bit");
        assert_eq!(decode_generation(0x4d, &[7, 1, 5, 0, 99], ino), Some(99), "btrfs");
        assert_eq!(decode_generation(1, &[8, 99], 7), None, "another inode's handle");
        assert_eq!(
            decode_generation(0xf8, &[1, 2, 3, 4, 5, 6], 7),
            None,
            "overlayfs: unknown layout"
        );
    }

    /// On this machine's filesystems (ext4 under /var/tmp, tmpfs under /dev/shm), the
    /// handle gives the generation the kernel has: ext4 also answers FS_IOC_GETVERSION, and
    /// a file recreated under the same inode number gets another one.
    #[test]
    fn generations_of_real_files_match_the_kernel() {
        const FS_IOC_GETVERSION: libc::c_ulong = 0x8008_7601;
        use std::os::unix::fs::MetadataExt;
        let dir = std::path::PathBuf::from(format!("/var/tmp/monitor-gen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("f");
        let mut seen: Vec<(u64, Option<u32>)> = Vec::new();
        for _ in 0..3 {
            std::fs::write(&f, "x").unwrap();
            let ino = std::fs::metadata(&f).unwrap().ino();
            let file = std::fs::File::open(&f).unwrap();
            let mut kernel: libc::c_long = 0;
            let rc = unsafe {
                libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&file), FS_IOC_GETVERSION, &mut kernel)
            };
            let mine = generation(&f, ino);
            if rc == 0 {
                assert_eq!(mine, Some(kernel as u32), "{}", f.display());
            }
            for (earlier_ino, earlier) in &seen {
                if *earlier_ino == ino && earlier.is_some() {
                    assert_ne!(*earlier, mine, "inode {ino} reused with the same generation");
                }
            }
            seen.push((ino, mine));
            std::fs::remove_file(&f).unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
        if Path::new("/dev/shm").is_dir() {
            let f =
                std::path::PathBuf::from(format!("/dev/shm/monitor-gen-{}", std::process::id()));
            std::fs::write(&f, "x").unwrap();
            let ino = std::fs::metadata(&f).unwrap().ino();
            assert!(generation(&f, ino).is_some(), "tmpfs handles carry the generation");
            std::fs::remove_file(&f).unwrap();
        }
    }
}
