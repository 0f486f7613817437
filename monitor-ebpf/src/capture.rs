//! The connections whose outgoing bytes are reported (`CAPTURE`, `CAPTURING`): opened by
//! the `finish` stage on a caught connect, read by the send hooks.

/// A connection whose outgoing bytes are reported (`CAPTURE`).
#[derive(Clone, Copy)]
#[repr(C)]
pub struct Capture {
    /// Bytes sent on it so far.
    pub sent: u64,
    /// The dentry of the socket path it reached.
    pub peer: u64,
}

/// Slots of `CAPTURING`.
pub const CAPTURING_SLOTS: usize = 4096;

/// The `CAPTURING` byte of process `tgid`, `None` if the map cannot be read.
#[inline(always)]
pub fn capturing_slot(tgid: u32) -> Option<*mut u8> {
    let slots = crate::CAPTURING.get_ptr_mut(0)?;
    let i =
        ((tgid as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 52) as usize & (CAPTURING_SLOTS - 1);
    Some(unsafe { (slots as *mut u8).add(i) })
}
