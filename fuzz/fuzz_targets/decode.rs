//! Packet decoding: any bytes, read as the start of a connection, in every protocol version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ntex_bytes::BytesMut;
use weir_hub::protocol::{self, Codec, Sniff, Version};

fuzz_target!(|data: &[u8]| {
    let _ = protocol::sniff(data);
    for version in [Version::V31, Version::V311, Version::V5] {
        let mut buf = BytesMut::from(data);
        if version == Version::V31 && protocol::sniff(data) == Sniff::Connect(Version::V31) {
            protocol::shim_mqisdp(&mut buf);
        }
        let mut codec = Codec::new(version, 64 * 1024);
        // Decode until the codec wants more bytes or refuses them; each step must make progress.
        for _ in 0..1024 {
            match codec.decode(&mut buf) {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
});
