//! The write path: prep turns each request into a txn once, the consensus log
//! orders and commits it, and apply runs it against the tree, fires watches
//! and answers the client. Standalone is a group of one and takes this path.

use crate::conn::{ConnHandle, Ctl};
use crate::Shared;
use bytes::Bytes;
use ensemble_proto::{
    op, ConnectResponse, Create2Response, CreateResponse, ErrorCode, Id, Jute, Reader, ReplyHeader,
    SetAclResponse, SetDataResponse, TxnHeader, Writer,
};
use ensemble_tree::{ApplyOutcome, TxnBody};
use futures_util::StreamExt;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// How the reply to a write is shaped.
#[derive(Clone, Copy)]
pub enum ReplyKind {
    Normal {
        opcode: i32,
    },
    /// A new session: answer with a ConnectResponse.
    Connect {
        timeout: i32,
        read_only: Option<bool>,
    },
    /// closeSession: answer, then close the connection.
    Close,
}

pub struct WriteReq {
    pub session_id: i64,
    pub cxid: i32,
    pub opcode: i32,
    pub body: Bytes,
    pub auth: Arc<Vec<Id>>,
    /// Where the answer goes: the connection, the xid and the reply shape.
    /// None for txns the server makes itself (session expiry) and for writes
    /// another member forwarded (that member answers its client).
    pub reply: Option<Reply>,
    /// Told the outcome once the txn is committed and applied here, or failed
    /// (writes forwarded by another member wait on it).
    pub done: Option<tokio::sync::oneshot::Sender<Result<i64, String>>>,
    /// Quorum mode: the member holding the client's connection (None for
    /// this member's own clients and txns the server makes itself).
    pub from: Option<u64>,
    /// A txn decided before prep (a reconfiguration's outcome): logged as is.
    pub txn: Option<TxnBody>,
}

/// Not a client opcode: a connection of the session closed on this member,
/// which gives up its ownership of the session at the leader
/// (`quorum::release_session`). It travels the prep queue so that it comes
/// after the connection's last write.
pub const RELEASE_SESSION: i32 = i32::MIN;

impl WriteReq {
    /// A request the server makes itself (a session's expiry, a release):
    /// no body, no auth, nobody to answer.
    pub fn internal(session_id: i64, opcode: i32) -> WriteReq {
        WriteReq {
            session_id,
            cxid: 0,
            opcode,
            body: Bytes::new(),
            auth: Arc::new(Vec::new()),
            reply: None,
            done: None,
            from: None,
            txn: None,
        }
    }
}

/// Where the answer to a write goes: the connection, the xid and the reply shape.
pub type Reply = (ConnHandle, i32, ReplyKind);

/// A txn this member prepped, waiting for its turn to be applied: when it is,
/// prep forgets the changes it recorded for it.
pub struct PendingWrite {
    pub seq: u64,
    pub session_id: i64,
    pub cxid: i32,
}

#[derive(Default)]
pub struct PendingQueue {
    q: VecDeque<PendingWrite>,
}

impl PendingQueue {
    pub fn push(&mut self, p: PendingWrite) {
        self.q.push_back(p);
    }

    /// The pending write this committed txn answers, if it was proposed here.
    fn take(&mut self, session_id: i64, cxid: i32) -> Option<PendingWrite> {
        match self.q.front() {
            Some(p) if p.session_id == session_id && p.cxid == cxid => self.q.pop_front(),
            _ => None,
        }
    }

    pub fn clear(&mut self) {
        self.q.clear();
    }
}

/// Answers owed to clients of this member, by (session, cxid): a write is
/// answered when its txn is applied here, whichever member prepped it. The
/// cxid is the one this member gave the txn (`Shared::write_cxid`), never
/// reused by another pending write, so an answer cannot reach a request of
/// another connection of the session.
#[derive(Default)]
pub struct Replies {
    map: std::collections::HashMap<(i64, i32), Reply>,
}

