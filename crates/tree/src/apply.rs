//! Applying committed txns to the tree, as `DataTree.processTxn`: a pure
//! function of (tree, header, txn). Time and zxid come from the header, so
//! every member reaches the same tree. The outcome carries what the reply
//! needs (`ProcessTxnResult`) and the watch triggers in ZooKeeper's order.

use crate::digest;
use crate::path::{self, child_name, parent_of};
use crate::tree::{
    new_stat, node_size, ttl_to_ephemeral_owner, DataTree, EphemeralType, Node, PathKey,
};
use crate::txn::TxnBody;
use bytes::Bytes;
use ensemble_proto::{event_type, op, Acl, ErrorCode, Stat, TxnHeader};
use std::sync::Arc;

/// The result of applying one txn (ZooKeeper's `ProcessTxnResult`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// 0 or a `KeeperException` code. For a multi, the first non-zero sub-result.
    pub err: i32,
    /// The created path (with its sequence suffix) or the op's path; empty for
    /// error, session and multi txns.
    pub path: String,
    /// The Stat after create2/createContainer/createTTL/setData/setACL.
    pub stat: Option<Stat>,
    /// Per-op results of a multi. When any op failed, the ops before it read
    /// as error 0, the failing op as its code and the ops after it as
    /// RuntimeInconsistency, all with `op_type` = `op::ERROR`.
    pub multi: Vec<ApplyOutcome>,
    /// The txn type this result is for.
    pub op_type: i32,
    /// Watch triggers in firing order: (event type, path).
    pub events: Vec<(i32, String)>,
}

type Events = Vec<(i32, String)>;

impl DataTree {
    /// Applies one committed txn. `hdr.zxid`, `hdr.time` and `hdr.client_id`
    /// (the session, for ephemerals and closeSession) are authoritative; the
    /// txn type is the body's ([`TxnBody::txn_type`]), which the server puts
    /// in `hdr.type` too.
    pub fn apply(&mut self, hdr: &TxnHeader, txn: &TxnBody) -> ApplyOutcome {
        let mut events = Vec::new();
        let mut out = self.apply_one(hdr, txn, &mut events);
        // Multi sub-results keep no events of their own: the caller fires the
        // whole list once, in order.
        out.events = events;
        // Only after the whole txn (a multi included), as ZooKeeper, so a
        // snapshot never claims half a multi.
        if hdr.zxid > self.last_zxid {
            self.last_zxid = hdr.zxid;
        }
        out
    }

