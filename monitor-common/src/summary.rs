//! Membership summaries of the watch maps (`WATCH_SUMMARY` in monitor-ebpf): one bit per
//! hashed key, so that a clear bit proves a key absent and the kernel skips the hash
//! lookup. Most of a host's files are under no watch and off the spine; their walks and
//! path strings then cost no lookup at all. Userspace sets a key's bit before the key
//! enters its map and clears it only after the key left (`set` of old | new, maps, `set`
//! of new), so a summary never misses a key the kernel could find. A false alarm (another
//! key on the same bit, 1 in 65 536 per key) only costs the lookup.

/// 64-bit words per summary: 65 536 bits, 8 KiB.
pub const WORDS: usize = 1024;
pub const BITS: usize = WORDS * 64;
/// Which summary (the index in `WATCH_SUMMARY`): inodes with a watch, inodes on the
/// spine, watched spellings, and the spellings' ancestors.
pub const INODE_WATCHED: u32 = 0;
pub const INODE_SPINE: u32 = 1;
pub const PATH_WATCHED: u32 = 2;
pub const PATH_PREFIX: u32 = 3;
pub const COUNT: u32 = 4;

pub type Bits = [u64; WORDS];

/// A multiplicative hash, after folding the high bits down (FNV-1a leaves the low bits
/// of similar strings alike): a few instructions, since the kernel pays them per level
/// of every walk and per component of every path string.
#[inline(always)]
fn mix(h: u64) -> u64 {
    (h ^ (h >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The bit of inode `ino` on device `dev` (an `InodeKey`).
#[inline(always)]
pub fn inode_bit(ino: u64, dev: u32) -> usize {
    (mix(ino ^ ((dev as u64) << 40)) >> 48) as usize
}

/// The bit of a `WATCH_PATHS` key (an FNV-1a hash of a spelling).
#[inline(always)]
pub fn path_bit(hash: u64) -> usize {
    (mix(hash) >> 48) as usize
}

/// Whether `bit` is set in `bits`.
#[inline(always)]
pub fn has(bits: &Bits, bit: usize) -> bool {
    (bits[(bit >> 6) & (WORDS - 1)] >> (bit & 63)) & 1 != 0
}

/// Set `bit` in `bits`.
pub fn set(bits: &mut Bits, bit: usize) {
    bits[(bit >> 6) & (WORDS - 1)] |= 1 << (bit & 63);
}
