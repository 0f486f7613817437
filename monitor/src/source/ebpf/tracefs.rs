//! tracefs must be mounted for tracepoint attachment; it is not at boot on our hosts.

use anyhow::{bail, Result};
use std::path::Path;
use tracing::info;

const MOUNT_POINT: &str = "/sys/kernel/tracing";

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
        bail!("tracefs is not mounted and mounting it on {MOUNT_POINT} failed: {err}");
    }
    info!(mount_point = MOUNT_POINT, "mounted tracefs");
    Ok(())
}
