//! Peer transport: TCP between members on `server.N`'s peerPort, with a framed protocol of ours.
//!
//! # Wire format
//! Every frame is `u32 big-endian length | bincode(Frame)`, at most [`MAX_FRAME`] bytes. A
//! connection opens with `Hello { from }`; then the connecting side sends requests, each with an
//! id, and the accepting side answers each with the same id:
//! - Raft RPCs (append entries, vote, full snapshot): one connection per replication stream,
//!   one request at a time, answered in order.
//! - Application calls (`App`): the server's own messages to the leader (forwarded writes,
//!   session touches, sync). Many may be in flight on one connection; they are read and handed
//!   to the [`PeerHandler`](crate::PeerHandler) in order, and answered as each completes.
//!
//! A connection that fails is dropped; the next RPC dials again. A peer that cannot be dialled is
//! reported `Unreachable`, so openraft backs off before retrying.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::transport::{AsyncFile, OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
use bytes::Bytes;
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse};
use openraft::raft::{VoteRequest, VoteResponse};
use openraft::{BasicNode, RaftNetworkFactory, RaftNetworkV2};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use crate::state_machine::{SnapshotData, SnapshotFile, Staging};
use crate::types::{Raft, Snapshot, SnapshotMeta, TypeConfig, Vote};
use crate::zxid::TermClock;
use crate::{ConsensusError, PeerHandler};
use openraft::async_runtime::WatchReceiver;

/// Largest frame accepted: entries go in batches of at most [`APPEND_BUDGET`] bytes (or one
/// entry of up to jute.maxbuffer) and snapshots in parts of [`SNAPSHOT_PART`].
const MAX_FRAME: usize = 256 << 20;
/// Snapshot files travel in parts of this size.
const SNAPSHOT_PART: usize = 4 << 20;
/// How long the target may take to accept one part.
const PART_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this many bytes of entries go in one AppendEntries (at least one entry).
const APPEND_BUDGET: usize = 16 << 20;
/// A stream whose AppendEntries failed sends no less than this many bytes of entries.
const APPEND_BUDGET_MIN: usize = 256 << 10;

/// The bytes an entry takes on the wire, roughly.
fn entry_size(entry: &crate::types::Entry) -> usize {
    match &entry.payload {
        openraft::EntryPayload::Normal(txn) => txn.0.len() + 48,
        _ => 1024,
    }
}

/// How long dialling a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Serialize, Deserialize)]
enum Body {
    Hello {
        from: u64,
    },
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    AppendEntriesReply(Result<AppendEntriesResponse<TypeConfig>, String>),
    Vote(VoteRequest<TypeConfig>),
    VoteReply(Result<VoteResponse<TypeConfig>, String>),
    /// A piece of a snapshot file, in order; not answered. The pieces of one transfer end
    /// with `SnapshotDone`.
    SnapshotPart(Bytes),
    /// The end of a snapshot transfer: `len` bytes were sent in parts before it.
    SnapshotDone {
        vote: Vote,
        meta: SnapshotMeta,
        clock: TermClock,
        len: u64,
    },
    SnapshotReply(Result<SnapshotResponse<TypeConfig>, String>),
    App(Bytes),
    AppReply(Result<Bytes, String>),
    /// Is the answering member part of an initialized group?
    Probe,
    ProbeReply(bool),
}

#[derive(Serialize, Deserialize)]
struct Frame {
    id: u64,
    body: Body,
}

/// Appends `frame` to `buf` as `u32 length | bincode`.
fn encode_frame(buf: &mut Vec<u8>, frame: &Frame) -> io::Result<()> {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; 4]);
    if let Err(e) = bincode::serialize_into(&mut *buf, frame) {
        buf.truncate(start);
        return Err(io::Error::other(e));
    }
    let len = buf.len() - start - 4;
    if len > MAX_FRAME {
        buf.truncate(start);
        return Err(io::Error::other(format!(
            "peer frame of {len} bytes exceeds {MAX_FRAME}"
        )));
    }
    buf[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

async fn write_frame(w: &mut OwnedWriteHalf, frame: &Frame) -> io::Result<()> {
    let mut buf = Vec::with_capacity(256);
    encode_frame(&mut buf, frame)?;
    w.write_all(&buf).await
}

/// Frames queued for one connection go out together: at most this many bytes per write.
const WRITE_BATCH: usize = 256 * 1024;

/// The read side of a peer connection, buffered: a burst of frames costs one read, not two
/// per frame.
type PeerReader = BufReader<OwnedReadHalf>;

fn peer_reader(r: OwnedReadHalf) -> PeerReader {
    BufReader::with_capacity(64 * 1024, r)
}

async fn read_frame(r: &mut PeerReader) -> io::Result<Frame> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::other(format!(
            "peer frame of {len} bytes exceeds {MAX_FRAME}"
        )));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    bincode::deserialize(&buf).map_err(|e| io::Error::other(format!("bad peer frame: {e}")))
}

