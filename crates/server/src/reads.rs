//! Requests answered from the local tree without a txn: reads, sync, ping,
//! auth and SetWatches. Each runs under the tree's read lock and queues its
//! reply before releasing it, so a watch event fired by a later write can
//! never overtake the reply that shows the older state.

use crate::conn::{ConnState, Request};
use crate::Shared;
use bytes::Bytes;
use ensemble_proto::multi::{MultiOp, MultiResponse, MultiResult};
use ensemble_proto::{
    add_watch_mode, event_type, op, perms, Acl, AddWatchRequest, AuthPacket, CheckWatchesRequest,
    ClientInfo, ErrorCode, ErrorResponse, ExistsRequest, ExistsResponse, GetAclRequest,
    GetAclResponse, GetAllChildrenNumberRequest, GetAllChildrenNumberResponse, GetChildren2Request,
    GetChildren2Response, GetChildrenRequest, GetChildrenResponse, GetDataRequest, GetDataResponse,
    GetEphemeralsRequest, GetEphemeralsResponse, Id, Jute, JuteError, RemoveWatchesRequest,
    ReplyHeader, SetWatches, SetWatches2, SyncRequest, SyncResponse, WhoAmIResponse, Writer,
};
use ensemble_tree::{check_acl, digest_auth_ids, DataTree};
use std::sync::Arc;
use tracing::{info, warn};

fn frame<T: Jute>(xid: i32, zxid: i64, err: i32, body: Option<&T>) -> Bytes {
    let mut w = Writer::new_frame();
    ReplyHeader { xid, zxid, err }.write(&mut w);
    if let Some(b) = body {
        b.write(&mut w);
    }
    w.finish_frame()
}

fn error_frame(xid: i32, zxid: i64, err: ErrorCode) -> Bytes {
    frame::<ReplyHeader>(xid, zxid, err.code(), None)
}

type Answer = Result<Option<Bytes>, ErrorCode>;

fn decode<T: Jute>(body: &Bytes) -> Result<T, ErrorCode> {
    T::read(&mut ensemble_proto::Reader::new(body.clone()))
        .map_err(|_: JuteError| ErrorCode::MarshallingError)
}

/// Handles one non-write request; false when the connection must close.
pub fn handle(shared: &Arc<Shared>, state: &mut ConnState, req: Request) -> bool {
    if req.opcode == op::AUTH {
        return auth(shared, state, req);
    }
    if !known_opcode(req.opcode) {
        // ZooKeeper's UnimplementedRequestProcessor: answer, then hang up.
        warn!(peer = %state.peer, "unknown opcode {}; answering Unimplemented and closing", req.opcode);
        state
            .handle
            .send(error_frame(req.xid, -1, ErrorCode::Unimplemented));
        return false;
    }
    if req.opcode == op::SASL {
        // No SASL mechanism is configured: ZooKeeper answers with a null token.
        state.handle.send(frame(
            req.xid,
            0,
            0,
            Some(&ensemble_proto::SetSaslResponse { token: None }),
        ));
        return true;
    }
    let tree = shared.tree.read();
    let zxid = tree.last_zxid();
    let xid = req.xid;
    let result = answer(shared, state, &tree, &req, zxid);
    let bytes = match result {
        Ok(Some(b)) => b,
        Ok(None) => frame::<ReplyHeader>(xid, zxid, 0, None),
        Err(e) => error_frame(xid, zxid, e),
    };
    state.handle.send(bytes);
    drop(tree);
    true
}

