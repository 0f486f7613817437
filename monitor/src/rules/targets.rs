//! From rules to the kernel filter: which paths are watched, by which event classes, and
//! which classes must reach userspace unfiltered.
//!
//! Each distinct path named by a watch or a `path=`/`dir=` field becomes a [`Target`] with a
//! numeric id. The kernel gets its identity (device, inode), the hash of its written spelling
//! and the hash of its canonical (symlink-free) spelling; events carry the id back.

use super::model::*;
use super::index::RuleIndex;
use crate::hash::FastHash;
use crate::vocab::class_of;
use monitor_common::sys::OPENS as OPEN_SYSCALLS;
use monitor_common::class;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub const ALL_CLASSES: u32 = class::EXEC | class::CONNECT | class::FILE | class::SETID;

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

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct FilterPlan {
    pub targets: Vec<Target>,
    /// Classes for which some rule has no path condition: everything goes to userspace.
    pub unfiltered: u32,
    /// Whether some rule can match an open for reading only; without one the kernel drops
    /// such opens at once (`monitor_common::FILTER_READ_OPENS`).
    #[serde(default)]
    pub read_opens: bool,
    /// `written` → index in `targets`, built on first use (rule matching looks paths up
    /// for every event; `written` never changes after planning).
    #[serde(skip)]
    by_written: std::sync::OnceLock<std::collections::HashMap<String, usize, FastHash>>,
    /// For rule r and condition c of the rules planned: the index of the condition's path
    /// in `targets`. Rule matching looks targets up here first (`path_target`).
    #[serde(skip)]
    cond_targets: Vec<Vec<Option<u32>>>,
    /// Candidate rules per event, for the rules planned (see `link`).
    #[serde(skip)]
    index: Option<RuleIndex>,
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

    /// Note where each path condition of `rules` finds its target (see `path_target`). A
    /// plan read back from a capture must be linked to the rules it is used with.
    pub fn link(&mut self, rules: &[Rule]) {
        self.cond_targets = rules
            .iter()
            .map(|r| {
                r.conds
                    .iter()
                    .map(|c| match c {
                        Cond::Path { path, .. } => self.by_written(path).map(|t| t.id - 1),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        self.index = RuleIndex::new(rules, self);
    }

    /// The same plan without its candidate index (tests compare both ways of matching).
    #[cfg(test)]
    pub fn unindexed(&self) -> FilterPlan {
        FilterPlan { index: None, ..self.clone() }
    }

    /// The candidate-rule index of the rules this plan was linked to.
    pub fn index(&self) -> Option<&RuleIndex> {
        self.index.as_ref()
    }

    /// Add a target (replay: a recorded watch these rules do not name); returns its id.
    pub fn add(&mut self, target: Target) -> u32 {
        let id = self.targets.len() as u32 + 1;
        self.targets.push(Target { id, ..target });
        // Whatever the index files under stays: a rule's target is the first written as
        // it, and the new one comes last.
        self.by_written = Default::default();
        id
    }

    /// The target of `path`, written in condition `cond` of rule `rule`: found by position
    /// when these are the rules this plan was made from (checked), by name otherwise.
    pub fn path_target(&self, rule: usize, cond: usize, path: &str) -> Option<&Target> {
        let linked = self.cond_targets.get(rule).and_then(|r| r.get(cond).copied().flatten());
        match linked.and_then(|i| self.targets.get(i as usize)) {
            Some(t) if t.written == path => Some(t),
            _ => self.by_written(path),
        }
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
        if changed {
            if let Some(mut index) = self.index.take() {
                index.retarget(self);
                self.index = Some(index);
            }
        }
        changed
    }
}

/// Event classes a rule's syscalls cover.
fn rule_classes(rule: &Rule) -> u32 {
    let mut classes = match &rule.syscalls {
        Syscalls::All => ALL_CLASSES,
        Syscalls::Set(set) => set.iter().fold(0, |acc, nr| acc | class_of(*nr)),
    };
    for c in &rule.conds {
        if let Cond::Perm(p) = c {
            classes &= perm_classes(*p);
        }
    }
    classes
}

/// Whether `rule` could match an open that only reads: it covers an open syscall and has
/// no `perm` condition without `r` (`-w … -p wa` cannot). Other conditions are not looked
/// at: this may say yes too often, never no too often.
fn may_match_read_opens(rule: &Rule) -> bool {
    let opens = OPEN_SYSCALLS.iter().any(|nr| rule.syscalls.contains(*nr));
    let perm_excludes_reads = rule.conds.iter().any(|c| matches!(c, Cond::Perm(p) if p & perm::READ == 0));
    opens && !perm_excludes_reads
}

/// Classes that can produce each access kind. A unix socket connect counts as a write.
pub fn perm_classes(p: u8) -> u32 {
    let mut c = 0;
    if p & perm::EXEC != 0 {
        c |= class::EXEC;
    }
    if p & (perm::READ | perm::WRITE | perm::ATTR) != 0 {
        c |= class::FILE;
    }
    if p & perm::WRITE != 0 {
        c |= class::CONNECT;
    }
    c
}

pub fn plan(rules: &[Rule]) -> FilterPlan {
    let mut by_path: BTreeMap<String, u32> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut unfiltered = 0;
    let mut read_opens = false;
    for rule in rules {
        if rule.inactive.is_some() || rule.list != List::Exit || rule.action != Action::Always {
            continue;
        }
        read_opens |= may_match_read_opens(rule);
        let classes = rule_classes(rule);
        let mut selected = false;
        for c in &rule.conds {
            if let Cond::Path {
                field: PathField::Path | PathField::Dir,
                negate: false,
                path,
            } = c
            {
                selected = true;
                let entry = by_path.entry(path.clone()).or_insert_with(|| {
                    order.push(path.clone());
                    0
                });
                *entry |= classes;
            }
        }
        if !selected {
            // Setid rules that require some id to be 0 are served by the kernel's
            // "id became 0" filter; any other setid rule needs every setid call.
            let needs = if requires_root_id(rule) {
                classes & !class::SETID
            } else {
                classes
            };
            unfiltered |= needs;
        }
    }
    // Paths in `never` rules or negated conditions still need ids so the matcher can name
    // them, but select no classes.
    for rule in rules {
        for c in &rule.conds {
            if let Cond::Path {
                field: PathField::Path | PathField::Dir,
                path,
                ..
            } = c
            {
                if !by_path.contains_key(path) {
                    by_path.insert(path.clone(), 0);
                    order.push(path.clone());
                }
            }
        }
    }
    let targets = order
        .iter()
        .enumerate()
        .map(|(i, written)| {
            let canonical = canonicalise(written);
            let identity = identity(&canonical);
            Target {
                id: i as u32 + 1,
                written: written.clone(),
                generation: identity.and_then(|(_, ino)| generation(Path::new(&canonical), ino)),
                identity,
                canonical,
                classes: by_path[written],
            }
        })
        .collect();
    let mut plan = FilterPlan {
        targets,
        unfiltered,
        read_opens,
        by_written: Default::default(),
        cond_targets: Vec::new(),
        index: None,
    };
    plan.link(rules);
    plan
}

/// Whether the rule only matches events after which some credential id is 0.
fn requires_root_id(rule: &Rule) -> bool {
    rule.conds.iter().any(|c| {
        matches!(
            c,
            Cond::Num {
                field: NumField::Uid
                    | NumField::Euid
                    | NumField::Suid
                    | NumField::Fsuid
                    | NumField::Gid
                    | NumField::Egid
                    | NumField::Sgid
                    | NumField::Fsgid,
                op: Op::Eq,
                value: 0,
            }
        )
    })
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
        match (
            existing.file_name().map(|f| f.to_owned()),
            existing.parent(),
        ) {
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
        libc::name_to_handle_at(libc::AT_FDCWD, c.as_ptr(), (&mut h as *mut Handle).cast(), &mut mount_id, libc::AT_SYMLINK_FOLLOW)
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
        assert_eq!(decode_generation(1, &[99, 7, 1], ino), Some(99), "tmpfs: [gen, ino lo, ino hi]");
        assert_eq!(decode_generation(0x81, &[7, 1, 99], ino), Some(99), "xfs 64-bit");
        assert_eq!(decode_generation(0x4d, &[7, 1, 5, 0, 99], ino), Some(99), "btrfs");
        assert_eq!(decode_generation(1, &[8, 99], 7), None, "another inode's handle");
        assert_eq!(decode_generation(0xf8, &[1, 2, 3, 4, 5, 6], 7), None, "overlayfs: unknown layout");
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
            let rc = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&file), FS_IOC_GETVERSION, &mut kernel) };
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
            let f = std::path::PathBuf::from(format!("/dev/shm/monitor-gen-{}", std::process::id()));
            std::fs::write(&f, "x").unwrap();
            let ino = std::fs::metadata(&f).unwrap().ino();
            assert!(generation(&f, ino).is_some(), "tmpfs handles carry the generation");
            std::fs::remove_file(&f).unwrap();
        }
    }
}