async fn dial(me: u64, addr: &str) -> io::Result<(PeerReader, OwnedWriteHalf)> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = stream.set_nodelay(true);
    let (r, mut w) = stream.into_split();
    write_frame(
        &mut w,
        &Frame {
            id: 0,
            body: Body::Hello { from: me },
        },
    )
    .await?;
    Ok((peer_reader(r), w))
}

/// Peer addresses by server id, shared by every client this factory makes.
#[derive(Clone)]
pub struct PeerNetwork {
    me: u64,
    addrs: Arc<Mutex<BTreeMap<u64, String>>>,
    contact: Arc<LeaderContact>,
}

impl PeerNetwork {
    pub fn new(me: u64, addrs: BTreeMap<u64, String>, contact: Arc<LeaderContact>) -> Self {
        PeerNetwork {
            me,
            addrs: Arc::new(Mutex::new(addrs)),
            contact,
        }
    }

    pub fn addr_of(&self, id: u64) -> Option<String> {
        self.addrs.lock().get(&id).cloned()
    }
}

/// A connection for the Raft RPCs of one replication stream.
pub struct PeerClient {
    me: u64,
    contact: Arc<LeaderContact>,
    target: u64,
    addr: Option<String>,
    conn: Option<(PeerReader, OwnedWriteHalf)>,
    next_id: u64,
    /// Bytes of entries the next AppendEntries may carry: halved when one fails (a large
    /// batch may not fit in openraft's time limit on a slow link or disk), doubled back up to
    /// [`APPEND_BUDGET`] when one succeeds.
    append_budget: usize,
}

enum CallError {
    /// Could not dial: back off.
    Unreachable(String),
    /// The exchange failed or timed out: retry.
    Network(String),
}

impl PeerClient {
    /// Dials the target unless connected.
    async fn connect(&mut self) -> Result<(), CallError> {
        let target = self.target;
        if self.conn.is_none() {
            let addr = self.addr.clone().ok_or_else(|| {
                CallError::Unreachable(format!("server.{target}: no peer address configured"))
            })?;
            let conn = dial(self.me, &addr)
                .await
                .map_err(|e| CallError::Unreachable(format!("server.{target} at {addr}: {e}")))?;
            self.conn = Some(conn);
        }
        Ok(())
    }

    async fn call(&mut self, body: Body, ttl: Duration) -> Result<Body, CallError> {
        let target = self.target;
        self.connect().await?;
        self.next_id += 1;
        let id = self.next_id;
        let result = match self.conn.as_mut() {
            Some((r, w)) => {
                tokio::time::timeout(ttl, async {
                    write_frame(w, &Frame { id, body }).await?;
                    loop {
                        let frame = read_frame(r).await?;
                        if frame.id == id {
                            return Ok::<_, io::Error>(frame.body);
                        }
                    }
                })
                .await
            }
            None => return Err(CallError::Network("not connected".into())),
        };
        match result {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(e)) => {
                self.conn = None;
                Err(CallError::Network(format!("server.{target}: {e}")))
            }
            Err(_) => {
                self.conn = None;
                Err(CallError::Network(format!(
                    "server.{target}: no answer within {ttl:?}"
                )))
            }
        }
    }
}

fn rpc_error(e: CallError) -> RPCError<TypeConfig> {
    match e {
        CallError::Unreachable(m) => Unreachable::from_string(m).into(),
        CallError::Network(m) => NetworkError::from_string(m).into(),
    }
}