    fn apply_one(&mut self, hdr: &TxnHeader, txn: &TxnBody, ev: &mut Events) -> ApplyOutcome {
        let mut rc = ApplyOutcome {
            op_type: txn.txn_type(),
            ..ApplyOutcome::default()
        };
        let (zxid, time) = (hdr.zxid, hdr.time);
        let result: Result<(), ErrorCode> = match txn {
            TxnBody::Create(t) | TxnBody::Create2(t) => {
                rc.path = t.path.clone();
                let owner = if t.ephemeral { hdr.client_id } else { 0 };
                let r = self.create_node(
                    &t.path,
                    t.data.clone(),
                    &t.acl,
                    owner,
                    t.parent_c_version,
                    zxid,
                    time,
                    ev,
                );
                match r {
                    Ok(stat) => {
                        if matches!(txn, TxnBody::Create2(_)) {
                            rc.stat = Some(stat);
                        }
                        Ok(())
                    }
                    // Replaying a create whose node survived in a fuzzy
                    // snapshot: ZooKeeper still moves the parent's cversion
                    // and pzxid forward (plain create only).
                    Err(ErrorCode::NodeExists) if matches!(txn, TxnBody::Create(_)) => {
                        let parent = parent_of(&t.path).unwrap_or(path::ROOT).to_owned();
                        self.set_cversion_pzxid(&parent, t.parent_c_version, zxid)
                            .and(Err(ErrorCode::NodeExists))
                    }
                    Err(e) => Err(e),
                }
            }
            TxnBody::CreateContainer(t) => {
                rc.path = t.path.clone();
                self.create_node(
                    &t.path,
                    t.data.clone(),
                    &t.acl,
                    crate::tree::CONTAINER_EPHEMERAL_OWNER,
                    t.parent_c_version,
                    zxid,
                    time,
                    ev,
                )
                .map(|s| rc.stat = Some(s))
            }
            TxnBody::CreateTtl(t) => {
                rc.path = t.path.clone();
                // Prep never logs an out-of-range ttl; a foreign log that does
                // gets a persistent node rather than a crash.
                let owner = ttl_to_ephemeral_owner(t.ttl).unwrap_or(0);
                self.create_node(
                    &t.path,
                    t.data.clone(),
                    &t.acl,
                    owner,
                    t.parent_c_version,
                    zxid,
                    time,
                    ev,
                )
                .map(|s| rc.stat = Some(s))
            }
            TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => {
                rc.path = t.path.clone();
                self.delete_node(&t.path, zxid, ev)
            }
            TxnBody::SetData(t) | TxnBody::Reconfig(t) => {
                rc.path = t.path.clone();
                self.set_data(&t.path, t.data.clone(), t.version, zxid, time, ev)
                    .map(|s| rc.stat = Some(s))
            }
            TxnBody::SetAcl(t) => {
                rc.path = t.path.clone();
                self.set_acl(&t.path, &t.acl, t.version)
                    .map(|s| rc.stat = Some(s))
            }
            TxnBody::CloseSession(t) => {
                self.kill_session(hdr.client_id, zxid, &t.paths2_delete, ev);
                Ok(())
            }
            TxnBody::Error(t) => {
                rc.err = t.err;
                Ok(())
            }
            TxnBody::Check(t) => {
                rc.path = t.path.clone();
                Ok(())
            }
            // Sessions live in the server's session tracker, not the tree.
            TxnBody::CreateSession(_) => Ok(()),
            TxnBody::Multi(subs) => {
                rc.multi = self.apply_multi(hdr, subs, ev);
                rc.err = rc
                    .multi
                    .iter()
                    .map(|r| r.err)
                    .find(|e| *e != 0)
                    .unwrap_or(0);
                Ok(())
            }
        };
        if let Err(e) = result {
            rc.err = e.code();
        }
        rc
    }

    fn apply_multi(
        &mut self,
        hdr: &TxnHeader,
        subs: &[TxnBody],
        ev: &mut Events,
    ) -> Vec<ApplyOutcome> {
        // A multi that prep failed still logs the ops before the failure; none
        // of them may touch the tree.
        let failed = subs.iter().any(|s| matches!(s, TxnBody::Error(_)));
        let mut post_failed = false;
        let mut results = Vec::with_capacity(subs.len());
        for sub in subs {
            let is_error = matches!(sub, TxnBody::Error(_));
            post_failed |= is_error;
            let replaced;
            let body = if failed && !is_error {
                let code = if post_failed {
                    ErrorCode::RuntimeInconsistency.code()
                } else {
                    0
                };
                replaced = TxnBody::error(code);
                &replaced
            } else {
                sub
            };
            let sub_hdr = TxnHeader {
                r#type: body.txn_type(),
                ..hdr.clone()
            };
            results.push(self.apply_one(&sub_hdr, body, ev));
        }
        results
    }

