//! One client connection: the handshake, then frames in, replies out. The
//! connection knows frames and ordering, not operations: writes go to the
//! prep stage, reads to `reads`. A read waits until every earlier write of the
//! session has been applied, so each session sees its own order.

use crate::fourlw;
use crate::pipeline::{ReplyKind, WriteReq};
use crate::reads;
use crate::session::session_password;
use crate::stats::{ConnGuard, ConnStats, SentBatch, ServerStats};
use crate::throttle::Admission;
use crate::Shared;
use bytes::{Buf, Bytes, BytesMut};
use ensemble_proto::{op, ConnectRequest, ConnectResponse, CreateSessionTxn, Id, Jute, Reader};
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify, OwnedSemaphorePermit};
use tracing::{debug, info, warn};

/// Signals to the connection task from the rest of the server.
/// (An applied write comes with its answer: [`ConnHandle::answer_write`].)
pub enum Ctl {
    /// The session was established by an applied createSession txn.
    Established,
    /// Stop serving this connection (session closed, expired or moved).
    Close,
}

/// Most bytes of replies and notifications a connection may have queued and not
/// yet written. A client that sends requests but does not read the answers is
/// disconnected here, instead of the server holding its answers without bound.
pub const MAX_QUEUED_OUT: usize = 64 * 1024 * 1024;

/// What the rest of the server leaves for a connection: the frames to write,
/// in the order they were sent, and the signals. One task serves the
/// connection (reads, runs requests, writes); others only append here and
/// wake it.
struct Outbox {
    queue: Mutex<OutQueue>,
    wake: Notify,
    stats: Arc<ServerStats>,
    conn: Arc<ConnStats>,
}

#[derive(Default)]
struct OutQueue {
    /// Frames not yet taken by the connection task, each still the sender's
    /// allocation (a notification is one frame shared by all its watchers).
    /// Unallocated while there is nothing to send.
    frames: VecDeque<Bytes>,
    /// What those frames add to the counters.
    sent: SentBatch,
    /// Bytes queued or taken and not yet written: the client's unread answers.
    unwritten: usize,
    /// Writes applied and answered since the task last looked.
    applied: u32,
    established: bool,
    /// Write what is queued, then close; later frames are dropped.
    close: bool,
    /// More than [`MAX_QUEUED_OUT`] bytes went unread: close without writing.
    overflow: bool,
    /// The task is awake and writes what is queued before it sleeps again:
    /// a frame sent meanwhile (its own replies, say) need not wake it.
    busy: bool,
    /// The task holds frames it took and has not all written: it writes
    /// the rest, and what is queued after them, itself.
    writing: bool,
    /// The socket, once the session is served: [`ConnHandle::deliver`] writes
    /// to it from other threads, under this lock, while the task is not writing.
    stream: Option<Arc<TcpStream>>,
}

/// What became of a frame offered to a queue.
enum Enqueued {
    /// The connection closes: the frame is dropped.
    Dropped,
    /// It took the client's unread answers past [`MAX_QUEUED_OUT`]: the
    /// queue is dropped and the connection closes without writing.
    Overflowed,
    Queued,
}

impl OutQueue {
    fn enqueue(&mut self, frame: Bytes) -> Enqueued {
        if self.close || self.overflow {
            return Enqueued::Dropped;
        }
        if self.unwritten + frame.len() > MAX_QUEUED_OUT {
            self.overflow = true;
            self.frames = VecDeque::new();
            return Enqueued::Overflowed;
        }
        self.unwritten += frame.len();
        self.sent.frame(&frame);
        self.frames.push_back(frame);
        Enqueued::Queued
    }
}

/// The signals the connection task takes from its outbox at once.
struct Signals {
    applied: u32,
    established: bool,
    close: bool,
    overflow: bool,
}

/// A cheap handle through which other parts of the server reach a connection.
#[derive(Clone)]
pub struct ConnHandle {
    pub id: u64,
    out: Arc<Outbox>,
}

impl ConnHandle {
    pub(crate) fn new(id: u64, stats: Arc<ServerStats>, conn: Arc<ConnStats>) -> ConnHandle {
        ConnHandle {
            id,
            out: Arc::new(Outbox {
                queue: Mutex::new(OutQueue {
                    sent: SentBatch::after_handshake(false),
                    busy: true,
                    ..OutQueue::default()
                }),
                wake: Notify::new(),
                stats,
                conn,
            }),
        }
    }

    /// Queues a frame without waking the connection's task: the caller
    /// [`deliver`](Self::deliver)s it soon after. A notification fans out to
    /// many connections; writing it from the thread that fired it costs one
    /// write each instead of waking as many tasks.
    pub fn queue(&self, frame: Bytes) {
        self.push(frame, false);
    }

    /// Queues a frame, waking the task if `wake` and it sleeps with nothing
    /// queued (it takes every queued frame when it takes any, so only the
    /// first of a batch wakes it). A frame that takes the client's unread
    /// answers over [`MAX_QUEUED_OUT`] drops the connection: what it would not
    /// read is not kept.
    fn push(&self, frame: Bytes, wake: bool) {
        let mut q = self.out.queue.lock();
        let idle = q.frames.is_empty() && !q.busy;
        let wake = match q.enqueue(frame) {
            Enqueued::Dropped => false,
            Enqueued::Overflowed => true,
            Enqueued::Queued => wake && idle,
        };
        drop(q);
        if wake {
            self.out.wake.notify_one();
        }
    }

