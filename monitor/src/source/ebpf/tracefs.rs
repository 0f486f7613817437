//! tracefs must be mounted for tracepoint attachment; it is not at boot on our hosts.

use anyhow::Result;
use std::path::Path;
use tracing::info;

/// The kernel lacks something the sensors need (tracefs, BTF): `monitor run` exits with
/// code 4 and this one line.
#[derive(Debug)]
pub struct KernelUnsupported(pub String);

impl std::fmt::Display for KernelUnsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KernelUnsupported {}

const MOUNT_POINT: &str = "/sys/kernel/tracing";

/// Whether the kernel has tracepoint `category:name` (under either tracefs mount point).
pub fn event_exists(category: &str, name: &str) -> bool {
    [MOUNT_POINT, "/sys/kernel/debug/tracing"]
        .iter()
        .any(|root| Path::new(root).join("events").join(category).join(name).is_dir())
}

pub fn ensure_mounted() -> Result<()> {
    if Path::new(MOUNT_POINT).join("events").is_dir()
        || Path::new("/sys/kernel/debug/tracing/events").is_dir()
    {
        return Ok(());
    }
    let target = std::ffi::CString::new(MOUNT_POINT)?;
    let fstype = std::ffi::CString::new("tracefs")?;
    let source = std::ffi::CString::new("nodev")?;
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(KernelUnsupported(format!(
            "tracefs is not mounted and mounting it on {MOUNT_POINT} failed: {err} (mount it with `mount -t tracefs nodev {MOUNT_POINT}`, or run with CAP_SYS_ADMIN)"
        ))
        .into());
    }
    info!(mount_point = MOUNT_POINT, "mounted tracefs");
    Ok(())
}