    /// `DataTree.createNode`; returns the new node's client Stat.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create_node(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        acl: &[Acl],
        ephemeral_owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
        ev: &mut Events,
    ) -> Result<Stat, ErrorCode> {
        let parent_name = parent_of(path).ok_or(ErrorCode::NoNode)?.to_owned();
        if !self.nodes.contains_key(parent_name.as_str()) {
            return Err(ErrorCode::NoNode);
        }
        // ZooKeeper converts (and counts) the ACL before the existence check
        // and hands it to an existing node: replay after a fuzzy snapshot.
        let acl_id = self.acls.convert_acls(acl);
        // Looked up, not taken for change: a mutable lookup copies the map's
        // path to the key whenever a snapshot shares it, found or not.
        if self.nodes.contains_key(path) {
            if let Some(existing) = self.nodes.get_mut(path).map(Arc::make_mut) {
                existing.acl = acl_id;
            }
            return Err(ErrorCode::NodeExists);
        }
        let key = PathKey::from(path);
        self.change_node(&parent_name, |parent| {
            // Replay may see a create whose node was deleted again inside the
            // fuzzy range: never move cversion/pzxid backwards.
            raise_cversion(&mut parent.stat, parent_cversion, zxid);
            parent.add_child(key.clone());
        });
        let node = Node::new(own(data), acl_id, new_stat(zxid, time, ephemeral_owner));
        self.data_size += node_size(path, node.data.as_ref());
        let stat = node.client_stat();
        let bytes = data_len(&node);
        self.digest = self.digest.wrapping_add(digest::of_node(path, &node));
        self.nodes.insert(key.clone(), Arc::new(node));
        match EphemeralType::of(ephemeral_owner) {
            EphemeralType::Container => {
                self.containers.insert(key);
            }
            EphemeralType::Ttl => {
                self.ttls.insert(key);
            }
            EphemeralType::Normal => {
                self.ephemerals
                    .entry(ephemeral_owner)
                    .or_default()
                    .insert(key);
            }
            EphemeralType::Void => {}
        }
        self.quota_on_create(&parent_name, child_name(path), path, bytes);
        ev.push((event_type::NODE_CREATED, path.to_owned()));
        ev.push((event_type::NODE_CHILDREN_CHANGED, parent_name));
        Ok(stat)
    }

    /// `DataTree.deleteNode`.
    pub(crate) fn delete_node(
        &mut self,
        path: &str,
        zxid: i64,
        ev: &mut Events,
    ) -> Result<(), ErrorCode> {
        let parent_name = parent_of(path).ok_or(ErrorCode::NoNode)?.to_owned();
        self.change_node(&parent_name, |parent| {
            // ZooKeeper moves pzxid even when the child is already gone (fuzzy
            // snapshot replay), but never backwards.
            parent.remove_child(path);
            if zxid > parent.stat.pzxid {
                parent.stat.pzxid = zxid;
            }
        })
        .ok_or(ErrorCode::NoNode)?;
        let node = self.nodes.remove(path).ok_or(ErrorCode::NoNode)?;
        self.digest = self.digest.wrapping_sub(digest::of_node(path, &node));
        self.acls.remove_usage(node.acl);
        self.data_size = self
            .data_size
            .saturating_sub(node_size(path, node.data.as_ref()));
        let owner = node.stat.ephemeral_owner;
        match EphemeralType::of(owner) {
            EphemeralType::Container => {
                self.containers.remove(path);
            }
            EphemeralType::Ttl => {
                self.ttls.remove(path);
            }
            EphemeralType::Normal => {
                if let Some(set) = self.ephemerals.get_mut(&owner) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&owner);
                    }
                }
            }
            EphemeralType::Void => {}
        }
        self.quota_on_delete(&parent_name, child_name(path), path, data_len(&node));
        ev.push((event_type::NODE_DELETED, path.to_owned()));
        ev.push((event_type::NODE_CHILDREN_CHANGED, parent_name));
        Ok(())
    }

    /// `DataTree.setData`: the txn carries the new version.
    fn set_data(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        version: i32,
        zxid: i64,
        time: i64,
        ev: &mut Events,
    ) -> Result<Stat, ErrorCode> {
        let (stat, bytes_diff, old, new) = self
            .change_node(path, |n| {
                let bytes_diff = data.as_ref().map_or(0, |d| d.len() as i64) - data_len(n);
                let old = node_size(path, n.data.as_ref());
                n.data = own(data);
                n.stat.mtime = time;
                n.stat.mzxid = zxid;
                n.stat.version = version;
                (
                    n.client_stat(),
                    bytes_diff,
                    old,
                    node_size(path, n.data.as_ref()),
                )
            })
            .ok_or(ErrorCode::NoNode)?;
        self.data_size = (self.data_size + new).saturating_sub(old);
        if path == path::ROOT {
            // The "" alias of the root counts the root's data a second time.
            self.data_size = self.compute_data_size();
        }
        self.quota_on_set_data(path, bytes_diff);
        ev.push((event_type::NODE_DATA_CHANGED, path.to_owned()));
        Ok(stat)
    }

    /// `DataTree.setACL`: the txn carries the new aversion. No watch fires.
    fn set_acl(&mut self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, ErrorCode> {
        let old = self.nodes.get(path).ok_or(ErrorCode::NoNode)?.acl;
        self.acls.remove_usage(old);
        let id = self.acls.convert_acls(acl);
        self.change_node(path, |n| {
            n.stat.aversion = version;
            n.acl = id;
            n.client_stat()
        })
        .ok_or(ErrorCode::NoNode)
    }

    /// `DataTree.setCversionPzxid`.
    fn set_cversion_pzxid(
        &mut self,
        path: &str,
        cversion: i32,
        zxid: i64,
    ) -> Result<(), ErrorCode> {
        let path = if path.len() > 1 {
            path.strip_suffix('/').unwrap_or(path)
        } else {
            path
        };
        self.change_node(path, |n| raise_cversion(&mut n.stat, cversion, zxid))
            .ok_or(ErrorCode::NoNode)
    }

    /// `DataTree.killSession`: deletes the paths the txn names, then any other
    /// ephemeral the session still owns here (ZooKeeper warns about those).
    fn kill_session(&mut self, session: i64, zxid: i64, in_txn: &[String], ev: &mut Events) {
        let local = self.ephemerals.remove(&session).unwrap_or_default();
        for p in in_txn {
            // A path already gone is ignored, as ZooKeeper does.
            let _ = self.delete_node(p, zxid, ev);
        }
        let mut rest: Vec<&PathKey> = local
            .iter()
            .filter(|p| !in_txn.iter().any(|t| t == p.as_str()))
            .collect();
        rest.sort();
        for p in rest {
            let _ = self.delete_node(p, zxid, ev);
        }
    }
}