impl Replies {
    pub fn insert(&mut self, session_id: i64, cxid: i32, reply: Reply) {
        self.map.insert((session_id, cxid), reply);
    }

    pub fn take(&mut self, session_id: i64, cxid: i32) -> Option<Reply> {
        self.map.remove(&(session_id, cxid))
    }

    /// Drops every owed answer, closing the connections so their clients see
    /// ConnectionLoss (whether the writes commit later is unknown).
    pub fn fail_all(&mut self) {
        for (_, (conn, _, _)) in self.map.drain() {
            conn.close();
        }
    }
}

/// The prep stage: one task, so txns are validated and proposed in order.
/// On a member that does not lead, writes are forwarded to the leader in the
/// same order instead; the answer comes when the txn is applied here.
pub async fn prep_task(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<WriteReq>) {
    // The term whose leadership the prep state (pending changes) belongs to.
    let mut prepped_term = None;
    // Proposals waiting for their outcome, polled here rather than by a task each.
    let mut proposed = futures_util::stream::FuturesUnordered::new();
    // Sessions whose closeSession this leader has prepped (and not yet seen
    // applied): they write nothing more.
    let mut closed = HashSet::new();
    loop {
        let mut req = tokio::select! {
            Some((result, done)) = proposed.next(), if !proposed.is_empty() => {
                if proposal_settled(&shared, result, done) {
                    // The changes prep recorded for the failed txn (and for
                    // any later one that fails with it) will never be
                    // applied. Once every proposal in flight has its
                    // outcome, the tree holds all that committed: prep
                    // starts again from it.
                    while let Some((result, done)) = proposed.next().await {
                        proposal_settled(&shared, result, done);
                    }
                    shared.prep.lock().reset();
                    shared.pending.lock().clear();
                    closed.clear();
                    // An expiry whose closeSession failed is decided again.
                    shared.sessions.lock().clear_closing();
                }
                continue;
            }
            next = rx.recv() => match next {
                Some(req) => req,
                None => break,
            },
        };
        if req.opcode == RELEASE_SESSION {
            crate::quorum::release_session(&shared, req.session_id);
            continue;
        }
        if let Some(reply) = req.reply.clone() {
            shared
                .replies
                .lock()
                .insert(req.session_id, req.cxid, reply);
        }
        let consensus = shared.consensus().clone();
        if shared.quorum {
            if !wait_leader_ready(&consensus).await {
                forward(&shared, &consensus, req);
                continue;
            }
            let term = consensus.current_term();
            if prepped_term != Some(term) {
                // Changes recorded under an older leadership may never commit.
                shared.prep.lock().reset();
                shared.pending.lock().clear();
                closed.clear();
                prepped_term = Some(term);
            }
        }
        let time = shared.wall_clock_ms();
        let client_write = req.reply.is_some() || req.from.is_some();
        let expired = client_write
            && req.txn.is_none()
            && !session_open(&shared, &consensus, &closed, req.session_id, req.opcode).await;
        let moved =
            !expired && shared.quorum && !shared.owners.lock().check(&req, consensus.server_id());
        if expired {
            // ZooKeeper's checkSession: a write of a session that is closed
            // or closing (one held in the network, or sent by a member that
            // was cut off) must not make ephemerals no session owns.
            req.txn = Some(TxnBody::error(ErrorCode::SessionExpired.code()));
        } else if moved {
            // The session reconnected to another member: as ZooKeeper, the
            // write fails with SessionMoved through the log.
            req.txn = Some(TxnBody::error(ErrorCode::SessionMoved.code()));
        } else if client_write
            && req.txn.is_none()
            && !matches!(req.opcode, op::CLOSE_SESSION | op::CREATE_SESSION)
            && shared.disk.refusing()
        {
            // This member's disk has no room for it (crate::disk); the refusal
            // is a few bytes in the log, in order with the session's writes.
            req.txn = Some(TxnBody::error(ErrorCode::NotReadOnly.code()));
        } else if req.opcode == op::RECONFIG && req.txn.is_none() && shared.quorum {
            // Membership changes take a while; the outcome comes back here
            // as a decided txn.
            tokio::spawn(crate::reconfig::run(shared.clone(), req));
            continue;
        }
        if req.opcode == op::CLOSE_SESSION && req.txn.is_none() {
            if closed.len() >= 4096 {
                let sessions = shared.sessions.lock();
                closed.retain(|id| sessions.get(*id).is_some());
            }
            closed.insert(req.session_id);
        }
        let payload = if let Some(txn) = req.txn.take() {
            let hdr = TxnHeader {
                client_id: req.session_id,
                cxid: req.cxid,
                zxid: 0,
                time,
                r#type: txn.txn_type(),
            };
            let mut w = Writer::with_capacity(64);
            hdr.write(&mut w);
            txn.encode_into(&mut w);
            w.into_bytes()
        } else {
            let prepared = {
                let tree = shared.tree.read();
                shared.prep.lock().prep(
                    &tree,
                    req.session_id,
                    req.opcode,
                    &req.body,
                    &req.auth,
                    time,
                )
            };
            let hdr = TxnHeader {
                client_id: req.session_id,
                cxid: req.cxid,
                zxid: 0,
                time,
                r#type: prepared.txn_type,
            };
            let mut w = Writer::with_capacity(64 + req.body.len());
            hdr.write(&mut w);
            prepared.body.encode_into(&mut w);
            shared.pending.lock().push(PendingWrite {
                seq: prepared.seq,
                session_id: req.session_id,
                cxid: req.cxid,
            });
            w.into_bytes()
        };
        let fut = consensus.propose(payload);
        let done = req.done;
        proposed.push(async move { (fut.await, done) });
    }
}

