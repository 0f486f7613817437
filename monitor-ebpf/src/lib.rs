//! Empty library target: `monitor` build-depends on this crate so that cargo rebuilds the
//! embedded eBPF object when the kernel programs change (see aya-build).
#![no_std]
