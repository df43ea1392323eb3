//! Length framing: the limits ZooKeeper's server applies and the bytes of
//! replies.

use bytes::{Bytes, BytesMut};
use ensemble_proto::frame::*;
use ensemble_proto::*;

#[test]
fn frame_length_up_to_max_buffer_is_accepted() {
    assert_eq!(check_frame_len(0, DEFAULT_MAX_BUFFER), Ok(0));
    assert_eq!(check_frame_len(0xfffff, DEFAULT_MAX_BUFFER), Ok(0xfffff));
}

#[test]
fn frame_length_above_max_buffer_is_refused() {
    assert_eq!(
        check_frame_len(0x100000, DEFAULT_MAX_BUFFER),
        Err(FrameError::TooLarge {
            len: 0x100000,
            max: 0xfffff
        })
    );
}

#[test]
fn negative_frame_length_is_refused() {
    assert_eq!(
        check_frame_len(-1, DEFAULT_MAX_BUFFER),
        Err(FrameError::Negative(-1))
    );
    assert_eq!(
        check_frame_len(i32::MIN, usize::MAX),
        Err(FrameError::Negative(i32::MIN))
    );
}

#[test]
fn split_frame_waits_for_the_whole_frame() {
    let mut buf = BytesMut::from(&[0, 0, 0, 3, 1, 2][..]);
    assert_eq!(split_frame(&mut buf, 16), Ok(None));
    assert_eq!(buf.len(), 6);
    buf.extend_from_slice(&[3, 0, 0]);
    assert_eq!(
        split_frame(&mut buf, 16),
        Ok(Some(Bytes::from_static(&[1, 2, 3])))
    );
    assert_eq!(&buf[..], &[0, 0]);
    assert_eq!(split_frame(&mut buf, 16), Ok(None));
}

#[test]
fn split_frame_refuses_oversized_length_without_consuming() {
    let mut buf = BytesMut::from(&[0, 0, 0, 17][..]);
    assert_eq!(
        split_frame(&mut buf, 16),
        Err(FrameError::TooLarge { len: 17, max: 16 })
    );
    assert_eq!(buf.len(), 4);
}

#[test]
fn reply_frame_is_length_then_header_then_body() {
    let h = ReplyHeader {
        xid: 7,
        zxid: 0x1_0000_0002,
        err: 0,
    };
    let body = CreateResponse { path: "/a".into() };
    let frame = encode_reply(&h, Some(&body));
    let mut expected = vec![0, 0, 0, 16 + 6];
    expected.extend_from_slice(&h.to_bytes());
    expected.extend_from_slice(&body.to_bytes());
    assert_eq!(&frame[..], &expected[..]);
}

#[test]
fn error_reply_frame_has_no_body() {
    let h = ReplyHeader {
        xid: 1,
        zxid: 3,
        err: ErrorCode::NoNode.code(),
    };
    let frame = encode_reply_header(&h);
    assert_eq!(frame.len(), 20);
    assert_eq!(&frame[..4], &[0, 0, 0, 16]);
    assert_eq!(frame, encode_reply(&h, None::<&ErrorResponse>));
}

#[test]
fn encode_frame_prefixes_the_record_length() {
    let frame = encode_frame(&ErrorResponse { err: -101 });
    assert_eq!(&frame[..], &[0, 0, 0, 4, 0xff, 0xff, 0xff, 0x9b]);
}

#[test]
fn four_letter_words_are_recognised_from_the_length() {
    assert_eq!(four_letter_word(i32::from_be_bytes(*b"ruok")), Some("ruok"));
    assert_eq!(four_letter_word(i32::from_be_bytes(*b"mntr")), Some("mntr"));
    assert_eq!(four_letter_word(45), None);
}