/// Whether a client write of `session_id` may be prepped. A closeSession
/// always may (it can repeat one under way, as ZooKeeper allows); anything
/// else needs a session that is known here and not closing. A session this
/// member does not know may have been created by a txn not applied here yet:
/// every member answers its clients from applied txns and the leader commits
/// first, so once the leader has applied all it knows committed, an unknown
/// session is a closed one.
async fn session_open(
    shared: &Shared,
    consensus: &ensemble_consensus::Consensus,
    closed: &HashSet<i64>,
    session_id: i64,
    opcode: i32,
) -> bool {
    if matches!(opcode, op::CLOSE_SESSION | op::CREATE_SESSION) {
        return true;
    }
    if closed.contains(&session_id) {
        return false;
    }
    let open = || shared.sessions.lock().get(session_id).map(|s| !s.closing);
    if let Some(open) = open() {
        return open;
    }
    if shared.quorum {
        consensus
            .wait_applied_committed(std::time::Duration::from_secs(2))
            .await;
    }
    open().unwrap_or(false)
}

type Done = Option<tokio::sync::oneshot::Sender<Result<i64, String>>>;

/// A proposal committed (the answer comes when it is applied) or failed;
/// true when it failed.
fn proposal_settled(
    shared: &Shared,
    result: Result<i64, ensemble_consensus::ConsensusError>,
    done: Done,
) -> bool {
    let failed = result.is_err();
    if let Err(e) = &result {
        error!("write could not be committed: {e}");
        // Without a commit there is no answer: drop the clients so
        // they see ConnectionLoss rather than wait forever.
        shared.replies.lock().fail_all();
    }
    if let Some(done) = done {
        let _ = done.send(result.map_err(|e| e.to_string()));
    }
    failed
}

