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
use std::collections::VecDeque;
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
    /// None for txns the server makes itself (session expiry).
    pub reply: Option<(ConnHandle, i32, ReplyKind)>,
}

/// A proposed txn waiting for its turn to be applied.
pub struct PendingWrite {
    pub seq: u64,
    pub session_id: i64,
    pub cxid: i32,
    pub reply: Option<(ConnHandle, i32, ReplyKind)>,
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

    fn drain(&mut self) -> Vec<PendingWrite> {
        self.q.drain(..).collect()
    }
}

/// The prep stage: one task, so txns are validated and proposed in order.
pub async fn prep_task(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<WriteReq>) {
    while let Some(req) = rx.recv().await {
        let time = shared.wall_clock_ms();
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
        w.write_raw(&prepared.body.encode());
        let payload = w.into_bytes();
        shared.pending.lock().push(PendingWrite {
            seq: prepared.seq,
            session_id: req.session_id,
            cxid: req.cxid,
            reply: req.reply,
        });
        let fut = shared.consensus().propose(payload);
        let shared2 = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = fut.await {
                error!("write could not be committed: {e}");
                // Without a commit there is no answer: drop the clients so
                // they see ConnectionLoss rather than wait forever.
                for p in shared2.pending.lock().drain() {
                    if let Some((c, _, _)) = p.reply {
                        c.close();
                    }
                }
            }
        });
    }
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
    fn apply(&self, zxid: i64, payload: &Bytes) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
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
        shared.snapshotter.applied(payload.len() as u64);

        let mut tree = shared.tree.write();
        let outcome = tree.apply(&hdr, &body);

        // Session bookkeeping happens with the tree, so a read never sees a
        // session's ephemerals without the session.
        let mut close_conn = None;
        match &body {
            TxnBody::CreateSession(t) => {
                let conn = pending
                    .as_ref()
                    .and_then(|p| p.reply.as_ref())
                    .map(|r| r.0.clone());
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

        {
            let mut watches = shared.watches.lock();
            for (event, path) in all_events(&outcome) {
                watches.trigger(event, path, zxid);
            }
        }

        if let Some(p) = &pending {
            if let Some((conn, xid, kind)) = &p.reply {
                match kind {
                    ReplyKind::Normal { opcode } => {
                        conn.send(write_reply(*opcode, *xid, zxid, &outcome));
                        conn.signal(Ctl::Applied);
                    }
                    ReplyKind::Connect { timeout, read_only } => {
                        let rsp = ConnectResponse {
                            protocol_version: 0,
                            time_out: *timeout,
                            session_id: hdr.client_id,
                            passwd: Some(Bytes::copy_from_slice(
                                &crate::session::session_password(hdr.client_id),
                            )),
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
        } else {
            warn!(
                "applied txn 0x{zxid:x} of session 0x{:x} that was not proposed here",
                hdr.client_id
            );
        }
        drop(tree);
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
