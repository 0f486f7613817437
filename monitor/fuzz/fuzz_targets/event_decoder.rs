//! The ring-buffer record decoder on arbitrary bytes, and what the pipeline does with what
//! it decodes (path canonicalisation, JSON rendering).
#![no_main]

use libfuzzer_sys::fuzz_target;
use monitor::source::ebpf::decode::decode;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut ev) = decode(data) {
        // Only the lexical part: no filesystem access from the fuzzer.
        if let Some(p) = ev.path.as_mut() {
            p.truncate(512);
        }
        let _ =
            monitor::sink::writer::percent_encode_invalid(ev.path.as_deref().unwrap_or_default());
    }
});
