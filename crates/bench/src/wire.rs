//! Watchers spoken to at the wire: a session is a TCP connection, a handshake,
//! and the few frames the watch workload sends (getData with a watch,
//! closeSession); the request workloads start their sessions here too
//! (crate::pipe). Ten thousand watchers through a full client library cost the
//! bench more CPU than the server it measures; this way a notification costs
//! the bench one read and one task wake-up, whatever the server.

use std::io;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// opcodes and xids of ZooKeeper's client protocol.
const OP_GET_DATA: i32 = 4;
const OP_CLOSE_SESSION: i32 = -11;
const XID_NOTIFICATION: i32 = -1;
const XID_PING: i32 = -2;
/// Largest frame the watcher accepts (a getData reply of a big value).
const MAX_FRAME: usize = 16 * 1024 * 1024;

pub struct Watcher {
    stream: TcpStream,
    buf: Vec<u8>,
    next_xid: i32,
}

/// A notification as the watcher read it.
pub struct Event {
    pub event_type: i32,
    pub at: Instant,
}

pub(crate) fn put_i32(b: &mut Vec<u8>, v: i32) {
    b.extend_from_slice(&v.to_be_bytes());
}

fn put_i64(b: &mut Vec<u8>, v: i64) {
    b.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_str(b: &mut Vec<u8>, s: &str) {
    put_i32(b, s.len() as i32);
    b.extend_from_slice(s.as_bytes());
}

/// A frame: its length, then `body`.
fn frame(body: Vec<u8>) -> Vec<u8> {
    let mut f = Vec::with_capacity(4 + body.len());
    put_i32(&mut f, body.len() as i32);
    f.extend_from_slice(&body);
    f
}

pub(crate) fn i32_at(b: &[u8], at: usize) -> io::Result<i32> {
    b.get(at..at + 4)
        .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "frame too short"))
}

impl Watcher {
    /// Connects and makes a new session with `timeout_ms`.
    pub async fn connect(host: &str, timeout_ms: u64) -> io::Result<Watcher> {
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(host))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        let mut w = Watcher {
            stream,
            buf: Vec::new(),
            next_xid: 1,
        };
        let mut b = Vec::with_capacity(48);
        put_i32(&mut b, 0); // protocol version
        put_i64(&mut b, 0); // last zxid seen
        put_i32(&mut b, timeout_ms.min(i32::MAX as u64) as i32);
        put_i64(&mut b, 0); // session id: a new session
        put_i32(&mut b, 16);
        b.extend_from_slice(&[0; 16]); // password
        b.push(0); // not read-only
        w.stream.write_all(&frame(b)).await?;
        let rsp = tokio::time::timeout(Duration::from_secs(10), w.next_frame())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer to the handshake"))??;
        // protocolVersion, timeOut, sessionId: a refused session has a zero timeout.
        if i32_at(&rsp, 4)? <= 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "the server refused the session",
            ));
        }
        Ok(w)
    }

    /// The session's socket and what was read from it past the handshake,
    /// for a caller that speaks the protocol on its own from there.
    pub fn into_parts(self) -> (TcpStream, Vec<u8>) {
        (self.stream, self.buf)
    }

    /// A session taken back from [`into_parts`](Self::into_parts), to close it.
    pub fn from_parts(stream: TcpStream, buf: Vec<u8>) -> Watcher {
        Watcher {
            stream,
            buf,
            // Past any xid the caller used; closeSession's is not checked.
            next_xid: i32::MAX,
        }
    }

    /// The next frame's body, as it came.
    async fn next_frame(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if self.buf.len() >= 4 {
                let n = i32_at(&self.buf, 0)?;
                if n < 0 || n as usize > MAX_FRAME {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("frame length {n}"),
                    ));
                }
                let end = 4 + n as usize;
                if self.buf.len() >= end {
                    let body = self.buf[4..end].to_vec();
                    self.buf.drain(..end);
                    return Ok(body);
                }
            }
            self.buf.reserve(256);
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
        }
    }

    /// getData with a watch; returns once the server answered it.
    pub async fn arm(&mut self, path: &str) -> io::Result<()> {
        let xid = self.next_xid;
        self.next_xid += 1;
        let mut b = Vec::with_capacity(16 + path.len());
        put_i32(&mut b, xid);
        put_i32(&mut b, OP_GET_DATA);
        put_str(&mut b, path);
        b.push(1); // watch
        self.stream.write_all(&frame(b)).await?;
        loop {
            let f = self.next_frame().await?;
            let (rxid, err) = (i32_at(&f, 0)?, i32_at(&f, 12)?);
            if rxid == xid {
                if err != 0 {
                    return Err(io::Error::other(format!("getData {path}: error {err}")));
                }
                return Ok(());
            }
        }
    }

    /// Waits for the next notification (pings and other answers skipped).
    pub async fn notification(&mut self) -> io::Result<Event> {
        loop {
            let f = self.next_frame().await?;
            match i32_at(&f, 0)? {
                XID_NOTIFICATION => {
                    let at = Instant::now();
                    // ReplyHeader (xid, zxid, err), then the event's type.
                    return Ok(Event {
                        event_type: i32_at(&f, 16)?,
                        at,
                    });
                }
                XID_PING => continue,
                _ => continue,
            }
        }
    }

    /// Closes the session and waits (briefly) for the server's answer.
    pub async fn close(mut self) {
        let mut b = Vec::with_capacity(8);
        put_i32(&mut b, self.next_xid);
        put_i32(&mut b, OP_CLOSE_SESSION);
        if self.stream.write_all(&frame(b)).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while self.next_frame().await.is_ok() {}
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_their_length() {
        let mut b = Vec::new();
        put_str(&mut b, "/a");
        assert_eq!(frame(b), vec![0, 0, 0, 6, 0, 0, 0, 2, b'/', b'a']);
    }

    #[test]
    fn short_frames_are_errors_not_panics() {
        assert!(i32_at(&[0, 0, 1], 0).is_err());
        assert_eq!(i32_at(&[0, 0, 0, 0, 0, 0, 1, 2], 4).unwrap(), 258);
    }
}
