//! Decoding client PUBLISH packets, the busiest thing a connection does: 1,024 QoS 1 messages
//! of 16 bytes on a short topic, as `weir-bench pub` sends them, through MQTT 3.1.1 and 5.0.
//! Throughput is counted in packets.
//!
//! Run: cargo bench -p weir-hub --bench codec

use std::num::NonZeroU16;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ntex_bytes::BytesMut;
use weir_hub::protocol::{Codec, Inbound, Version};

const PACKETS: usize = 1024;

/// `PACKETS` QoS 1 PUBLISH packets on `bench/0` with a 16-byte payload, back to back.
fn stream(version: Version) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..PACKETS {
        let id = NonZeroU16::new(i as u16 + 1).map_or(1, NonZeroU16::get);
        let v5 = u8::from(version.is_v5());
        out.extend_from_slice(&[0x32, 2 + 7 + 2 + v5 + 16, 0, 7]);
        out.extend_from_slice(b"bench/0");
        out.extend_from_slice(&id.to_be_bytes());
        if version.is_v5() {
            out.push(0);
        }
        out.extend_from_slice(&[b'x'; 16]);
    }
    out
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_publish");
    group.throughput(Throughput::Elements(PACKETS as u64));
    for (name, version) in [("v311", Version::V311), ("v5", Version::V5)] {
        let bytes = stream(version);
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut codec = Codec::new(version, 0);
                let mut buf = BytesMut::from(&bytes[..]);
                let mut n = 0;
                while let Ok(Some(packet)) = codec.decode(&mut buf) {
                    n += usize::from(matches!(packet, Inbound::Publish(..)));
                }
                assert_eq!(n, PACKETS);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
