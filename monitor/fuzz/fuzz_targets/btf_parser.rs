//! The kernel BTF reader on arbitrary bytes (it also reads module BTF blobs of any origin).
#![no_main]

use libfuzzer_sys::fuzz_target;
use monitor::source::ebpf::btf::Btf;

fuzz_target!(|data: &[u8]| {
    if let Ok(btf) = Btf::parse(data) {
        let _ = btf.offset("task_struct", "pid");
    }
});
