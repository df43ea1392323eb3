//! Quorum mode, the server's side: what members say to the leader (forwarded
//! writes, session touches, sync), and the tasks that follow the member's role
//! (stop serving without a quorum, take over session expiry when leading).
//!
//! Calls travel through `Consensus::call_leader` on the peer port. Each body
//! is jute: an `int` kind, then the kind's fields.

use crate::pipeline::WriteReq;
use crate::Shared;
use bytes::Bytes;
use ensemble_consensus::{ConsensusError, PeerHandler, Role};
use ensemble_proto::{Id, Reader, Writer};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tracing::{info, warn};

const KIND_WRITE: i32 = 1;
const KIND_TOUCH: i32 = 2;
const KIND_SYNC: i32 = 3;
const KIND_OWN: i32 = 4;
const KIND_RELEASE: i32 = 5;

/// On the leader: which member holds each session's connection, so that a
/// write from a member the session has left fails with SessionMoved.
#[derive(Default)]
pub struct Owners {
    by_session: std::collections::HashMap<i64, u64>,
}

impl Owners {
    /// Records or checks the owner of the request's session; false when the
    /// session has moved to another member.
    pub fn check(&mut self, req: &WriteReq, me: u64) -> bool {
        use ensemble_proto::op;
        let member = match (req.from, &req.reply) {
            (Some(from), _) => from,
            (None, Some(_)) => me,
            // The server's own txns (expiry, containers) belong to no member.
            (None, None) => return true,
        };
        if req.opcode == op::CREATE_SESSION {
            self.by_session.insert(req.session_id, member);
            return true;
        }
        let owner = *self.by_session.entry(req.session_id).or_insert(member);
        if req.opcode == op::CLOSE_SESSION && owner == member {
            self.by_session.remove(&req.session_id);
        }
        owner == member
    }

    pub fn set(&mut self, session_id: i64, member: u64) {
        self.by_session.insert(session_id, member);
    }

    /// `member` no longer holds a connection of the session: the next member
    /// that writes for it owns it. Nothing changes if another member has
    /// claimed it since.
    pub fn release(&mut self, session_id: i64, member: u64) {
        if self.by_session.get(&session_id) == Some(&member) {
            self.by_session.remove(&session_id);
        }
    }
}

/// Tells the leader that this member no longer holds a connection of
/// `session_id`. Called by the prep stage, in order with the session's
/// writes, so that it cannot overtake a write of the closed connection.
///
/// Without it, a member that handles a connection request late (it was
/// paused, or slow, while the client gave up and attached elsewhere) keeps
/// the session's ownership after the client has closed that connection,
/// and every write of the session fails with SessionMoved.
pub fn release_session(shared: &Arc<Shared>, session_id: i64) {
    tell_leader(shared, KIND_RELEASE, session_id, Owners::release);
}

/// Tells the leader that `session_id` is now connected to this member.
pub fn claim_session(shared: &Arc<Shared>, session_id: i64) {
    tell_leader(shared, KIND_OWN, session_id, Owners::set);
}

/// A claim or release of `session_id` for this member: applied to the
/// owners at once when this member leads, sent to the leader otherwise.
fn tell_leader(
    shared: &Arc<Shared>,
    kind: i32,
    session_id: i64,
    on_leader: fn(&mut Owners, i64, u64),
) {
    if !shared.quorum {
        return;
    }
    let consensus = shared.consensus().clone();
    if consensus.role() == Role::Leader {
        on_leader(&mut shared.owners.lock(), session_id, consensus.server_id());
        return;
    }
    let mut w = Writer::new();
    w.write_i32(kind);
    w.write_i64(session_id);
    let call = consensus.call_leader(w.into_bytes());
    tokio::spawn(async move {
        if let Err(e) = call.await {
            tracing::debug!("session 0x{session_id:x} not claimed or released at the leader: {e}");
        }
    });
}

/// A write forwarded to the leader: session, cxid, opcode, auth ids, body.
pub fn encode_write(req: &WriteReq) -> Bytes {
    let mut w = Writer::with_capacity(64 + req.body.len());
    w.write_i32(KIND_WRITE);
    w.write_i64(req.session_id);
    w.write_i32(req.cxid);
    w.write_i32(req.opcode);
    w.write_i32(req.auth.len() as i32);
    for id in req.auth.iter() {
        w.write_string(&id.scheme);
        w.write_string(&id.id);
    }
    w.write_buffer(Some(&req.body));
    w.into_bytes()
}

fn encode_zxid(zxid: i64) -> Bytes {
    let mut w = Writer::new();
    w.write_i64(zxid);
    w.into_bytes()
}

pub fn decode_zxid(b: &Bytes) -> Result<i64, String> {
    Reader::new(b.clone())
        .read_i64()
        .map_err(|e| format!("bad answer from the leader: {e}"))
}

/// Session ids touched by this member's clients since the last report.
#[derive(Default)]
pub struct Touches {
    ids: parking_lot::Mutex<HashSet<i64>>,
}

