//! Framing of the client port: every message in either direction is a 4-byte
//! big-endian length followed by that many bytes. A request frame holds a
//! `RequestHeader` and the request record (the first frame of a connection
//! holds a bare `ConnectRequest`); a reply frame holds a `ReplyHeader` and,
//! for successful operations that return something, the response record.
//!
//! Like `NIOServerCnxn.readLength` and `NettyServerCnxn`, a server closes the
//! connection when a length is negative or greater than `jute.maxbuffer`
//! (a length equal to it is accepted). Before the handshake ZooKeeper first
//! reads the length as a four letter word (`ruok`, `stat`...): see
//! [`four_letter_word`].

use crate::jute::{Jute, Writer};
use crate::records::ReplyHeader;
use bytes::{Buf, Bytes, BytesMut};

/// ZooKeeper's default `jute.maxbuffer`: 0xfffff bytes, one byte short of 1 MiB.
pub const DEFAULT_MAX_BUFFER: usize = 0xfffff;

/// The size of the length prefix of every frame.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// A frame length the server refuses; the connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {len} is greater than jute.maxbuffer={max}")]
    TooLarge { len: usize, max: usize },
    #[error("negative frame length {0}")]
    Negative(i32),
}

/// Checks a frame's advertised length against `max` (`jute.maxbuffer`).
pub fn check_frame_len(len: i32, max: usize) -> Result<usize, FrameError> {
    if len < 0 {
        return Err(FrameError::Negative(len));
    }
    let len = len as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// Splits one whole frame off the front of `buf`, without its length prefix.
/// `Ok(None)` means more bytes are needed; an error means the connection
/// must be closed (nothing is consumed then).
pub fn split_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, FrameError> {
    if buf.len() < LENGTH_PREFIX_LEN {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let len = check_frame_len(len, max)?;
    if buf.len() < LENGTH_PREFIX_LEN + len {
        buf.reserve(LENGTH_PREFIX_LEN + len - buf.len());
        return Ok(None);
    }
    buf.advance(LENGTH_PREFIX_LEN);
    Ok(Some(buf.split_to(len).freeze()))
}

/// One record as a length-prefixed frame (e.g. the `ConnectResponse`).
pub fn encode_frame(record: &impl Jute) -> Bytes {
    let mut w = Writer::new_frame();
    record.write(&mut w);
    w.finish_frame()
}

/// A reply frame: `header`, then `body` if there is one. ZooKeeper sends no
/// body when `header.err` is not 0 and for operations that return nothing
/// (delete, setWatches, auth, close, ping); see [`encode_reply_header`].
pub fn encode_reply(header: &ReplyHeader, body: Option<&impl Jute>) -> Bytes {
    let mut w = Writer::new_frame();
    header.write(&mut w);
    if let Some(body) = body {
        body.write(&mut w);
    }
    w.finish_frame()
}

/// A reply frame that holds only its header.
pub fn encode_reply_header(header: &ReplyHeader) -> Bytes {
    encode_frame(header)
}

/// A request frame: `RequestHeader { xid, type }`, then the request record.
/// What a client sends; servers use it in tests.
pub fn encode_request(header: &crate::records::RequestHeader, body: Option<&impl Jute>) -> Bytes {
    let mut w = Writer::new_frame();
    header.write(&mut w);
    if let Some(body) = body {
        body.write(&mut w);
    }
    w.finish_frame()
}

/// The four letter words of `FourLetterCommands`. Before a connection's
/// first frame, ZooKeeper reads the 4-byte length as one of these and answers
/// the command in plain text instead of rejecting the length.
pub const FOUR_LETTER_WORDS: [&str; 18] = [
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srvr", "srst", "stat",
    "wchc", "wchp", "wchs", "mntr", "isro", "hash",
];

/// The four letter word a first frame length spells, if it is a known one.
pub fn four_letter_word(len: i32) -> Option<&'static str> {
    let bytes = len.to_be_bytes();
    FOUR_LETTER_WORDS
        .iter()
        .copied()
        .find(|w| w.as_bytes() == bytes)
}
