//! Making string-derived paths absolute and canonical.
//!
//! When the kernel could not take an object's path from a dentry (the object is gone, or the
//! call failed) it sends the base directory's real path joined with the caller's string,
//! which may still hold `.`, `..`, `//` and symlinks. Before rules see it, the directory part
//! is resolved on this host (it usually still exists) and the last component kept as is; if
//! the directory is gone too, `.` and `..` are folded lexically.

use crate::event::{Action, Event};
use monitor_common::flag;
use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

/// Canonicalise the string-derived object paths of `ev` in place.
pub fn canonicalise_event(ev: &mut Event) {
    if !ev.flag(flag::PATH_FROM_STRING) && !ev.flag(flag::PATH_UNCLEAN) {
        return;
    }
    // A container's paths are not this host's: leave them as the kernel reported them.
    if ev.flag(flag::FOREIGN_ROOT) {
        return;
    }
    match ev.action {
        // Field 1 is the caller's spelling, kept verbatim; field 2 the socket's path.
        Action::Connect => canonicalise_field(&mut ev.path2),
        // Field 2 is the link's text, not a path on this host.
        Action::Symlink => canonicalise_field(&mut ev.path),
        _ => {
            canonicalise_field(&mut ev.path);
            canonicalise_field(&mut ev.path2);
        }
    }
}

/// A file reached through a detached mount (runc re-executes itself through a private
/// read-only bind mount of its binary) has no path from the root: the kernel's walk ends at
/// the mount and reports `/`. When the object is a watched file, name it by its watch.
pub fn name_detached(ev: &mut Event, watched: impl Fn(u32, u64, Option<u32>) -> Option<String>) {
    const S_IFMT: u32 = 0o170000;
    const S_IFDIR: u32 = 0o040000;
    if ev.ino == 0 || ev.mode & S_IFMT == S_IFDIR || ev.path.as_deref() != Some(b"/") {
        return;
    }
    if let Some(path) = watched(ev.dev, ev.ino, ev.generation) {
        ev.path = Some(path.into_bytes());
    }
}

fn canonicalise_field(field: &mut Option<Vec<u8>>) {
    if let Some(p) = field.as_mut() {
        if p.first() == Some(&b'/') {
            *p = canonical(p);
        }
    }
}

/// `path` (absolute) with its directory resolved and its last component kept.
pub fn canonical(path: &[u8]) -> Vec<u8> {
    let folded = fold(Path::new(OsStr::from_bytes(path)));
    let (Some(dir), Some(name)) = (folded.parent(), folded.file_name()) else {
        return folded.into_os_string().into_vec();
    };
    // The directory as written may pass through symlinks; `..` after a symlink means the
    // parent of its target, so resolve the unfolded directory when it still exists.
    let raw_dir = Path::new(OsStr::from_bytes(path)).parent().filter(|_| !ends_in_dots(path));
    let dir = raw_dir
        .and_then(|d| std::fs::canonicalize(d).ok())
        .or_else(|| std::fs::canonicalize(dir).ok())
        .unwrap_or_else(|| dir.to_path_buf());
    dir.join(name).into_os_string().into_vec()
}

/// Whether the last component is `.` or `..` (then `parent()` is not the directory).
fn ends_in_dots(path: &[u8]) -> bool {
    let trimmed = path.strip_suffix(b"/").unwrap_or(path);
    trimmed.ends_with(b"/.") || trimmed.ends_with(b"/..")
}

/// Lexical folding of `.`, `..` and repeated slashes.
fn fold(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_dots_and_slashes_when_the_directory_is_gone() {
        assert_eq!(canonical(b"/nonexistent-x/a/../b//./c"), b"/nonexistent-x/b/c");
        assert_eq!(canonical(b"/nonexistent-x/.."), b"/");
        assert_eq!(canonical(b"/"), b"/");
    }

    #[test]
    fn resolves_symlinked_directories() {
        let dir = std::env::temp_dir().join(format!("monitor-paths-{}", std::process::id()));
        let real = dir.join("real");
        std::fs::create_dir_all(real.join("sub")).unwrap();
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(real.join("sub"), &link).unwrap();
        let real = std::fs::canonicalize(&real).unwrap();
        // `link/..` is the parent of the link's target (real), not `dir`.
        let p = format!("{}/../f", link.display());
        assert_eq!(canonical(p.as_bytes()), real.join("f").as_os_str().as_bytes());
        let p = format!("{}//f", link.display());
        assert_eq!(canonical(p.as_bytes()), real.join("sub/f").as_os_str().as_bytes());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