impl Touches {
    pub fn record(&self, session_id: i64) {
        self.ids.lock().insert(session_id);
    }

    fn take(&self) -> Vec<i64> {
        self.ids.lock().drain().collect()
    }
}

/// Answers calls from other members; only the leader gets them.
pub struct ServerPeer {
    pub shared: Weak<Shared>,
}

impl PeerHandler for ServerPeer {
    fn handle(
        &self,
        from: u64,
        body: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<Bytes, String>> + Send>> {
        let Some(shared) = self.shared.upgrade() else {
            return Box::pin(async { Err("server is stopping".to_string()) });
        };
        let mut r = Reader::new(body);
        let kind = match r.read_i32() {
            Ok(k) => k,
            Err(e) => return Box::pin(async move { Err(format!("bad call: {e}")) }),
        };
        match kind {
            KIND_WRITE => match decode_write(&mut r) {
                Ok(mut req) => {
                    // Submitted now, so writes from one member keep their order.
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    req.done = Some(tx);
                    req.from = Some(from);
                    shared.submit_write(req);
                    Box::pin(async move {
                        match rx.await {
                            Ok(Ok(zxid)) => Ok(encode_zxid(zxid)),
                            Ok(Err(e)) => Err(e),
                            Err(_) => Err("the write was dropped".to_string()),
                        }
                    })
                }
                Err(e) => {
                    Box::pin(async move { Err(format!("bad write from server.{from}: {e}")) })
                }
            },
            KIND_TOUCH => {
                let result = decode_touch(&mut r).map(|ids| {
                    let now = shared.now_ms();
                    let mut sessions = shared.sessions.lock();
                    for id in ids {
                        sessions.touch(id, now);
                    }
                    Bytes::new()
                });
                Box::pin(async move { result })
            }
            KIND_OWN => {
                let result = r
                    .read_i64()
                    .map(|id| {
                        shared.owners.lock().set(id, from);
                        Bytes::new()
                    })
                    .map_err(|e| e.to_string());
                Box::pin(async move { result })
            }
            KIND_RELEASE => {
                let result = r
                    .read_i64()
                    .map(|id| {
                        shared.owners.lock().release(id, from);
                        Bytes::new()
                    })
                    .map_err(|e| e.to_string());
                Box::pin(async move { result })
            }
            KIND_SYNC => Box::pin(async move {
                leader_read_index(&shared)
                    .await
                    .map(encode_zxid)
                    .map_err(|e| e.to_string())
            }),
            other => Box::pin(async move { Err(format!("unknown call kind {other}")) }),
        }
    }
}

fn decode_write(r: &mut Reader) -> Result<WriteReq, ensemble_proto::JuteError> {
    let session_id = r.read_i64()?;
    let cxid = r.read_i32()?;
    let opcode = r.read_i32()?;
    let n = r.read_i32()?.max(0) as usize;
    let mut auth = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let scheme = r.read_string()?;
        let id = r.read_string()?;
        auth.push(Id { scheme, id });
    }
    let body = r.read_buffer()?.unwrap_or_default();
    Ok(WriteReq {
        session_id,
        cxid,
        opcode,
        body,
        auth: Arc::new(auth),
        reply: None,
        done: None,
        from: None,
        txn: None,
    })
}

fn decode_touch(r: &mut Reader) -> Result<Vec<i64>, String> {
    let n = r.read_i32().map_err(|e| e.to_string())?.max(0) as usize;
    (0..n)
        .map(|_| r.read_i64().map_err(|e| e.to_string()))
        .collect()
}

/// The zxid at which a `sync` of this member's session may be answered: the
/// leader's read index (a quorum confirmed it still leads).
pub async fn sync_point(shared: &Shared) -> Result<i64, ConsensusError> {
    let consensus = shared.consensus();
    if consensus.role() == Role::Leader {
        return leader_read_index(shared).await;
    }
    let mut w = Writer::new();
    w.write_i32(KIND_SYNC);
    let answer = consensus.call_leader(w.into_bytes()).await?;
    decode_zxid(&answer).map_err(ConsensusError::Remote)
}

/// The leader's read index, counted in `mntr`'s `pending_syncs` while it is
/// awaited.
async fn leader_read_index(shared: &Shared) -> Result<i64, ConsensusError> {
    struct Pending<'a>(&'a std::sync::atomic::AtomicI64);
    impl Drop for Pending<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Relaxed);
        }
    }
    shared.stats.pending_syncs.fetch_add(1, Relaxed);
    let _pending = Pending(&shared.stats.pending_syncs);
    shared.consensus().read_index().await
}

