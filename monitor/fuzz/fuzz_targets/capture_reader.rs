//! The capture reader on arbitrary bytes: every record type is decoded as replay would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monitor::source::capture::{decode_process, rec, Reader, MAGIC};

fuzz_target!(|data: &[u8]| {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(data);
    let Ok(mut reader) = Reader::from_bytes(bytes) else { return };
    while let Ok(Some((kind, body))) = reader.next_record() {
        match kind {
            rec::PROCESS => {
                let _ = decode_process(body);
            }
            rec::EVENT => {
                let _ = monitor::source::ebpf::decode::decode(body);
            }
            _ => {
                let _ = serde_json::from_slice::<serde_json::Value>(body);
            }
        }
    }
});