/// In quorum mode: whether this member leads and may prep. A member that has
/// just been elected waits (briefly) until earlier terms' txns are applied.
async fn wait_leader_ready(consensus: &ensemble_consensus::Consensus) -> bool {
    for _ in 0..400 {
        if consensus.leader_ready() {
            return true;
        }
        if consensus.role() != ensemble_consensus::Role::Leader {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    false
}

/// Sends a write to the leader. If it fails, the client's connection closes
/// (ConnectionLoss), as a ZooKeeper follower does when it loses its leader.
fn forward(shared: &Arc<Shared>, consensus: &ensemble_consensus::Consensus, req: WriteReq) {
    let body = crate::quorum::encode_write(&req);
    let call = consensus.call_leader(body);
    let shared = shared.clone();
    let (session_id, cxid) = (req.session_id, req.cxid);
    let done = req.done;
    tokio::spawn(async move {
        let result = call.await;
        if let Err(e) = &result {
            warn!("write of session 0x{session_id:x} not forwarded to the leader: {e}");
            if let Some((conn, _, _)) = shared.replies.lock().take(session_id, cxid) {
                conn.close();
            }
        }
        if let Some(done) = done {
            let _ = done.send(
                result
                    .map_err(|e| e.to_string())
                    .and_then(|b| crate::quorum::decode_zxid(&b)),
            );
        }
    });
}

fn reply_frame(xid: i32, zxid: i64, err: i32, body: Option<&dyn Fn(&mut Writer)>) -> Bytes {
    let mut w = Writer::new_frame();
    ReplyHeader { xid, zxid, err }.write(&mut w);
    if let Some(f) = body {
        f(&mut w);
    }
    w.finish_frame()
}

/// The frame answering a write of `opcode` with this outcome.
fn write_reply(opcode: i32, xid: i32, zxid: i64, out: &ApplyOutcome) -> Bytes {
    // A multi answers OK in its header; failures live in the per-op results.
    if opcode == op::MULTI && out.op_type == op::MULTI {
        return reply_frame(
            xid,
            zxid,
            0,
            Some(&|w: &mut Writer| crate::multi::write_results(w, out)),
        );
    }
    if out.err != 0 || out.op_type == op::ERROR {
        let err = if out.err != 0 {
            out.err
        } else {
            ErrorCode::SystemError.code()
        };
        return reply_frame(xid, zxid, err, None);
    }
    let stat = out.stat.clone().unwrap_or_default();
    match opcode {
        op::CREATE => reply_frame(
            xid,
            zxid,
            0,
            Some(&|w: &mut Writer| {
                CreateResponse {
                    path: out.path.clone(),
                }
                .write(w)
            }),
        ),
        op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => reply_frame(
            xid,
            zxid,
            0,
            Some(&|w: &mut Writer| {
                Create2Response {
                    path: out.path.clone(),
                    stat: stat.clone(),
                }
                .write(w)
            }),
        ),
        op::SET_DATA | op::CHECK => reply_frame(
            xid,
            zxid,
            0,
            Some(&|w: &mut Writer| SetDataResponse { stat: stat.clone() }.write(w)),
        ),
        op::SET_ACL => reply_frame(
            xid,
            zxid,
            0,
            Some(&|w: &mut Writer| SetAclResponse { stat: stat.clone() }.write(w)),
        ),
        _ => reply_frame(xid, zxid, 0, None),
    }
}

/// Applies committed txns; called by the consensus adapter in log order.
pub struct TreeApplier {
    pub shared: std::sync::Weak<Shared>,
}

impl ensemble_consensus::Applier for TreeApplier {
    /// Begins a capture of the tree and the session list (see
    /// [`crate::persist::begin_capture`]); the job copies the tree out and
    /// writes it as a ZooKeeper snapshot (uncompressed) under `dir`, the file a
    /// lagging member receives.
    fn capture(
        &self,
        zxid: i64,
        dir: std::path::PathBuf,
    ) -> Box<dyn FnOnce() -> std::io::Result<Option<ensemble_consensus::SnapshotFile>> + Send> {
        let Some(shared) = self.shared.upgrade() else {
            return Box::new(|| Err(std::io::Error::other("server is stopping")));
        };
        let (capture, sessions) = crate::persist::begin_capture(&shared);
        Box::new(move || {
            let tree =
                crate::persist::copy_capture(&shared, capture).map_err(std::io::Error::other)?;
            drop(shared);
            let opts = ensemble_storage::SnapshotOptions {
                fsync: false,
                ..Default::default()
            };
            match ensemble_storage::write_snapshot_with(&dir, &tree, &sessions, zxid, &opts) {
                Ok(path) => Ok(Some(ensemble_consensus::SnapshotFile::new(path, dir))),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    Err(std::io::Error::other(e.to_string()))
                }
            }
        })
    }

    /// Links the leader's snapshot into dataDir as `snapshot.<zxid>` (so a
    /// restart starts from it), loads it, and replaces tree and sessions.
    /// Clients of this member reconnect and re-register their watches.
    fn install(&self, zxid: i64, file: &std::path::Path) -> std::io::Result<()> {
        let Some(shared) = self.shared.upgrade() else {
            return Err(std::io::Error::other("server is stopping"));
        };
        let dir = ensemble_storage::version_dir(&shared.config.data_dir);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(ensemble_storage::snapshot_file_name(zxid, ""));
        let tmp = dir.join(format!("snapshot.transfer.{zxid:x}"));
        let _ = std::fs::remove_file(&tmp);
        // The received file is already synced; a second name costs no copy.
        if std::fs::hard_link(file, &tmp).is_err() {
            std::fs::copy(file, &tmp)?;
            std::fs::File::open(&tmp)?.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&dir)?.sync_all()?;
        let loaded = ensemble_storage::read_snapshot(&path)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
        info!(
            "installed the leader's snapshot at zxid 0x{zxid:x}: {} znodes, {} sessions",
            loaded.tree.node_count(),
            loaded.sessions.len()
        );
        let mut tree = shared.tree.write();
        *tree = loaded.tree;
        let now = shared.now_ms();
        let mut sessions = shared.sessions.lock();
        for conn in sessions.connections() {
            conn.close();
        }
        for id in sessions.ids() {
            sessions.remove(id);
        }
        for (id, timeout) in loaded.sessions {
            sessions.add(id, timeout, now, None);
        }
        drop(sessions);
        shared.replies.lock().fail_all();
        drop(tree);
        Ok(())
    }

    fn apply(&self, zxid: i64, payload: &Bytes) {
        self.apply_all(&[(zxid, payload.clone())]);
    }

    /// One hold of the tree's write lock for the lot: prep and the readers
    /// wait for it once rather than once per txn. The watch notifications
    /// queued meanwhile are written once it is let go.
    fn apply_all(&self, txns: &[(i64, Bytes)]) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut notified = Vec::new();
        let mut tree = shared.tree.write();
        for (zxid, payload) in txns {
            apply_txn(&shared, &mut tree, *zxid, payload, &mut notified);
        }
        drop(tree);
        crate::fanout::deliver_all(notified);
    }
}