    /// Queues the answer to one of this connection's writes and counts the
    /// write as applied: one lock and one wake-up, where a [`send`](Self::send)
    /// and a [`signal`](Self::signal) took two of each (and the second
    /// wake-up, a stored permit, sent the task round its loop once more for
    /// nothing).
    pub fn answer_write(&self, frame: Bytes) {
        let mut q = self.out.queue.lock();
        q.applied += 1;
        q.enqueue(frame);
        drop(q);
        self.out.wake.notify_one();
    }

    /// Writes what is queued from this thread, as far as the socket takes it
    /// without waiting, unless the task is writing already (it then writes
    /// these frames after its own). What the socket does not take is left to
    /// the task, woken for it. The lock is held across the write, so frames
    /// leave in the order they were queued whoever writes them.
    pub fn deliver(&self) {
        if let Some(d) = self.delivery(self.out.queue.lock()) {
            let written = write_some(&d.stream, &d.q.frames);
            d.finish(written);
        }
    }

    /// [`deliver`](Self::deliver) in two halves, for a caller that writes to
    /// many connections at once: the queue to write, locked, or None when
    /// there is nothing this thread may write. Err when another thread holds
    /// the lock: one that locks many queues at once must not wait for one.
    pub(crate) fn try_delivery(&self) -> Result<Option<Delivery<'_>>, ()> {
        match self.out.queue.try_lock() {
            Some(q) => Ok(self.delivery(q)),
            None => Err(()),
        }
    }

    fn delivery<'a>(&'a self, mut q: MutexGuard<'a, OutQueue>) -> Option<Delivery<'a>> {
        if q.writing || q.frames.is_empty() || q.close || q.overflow {
            return None;
        }
        let Some(stream) = q.stream.clone() else {
            drop(q);
            self.out.wake.notify_one();
            return None;
        };
        let sent = std::mem::replace(&mut q.sent, SentBatch::after_handshake(true));
        self.out.stats.sent(&self.out.conn, &sent);
        Some(Delivery {
            out: &self.out,
            q,
            stream,
        })
    }

    pub fn send(&self, frame: Bytes) {
        self.push(frame, true);
    }

    pub fn signal(&self, c: Ctl) {
        let mut q = self.out.queue.lock();
        match c {
            Ctl::Established => q.established = true,
            Ctl::Close => q.close = true,
        }
        drop(q);
        self.out.wake.notify_one();
    }

    /// Closes the connection after the frames already queued are written.
    pub fn close(&self) {
        self.signal(Ctl::Close);
    }

    fn take_signals(&self) -> Signals {
        let mut q = self.out.queue.lock();
        let s = Signals {
            applied: q.applied,
            established: q.established,
            close: q.close,
            overflow: q.overflow,
        };
        q.applied = 0;
        q.established = false;
        q.busy = true;
        s
    }
}

#[cfg(test)]
impl ConnHandle {
    /// A handle whose socket is shared already, as when its session is served.
    pub(crate) fn serving(id: u64, stats: Arc<ServerStats>, stream: TcpStream) -> ConnHandle {
        let peer = stream.peer_addr().expect("a connected socket");
        let conn = stats.open_conn(id, peer).conn.clone();
        let handle = ConnHandle::new(id, stats, conn);
        handle.out.queue.lock().stream = Some(Arc::new(stream));
        handle
    }

    /// Frames queued and not yet written.
    pub(crate) fn queued(&self) -> usize {
        self.out.queue.lock().frames.len()
    }
}

/// Per-connection state the operation handlers need.
pub struct ConnState {
    pub handle: ConnHandle,
    pub peer: SocketAddr,
    pub session_id: i64,
    /// Authenticated ids: `ip` always, plus one per successful addauth.
    pub auth: Arc<Vec<Id>>,
    /// A read-only session, served by a member without a quorum
    /// (`readonlymode.enabled`): writes fail with NotReadOnly.
    pub read_only: bool,
    /// This connection's counters (`stat`, `srvr`, `mntr`).
    pub stats: ConnGuard,
}

pub struct Request {
    pub xid: i32,
    pub opcode: i32,
    pub body: Bytes,
    /// When the request came in: its latency runs until it is answered.
    pub received: Instant,
}

/// A request answered elsewhere (a write, a sync, a new session): when it
/// came in, and whether a txn answers it.
struct Pending {
    received: Instant,
    txn: bool,
    /// The request's RequestThrottler slot, freed with its answer.
    _slot: Option<OwnedSemaphorePermit>,
}

/// The head of the queue's wait for a RequestThrottler slot.
#[derive(Default)]
struct Gate {
    waiting: Option<Pin<Box<dyn Future<Output = Admission> + Send>>>,
    ready: Option<Admission>,
}

/// What the head of the queue may do now.
enum Slot {
    /// Run, holding this slot (None without a throttler).
    Go(Option<OwnedSemaphorePermit>),
    /// Wait for a slot.
    Wait,
    /// It waited too long: answer Throttled.
    Throttled,
    /// It waited longer than its session timeout: close the connection.
    Stale,
}

fn is_write(opcode: i32) -> bool {
    matches!(
        opcode,
        op::CREATE
            | op::CREATE2
            | op::CREATE_CONTAINER
            | op::CREATE_TTL
            | op::DELETE
            | op::DELETE_CONTAINER
            | op::SET_DATA
            | op::SET_ACL
            | op::CHECK
            | op::MULTI
            | op::CLOSE_SESSION
    )
}