fn unexpected(target: u64) -> RPCError<TypeConfig> {
    NetworkError::from_string(format!("server.{target}: unexpected answer")).into()
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        // The address in this member's own zoo.cfg, else the one a reconfiguration recorded.
        let addr = self
            .addr_of(target)
            .or_else(|| (!node.addr.is_empty()).then(|| node.addr.clone()));
        PeerClient {
            me: self.me,
            contact: self.contact.clone(),
            target,
            addr,
            conn: None,
            next_id: 0,
            append_budget: APPEND_BUDGET,
        }
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        // Large values can make a batch of entries huge: send the first APPEND_BUDGET bytes and
        // report how far that got; openraft sends the rest next.
        let mut partial = None;
        let mut bytes = 0usize;
        let budget = self.append_budget;
        if let Some(cut) = rpc.entries.iter().position(|e| {
            bytes += entry_size(e);
            bytes > budget
        }) {
            let keep = cut.max(1);
            if keep < rpc.entries.len() {
                rpc.entries.truncate(keep);
                let last = rpc.entries.last().map(|e| e.log_id);
                // What the leader committed, as far as this part reaches: still true.
                if rpc.leader_commit > last {
                    rpc.leader_commit = last;
                }
                partial = Some(last);
            }
        }
        let sent = self.call(Body::AppendEntries(rpc), option.hard_ttl()).await;
        self.append_budget = match &sent {
            Ok(_) => (budget * 2).min(APPEND_BUDGET),
            Err(_) => (budget / 2).max(APPEND_BUDGET_MIN),
        };
        match sent.map_err(rpc_error)? {
            Body::AppendEntriesReply(Ok(AppendEntriesResponse::Success)) if partial.is_some() => {
                Ok(AppendEntriesResponse::PartialSuccess(partial.flatten()))
            }
            Body::AppendEntriesReply(Ok(r)) => Ok(r),
            Body::AppendEntriesReply(Err(e)) => Err(NetworkError::from_string(e).into()),
            _ => Err(unexpected(self.target)),
        }
    }

    async fn vote(
        &mut self,
        mut rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        // This member saw the leader's connection close (its process died): the voters may
        // ignore their lease on that leader, as ZooKeeper's followers elect at once when the
        // leader's socket closes. At worst a live leader is replaced; safety does not rest on
        // the lease (sync uses a quorum-confirmed read index).
        if self.contact.lost() {
            rpc.leadership_transfer = true;
        }
        match self
            .call(Body::Vote(rpc), option.hard_ttl())
            .await
            .map_err(rpc_error)?
        {
            Body::VoteReply(Ok(r)) => Ok(r),
            Body::VoteReply(Err(e)) => Err(NetworkError::from_string(e).into()),
            _ => Err(unexpected(self.target)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot<SnapshotData>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let Some(file) = snapshot.snapshot.file.clone() else {
            // A resumed leader's first snapshot has no data until it is rebuilt.
            return Err(Unreachable::from_string(format!(
                "server.{}: no snapshot with data yet",
                self.target
            ))
            .into());
        };
        let reply = tokio::select! {
            closed = cancel => {
                // The connection may hold half a transfer: start the next one afresh.
                self.conn = None;
                return Err(closed.into());
            }
            reply = self.send_snapshot(vote, snapshot.meta, snapshot.snapshot.clock, &file) => reply,
        };
        match reply {
            Ok(Body::SnapshotReply(Ok(r))) => Ok(r),
            Ok(Body::SnapshotReply(Err(e))) => Err(NetworkError::from_string(e).into()),
            Ok(_) => Err(NetworkError::from_string("unexpected answer").into()),
            Err(CallError::Unreachable(m)) => Err(Unreachable::from_string(m).into()),
            Err(CallError::Network(m)) => Err(NetworkError::from_string(m).into()),
        }
    }
}

impl PeerClient {
    /// Streams the snapshot file in parts, then asks the target to install it.
    async fn send_snapshot(
        &mut self,
        vote: Vote,
        meta: SnapshotMeta,
        clock: TermClock,
        file: &SnapshotFile,
    ) -> Result<Body, CallError> {
        let target = self.target;
        let local =
            |e: io::Error| CallError::Network(format!("snapshot {}: {e}", file.path().display()));
        let mut f = AsyncFile::open(file.path()).await.map_err(local)?;
        self.connect().await?;
        let mut len = 0u64;
        let mut buf = vec![0u8; SNAPSHOT_PART];
        let sent = async {
            let Some((_, w)) = self.conn.as_mut() else {
                return Err(CallError::Network("not connected".into()));
            };
            loop {
                let mut filled = 0;
                while filled < buf.len() {
                    let n = f.read(&mut buf[filled..]).await.map_err(local)?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    return Ok(());
                }
                len += filled as u64;
                let frame = Frame {
                    id: 0,
                    body: Body::SnapshotPart(Bytes::copy_from_slice(&buf[..filled])),
                };
                match tokio::time::timeout(PART_TIMEOUT, write_frame(w, &frame)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(CallError::Network(format!("server.{target}: {e}"))),
                    Err(_) => {
                        return Err(CallError::Network(format!(
                            "server.{target}: snapshot part not taken within {PART_TIMEOUT:?}"
                        )))
                    }
                }
            }
        }
        .await;
        if let Err(e) = sent {
            self.conn = None;
            return Err(e);
        }
        // Installing means loading the whole tree on the target: allow a minute.
        let done = Body::SnapshotDone {
            vote,
            meta,
            clock,
            len,
        };
        self.call(done, Duration::from_secs(60)).await
    }
}

/// When this member last heard from a leader (an AppendEntries, heartbeats included), in
/// milliseconds since `epoch`.
pub struct LeaderContact {
    epoch: std::time::Instant,
    last_ms: std::sync::atomic::AtomicU64,
    /// A connection that carried AppendEntries closed, and none arrived since: the leader may
    /// be gone (a killed process's sockets close at once).
    lost: std::sync::atomic::AtomicBool,
}

impl LeaderContact {
    pub fn new() -> Self {
        LeaderContact {
            epoch: std::time::Instant::now(),
            last_ms: std::sync::atomic::AtomicU64::new(0),
            lost: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the leader's connection closed since the last AppendEntries.
    pub fn lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::Acquire)
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn heard(&self) {
        self.last_ms
            .store(self.now_ms(), std::sync::atomic::Ordering::Release);
        self.lost.store(false, std::sync::atomic::Ordering::Release);
    }

    /// Milliseconds since the last AppendEntries; None if none arrived yet.
    pub fn millis_since(&self) -> Option<u64> {
        match self.last_ms.load(std::sync::atomic::Ordering::Acquire) {
            0 => None,
            at => Some(self.now_ms().saturating_sub(at)),
        }
    }
}

/// Accepts peer connections and serves them until this task is aborted (at shutdown); the
/// connections' tasks go with it, so that a stopped member stops answering on them.
pub async fn serve(
    me: u64,
    listener: TcpListener,
    raft: Raft,
    handler: Arc<dyn PeerHandler>,
    contact: Arc<LeaderContact>,
    staging: Arc<Staging>,
) {
    // Dropped with this task: every connection task is aborted with it.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = conns.join_next() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("peer accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let raft = raft.clone();
        let handler = handler.clone();
        let contact = contact.clone();
        let staging = staging.clone();
        conns.spawn(async move {
            if let Err(e) = serve_conn(me, stream, raft, handler, contact, staging).await {
                tracing::debug!(%peer, "peer connection ended: {e}");
            }
        });
    }
}

/// A snapshot file being received on a connection.
struct Incoming {
    file: AsyncFile,
    len: u64,
    guard: SnapshotFile,
}

async fn serve_conn(
    me: u64,
    stream: TcpStream,
    raft: Raft,
    handler: Arc<dyn PeerHandler>,
    contact: Arc<LeaderContact>,
    staging: Arc<Staging>,
) -> io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = peer_reader(r);
    let from = match read_frame(&mut r).await?.body {
        Body::Hello { from } => from,
        _ => return Err(io::Error::other("peer did not say hello")),
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
    let mut writer = AbortOnDrop(tokio::spawn(async move {
        let mut buf = Vec::with_capacity(16 * 1024);
        while let Some(frame) = rx.recv().await {
            // Everything already answered goes out in one write.
            let mut next = Some(frame);
            while let Some(frame) = next.take() {
                if let Err(e) = encode_frame(&mut buf, &frame) {
                    // The asker would wait forever: close, as a failed write does.
                    tracing::warn!("peer frame not sent, closing the connection: {e}");
                    return;
                }
                if buf.len() < WRITE_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if let Err(e) = w.write_all(&buf).await {
                tracing::debug!("peer write failed: {e}");
                return;
            }
            buf.clear();
            buf.shrink_to(1024 * 1024);
        }
    }));
    let mut carried_entries = false;
    // The snapshot being received, if any.
    let mut incoming: Option<Incoming> = None;
    let result = async {
        loop {
            let frame = read_frame(&mut r).await?;
            let id = frame.id;
            let reply = match frame.body {
                Body::AppendEntries(rpc) => {
                    let reply = raft.append_entries(rpc).await;
                    if matches!(reply, Ok(AppendEntriesResponse::Success)) {
                        contact.heard();
                        carried_entries = true;
                    }
                    Body::AppendEntriesReply(reply.map_err(|e| e.to_string()))
                }
                Body::Vote(rpc) => Body::VoteReply(raft.vote(rpc).await.map_err(|e| e.to_string())),
                Body::SnapshotPart(data) => {
                    let part = match incoming.as_mut() {
                        Some(part) => part,
                        None => {
                            let path = staging.fresh("in");
                            let file = AsyncFile::create(&path).await?;
                            incoming.insert(Incoming {
                                file,
                                len: 0,
                                // Removed unless installed (then installing took a copy).
                                guard: SnapshotFile::new(path.clone(), path),
                            })
                        }
                    };
                    part.file.write_all(&data).await?;
                    part.len += data.len() as u64;
                    continue;
                }
                Body::SnapshotDone {
                    vote,
                    meta,
                    clock,
                    len,
                } => {
                    let reply = match incoming.take() {
                        Some(mut part) if part.len == len => {
                            part.file.flush().await?;
                            part.file.sync_all().await?;
                            drop(part.file);
                            let snapshot = Snapshot {
                                meta,
                                snapshot: SnapshotData {
                                    clock,
                                    file: Some(Arc::new(part.guard)),
                                },
                            };
                            raft.install_full_snapshot(vote, snapshot)
                                .await
                                .map_err(|e| e.to_string())
                        }
                        Some(part) => Err(format!(
                            "snapshot of {len} bytes announced, {} received",
                            part.len
                        )),
                        None => Err("snapshot announced without its data".to_string()),
                    };
                    Body::SnapshotReply(reply)
                }
                Body::Probe => Body::ProbeReply(raft.is_initialized().await.unwrap_or(false)),
                Body::App(body) => {
                    // Handed over in arrival order; answered when done.
                    let pending = handler.handle(from, body);
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let result = pending.await;
                        let _ = tx.send(Frame {
                            id,
                            body: Body::AppReply(result),
                        });
                    });
                    continue;
                }
                _ => return Err(io::Error::other("unexpected peer frame")),
            };
            if tx.send(Frame { id, body: reply }).is_err() {
                return Ok(());
            }
        }
    }
    .await;
    if carried_entries {
        contact
            .lost
            .store(true, std::sync::atomic::Ordering::Release);
        // Elect at once rather than after a timeout; members wait a little by id so that
        // one of them usually asks first and no vote is split.
        let raft = raft.clone();
        let contact = contact.clone();
        let term = raft.metrics().borrow_watched().current_term;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20 + 40 * (me % 8))).await;
            let m = raft.metrics().borrow_watched().clone();
            // A later term means another member already started an election: starting one
            // more would only depose the leader it may have just become.
            if contact.lost() && !m.state.is_leader() && m.current_term == term {
                tracing::info!("the leader's connection closed: starting an election");
                let _ = raft.trigger().elect(false).await;
            }
        });
    }
    drop(tx);
    let _ = (&mut writer.0).await;
    result
}