/// Applies one committed txn to the tree (its write lock held), answers the
/// client that sent it if it is connected here and queues the notifications
/// of the watches it fired.
fn apply_txn(
    shared: &Shared,
    tree: &mut ensemble_tree::DataTree,
    zxid: i64,
    payload: &Bytes,
    notified: &mut Vec<ConnHandle>,
) {
    let mut r = Reader::new(payload.clone());
    let mut hdr = match TxnHeader::read(&mut r) {
        Ok(h) => h,
        Err(e) => {
            error!("committed entry 0x{zxid:x} has an unreadable txn header: {e}");
            return;
        }
    };
    hdr.zxid = zxid;
    let body = match TxnBody::decode(hdr.r#type, &r.rest()) {
        Ok(b) => b,
        Err(e) => {
            error!("committed entry 0x{zxid:x} has an unreadable txn: {e}");
            return;
        }
    };
    let pending = shared.pending.lock().take(hdr.client_id, hdr.cxid);
    let reply = shared.replies.lock().take(hdr.client_id, hdr.cxid);
    shared
        .snapshotter
        .applied(payload.len() as u64, tree.node_count() as u64);

    let outcome = tree.apply(&hdr, &body);
    shared.stats.digests.record(zxid, tree.digest());

    // Session bookkeeping happens with the tree, so a read never sees a
    // session's ephemerals without the session.
    let mut close_conn = None;
    match &body {
        TxnBody::CreateSession(t) => {
            let conn = reply.as_ref().map(|r| r.0.clone());
            let now = shared.now_ms();
            shared
                .sessions
                .lock()
                .add(hdr.client_id, t.time_out, now, conn);
            info!(
                "established session 0x{:x} with timeout {} ms",
                hdr.client_id, t.time_out
            );
        }
        TxnBody::CloseSession(_) => {
            if let Some(s) = shared.sessions.lock().remove(hdr.client_id) {
                close_conn = s.conn;
            }
            info!("closed session 0x{:x}", hdr.client_id);
        }
        _ => {}
    }

    // Queued now, so a read that sees this txn's change finds the
    // notification ahead of its answer; written once the tree is let go.
    {
        let mut watches = shared.watches.lock();
        for (event, path) in all_events(&outcome) {
            watches.trigger(event, path, zxid, notified);
        }
    }

    if let TxnBody::Reconfig(t) = &body {
        if outcome.err == 0 {
            let text = t.data.clone().unwrap_or_default();
            if let Some(version) = crate::reconfig::applied(shared, &String::from_utf8_lossy(&text))
            {
                // As in ZooKeeper, the config's version is the node's mzxid.
                tree.set_config(text, version, hdr.time);
            }
        }
    }
    {
        if let Some((conn, xid, kind)) = &reply {
            match kind {
                ReplyKind::Normal { opcode } if *opcode == op::RECONFIG && outcome.err == 0 => {
                    let (data, stat) = match &body {
                        TxnBody::Reconfig(t) => {
                            (t.data.clone(), tree.stat(ensemble_tree::path::CONFIG))
                        }
                        _ => (None, None),
                    };
                    let frame = if stat.is_some() {
                        reply_frame(
                            *xid,
                            zxid,
                            0,
                            Some(&|w: &mut Writer| {
                                ensemble_proto::GetDataResponse {
                                    data: data.clone(),
                                    stat: stat.clone().unwrap_or_default(),
                                }
                                .write(w)
                            }),
                        )
                    } else {
                        write_reply(*opcode, *xid, zxid, &outcome)
                    };
                    conn.answer_write(frame);
                }
                ReplyKind::Normal { .. } if outcome.err == ErrorCode::SessionMoved.code() => {
                    // As ZooKeeper: the connection the session left is
                    // closed rather than answered; a client still using
                    // it reconnects and takes its session back.
                    conn.close();
                }
                ReplyKind::Normal { opcode } => {
                    conn.answer_write(write_reply(*opcode, *xid, zxid, &outcome));
                }
                ReplyKind::Connect { timeout, read_only } => {
                    let rsp = ConnectResponse {
                        protocol_version: 0,
                        time_out: *timeout,
                        session_id: hdr.client_id,
                        passwd: Some(Bytes::copy_from_slice(&crate::session::session_password(
                            hdr.client_id,
                        ))),
                        read_only: *read_only,
                    };
                    conn.send(crate::encode_frame(&rsp));
                    conn.signal(Ctl::Established);
                }
                ReplyKind::Close => {
                    conn.send(reply_frame(*xid, zxid, 0, None));
                    conn.close();
                }
            }
        }
    }
    if let Some(c) = close_conn {
        c.close();
    }
    if let Some(p) = pending {
        shared.prep.lock().applied(p.seq);
    }
}

fn all_events(out: &ApplyOutcome) -> Vec<(i32, &str)> {
    let mut v: Vec<(i32, &str)> = out.events.iter().map(|(e, p)| (*e, p.as_str())).collect();
    if v.is_empty() {
        for m in &out.multi {
            v.extend(m.events.iter().map(|(e, p)| (*e, p.as_str())));
        }
    }
    v
}
