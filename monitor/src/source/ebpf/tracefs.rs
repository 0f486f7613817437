//! tracefs must be mounted for tracepoint attachment; it is not at boot on our hosts.

use super::LoadError;
use std::path::Path;
use tracing::info;

const MOUNT_POINT: &str = "/sys/kernel/tracing";

/// Whether the kernel has tracepoint `category:name` (under either tracefs mount point).
pub fn event_exists(category: &str, name: &str) -> bool {
    [MOUNT_POINT, "/sys/kernel/debug/tracing"]
        .iter()
        .any(|root| Path::new(root).join("events").join(category).join(name).is_dir())
}

/// Mount tracefs unless it is; without it (and without the right to mount it) the sensors
/// cannot attach: [`LoadError::Unsupported`].
pub fn ensure_mounted() -> Result<(), LoadError> {
    if Path::new(MOUNT_POINT).join("events").is_dir()
        || Path::new("/sys/kernel/debug/tracing/events").is_dir()
    {
        return Ok(());
    }
    let (target, fstype, source) = (c"/sys/kernel/tracing", c"tracefs", c"nodev");
    let rc = unsafe {
        libc::mount(source.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null())
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(LoadError::Unsupported(format!(
            "tracefs is not mounted and mounting it on {MOUNT_POINT} failed: {err} (mount it with `mount -t tracefs nodev {MOUNT_POINT}`, or run with CAP_SYS_ADMIN)"
        )));
    }
    info!(mount_point = MOUNT_POINT, "mounted tracefs");
    Ok(())
}
