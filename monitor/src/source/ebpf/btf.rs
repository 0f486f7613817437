//! A small reader for kernel BTF (/sys/kernel/btf/vmlinux): just enough to find struct
//! member byte offsets, including members of anonymous nested structs and unions, and the
//! type ids of structs and functions.
//!
//! The input comes from outside the program, so every length and index is checked; a
//! malformed blob is an error, never a panic.
//!
//! Ours rather than a crate: btf-rs 2.0 is LGPL-2.1 (this project is MIT OR Apache-2.0), and
//! btfparse 1.3.9 never returns on a typedef that names itself and overflows the stack on a
//! struct that contains itself (the blobs of the test `types_that_contain_themselves_…`).
//! Both gave this kernel's offsets and ids unchanged but took 141 and 95 ms to parse
//! /sys/kernel/btf/vmlinux against 11 ms here (best of 5 in a release build).

use crate::error::{Malformed, OrMalformed};

type Result<T, E = Malformed> = std::result::Result<T, E>;

const MAGIC: u16 = 0xeb9f;
const KIND_STRUCT: u32 = 4;
const KIND_FUNC: u32 = 12;
const KIND_UNION: u32 = 5;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM: u32 = 6;
const KIND_ENUM64: u32 = 19;

/// Parsed BTF: the blob, and where each type's record starts in it.
///
/// Types are read from the blob when asked for rather than copied into a structure: the
/// kernel's BTF has some 130 000 types, and materialising them (as aya does) takes several
/// times the blob's 5 MiB, at the moment that sets the monitor's peak memory.
pub struct Btf {
    data: Vec<u8>,
    /// Byte range of the string section in `data`.
    strings: std::ops::Range<usize>,
    /// Offset in `data` of each type's record, by id (id 0, void, has none: `u32::MAX`).
    types: Vec<u32>,
    /// Ids of the structs and unions, the types looked up by name.
    composites: Vec<u32>,
}

/// The fixed part of a type record.
struct Record {
    name: u32,
    kind: u32,
    vlen: usize,
    kind_flag: bool,
    size_or_type: u32,
    /// Offset in the blob of what follows the fixed part (members, enumerators).
    rest: usize,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    let s = b.get(at..at + 2).context("BTF truncated")?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    let s = b.get(at..at + 4).context("BTF truncated")?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Bytes after a record's fixed part, by kind.
fn extra_len(kind: u32, vlen: usize) -> Result<usize> {
    Ok(match kind {
        KIND_STRUCT | KIND_UNION | 15 => vlen * 12, // members; DATASEC's vars
        KIND_ENUM => vlen * 8,
        KIND_ENUM64 => vlen * 12,
        13 => vlen * 8,                                             // FUNC_PROTO
        1 | 14 | 17 => 4,                                           // INT, VAR, DECL_TAG
        3 => 12,                                                    // ARRAY
        2 | 7 | KIND_TYPEDEF..=KIND_FUNC | 16 | KIND_TYPE_TAG => 0, // PTR, FWD, aliases, FUNC, FLOAT
        k => crate::malformed!("unknown BTF kind {k}"),
    })
}

impl Btf {
    pub fn from_sys_fs() -> Result<Btf> {
        let path = "/sys/kernel/btf/vmlinux";
        let data = std::fs::read(path)
            .with_context(|| format!("cannot read {path}: the kernel must be built with BTF"))?;
        Btf::parse(data).with_context(|| format!("parsing {path}"))
    }

    /// Check the blob's layout (every record inside the type section, the string section
    /// inside the blob) and index its types.
    pub fn parse(data: impl Into<Vec<u8>>) -> Result<Btf> {
        let data = data.into();
        crate::ensure_well_formed!(u16_at(&data, 0)? == MAGIC, "bad BTF magic");
        let hdr_len = u32_at(&data, 4)? as usize;
        let type_off = u32_at(&data, 8)? as usize;
        let type_len = u32_at(&data, 12)? as usize;
        let str_off = u32_at(&data, 16)? as usize;
        let str_len = u32_at(&data, 20)? as usize;
        let types_start = hdr_len.checked_add(type_off).context("BTF offsets overflow")?;
        let types_end = types_start.checked_add(type_len).context("BTF offsets overflow")?;
        let str_start = hdr_len.checked_add(str_off).context("BTF offsets overflow")?;
        let str_end = str_start.checked_add(str_len).context("BTF offsets overflow")?;
        crate::ensure_well_formed!(types_end <= data.len(), "BTF type section out of range");
        crate::ensure_well_formed!(str_end <= data.len(), "BTF string section out of range");
        crate::ensure_well_formed!(data.len() <= u32::MAX as usize, "BTF larger than 4 GiB");

        let mut types = vec![u32::MAX]; // id 0 is void
        let mut composites = Vec::new();
        let mut at = types_start;
        while at < types_end {
            let info = u32_at(&data[..types_end], at + 4)?;
            u32_at(&data[..types_end], at + 8)?;
            let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
            let end = at + 12 + extra_len(kind, vlen)?;
            crate::ensure_well_formed!(end <= types_end, "BTF truncated");
            if matches!(kind, KIND_STRUCT | KIND_UNION) {
                composites.push(types.len() as u32);
            }
            types.push(at as u32);
            at = end;
        }
        Ok(Btf { data, strings: str_start..str_end, types, composites })
    }