/// Whether this member may serve clients: it knows a leader, and when it is
/// the leader, a quorum acknowledged it within an election timeout.
pub fn serving(shared: &Shared) -> bool {
    if !shared.quorum {
        return true;
    }
    let consensus = shared.consensus();
    match consensus.role() {
        Role::Looking => false,
        Role::Leader => consensus
            .millis_since_quorum_ack()
            .is_some_and(|ms| ms <= shared.quorum_timeout.as_millis() as u64),
        // Clients already here are kept through a short election (their
        // writes wait for the new leader); a member cut off for longer lets
        // them go.
        Role::Follower | Role::Observer => {
            consensus.synced_with_leader()
                && consensus
                    .millis_since_leader_contact()
                    .is_some_and(|ms| ms < 2 * shared.quorum_timeout.as_millis() as u64)
        }
    }
}

/// Follows the member's role: reports session touches to the leader, gives
/// every session a fresh timeout when this member starts leading (as a new
/// ZooKeeper leader does), and closes every client connection when the member
/// stops serving, so clients move to a member of the majority.
pub async fn role_task(shared: Arc<Shared>) {
    let period = Duration::from_millis((shared.config.tick_time as u64 / 2).clamp(10, 1000));
    let mut interval = tokio::time::interval(period);
    let mut was_serving = false;
    let mut was_leader = false;
    // A member starts looking for a leader, and unavailable.
    let mut looking_since = Some(Instant::now());
    let mut unavailable_since = Instant::now();
    shared.stats.looking_count.fetch_add(1, Relaxed);
    let mut roles = shared.consensus().role_changes();
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = roles.changed() => {
                // Between polls only the leadership's clock follows the role, so
                // mntr's leader_uptime starts with the leadership; serving, and
                // closing clients while no quorum is seen, stay on the poll (a
                // member that passes through Looking for a few ms keeps them).
                let leader = shared.consensus().role() == Role::Leader;
                shared.stats.set_leading(leader);
                continue;
            }
        }
        let consensus = shared.consensus().clone();
        let role = consensus.role();
        let leader = role == Role::Leader;
        if leader && !was_leader {
            let now = shared.now_ms();
            shared.sessions.lock().refresh_all(now);
            info!("leading in epoch {}", consensus.current_term());
        }
        if leader != was_leader {
            shared.stats.set_leading(leader);
        }
        was_leader = leader;
        match (role == Role::Looking, looking_since) {
            (true, None) => {
                looking_since = Some(Instant::now());
                shared.stats.looking_count.fetch_add(1, Relaxed);
            }
            (false, Some(since)) => {
                looking_since = None;
                let ms = since.elapsed().as_millis() as u64;
                shared.stats.election_time.add(ms);
            }
            _ => {}
        }

        let serving = serving(&shared);
        if was_serving != serving {
            if serving {
                let ms = unavailable_since.elapsed().as_millis() as u64;
                shared.stats.unavailable_time.add(ms);
                if leader {
                    shared.stats.leader_unavailable_time.add(ms);
                }
            } else {
                unavailable_since = Instant::now();
            }
        }
        if was_serving && !serving {
            warn!("not serving clients: no quorum ({role:?}); closing client connections");
            for conn in shared.sessions.lock().connections() {
                conn.close();
            }
            shared.replies.lock().fail_all();
        } else if serving && !was_serving {
            // Read-only clients go and find a member that takes writes.
            let read_only: Vec<_> = shared
                .read_only_conns
                .lock()
                .drain()
                .map(|(_, c)| c)
                .collect();
            for conn in read_only {
                conn.close();
            }
            info!(
                "serving clients as {}",
                crate::quorum::mode_name(&shared).unwrap_or("?")
            );
        }
        was_serving = serving;

        if !leader {
            let ids = shared.touches.take();
            if !ids.is_empty() && serving {
                let mut w = Writer::with_capacity(8 + ids.len() * 8);
                w.write_i32(KIND_TOUCH);
                w.write_i32(ids.len() as i32);
                for id in &ids {
                    w.write_i64(*id);
                }
                let call = consensus.call_leader(w.into_bytes());
                tokio::spawn(async move {
                    if let Err(e) = call.await {
                        tracing::debug!("session touches not delivered: {e}");
                    }
                });
            }
        } else {
            shared.touches.take();
        }
    }
}

/// Whether this member takes new clients: it serves, and a follower has heard
/// from its leader within the shortest election timeout and has not seen the
/// leader's connection close since (a killed leader's sockets close at once).
pub fn accepting(shared: &Shared) -> bool {
    if !serving(shared) {
        return false;
    }
    if !shared.quorum {
        return true;
    }
    let consensus = shared.consensus();
    consensus.role() == Role::Leader
        || (!consensus.leader_contact_lost()
            && consensus
                .millis_since_leader_contact()
                .is_some_and(|ms| ms < shared.leader_timeout.as_millis() as u64))
}

/// ZooKeeper's `Mode:` value, or None when the member is not serving.
pub fn mode_name(shared: &Shared) -> Option<&'static str> {
    if !shared.quorum {
        return Some("standalone");
    }
    if !serving(shared) {
        return shared.config.read_only_mode_enabled.then_some("read-only");
    }
    Some(match shared.consensus().role() {
        Role::Leader => "leader",
        Role::Follower => "follower",
        Role::Observer => "observer",
        Role::Looking => return None,
    })
}