/// A task aborted when its handle is dropped, as when the task that owns it is aborted.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Asks the member at `addr` whether it belongs to an initialized group; None when it cannot
/// be reached within `ttl`.
pub async fn probe(me: u64, addr: &str, ttl: Duration) -> Option<bool> {
    let ask = async {
        let (mut r, mut w) = dial(me, addr).await.ok()?;
        write_frame(
            &mut w,
            &Frame {
                id: 1,
                body: Body::Probe,
            },
        )
        .await
        .ok()?;
        match read_frame(&mut r).await.ok()?.body {
            Body::ProbeReply(initialized) => Some(initialized),
            _ => None,
        }
    };
    tokio::time::timeout(ttl, ask).await.ok().flatten()
}

type Waiter = oneshot::Sender<Result<Bytes, ConsensusError>>;

/// The connection for application calls to the leader: calls go out in call order on one
/// connection, many in flight; a new leader gets a new connection.
pub struct LeaderLink {
    queue: mpsc::UnboundedSender<(Bytes, Waiter)>,
}

impl LeaderLink {
    /// Starts the link task. `leader` tells the current leader's id and peer address.
    pub fn start(
        me: u64,
        leader: impl Fn() -> Option<(u64, String)> + Send + 'static,
        wait_for_leader: Duration,
    ) -> LeaderLink {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(link_task(me, rx, leader, wait_for_leader));
        LeaderLink { queue }
    }