    fn record(&self, id: u32) -> Option<Record> {
        let at = *self.types.get(id as usize)? as usize;
        let info = u32_at(&self.data, at.checked_add(4)?).ok()?;
        Some(Record {
            name: u32_at(&self.data, at).ok()?,
            kind: (info >> 24) & 0x1f,
            vlen: (info & 0xffff) as usize,
            kind_flag: info >> 31 == 1,
            size_or_type: u32_at(&self.data, at + 8).ok()?,
            rest: at + 12,
        })
    }

    /// Records of every type, with their ids.
    fn records(&self) -> impl Iterator<Item = (u32, Record)> + '_ {
        (1..self.types.len() as u32).filter_map(|id| Some((id, self.record(id)?)))
    }

    fn name(&self, off: u32) -> Option<&str> {
        let strings = &self.data[self.strings.clone()];
        let rest = strings.get(off as usize..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        std::str::from_utf8(&rest[..end]).ok()
    }

    /// Follow typedef / const / volatile / restrict / type_tag to the type they name.
    fn resolve(&self, mut id: u32) -> Option<Record> {
        for _ in 0..32 {
            let r = self.record(id)?;
            match r.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = r.size_or_type
                }
                _ => return Some(r),
            }
        }
        None
    }

    /// Bit offset of `member` in composite type `id`, searching anonymous members too.
    fn find(&self, id: u32, member: &str, depth: u32) -> Option<(u32, u32)> {
        if depth > 8 {
            return None;
        }
        let r = self.resolve(id)?;
        if !matches!(r.kind, KIND_STRUCT | KIND_UNION) {
            return None;
        }
        for i in 0..r.vlen {
            let m = r.rest + i * 12;
            let name = u32_at(&self.data, m).ok()?;
            let type_id = u32_at(&self.data, m + 4).ok()?;
            let off = u32_at(&self.data, m + 8).ok()?;
            let bit_offset = if r.kind_flag { off & 0x00ff_ffff } else { off };
            if name != 0 {
                if self.name(name) == Some(member) {
                    return Some((bit_offset, type_id));
                }
            } else if let Some((off, ty)) = self.find(type_id, member, depth + 1) {
                return Some((bit_offset + off, ty));
            }
        }
        None
    }

    /// Type id of `struct name` (the first one of that name).
    pub fn struct_id(&self, name: &str) -> Option<u32> {
        self.composites.iter().copied().find(|&id| {
            self.record(id).is_some_and(|r| r.name != 0 && self.name(r.name) == Some(name))
        })
    }

    /// Type id of the function `name` (a kfunc, say).
    pub fn func_id(&self, name: &str) -> Option<u32> {
        self.records()
            .find(|(_, r)| r.kind == KIND_FUNC && self.name(r.name) == Some(name))
            .map(|(id, _)| id)
    }

    /// Whether some enum of the kernel has an enumerator `name` (how the kernel announces
    /// verifier features, `enum bpf_features`).
    pub fn has_enumerator(&self, name: &str) -> bool {
        self.records().filter(|(_, r)| matches!(r.kind, KIND_ENUM | KIND_ENUM64)).any(|(_, r)| {
            // ENUM values are (name, value), ENUM64 ones (name, lo32, hi32).
            let value_size = if r.kind == KIND_ENUM { 8 } else { 12 };
            (0..r.vlen).any(|i| {
                u32_at(&self.data, r.rest + i * value_size)
                    .is_ok_and(|n| self.name(n) == Some(name))
            })
        })
    }

    /// Byte offset of a dotted member path (`"fs.pwd"` style walks through embedded
    /// structs, not pointers) inside `struct name`.
    pub fn offset(&self, strukt: &str, path: &str) -> Result<u32> {
        let mut id =
            self.struct_id(strukt).with_context(|| format!("kernel BTF has no struct {strukt}"))?;
        let mut bits = 0u32;
        for part in path.split('.') {
            let (off, ty) = self
                .find(id, part, 0)
                .with_context(|| format!("kernel BTF: struct {strukt} has no member {path}"))?;
            bits += off;
            id = ty;
        }
        crate::ensure_well_formed!(bits.is_multiple_of(8), "{strukt}.{path} is a bitfield");
        Ok(bits / 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob of `types` (little-endian words) and `strings`.
    fn btf_blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let t: Vec<u8> = types.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        for word in [24, 0, t.len() as u32, t.len() as u32, strings.len() as u32] {
            b.extend_from_slice(&word.to_le_bytes());
        }
        b.extend_from_slice(&t);
        b.extend_from_slice(strings);
        b
    }

    /// struct outer { int a; union { int b; int c; }; }, a function c and two enums.
    fn blob() -> Vec<u8> {
        #[rustfmt::skip]
        let types = [
            // 1: int
            1, 1 << 24, 4, 32,
            // 2: anonymous union { b @0, c @0 }
            0, (KIND_UNION << 24) | 2, 4, 13, 1, 0, 15, 1, 0,
            // 3: struct outer { a @0, <anon> @32 }
            5, (KIND_STRUCT << 24) | 2, 8, 11, 1, 0, 0, 2, 32,
            // 4: func c (no prototype)
            15, KIND_FUNC << 24, 0,
            // 5: enum { feat_on = 0 }
            0, (KIND_ENUM << 24) | 1, 4, 17, 0,
            // 6: enum64 { big = 1 << 40 }
            0, (KIND_ENUM64 << 24) | 1, 8, 25, 0, 256,
        ];
        btf_blob(&types, b"\0int\0outer\0a\0b\0c\0feat_on\0big\0")
    }

    #[test]
    fn types_that_contain_themselves_are_errors_not_hangs() {
        let strings = b"\0t\0s\0m\0x\0";
        // 1: typedef t -> itself; 2: struct s { m: t @0 }
        let typedef_loop =
            btf_blob(&[1, KIND_TYPEDEF << 24, 1, 3, (KIND_STRUCT << 24) | 1, 4, 5, 1, 0], strings);
        let btf = Btf::parse(typedef_loop).unwrap();
        assert!(btf.offset("s", "m.x").is_err());
        // 1: struct s { <anon>: s @0 }
        let nested_loop = btf_blob(&[3, (KIND_STRUCT << 24) | 1, 4, 0, 1, 0], strings);
        let btf = Btf::parse(nested_loop).unwrap();
        assert!(btf.offset("s", "x").is_err());
    }

    #[test]
    fn finds_members_of_anonymous_unions() {
        let btf = Btf::parse(blob()).unwrap();
        assert_eq!(btf.offset("outer", "a").unwrap(), 0);
        assert_eq!(btf.offset("outer", "c").unwrap(), 4);
        assert!(btf.offset("outer", "zz").is_err());
        assert!(btf.offset("nope", "a").is_err());
    }

    #[test]
    fn finds_enumerators_of_both_widths() {
        let btf = Btf::parse(blob()).unwrap();
        assert!(btf.has_enumerator("feat_on"));
        assert!(btf.has_enumerator("big"));
        assert!(!btf.has_enumerator("outer"));
        assert!(!btf.has_enumerator("feat"));
    }

    #[test]
    fn truncated_input_is_an_error() {
        let b = blob();
        assert!(Btf::parse(b.as_slice()).is_ok());
        for len in 0..b.len() {
            assert!(Btf::parse(&b[..len]).is_err(), "{len} of {} bytes parsed", b.len());
        }
    }

    #[test]
    fn running_kernel_has_the_members_we_need() {
        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            // The test machines have BTF: without it under CI, this test fails, not passes.
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "/sys/kernel/btf/vmlinux is missing"
            );
            eprintln!("SKIPPED: no kernel BTF on this machine");
            return;
        }
        let btf = Btf::from_sys_fs().unwrap();
        let offsets = super::super::offsets::from_btf(&btf).unwrap();
        assert!(offsets.task_fs > 0 && offsets.dentry_parent > 0);
        let types = super::super::offsets::types_from_btf(&btf).unwrap();
        assert!(types.dentry > 0 && types.dentry != types.inode);
        assert!(btf.func_id("bpf_rdonly_cast").is_some());
    }

    #[test]
    fn finds_struct_and_function_ids() {
        let btf = Btf::parse(blob()).unwrap();
        assert_eq!(btf.struct_id("outer"), Some(3));
        assert_eq!(btf.func_id("c"), Some(4));
        assert_eq!(btf.func_id("outer"), None);
        assert_eq!(btf.struct_id("c"), None);
    }
}
