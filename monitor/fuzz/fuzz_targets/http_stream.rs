//! HTTP request reassembly and Docker API decoding on arbitrary sends: the input is split
//! into sends (with holes) by its own first bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monitor::detect::docker_api;
use monitor::detect::http::Stream;

fuzz_target!(|data: &[u8]| {
    let mut stream = Stream::default();
    let mut offset = 0u64;
    let mut rest = data;
    while rest.len() >= 2 {
        let len = (rest[0] as usize).min(rest.len() - 1);
        let hole = (rest[1] % 8) as u64 * 512;
        let chunk = &rest[1..1 + len];
        for req in stream.feed(offset, chunk.len() as u64 + hole, chunk) {
            let _ = docker_api::decode(&req).keys();
        }
        offset += chunk.len() as u64 + hole;
        rest = &rest[1 + len..];
    }
});