    /// Queues a call; the order of calls is the order of this method's calls.
    pub fn call(&self, body: Bytes) -> oneshot::Receiver<Result<Bytes, ConsensusError>> {
        let (tx, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError((_, tx))) = self.queue.send((body, tx)) {
            let _ = tx.send(Err(ConsensusError::Shutdown));
        }
        rx
    }
}

struct Link {
    leader: u64,
    w: OwnedWriteHalf,
    waiters: Arc<Mutex<HashMap<u64, Waiter>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Link {
    fn start(leader: u64, mut r: PeerReader, w: OwnedWriteHalf) -> Link {
        let waiters: Arc<Mutex<HashMap<u64, Waiter>>> = Arc::default();
        let ws = waiters.clone();
        let reader = tokio::spawn(async move {
            while let Ok(frame) = read_frame(&mut r).await {
                if let Body::AppReply(result) = frame.body {
                    if let Some(w) = ws.lock().remove(&frame.id) {
                        let _ = w.send(result.map_err(ConsensusError::Remote));
                    }
                }
            }
            for (_, w) in ws.lock().drain() {
                let _ = w.send(Err(ConsensusError::NotLeader));
            }
        });
        Link {
            leader,
            w,
            waiters,
            reader,
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.reader.abort();
        for (_, w) in self.waiters.lock().drain() {
            let _ = w.send(Err(ConsensusError::NotLeader));
        }
    }
}

async fn link_task(
    me: u64,
    mut rx: mpsc::UnboundedReceiver<(Bytes, Waiter)>,
    leader: impl Fn() -> Option<(u64, String)> + Send + 'static,
    wait_for_leader: Duration,
) {
    let mut link: Option<Link> = None;
    let mut next_id = 0u64;
    let mut check = tokio::time::interval(Duration::from_millis(50));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (body, waiter) = tokio::select! {
            next = rx.recv() => match next {
                Some(call) => call,
                None => return,
            },
            _ = check.tick() => {
                // Calls in flight to a member that is no longer the leader may never be
                // answered (a silent partition keeps the connection open): fail them now,
                // so their clients see ConnectionLoss and retry elsewhere.
                let stale = link.as_ref().is_some_and(|l| {
                    l.reader.is_finished() || leader().map(|t| t.0) != Some(l.leader)
                });
                if stale {
                    link = None;
                }
                continue;
            }
        };
        // Find the leader and connect, waiting a little for an election to finish. Nothing has
        // been sent yet, so trying a newly elected leader is safe.
        let deadline = tokio::time::Instant::now() + wait_for_leader;
        loop {
            if link
                .as_ref()
                .is_some_and(|l| Some(l.leader) == leader().map(|t| t.0) && !l.reader.is_finished())
            {
                break;
            }
            link = None;
            if let Some((leader_id, addr)) = leader() {
                match dial(me, &addr).await {
                    Ok((r, w)) => {
                        link = Some(Link::start(leader_id, r, w));
                        break;
                    }
                    Err(e) => {
                        tracing::debug!("cannot reach leader server.{leader_id} at {addr}: {e}")
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let Some(l) = link.as_mut() else {
            let _ = waiter.send(Err(ConsensusError::NotLeader));
            continue;
        };
        // This call and every call queued behind it go out in one write.
        let mut buf = Vec::with_capacity(16 * 1024);
        let mut call = Some((body, waiter));
        while let Some((body, waiter)) = call.take() {
            next_id += 1;
            let frame = Frame {
                id: next_id,
                body: Body::App(body),
            };
            match encode_frame(&mut buf, &frame) {
                Ok(()) => {
                    l.waiters.lock().insert(next_id, waiter);
                }
                Err(e) => {
                    let _ = waiter.send(Err(ConsensusError::Remote(e.to_string())));
                }
            }
            if buf.len() < WRITE_BATCH {
                call = rx.try_recv().ok();
            }
        }
        if let Err(e) = l.w.write_all(&buf).await {
            tracing::debug!("leader link to server.{} failed: {e}", l.leader);
            link = None;
        }
    }
}