/// Frames handed to the socket in one write at most.
const MAX_WRITE_FRAMES: usize = 64;

/// A connection's queue, locked for a write from a thread other than its
/// task (see [`ConnHandle::try_delivery`]).
pub(crate) struct Delivery<'a> {
    out: &'a Outbox,
    q: MutexGuard<'a, OutQueue>,
    stream: Arc<TcpStream>,
}

impl Delivery<'_> {
    /// The frames to write, oldest first.
    pub(crate) fn frames(&self) -> impl Iterator<Item = &Bytes> {
        self.q.frames.iter()
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }

    /// Takes what the socket took off the queue and lets it go. What is left
    /// (the socket was full, or failed) is the task's, woken for it.
    pub(crate) fn finish(mut self, written: std::io::Result<usize>) {
        if let Ok(n) = written {
            self.q.unwritten -= n;
            advance(&mut self.q.frames, n);
        }
        if self.q.frames.is_empty() {
            self.q.frames = VecDeque::new();
            return;
        }
        let sleeping = !self.q.busy;
        drop(self.q);
        if sleeping {
            self.out.wake.notify_one();
        }
    }
}

/// One write of the first frames of a queue (up to [`MAX_WRITE_FRAMES`]),
/// without waiting: the bytes the socket took.
fn write_some(stream: &TcpStream, frames: &VecDeque<Bytes>) -> std::io::Result<usize> {
    let slices: SmallVec<[IoSlice<'_>; MAX_WRITE_FRAMES]> = frames
        .iter()
        .take(MAX_WRITE_FRAMES)
        .map(|b| IoSlice::new(b))
        .collect();
    stream.try_io(Interest::WRITABLE, || {
        send_vectored(stream.as_raw_fd(), &slices)
    })
}

/// sendmsg(2) without waiting: the socket's own call, which does not go
/// through the file layer as writev(2) does (a notification to ten thousand
/// watchers is ten thousand of these).
fn send_vectored(fd: RawFd, slices: &[IoSlice<'_>]) -> std::io::Result<usize> {
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice has the layout of iovec on unix; sendmsg only reads the buffers.
    msg.msg_iov = slices.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = slices.len() as _;
    // SAFETY: msg points at `slices`, alive for the call.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Drops the first `n` bytes of a queue of frames.
fn advance(frames: &mut VecDeque<Bytes>, mut n: usize) {
    while let Some(front) = frames.front_mut() {
        if n < front.len() {
            front.advance(n);
            return;
        }
        n -= front.len();
        frames.pop_front();
    }
}

/// The connection's socket and what the task is writing to it.
struct Wire {
    /// Shared with the outbox once the session is served (see `deliver`).
    stream: Arc<TcpStream>,
    /// Frames taken from the outbox and not yet all written.
    pending: VecDeque<Bytes>,
    /// How many of the outbox's bytes `pending` holds, given back when it is written.
    taken: usize,
}

impl Wire {
    /// Writes what is queued as far as the socket takes it without waiting,
    /// up to [`MAX_WRITE_FRAMES`] frames a write. Returns false when the socket failed.
    fn flush(&mut self, out: &Outbox) -> bool {
        loop {
            if self.pending.is_empty() {
                let mut q = out.queue.lock();
                q.unwritten -= self.taken;
                self.taken = 0;
                if q.frames.is_empty() || q.overflow {
                    // Nothing left to write: the next frame must wake the task.
                    q.busy = false;
                    q.writing = false;
                    // Released, not kept: an idle connection holds no buffer.
                    self.pending = VecDeque::new();
                    return true;
                }
                q.writing = true;
                std::mem::swap(&mut self.pending, &mut q.frames);
                self.taken = self.pending.iter().map(Bytes::len).sum();
                let sent = std::mem::replace(&mut q.sent, SentBatch::after_handshake(true));
                drop(q);
                out.stats.sent(&out.conn, &sent);
            }
            match write_some(&self.stream, &self.pending) {
                Ok(n) => advance(&mut self.pending, n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
    }

    /// Whether frames wait for the socket to take them.
    fn blocked(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Writes everything queued, waiting for the socket as long as it takes,
    /// then shuts the sending side down.
    async fn drain(&mut self, out: &Outbox) {
        let written = loop {
            if !self.flush(out) {
                break false;
            }
            if !self.blocked() {
                break true;
            }
            if self.stream.writable().await.is_err() {
                break false;
            }
        };
        self.release(out);
        if written {
            if let Some(stream) = Arc::get_mut(&mut self.stream) {
                let _ = stream.shutdown().await;
            }
        }
    }

    /// Takes the socket back from the outbox: no other thread writes to it
    /// after this, and it closes when the task ends, however many handles
    /// of the connection the server still holds.
    fn release(&mut self, out: &Outbox) {
        out.queue.lock().stream = None;
    }

    /// The socket, before it is shared.
    fn stream_mut(&mut self) -> &mut TcpStream {
        Arc::get_mut(&mut self.stream)
            .expect("the socket is shared only once the session is served")
    }
}

/// What woke a connection's task.
enum Wake {
    Admitted(Admission),
    Readable(std::io::Result<()>),
    /// Something was queued on the outbox or signalled.
    Queued,
    Writable(std::io::Result<()>),
}

#[derive(Debug)]
enum ReadEnd {
    Eof,
    Error(String),
}

/// The most the connection asks the socket for at once: a burst of pipelined
/// requests costs one read, not two per request. Reads start at `MIN_READ` and
/// double while they fill what was asked. The frames read keep their read
/// buffer until they are answered, so a request waiting in the pipeline holds
/// what its read asked for: with ten thousand sessions closing at once, 4 KiB
/// first reads held 40 MB. (Halving the reads again after small ones cost a
/// busy connection 5% of its reads per second: more, smaller buffers.)
const READ_CHUNK: usize = 64 * 1024;
const MIN_READ: usize = 256;

/// Reads what the socket has into `buf`, once, without waiting; `chunk` is
/// the size of the next read. Room is made for the rest of a started frame
/// when its length is within `max` (a longer one is refused before it is read).
fn fill(
    stream: &TcpStream,
    buf: &mut BytesMut,
    chunk: &mut usize,
    max: usize,
) -> Result<(), ReadEnd> {
    let missing = if buf.len() >= 4 {
        let n = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]).max(0) as usize;
        (4 + n.min(max)).saturating_sub(buf.len())
    } else {
        0
    };
    buf.reserve(missing.max(*chunk));
    let room = buf.capacity() - buf.len();
    match stream.try_read_buf(buf) {
        Ok(0) if buf.is_empty() => Err(ReadEnd::Eof),
        Ok(0) => Err(ReadEnd::Error(
            "connection closed in the middle of a frame".into(),
        )),
        Ok(n) => {
            if n == room {
                *chunk = (*chunk * 2).min(READ_CHUNK);
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(ReadEnd::Error(e.to_string())),
    }
}

/// Takes the next complete length-prefixed frame from `buf`, if there is one;
/// `max` is jute.maxbuffer. Frames are slices of the read buffer, not copies.
/// An emptied `buf` is released, so a connection that sends nothing holds no
/// read buffer.
fn next_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, ReadEnd> {
    if buf.len() < 4 {
        if buf.is_empty() && buf.capacity() > 0 {
            // The frames already taken keep their part of the old allocation.
            *buf = BytesMut::new();
        }
        return Ok(None);
    }
    let n = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if n < 0 || n as usize > max {
        return Err(ReadEnd::Error(format!(
            "frame length {n} is outside 0..={max} (jute.maxbuffer)"
        )));
    }
    if buf.len() < 4 + n as usize {
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(n as usize).freeze()))
}

/// Serves one accepted connection until it closes: one task reads the
/// socket, runs the requests, and writes the answers and notifications.
///
/// Every connection's task holds this future, so its size is memory per
/// session: it is an `async move` block rather than an `async fn` (whose
/// arguments keep slots of their own beside the locals they are moved into),
/// and what only the handshake needs lives in a block of its own, so none of
/// it takes room beside the request loop's state.
#[allow(clippy::manual_async_fn)] // deliberate, see above
pub fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    admitted: crate::Admitted,
) -> impl std::future::Future<Output = ()> + Send {
    async move {
        let _ = stream.set_nodelay(true);
        let id = shared.next_conn_id();
        let conn_stats = shared.stats.open_conn(id, peer);
        let handle = ConnHandle::new(id, shared.stats.clone(), conn_stats.conn.clone());
        let max = shared.config.jute_max_buffer;

        let mut wire = Wire {
            stream: Arc::new(stream),
            pending: VecDeque::new(),
            taken: 0,
        };
        // The handshake, in a block that every way out of leaves by the one
        // drain below: each `.await` of its own would keep a drain's state and
        // the handshake's locals side by side in every connection's future.
        let opened = 'open: {
            // The first four bytes are either a four-letter word or a frame length.
            let mut len = [0u8; 4];
            if wire.stream_mut().read_exact(&mut len).await.is_err() {
                break 'open None;
            }
            if let Some(word) = fourlw::word(&len) {
                conn_stats.four_letter_word();
                let text =
                    Bytes::from(fourlw::answer_reading(&shared, word, wire.stream_mut()).await);
                // ZooKeeper writes the text in chunks of 8192 characters, a packet each.
                for chunk in text.chunks(8192) {
                    handle.send(text.slice_ref(chunk));
                }
                // Given back before the close the client sees, so a connection made
                // after a four-letter word's answer finds its place free.
                drop(admitted);
                break 'open None;
            }
            let n = i32::from_be_bytes(len);
            if n < 0 || n as usize > max {
                warn!(%peer, "closing connection: connect frame length {n} is outside 0..={max}");
                break 'open None;
            }
            let mut body = BytesMut::zeroed(n as usize);
            if wire.stream_mut().read_exact(&mut body).await.is_err() {
                debug!(%peer, "connection closed before the connect request was complete");
                break 'open None;
            }
            let connect_received = conn_stats.request_received(4 + n as u64);
            shared.stats.connection_requests.fetch_add(1, Relaxed);
            let connect = match ConnectRequest::read(&mut Reader::new(body.freeze())) {
                Ok(c) => c,
                Err(e) => {
                    warn!(%peer, "closing connection: malformed connect request: {e}");
                    break 'open None;
                }
            };

            let mut state = ConnState {
                handle: handle.clone(),
                peer,
                session_id: 0,
                auth: Arc::new(vec![Id {
                    scheme: "ip".into(),
                    id: peer.ip().to_string(),
                }]),
                read_only: false,
                stats: conn_stats,
            };
            let mut pending: VecDeque<Pending> = VecDeque::new();
            let mut established = false;

            match handshake(&shared, &mut state, &connect) {
                Handshake::Pending => pending.push_back(Pending {
                    received: connect_received,
                    txn: true,
                    _slot: None,
                }),
                Handshake::Done => {
                    // As ZooKeeper, a resumed session is no timed request.
                    state.stats.request_answered(connect_received, true, false);
                    established = true
                }
                Handshake::Refused => {
                    handle.close();
                    break 'open None;
                }
            }
            Some((state, pending, established))
        };
        let Some((mut state, mut pending, mut established)) = opened else {
            wire.drain(&handle.out).await;
            return;
        };
        let mut queue: VecDeque<Request> = VecDeque::new();
        let mut overflowed = false;
        let mut gate = Gate::default();
        let mut rbuf = BytesMut::new();
        let mut chunk = MIN_READ;

        handle.out.queue.lock().stream = Some(wire.stream.clone());
        loop {
            if !wire.flush(&handle.out) {
                debug!(%peer, "closing connection: writing to the socket failed");
                break;
            }
            // As ZooKeeper's disableRecv/enableRecv: checked after each request in
            // and each answer out of this connection.
            let stop_reading = shared
                .throttle
                .stop_reading(&shared.stats, queue.len() + pending.len());
            let blocked = wire.blocked();
            let mut end = None;
            // One poll of each thing the task waits for, in place of a select of
            // their futures: the socket's readiness is polled without a future
            // (300 bytes of every connection's task).
            let woken = handle.out.wake.notified();
            tokio::pin!(woken);
            let event = std::future::poll_fn(|cx| {
                if let Some(waiting) = gate.waiting.as_mut() {
                    if let Poll::Ready(admission) = waiting.as_mut().poll(cx) {
                        return Poll::Ready(Wake::Admitted(admission));
                    }
                }
                if !stop_reading {
                    if let Poll::Ready(r) = wire.stream.poll_read_ready(cx) {
                        return Poll::Ready(Wake::Readable(r));
                    }
                }
                if woken.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wake::Queued);
                }
                if blocked {
                    if let Poll::Ready(r) = wire.stream.poll_write_ready(cx) {
                        return Poll::Ready(Wake::Writable(r));
                    }
                }
                Poll::Pending
            })
            .await;
            match event {
                Wake::Admitted(admission) => {
                    gate.waiting = None;
                    gate.ready = Some(admission);
                }
                Wake::Readable(r) => {
                    let r = match r {
                        Ok(()) => fill(&wire.stream, &mut rbuf, &mut chunk, max),
                        Err(e) => Err(ReadEnd::Error(e.to_string())),
                    };
                    if let Err(e) = r {
                        end = Some(e);
                    }
                }
                Wake::Queued => {}
                Wake::Writable(r) => {
                    if r.is_err() {
                        break;
                    }
                }
            }
            let signals = handle.take_signals();
            if signals.established {
                answered(&state, pending.pop_front());
                established = true;
            }
            for _ in 0..signals.applied {
                answered(&state, pending.pop_front());
            }
            if signals.overflow {
                warn!(
                    %peer,
                    session = format_args!("0x{:x}", state.session_id),
                    "closing connection: the client left more than {MAX_QUEUED_OUT} bytes of answers unread"
                );
                overflowed = true;
                break;
            }
            if signals.close {
                break;
            }
            // Frames are taken one at a time, each only while the server is under
            // globalOutstandingLimit: the rest wait in the read buffer.
            while !shared
                .throttle
                .stop_reading(&shared.stats, queue.len() + pending.len())
            {
                match next_frame(&mut rbuf, max) {
                    Ok(Some(b)) => {
                        let received = state.stats.request_frame_received(&b);
                        let mut r = Reader::new(b);
                        let (Ok(xid), Ok(opcode)) = (r.read_i32(), r.read_i32()) else {
                            end = Some(ReadEnd::Error(
                                "frame too short for a request header".into(),
                            ));
                            break;
                        };
                        queue.push_back(Request {
                            xid,
                            opcode,
                            body: r.rest(),
                            received,
                        });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        end = Some(e);
                        break;
                    }
                }
            }
            // Requests read before the end of the stream still run, as they did
            // when they came in separately.
            if established
                && !process_queue(&shared, &mut state, &mut queue, &mut pending, &mut gate)
            {
                break;
            }
            match end {
                Some(ReadEnd::Error(e)) => {
                    warn!(%peer, session = format_args!("0x{:x}", state.session_id), "closing connection: {e}");
                    break;
                }
                Some(ReadEnd::Eof) => break,
                None => {}
            }
            if !established && pending.is_empty() {
                break;
            }
        }

        if shared.throttle.enabled() && !queue.is_empty() {
            stale_requests(&shared, &state, queue);
        }
        if shared.connection_closed(&state) && shared.quorum && !state.read_only {
            shared.submit_write(WriteReq::internal(
                state.session_id,
                crate::pipeline::RELEASE_SESSION,
            ));
        }
        handle.close();
        if overflowed {
            wire.release(&handle.out);
        } else {
            // What was queued before the close is written first.
            wire.drain(&handle.out).await;
        }
    }
}

enum Handshake {
    /// A createSession txn is on its way through the log.
    Pending,
    /// An existing session was resumed; the response is sent.
    Done,
    /// The answer (if any) is sent and the connection must close.
    Refused,
}

fn handshake(shared: &Arc<Shared>, state: &mut ConnState, req: &ConnectRequest) -> Handshake {
    let peer = state.peer;
    if !crate::quorum::accepting(shared) {
        if shared.read_only_mode() && req.read_only == Some(true) {
            return read_only_session(shared, state, req);
        }
        // As a ZooKeeper member without a quorum: close, so the client tries
        // another member.
        info!(%peer, "refusing connection: this server is not serving (no quorum)");
        return Handshake::Refused;
    }
    let last_zxid = shared.tree.read().last_zxid();
    if req.last_zxid_seen > last_zxid {
        info!(
            %peer,
            "refusing session 0x{:x}: client has seen zxid 0x{:x}, our last zxid is 0x{:x}",
            req.session_id, req.last_zxid_seen, last_zxid
        );
        return Handshake::Refused;
    }
    let cfg = &shared.config;
    let timeout = req.time_out.clamp(
        cfg.min_session_timeout as i32,
        cfg.max_session_timeout as i32,
    );
    let read_only = req.read_only.map(|_| false);
    if req.session_id == 0 {
        let id = shared.sessions.lock().allocate_id();
        state.session_id = id;
        shared.submit_write(WriteReq {
            session_id: id,
            cxid: 0,
            opcode: op::CREATE_SESSION,
            body: CreateSessionTxn { time_out: timeout }.to_bytes(),
            auth: state.auth.clone(),
            reply: Some((
                state.handle.clone(),
                0,
                ReplyKind::Connect { timeout, read_only },
            )),
            done: None,
            from: None,
            txn: None,
        });
        return Handshake::Pending;
    }
    let id = req.session_id;
    let password_ok = req.passwd.as_deref() == Some(&session_password(id)[..]);
    let now = shared.now_ms();
    let resumed = {
        let mut sessions = shared.sessions.lock();
        if password_ok && sessions.touch(id, now) {
            if let Some(s) = sessions.get_mut(id) {
                s.timeout_ms = timeout;
                if let Some(old) = s.conn.replace(state.handle.clone()) {
                    if old.id != state.handle.id {
                        old.close();
                    }
                }
            }
            true
        } else {
            false
        }
    };
    if resumed {
        state.session_id = id;
        let rsp = ConnectResponse {
            protocol_version: 0,
            time_out: timeout,
            session_id: id,
            passwd: Some(Bytes::copy_from_slice(&session_password(id))),
            read_only,
        };
        state.handle.send(crate::encode_frame(&rsp));
        crate::quorum::claim_session(shared, id);
        info!(%peer, "resumed session 0x{id:x} with timeout {timeout} ms");
        Handshake::Done
    } else {
        // ZooKeeper answers an expired or unknown session, or a wrong
        // password, with a zero timeout and id, then closes.
        let rsp = ConnectResponse {
            protocol_version: 0,
            time_out: 0,
            session_id: 0,
            passwd: Some(Bytes::from_static(&[0u8; 16])),
            read_only,
        };
        state.handle.send(crate::encode_frame(&rsp));
        info!(
            %peer,
            "refusing to resume session 0x{id:x}: {}",
            if password_ok { "session expired" } else { "wrong password" }
        );
        Handshake::Refused
    }
}

/// A session served read-only by a member without a quorum, as ZooKeeper's
/// ReadOnlyZooKeeperServer: nothing goes through the log. A new session gets
/// a local id; an existing one keeps its id when the password is right.
fn read_only_session(
    shared: &Arc<Shared>,
    state: &mut ConnState,
    req: &ConnectRequest,
) -> Handshake {
    let cfg = &shared.config;
    let timeout = req.time_out.clamp(
        cfg.min_session_timeout as i32,
        cfg.max_session_timeout as i32,
    );
    let id = if req.session_id == 0 {
        shared.sessions.lock().allocate_id()
    } else if req.passwd.as_deref() == Some(&session_password(req.session_id)[..]) {
        req.session_id
    } else {
        let rsp = ConnectResponse {
            protocol_version: 0,
            time_out: 0,
            session_id: 0,
            passwd: Some(Bytes::from_static(&[0u8; 16])),
            read_only: Some(true),
        };
        state.handle.send(crate::encode_frame(&rsp));
        return Handshake::Refused;
    };
    state.session_id = id;
    state.read_only = true;
    shared
        .read_only_conns
        .lock()
        .insert(state.handle.id, state.handle.clone());
    let rsp = ConnectResponse {
        protocol_version: 0,
        time_out: timeout,
        session_id: id,
        passwd: Some(Bytes::copy_from_slice(&session_password(id))),
        read_only: Some(true),
    };
    state.handle.send(crate::encode_frame(&rsp));
    info!(peer = %state.peer, "read-only session 0x{id:x} (no quorum)");
    Handshake::Done
}

/// Runs queued requests in order: writes go out at once, a read waits for the
/// session's earlier writes. Returns false when the connection must close.
fn process_queue(
    shared: &Arc<Shared>,
    state: &mut ConnState,
    queue: &mut VecDeque<Request>,
    pending: &mut VecDeque<Pending>,
    gate: &mut Gate,
) -> bool {
    while let Some(req) = queue.front() {
        if state.read_only && (is_write(req.opcode) || req.opcode == op::SYNC) {
            let Some(req) = queue.pop_front() else { break };
            if req.opcode == op::CLOSE_SESSION {
                state.handle.send(read_only_reply(req.xid, shared, 0));
                state.handle.close();
                return false;
            }
            let err = ensemble_proto::ErrorCode::NotReadOnly.code();
            state.handle.send(read_only_reply(req.xid, shared, err));
            state.stats.request_answered(req.received, false, true);
            continue;
        }
        let reconfig =
            req.opcode == op::RECONFIG && shared.quorum && shared.config.reconfig_enabled;
        if (is_write(req.opcode) || reconfig)
            && req.opcode != op::CLOSE_SESSION
            && shared.disk.refusing()
        {
            // No room to log it (crate::disk): refused, in order after the
            // answers still owed.
            if !pending.is_empty() {
                break;
            }
            let Some(req) = queue.pop_front() else { break };
            shared.touch(state.session_id);
            let err = ensemble_proto::ErrorCode::NotReadOnly.code();
            state.handle.send(read_only_reply(req.xid, shared, err));
            state.stats.request_answered(req.received, false, true);
            continue;
        }
        if is_write(req.opcode) || reconfig {
            // A sync in flight is answered by a task of its own, not from the
            // log: a write behind it waits, or its answer could come first.
            if pending.iter().any(|p| !p.txn) {
                break;
            }
            let slot = match take_slot(shared, state, gate, req, !pending.is_empty()) {
                Slot::Go(slot) => slot,
                Slot::Wait => break,
                Slot::Throttled => {
                    throttled(shared, state, queue);
                    continue;
                }
                Slot::Stale => return false,
            };
            let Some(req) = queue.pop_front() else { break };
            shared.touch(state.session_id);
            let kind = if req.opcode == op::CLOSE_SESSION {
                ReplyKind::Close
            } else {
                ReplyKind::Normal { opcode: req.opcode }
            };
            if req.opcode == op::CLOSE_SESSION {
                if let Some(s) = shared.sessions.lock().get_mut(state.session_id) {
                    s.closing = true;
                }
            }
            shared.submit_write(WriteReq {
                session_id: state.session_id,
                cxid: shared.write_cxid(),
                opcode: req.opcode,
                body: req.body,
                auth: state.auth.clone(),
                reply: Some((state.handle.clone(), req.xid, kind)),
                done: None,
                from: None,
                txn: None,
            });
            pending.push_back(Pending {
                received: req.received,
                txn: true,
                _slot: slot,
            });
            continue;
        }
        if !pending.is_empty() {
            break;
        }
        let slot = match take_slot(shared, state, gate, req, !pending.is_empty()) {
            Slot::Go(slot) => slot,
            Slot::Wait => break,
            Slot::Throttled => {
                throttled(shared, state, queue);
                continue;
            }
            Slot::Stale => return false,
        };
        let Some(req) = queue.pop_front() else { break };
        shared.touch(state.session_id);
        if req.opcode == op::SYNC && shared.quorum {
            // Later reads wait for the answer, like reads after a write.
            pending.push_back(Pending {
                received: req.received,
                txn: false,
                _slot: slot,
            });
            sync_through_leader(shared.clone(), state.handle.clone(), req);
            continue;
        }
        let (received, opcode) = (req.received, req.opcode);
        let ok = reads::handle(shared, state, req);
        drop(slot);
        // Auth and SASL packets skip ZooKeeper's pipeline and its latency.
        let timed = opcode != op::AUTH && opcode != op::SASL;
        state.stats.request_answered(received, false, timed);
        if !ok {
            if opcode == op::AUTH {
                shared.stats.auth_failed.fetch_add(1, Relaxed);
            }
            return false;
        }
    }
    true
}

/// Whether the request at the head of the queue may run now, waits for a
/// RequestThrottler slot, or was throttled or found stale while it waited.
fn take_slot(
    shared: &Arc<Shared>,
    state: &ConnState,
    gate: &mut Gate,
    req: &Request,
    answers_owed: bool,
) -> Slot {
    match gate.ready.take() {
        Some(Admission::Run(p)) => return Slot::Go(Some(p)),
        // Answered at once, so only after the answers still owed: in order.
        Some(Admission::Throttled(p)) if answers_owed => {
            gate.ready = Some(Admission::Throttled(p));
            return Slot::Wait;
        }
        Some(Admission::Throttled(_)) => return Slot::Throttled,
        Some(Admission::Stale) => {
            warn!(
                peer = %state.peer,
                session = format_args!("0x{:x}", state.session_id),
                "closing connection: a request waited for the request throttler longer than the session timeout"
            );
            return Slot::Stale;
        }
        None => {}
    }
    if gate.waiting.is_some() {
        return Slot::Wait;
    }
    if let Some(slot) = shared.throttle.try_admit(req.opcode, &shared.stats) {
        return Slot::Go(slot);
    }
    let timeout = shared
        .sessions
        .lock()
        .get(state.session_id)
        .map(|s| s.timeout_ms)
        .unwrap_or(0);
    gate.waiting = Some(Box::pin(shared.throttle.admit(
        req.opcode,
        req.received,
        Duration::from_millis(timeout.max(0) as u64),
        shared.stats.clone(),
    )));
    Slot::Wait
}

/// Answers the head of the queue with Throttled (-127), not running it, as
/// ZooKeeper's FinalRequestProcessor answers a request marked throttled.
fn throttled(shared: &Shared, state: &ConnState, queue: &mut VecDeque<Request>) {
    if let Some(req) = queue.pop_front() {
        let err = ensemble_proto::ErrorCode::Throttled.code();
        state.handle.send(read_only_reply(req.xid, shared, err));
        state.stats.request_answered(req.received, false, true);
    }
}

/// The connection closed while requests waited for the RequestThrottler.
/// With `request_throttle_drop_stale` they are dropped (counted once, as
/// ZooKeeper drops the first and the rest of the connection's requests with
/// it); without, its writes still run, in order, unanswered.
fn stale_requests(shared: &Arc<Shared>, state: &ConnState, queue: VecDeque<Request>) {
    if shared.throttle.drop_stale {
        shared.stats.stale_requests_dropped.fetch_add(1, Relaxed);
        debug!(
            session = format_args!("0x{:x}", state.session_id),
            "dropped {} requests of a closed connection",
            queue.len()
        );
        return;
    }
    let shared = shared.clone();
    let (session_id, auth) = (state.session_id, state.auth.clone());
    tokio::spawn(async move {
        for req in queue {
            if !is_write(req.opcode) {
                continue;
            }
            shared.stats.stale_requests.fetch_add(1, Relaxed);
            let admission = shared.throttle.admit(
                req.opcode,
                req.received,
                Duration::MAX,
                shared.stats.clone(),
            );
            let slot = match admission.await {
                Admission::Run(p) => p,
                Admission::Throttled(_) | Admission::Stale => continue,
            };
            let (done, settled) = oneshot::channel();
            shared.submit_write(WriteReq {
                session_id,
                cxid: req.xid,
                opcode: req.opcode,
                body: req.body,
                auth: auth.clone(),
                reply: None,
                done: Some(done),
                from: None,
                txn: None,
            });
            tokio::spawn(async move {
                let _ = settled.await;
                drop(slot);
            });
        }
    });
}

/// A request answered elsewhere got its answer (they are answered in order).
fn answered(state: &ConnState, p: Option<Pending>) {
    if let Some(p) = p {
        state.stats.request_answered(p.received, p.txn, true);
    }
}

/// Answers a `sync` once this member has applied everything the leader had
/// committed when the sync reached it (a quorum-confirmed read index), so a
/// read after it is linearizable.
fn sync_through_leader(shared: Arc<Shared>, conn: ConnHandle, req: Request) {
    tokio::spawn(async move {
        let path = match ensemble_proto::SyncRequest::read(&mut Reader::new(req.body)) {
            Ok(r) => r.path,
            Err(e) => {
                warn!("closing connection: malformed sync request: {e}");
                conn.close();
                return;
            }
        };
        let consensus = shared.consensus().clone();
        let applied = match crate::quorum::sync_point(&shared).await {
            Ok(zxid) => {
                consensus
                    .wait_applied(zxid, shared.quorum_timeout * 4)
                    .await
            }
            Err(e) => {
                warn!("sync failed: {e}");
                false
            }
        };
        if !applied {
            conn.close();
            return;
        }
        let zxid = shared.tree.read().last_zxid();
        let mut w = ensemble_proto::Writer::new_frame();
        ensemble_proto::ReplyHeader {
            xid: req.xid,
            zxid,
            err: 0,
        }
        .write(&mut w);
        ensemble_proto::SyncResponse { path }.write(&mut w);
        conn.answer_write(w.finish_frame());
    });
}

fn read_only_reply(xid: i32, shared: &Shared, err: i32) -> Bytes {
    let zxid = shared.tree.read().last_zxid();
    let mut w = ensemble_proto::Writer::new_frame();
    ensemble_proto::ReplyHeader { xid, zxid, err }.write(&mut w);
    w.finish_frame()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Reads once what the peer sent, waiting until the socket is readable.
    async fn read_once(stream: &TcpStream, buf: &mut BytesMut, chunk: &mut usize) {
        stream.readable().await.unwrap();
        fill(stream, buf, chunk, 1 << 20).unwrap();
    }

    #[tokio::test]
    async fn reads_start_small_and_grow_with_bursts() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let mut buf = BytesMut::new();
        let mut chunk = MIN_READ;

        // A ping-sized request is read into a buffer of the smallest read.
        client
            .write_all(&[0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 11])
            .await
            .unwrap();
        read_once(&server, &mut buf, &mut chunk).await;
        assert_eq!(buf.len(), 12);
        assert!(
            buf.capacity() <= 2 * MIN_READ,
            "capacity {}",
            buf.capacity()
        );
        assert_eq!(chunk, MIN_READ);
        assert!(next_frame(&mut buf, 1 << 20).unwrap().is_some());

        // A burst fills the reads, and each full read doubles the next, up to the cap.
        let (rx, mut tx) = client.into_split();
        let burst = tokio::spawn(async move {
            tx.write_all(&vec![7u8; 4 * READ_CHUNK]).await.unwrap();
            tx
        });
        let (mut got, mut largest) = (0, 0);
        while got < 4 * READ_CHUNK {
            read_once(&server, &mut buf, &mut chunk).await;
            got += buf.len();
            largest = largest.max(chunk);
            buf.clear();
        }
        assert_eq!(largest, READ_CHUNK);
        burst.await.unwrap();
        drop(rx);
    }
}
