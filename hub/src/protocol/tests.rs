use ntex_bytes::{Bytes, BytesMut};
use ntex_codec::Decoder;
use ntex_mqtt::error::DecodeError;
use ntex_mqtt::v3::codec as v3;

use super::lift::lift_publish;
use super::*;

const V31_CONNECT: &[u8] = b"\x10\x16\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x08client31";

#[test]
fn sniffs_versions() {
    assert_eq!(sniff(V31_CONNECT), Sniff::Connect(Version::V31));
    assert_eq!(sniff(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"), Sniff::Connect(Version::V311));
    assert_eq!(sniff(b"\x10\x0d\x00\x04MQTT\x05"), Sniff::Connect(Version::V5));
    assert_eq!(sniff(b"\x10\x0d\x00\x04MQTT\x07"), Sniff::UnsupportedVersion { v5_requested: false });
    assert_eq!(sniff(b"\x10\x0d\x00"), Sniff::NeedMore);
    assert_eq!(sniff(b"GET / HTTP/1.1"), Sniff::NotConnect);
    assert_eq!(sniff(b"\x30\x00"), Sniff::NotConnect);
}

#[test]
fn mqisdp_shim_decodes_as_311() {
    let mut buf = BytesMut::from(V31_CONNECT);
    shim_mqisdp(&mut buf);
    let mut codec = Codec::new(Version::V31, 0);
    match codec.decode(&mut buf).unwrap() {
        Some(Inbound::Packet(Packet::Connect(c))) => {
            assert_eq!(&*c.client_id, "client31");
            assert!(c.clean_start);
            assert_eq!(c.keep_alive, 60);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(buf.is_empty());
}

#[test]
fn short_publish_header_is_malformed_not_a_huge_payload() {
    // Found by cargo fuzz: remaining length 0, and the next bytes look like a topic length.
    for version in [Version::V311, Version::V5] {
        let mut codec = Codec::new(version, 0);
        let mut buf = BytesMut::from(&b"\x30\x00\x00\x00\x00"[..]);
        assert!(
            matches!(codec.decode(&mut buf), Err(InboundError::Decode(DecodeError::MalformedPacket))),
            "{version:?}"
        );
    }
    // v5: a property length that runs past the frame.
    let mut codec = Codec::new(Version::V5, 0);
    let mut buf = BytesMut::from(&b"\x30\x04\x00\x01a\x09"[..]);
    assert!(matches!(codec.decode(&mut buf), Err(InboundError::Decode(DecodeError::MalformedPacket))));
}

#[test]
fn oversize_is_refused_before_it_is_buffered() {
    let mut codec = Codec::new(Version::V311, 100);
    let mut buf = BytesMut::from(&b"\x30\xff\x7f"[..]);
    assert!(matches!(codec.decode(&mut buf), Err(InboundError::Decode(DecodeError::MaxSizeExceeded { .. }))));
}

#[test]
fn split_publish_is_reassembled() {
    let mut codec = Codec::new(Version::V311, 0);
    let frame = b"\x30\x0c\x00\x03a/bhello!!";
    let mut buf = BytesMut::from(&frame[..7]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    buf.extend_from_slice(&frame[7..]);
    match codec.decode(&mut buf).unwrap() {
        Some(Inbound::Publish(p, payload)) => {
            assert_eq!(&*p.topic, "a/b");
            assert_eq!(&payload[..], b"hello!!");
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// What ntex-mqtt's own decoder makes of one whole PUBLISH frame.
fn ntex_publish(version: Version, frame: &[u8]) -> (Publish, Bytes) {
    let mut buf = BytesMut::from(frame);
    match version {
        Version::V5 => match v5::Codec::new().decode(&mut buf) {
            Ok(Some(v5::Decoded::Publish(p, payload, _))) => (p, payload),
            other => panic!("unexpected {other:?}"),
        },
        _ => match v3::Codec::new().decode(&mut buf) {
            Ok(Some(v3::Decoded::Publish(p, payload, _))) => (lift_publish(p), payload),
            other => panic!("unexpected {other:?}"),
        },
    }
}

#[test]
fn plain_publishes_decode_as_ntex_decodes_them() {
    let long = "t/".repeat(20);
    let frame = |version: Version, flags: u8, topic: &str, id: Option<u16>, props: &[u8], payload: &[u8]| {
        let mut body = (topic.len() as u16).to_be_bytes().to_vec();
        body.extend_from_slice(topic.as_bytes());
        body.extend(id.map(u16::to_be_bytes).into_iter().flatten());
        if version.is_v5() {
            body.extend_from_slice(props);
        }
        body.extend_from_slice(payload);
        let mut f = vec![0x30 | flags];
        encode_varint(body.len() as u32, &mut f);
        f.extend_from_slice(&body);
        f
    };
    for version in [Version::V311, Version::V5] {
        let frames = [
            frame(version, 0, "a/b", None, &[0], b""),
            frame(version, 0b0010, "a/b", Some(7), &[0], b"same topic"),
            frame(version, 0b1101, "c", Some(65535), &[0], &[b'x'; 200]),
            frame(version, 0b0011, &long, Some(1), &[0], b"long topic, retained"),
            // v5: with a property (message expiry), which takes ntex-mqtt's path.
            frame(version, 0b0010, "a/b", Some(2), &[5, 2, 0, 0, 0, 9], b"props"),
        ];
        let mut codec = Codec::new(version, 0);
        let mut buf = BytesMut::from(&frames.concat()[..]);
        for f in &frames {
            match codec.decode(&mut buf) {
                Ok(Some(Inbound::Publish(p, payload))) => assert_eq!((p, payload), ntex_publish(version, f)),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(buf.is_empty());
        let mut zero_id = BytesMut::from(&frame(version, 0b0010, "a", Some(0), &[0], b"")[..]);
        assert!(matches!(codec.decode(&mut zero_id), Err(InboundError::Decode(DecodeError::MalformedPacket))));
        let mut bad_topic = BytesMut::from(&frame(version, 0, "\u{0}", None, &[0], b"")[..]);
        bad_topic[4] = 0xff;
        assert!(matches!(codec.decode(&mut bad_topic), Err(InboundError::Decode(DecodeError::Utf8Error))));
    }
}