fn answer(
    shared: &Arc<Shared>,
    state: &ConnState,
    tree: &DataTree,
    req: &Request,
    zxid: i64,
) -> Answer {
    let xid = req.xid;
    let auth: &[Id] = &state.auth;
    match req.opcode {
        op::EXISTS => {
            let r: ExistsRequest = decode(&req.body)?;
            if r.path.contains('\0') {
                return Err(ErrorCode::BadArguments);
            }
            if tree.permits(lookup(&r.path), perms::READ, auth) == Some(false) {
                return Err(ErrorCode::NoAuth);
            }
            if r.watch {
                shared.watches.lock().add_data_watch(&r.path, &state.handle);
            }
            let stat = tree.stat(lookup(&r.path)).ok_or(ErrorCode::NoNode)?;
            Ok(Some(frame(xid, zxid, 0, Some(&ExistsResponse { stat }))))
        }
        op::GET_DATA => {
            let r: GetDataRequest = decode(&req.body)?;
            let (data, stat) = read_data(shared, state, tree, &r.path, r.watch)?;
            Ok(Some(frame(
                xid,
                zxid,
                0,
                Some(&GetDataResponse { data, stat }),
            )))
        }
        op::GET_CHILDREN | op::GET_CHILDREN2 => {
            let (path, watch) = if req.opcode == op::GET_CHILDREN {
                let r: GetChildrenRequest = decode(&req.body)?;
                (r.path, r.watch)
            } else {
                let r: GetChildren2Request = decode(&req.body)?;
                (r.path, r.watch)
            };
            let (children, stat) = read_children(shared, state, tree, &path, watch)?;
            if req.opcode == op::GET_CHILDREN {
                Ok(Some(frame(
                    xid,
                    zxid,
                    0,
                    Some(&GetChildrenResponse { children }),
                )))
            } else {
                Ok(Some(frame(
                    xid,
                    zxid,
                    0,
                    Some(&GetChildren2Response { children, stat }),
                )))
            }
        }
        op::GET_ACL => {
            let r: GetAclRequest = decode(&req.body)?;
            let (acl, stat) = tree.acl(lookup(&r.path)).ok_or(ErrorCode::NoNode)?;
            require(&acl, perms::READ | perms::ADMIN, auth)?;
            // Without ADMIN, digest hashes are hidden, as ZooKeeper does.
            let acl = if check_acl(&acl, perms::ADMIN, auth) {
                acl
            } else {
                acl.into_iter()
                    .map(|a| {
                        if a.id.scheme == "digest" {
                            let user = a.id.id.split(':').next().unwrap_or("").to_string();
                            Acl {
                                perms: a.perms,
                                id: Id {
                                    scheme: a.id.scheme,
                                    id: format!("{user}:x"),
                                },
                            }
                        } else {
                            a
                        }
                    })
                    .collect()
            };
            Ok(Some(frame(
                xid,
                zxid,
                0,
                Some(&GetAclResponse { acl, stat }),
            )))
        }
        op::SYNC => {
            let r: SyncRequest = decode(&req.body)?;
            Ok(Some(frame(
                xid,
                zxid,
                0,
                Some(&SyncResponse { path: r.path }),
            )))
        }
        op::GET_ALL_CHILDREN_NUMBER => {
            let r: GetAllChildrenNumberRequest = decode(&req.body)?;
            let path = lookup(&r.path);
            require_read(tree, path, auth)?;
            // ZooKeeper counts the keys under `path + "/"`; for "" that
            // includes "/" itself.
            let mut total = tree.all_children_number(path) as i32;
            if r.path.is_empty() {
                total += 1;
            }
            Ok(Some(frame(
                xid,
                zxid,
                0,
                Some(&GetAllChildrenNumberResponse {
                    total_number: total,
                }),
            )))
        }
        op::GET_EPHEMERALS => {
            let r: GetEphemeralsRequest = decode(&req.body)?;
            let prefix = r.prefix_path.trim();
            let ephemerals = tree
                .ephemerals(state.session_id)
                .into_iter()
                .filter(|p| prefix.is_empty() || prefix == "/" || p.starts_with(&r.prefix_path))
                .collect();
            Ok(Some(frame(
                xid,
                zxid,
                0,
                Some(&GetEphemeralsResponse { ephemerals }),
            )))
        }
        op::WHO_AM_I => {
            let client_info = auth
                .iter()
                .map(|id| ClientInfo {
                    auth_scheme: id.scheme.clone(),
                    user: if id.scheme == "digest" {
                        id.id.split(':').next().unwrap_or("").to_string()
                    } else {
                        id.id.clone()
                    },
                })
                .collect();
            Ok(Some(frame(
                xid,
                zxid,
                0,
                Some(&WhoAmIResponse { client_info }),
            )))
        }
        op::SET_WATCHES => {
            let r: SetWatches = decode(&req.body)?;
            set_watches(
                shared,
                state,
                tree,
                r.relative_zxid,
                &r.data_watches,
                &r.exist_watches,
                &r.child_watches,
            );
            Ok(None)
        }
        op::SET_WATCHES2 => {
            let r: SetWatches2 = decode(&req.body)?;
            set_watches(
                shared,
                state,
                tree,
                r.relative_zxid,
                &r.data_watches,
                &r.exist_watches,
                &r.child_watches,
            );
            let mut watches = shared.watches.lock();
            for p in &r.persistent_watches {
                watches.add_persistent(p, &state.handle, false);
            }
            for p in &r.persistent_recursive_watches {
                watches.add_persistent(p, &state.handle, true);
            }
            Ok(None)
        }
        op::ADD_WATCH => {
            let r: AddWatchRequest = decode(&req.body)?;
            let recursive = match r.mode {
                add_watch_mode::PERSISTENT => false,
                add_watch_mode::PERSISTENT_RECURSIVE => true,
                _ => return Err(ErrorCode::BadArguments),
            };
            shared
                .watches
                .lock()
                .add_persistent(&r.path, &state.handle, recursive);
            Ok(Some(frame(xid, zxid, 0, Some(&ErrorResponse { err: 0 }))))
        }
        op::REMOVE_WATCHES | op::CHECK_WATCHES => {
            let (path, wtype) = if req.opcode == op::REMOVE_WATCHES {
                let r: RemoveWatchesRequest = decode(&req.body)?;
                (r.path, r.r#type)
            } else {
                let r: CheckWatchesRequest = decode(&req.body)?;
                (r.path, r.r#type)
            };
            let mut watches = shared.watches.lock();
            let found = if req.opcode == op::REMOVE_WATCHES {
                watches.remove(&path, state.handle.id, wtype)
            } else {
                watches.contains(&path, state.handle.id, wtype)
            };
            if found {
                Ok(None)
            } else {
                Err(ErrorCode::NoWatcher)
            }
        }
        op::MULTI_READ => {
            let mut r = ensemble_proto::Reader::new(req.body.clone());
            let ops = ensemble_proto::multi::read_multi_request(&mut r)
                .map_err(|_| ErrorCode::MarshallingError)?;
            let mut results = Vec::with_capacity(ops.len());
            for o in ops {
                let got = match o {
                    MultiOp::GetData(g) => read_data(shared, state, tree, &g.path, g.watch)
                        .map(|(data, stat)| MultiResult::GetData { data, stat }),
                    MultiOp::GetChildren(g) => read_children(shared, state, tree, &g.path, g.watch)
                        .map(|(children, _)| MultiResult::GetChildren { children }),
                    _ => return Err(ErrorCode::MarshallingError),
                };
                results.push(got.unwrap_or_else(|e| MultiResult::Error { err: e.code() }));
            }
            Ok(Some(frame(xid, zxid, 0, Some(&MultiResponse { results }))))
        }
        op::PING => Ok(None),
        op::RECONFIG => Err(ErrorCode::ReconfigDisabled),
        other => {
            warn!(peer = %state.peer, "opcode {other} is not supported yet; answering Unimplemented");
            Err(ErrorCode::Unimplemented)
        }
    }
}

/// Opcodes ZooKeeper accepts from clients, plus auth and sasl.
fn known_opcode(opcode: i32) -> bool {
    matches!(
        opcode,
        op::CREATE
            | op::DELETE
            | op::EXISTS
            | op::GET_DATA
            | op::SET_DATA
            | op::GET_ACL
            | op::SET_ACL
            | op::GET_CHILDREN
            | op::SYNC
            | op::PING
            | op::GET_CHILDREN2
            | op::CHECK
            | op::MULTI
            | op::CREATE2
            | op::RECONFIG
            | op::CHECK_WATCHES
            | op::REMOVE_WATCHES
            | op::CREATE_CONTAINER
            | op::DELETE_CONTAINER
            | op::CREATE_TTL
            | op::MULTI_READ
            | op::AUTH
            | op::SET_WATCHES
            | op::SASL
            | op::GET_EPHEMERALS
            | op::GET_ALL_CHILDREN_NUMBER
            | op::SET_WATCHES2
            | op::ADD_WATCH
            | op::WHO_AM_I
            | op::CLOSE_SESSION
    )
}

/// The node a read names: ZooKeeper's tree also holds the root under the
/// empty path, so reads of "" answer with the root.
fn lookup(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

fn read_data(
    shared: &Arc<Shared>,
    state: &ConnState,
    tree: &DataTree,
    path: &str,
    watch: bool,
) -> Result<(Option<Bytes>, ensemble_proto::Stat), ErrorCode> {
    require_read(tree, path, &state.auth)?;
    let got = tree.get_data(lookup(path)).ok_or(ErrorCode::NoNode)?;
    if watch {
        shared.watches.lock().add_data_watch(path, &state.handle);
    }
    Ok(got)
}

fn read_children(
    shared: &Arc<Shared>,
    state: &ConnState,
    tree: &DataTree,
    path: &str,
    watch: bool,
) -> Result<(Vec<String>, ensemble_proto::Stat), ErrorCode> {
    require_read(tree, path, &state.auth)?;
    let got = tree.children(lookup(path)).ok_or(ErrorCode::NoNode)?;
    if watch {
        shared.watches.lock().add_child_watch(path, &state.handle);
    }
    Ok(got)
}

/// READ on the node `path` names: NoNode when it is missing, NoAuth without
/// the permission. Checked against the ACL cache in place, with no copy.
fn require_read(tree: &DataTree, path: &str, auth: &[Id]) -> Result<(), ErrorCode> {
    match tree.permits(lookup(path), perms::READ, auth) {
        None => Err(ErrorCode::NoNode),
        Some(false) => Err(ErrorCode::NoAuth),
        Some(true) => Ok(()),
    }
}

fn require(acl: &[Acl], perm: i32, auth: &[Id]) -> Result<(), ErrorCode> {
    if check_acl(acl, perm, auth) {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

/// Re-registers a reconnecting client's watches, firing at once the events
/// it missed since `rel_zxid`, as ZooKeeper's DataTree.setWatches does.
#[allow(clippy::too_many_arguments)]
fn set_watches(
    shared: &Arc<Shared>,
    state: &ConnState,
    tree: &DataTree,
    rel_zxid: i64,
    data: &[String],
    exist: &[String],
    child: &[String],
) {
    let mut watches = shared.watches.lock();
    let conn = &state.handle;
    let note = |e: i32, p: &str| conn.send(crate::watches::notification(e, p, -1));
    for p in data {
        match tree.stat(p) {
            None => note(event_type::NODE_DELETED, p),
            Some(s) if s.mzxid > rel_zxid => note(event_type::NODE_DATA_CHANGED, p),
            Some(_) => watches.add_data_watch(p, conn),
        }
    }
    for p in exist {
        match tree.stat(p) {
            Some(_) => note(event_type::NODE_CREATED, p),
            None => watches.add_data_watch(p, conn),
        }
    }
    for p in child {
        match tree.stat(p) {
            None => note(event_type::NODE_DELETED, p),
            Some(s) if s.pzxid > rel_zxid => note(event_type::NODE_CHILDREN_CHANGED, p),
            Some(_) => watches.add_child_watch(p, conn),
        }
    }
}

/// An auth packet: `digest user:password` or `ip`. A failure answers
/// AuthFailed and closes the connection, as ZooKeeper does.
fn auth(shared: &Arc<Shared>, state: &mut ConnState, req: Request) -> bool {
    let xid = req.xid;
    let packet: Result<AuthPacket, _> = decode(&req.body);
    let ids: Option<Vec<Id>> = match &packet {
        Ok(p) if p.scheme == "digest" => digest_auth_ids(
            p.auth.as_deref().unwrap_or(&[]),
            shared.config.super_digest.as_deref(),
        ),
        Ok(p) if p.scheme == "ip" => Some(vec![Id {
            scheme: "ip".into(),
            id: state.peer.ip().to_string(),
        }]),
        _ => None,
    };
    match ids {
        Some(ids) => {
            let mut all = (*state.auth).clone();
            for id in ids {
                if !all.contains(&id) {
                    all.push(id);
                }
            }
            state.auth = Arc::new(all);
            state.handle.send(frame::<ReplyHeader>(xid, 0, 0, None));
            true
        }
        None => {
            let scheme = packet.map(|p| p.scheme).unwrap_or_default();
            info!(peer = %state.peer, "authentication failed for scheme '{scheme}'");
            state
                .handle
                .send(error_frame(xid, 0, ErrorCode::AuthFailed));
            false
        }
    }
}
