//! Turns the kernel programs' placeholder calls into kfunc calls before aya loads them.
//!
//! aya relocates helper calls, maps and calls between BPF functions, but not kfunc calls.
//! So the programs write their one kfunc, `bpf_rdonly_cast` (which gives an address a BTF
//! type, so that its members are read by direct loads), as a call to a helper number that
//! no helper has ([`RDONLY_CAST_MARK`]). Here each such instruction in the object's code
//! sections becomes a kfunc call: `src_reg` = `BPF_PSEUDO_KFUNC_CALL`, `imm` = the kfunc's
//! id in the running kernel's BTF.

use crate::error::{Malformed, OrMalformed};

type Result<T, E = Malformed> = std::result::Result<T, E>;
use monitor_common::RDONLY_CAST_MARK;

const BPF_CALL: u8 = 0x85; // BPF_JMP | BPF_CALL | BPF_K
const BPF_PSEUDO_KFUNC_CALL: u8 = 2;
const SHT_PROGBITS: u32 = 1;
const SHF_EXECINSTR: u64 = 4;

/// An object file copied into 8-byte aligned memory, as the ELF parser needs it.
pub struct Object {
    words: Vec<u64>,
    len: usize,
}

impl Object {
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `words` holds at least `len` initialised bytes; u8 has no alignment.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast(), self.len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `self` is borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast(), self.len) }
    }
}

fn field<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N]> {
    let end = at.checked_add(N).context("ELF offset overflows")?;
    let s = b.get(at..end).context("ELF file truncated")?;
    Ok(s.try_into().expect("slice of length N"))
}

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    Ok(u16::from_le_bytes(field(b, at)?))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    Ok(u32::from_le_bytes(field(b, at)?))
}

fn u64_at(b: &[u8], at: usize) -> Result<usize> {
    usize::try_from(u64::from_le_bytes(field(b, at)?)).context("ELF offset too large")
}

/// Copy `elf` (a little-endian ELF64 BPF object) and rewrite every placeholder call into a
/// call of kfunc `kfunc_id`. Returns the copy and how many calls were rewritten.
pub fn patch(elf: &[u8], kfunc_id: u32) -> Result<(Object, usize)> {
    crate::ensure_well_formed!(
        elf.get(..6) == Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]),
        "the eBPF object is not a little-endian ELF64 file"
    );
    let mut object = Object { words: vec![0u64; elf.len().div_ceil(8)], len: elf.len() };
    object.bytes_mut().copy_from_slice(elf);
    let shoff = u64_at(elf, 0x28)?;
    let shentsize = u16_at(elf, 0x3a)? as usize;
    let shnum = u16_at(elf, 0x3c)? as usize;
    crate::ensure_well_formed!(shentsize >= 0x28, "ELF section headers too small");
    let mut patched = 0;
    for i in 0..shnum {
        let hdr =
            shoff.checked_add(i * shentsize).context("ELF section header offset overflows")?;
        let kind = u32_at(elf, hdr + 4)?;
        let flags = u64_at(elf, hdr + 8)? as u64;
        if kind != SHT_PROGBITS || flags & SHF_EXECINSTR == 0 {
            continue;
        }
        let start = u64_at(elf, hdr + 0x18)?;
        let size = u64_at(elf, hdr + 0x20)?;
        let end = start.checked_add(size).context("ELF section size overflows")?;
        crate::ensure_well_formed!(end <= elf.len(), "ELF section out of range");
        let code = &mut object.bytes_mut()[start..end];
        for insn in code.chunks_exact_mut(8) {
            let imm = i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]);
            if insn[0] == BPF_CALL && insn[1] == 0 && imm == RDONLY_CAST_MARK {
                insn[1] = BPF_PSEUDO_KFUNC_CALL << 4; // dst_reg 0, src_reg in the high nibble
                insn[2..4].copy_from_slice(&0u16.to_le_bytes()); // 0: vmlinux's BTF
                insn[4..8].copy_from_slice(&kfunc_id.to_le_bytes());
                patched += 1;
            }
        }
    }
    Ok((object, patched))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF64 file with one code section holding `code`, and one data section holding
    /// the same bytes (which must be left alone).
    fn elf(code: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 0x40];
        b[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1]);
        let text = b.len();
        b.extend_from_slice(code);
        let data = b.len();
        b.extend_from_slice(code);
        let shoff = b.len();
        b[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        b[0x3a..0x3c].copy_from_slice(&0x40u16.to_le_bytes());
        b[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        b.extend_from_slice(&[0u8; 0x40]); // null section
        for (at, flags) in [(text, SHF_EXECINSTR | 2), (data, 2)] {
            let mut h = [0u8; 0x40];
            h[4..8].copy_from_slice(&SHT_PROGBITS.to_le_bytes());
            h[8..16].copy_from_slice(&flags.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(at as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(code.len() as u64).to_le_bytes());
            b.extend_from_slice(&h);
        }
        b
    }

    fn insn(code: u8, regs: u8, imm: i32) -> [u8; 8] {
        let mut i = [code, regs, 0, 0, 0, 0, 0, 0];
        i[4..].copy_from_slice(&imm.to_le_bytes());
        i
    }

    #[test]
    fn rewrites_placeholder_calls_in_code_only() {
        let mark = insn(BPF_CALL, 0, RDONLY_CAST_MARK);
        let helper = insn(BPF_CALL, 0, 6); // bpf_trace_printk: stays
        let load = insn(0x18, 0x01, RDONLY_CAST_MARK); // not a call: stays
        let code = [mark, helper, load, mark].concat();
        let input = elf(&code);
        let (object, n) = patch(&input, 65504).unwrap();
        assert_eq!(n, 2);
        let out = object.bytes();
        assert_eq!(out.len(), input.len());
        assert_eq!(out.as_ptr() as usize % 8, 0);
        let kfunc = insn(BPF_CALL, 0x20, 65504);
        assert_eq!(&out[0x40..0x60], &[kfunc, helper, load, kfunc].concat()[..]);
        // The data section's copy of the same bytes is untouched.
        assert_eq!(&out[0x60..0x80], &code[..]);
    }

    #[test]
    fn malformed_objects_are_errors() {
        assert!(patch(b"not an elf", 1).is_err());
        let mut truncated = elf(&insn(BPF_CALL, 0, RDONLY_CAST_MARK));
        truncated.truncate(0x70);
        assert!(patch(&truncated, 1).is_err());
        let mut bad_section = elf(&[0u8; 8]);
        let first = bad_section.len() - 0x80;
        bad_section[first + 0x20..first + 0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(patch(&bad_section, 1).is_err());
    }
}