/// Data up to this size is copied out of its txn record when it goes into the tree.
const OWN_DATA_UP_TO: usize = 16 * 1024;

/// A node's data as the tree keeps it: small data is copied to a buffer of its own, so that
/// the tree does not keep the rest of its txn record (path, ACL, header) alive for as long as
/// the node lives.
fn own(data: Option<Bytes>) -> Option<Bytes> {
    data.map(|d| {
        if d.len() <= OWN_DATA_UP_TO {
            Bytes::copy_from_slice(&d)
        } else {
            d
        }
    })
}

fn data_len(n: &Node) -> i64 {
    n.data.as_ref().map_or(0, |d| d.len() as i64)
}

/// Shorthand for tests and callers: the op types whose multi result carries a
/// Stat (`CreateResult` with stat, `SetDataResult`).
pub fn multi_result_has_stat(op_type: i32) -> bool {
    matches!(
        op_type,
        op::CREATE2 | op::CREATE_TTL | op::CREATE_CONTAINER | op::SET_DATA
    )
}

/// Sets a parent's cversion (-1: one more than now) and pzxid, never moving
/// them backwards, as ZooKeeper's createNode and setCversionPzxid do.
fn raise_cversion(stat: &mut ensemble_proto::StatPersisted, cversion: i32, zxid: i64) {
    let new = if cversion == -1 {
        stat.cversion.wrapping_add(1)
    } else {
        cversion
    };
    if new > stat.cversion {
        stat.cversion = new;
        stat.pzxid = zxid;
    }
}
