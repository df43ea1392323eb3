//! The client port's framing on an arbitrary byte stream: length prefixes
//! (negative, oversized, four letter words), frames split across reads, then
//! each frame decoded as the server does (a `ConnectRequest` first, then a
//! `RequestHeader` and the request record of its opcode).
//!
//! Input: byte 0 picks `jute.maxbuffer` (small or the default), byte 1 where
//! the stream is cut into two reads; the rest is the stream.
#![no_main]

use bytes::BytesMut;
use ensemble_proto::frame::{four_letter_word, split_frame};
use ensemble_proto::{ConnectRequest, Jute, Reader, RequestHeader, DEFAULT_MAX_BUFFER};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let max = if data[0] & 1 == 0 {
        DEFAULT_MAX_BUFFER
    } else {
        64
    };
    let stream = &data[2..];
    let cut = (data[1] as usize).min(stream.len());
    let mut buf = BytesMut::new();
    let mut first = true;
    let mut consumed = 0usize;
    for chunk in [&stream[..cut], &stream[cut..]] {
        buf.extend_from_slice(chunk);
        loop {
            if first && buf.len() >= 4 {
                let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                if let Some(word) = four_letter_word(len) {
                    assert_eq!(word.as_bytes(), &buf[..4]);
                }
            }
            let before = buf.clone();
            match split_frame(&mut buf, max) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max);
                    assert_eq!(&before[4..4 + frame.len()], &frame[..]);
                    consumed += 4 + frame.len();
                    decode_frame(&frame, first);
                    first = false;
                }
                Ok(None) => {
                    assert_eq!(before, buf, "a partial frame must not be consumed");
                    break;
                }
                Err(_) => {
                    assert_eq!(before, buf, "a refused frame must not be consumed");
                    return;
                }
            }
        }
    }
    assert_eq!(consumed + buf.len(), stream.len());
});

fn decode_frame(frame: &[u8], first: bool) {
    if first {
        ensemble_fuzz::round_trip::<ConnectRequest>(frame);
        return;
    }
    let mut r = Reader::from_slice(frame);
    let Ok(header) = RequestHeader::read(&mut r) else {
        return;
    };
    ensemble_fuzz::decode_request(header.r#type, &r.rest());
}
