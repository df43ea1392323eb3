//! The prep stage (ZooKeeper's `PrepRequestProcessor`): validates a write
//! request against the tree plus the changes of txns prepared but not yet
//! applied, and turns it into the txn that will be logged. Refusals become
//! error txns, so the log and every member agree on the outcome.
//!
//! Pending changes are kept per path (latest wins) and in prep order, like
//! ZooKeeper's `outstandingChanges`; [`Prep::applied`] drops them once the txn
//! they belong to has reached the tree. Each call gets a sequence number that
//! stands in for ZooKeeper's zxid here, because the zxid is assigned later by
//! consensus.

use crate::acl::{check_acl, fixup_acl};
use crate::path::{is_special_path, parent_of, validate_path};
use crate::tree::{
    new_stat, ttl_to_ephemeral_owner, DataTree, EphemeralType, CONTAINER_EPHEMERAL_OWNER,
};
use crate::txn::TxnBody;
use bytes::Bytes;
use ensemble_proto::{
    op, perms, Acl, CheckVersionRequest, CheckVersionTxn, CloseSessionTxn, CreateContainerTxn,
    CreateMode, CreateRequest, CreateSessionTxn, CreateTtlRequest, CreateTtlTxn, CreateTxn,
    DeleteRequest, DeleteTxn, ErrorCode, GetChildrenRequest, GetDataRequest, Id, Jute, JuteError,
    MultiHeader, Reader, SetAclRequest, SetAclTxn, SetDataRequest, SetDataTxn, StatPersisted,
};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

/// Settings of the prep stage, parsed once from the configuration.
#[derive(Debug, Clone, Default)]
pub struct PrepOptions {
    /// `zookeeper.extendedTypesEnabled`: TTL nodes are refused (Unimplemented) without it.
    pub extended_types_enabled: bool,
    /// `zookeeper.DigestAuthenticationProvider.superDigest` (`super:<hash>`).
    /// Prep itself sees super only through the `super:` id in `auth`; kept
    /// here so one options value describes the ACL setup.
    pub super_digest: Option<String>,
    /// `zookeeper.skipACL`: no permission checks at all.
    pub skip_acl: bool,
    /// `zookeeper.enforceQuota`: hard quotas refuse writes with QuotaExceeded.
    pub enforce_quota: bool,
}

/// A prepared txn, ready for the log. `txn_type` goes into `TxnHeader.type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedTxn {
    pub seq: u64,
    pub txn_type: i32,
    pub body: TxnBody,
}

/// What prep knows of a node: its persisted Stat (cversion counts creates),
/// its child count and its ACL (`ChangeRecord`).
#[derive(Debug, Clone)]
struct PendingNode {
    stat: StatPersisted,
    child_count: i32,
    /// Shared with the tree's ACL cache: a record is copied for each
    /// request that touches the node, its list is not.
    acl: Arc<[Acl]>,
}

#[derive(Debug, Clone)]
struct ChangeRecord {
    seq: u64,
    /// `None`: the node is being deleted.
    node: Option<PendingNode>,
}

/// One entry of the prep-order queue: enough for `applied` and for
/// closeSession, which replays creates and deletes of ephemerals in order.
#[derive(Debug, Clone)]
struct QueuedChange {
    seq: u64,
    /// The same allocation as the path's key in `for_path`.
    path: Arc<str>,
    /// Owner of the node after the change; `None` for a delete.
    owner: Option<i64>,
}

/// The identity and clock of the request being prepared.
struct Ctx<'a> {
    seq: u64,
    session_id: i64,
    auth: &'a [Id],
    time: i64,
}

/// An op of a multi request, decoded.
enum MultiOp {
    Create { opcode: i32, req: CreateTtlRequest },
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
}

pub struct Prep {
    opts: PrepOptions,
    next_seq: u64,
    queue: VecDeque<QueuedChange>,
    /// Hashed with foldhash (seeded per map), as the node map: a lookup,
    /// an insert and a remove per write.
    for_path: HashMap<Arc<str>, ChangeRecord, foldhash::fast::RandomState>,
    /// While a multi is being prepared: the record each touched path had
    /// before it, to restore all of them if an op fails.
    undo: Option<HashMap<String, Option<ChangeRecord>>>,
}

type PrepResult = Result<TxnBody, ErrorCode>;

impl Prep {
    pub fn new(opts: PrepOptions) -> Prep {
        Prep {
            opts,
            next_seq: 1,
            queue: VecDeque::new(),
            for_path: HashMap::default(),
            undo: None,
        }
    }

    pub fn options(&self) -> &PrepOptions {
        &self.opts
    }

    /// Number of pending change records (ZooKeeper's outstanding changes).
    pub fn pending_len(&self) -> usize {
        self.queue.len()
    }

    /// Turns one write request into a txn. `body` is the request record after
    /// the `RequestHeader` (ignored for closeSession; a `CreateSessionTxn` for
    /// createSession); `auth` holds the connection's ids (`ip:` always,
    /// `digest:` per addauth, `super:` when the super digest matched).
    /// Never panics: an undecodable body is MarshallingError, a refused
    /// request an error txn with ZooKeeper's code. A multi is always a multi
    /// txn: on the first failing op, the ops before it keep their txns (apply
    /// turns them into error 0), the failing op becomes its error and the ops
    /// after it RuntimeInconsistency, and the pending records of the ops
    /// before it are rolled back.
    pub fn prep(
        &mut self,
        tree: &DataTree,
        session_id: i64,
        opcode: i32,
        body: &[u8],
        auth: &[Id],
        time: i64,
    ) -> PreparedTxn {
        let seq = self.next_seq;
        self.next_seq += 1;
        let ctx = Ctx {
            seq,
            session_id,
            auth,
            time,
        };
        let result = self.prep_request(tree, &ctx, opcode, body);
        let body = result.unwrap_or_else(|e| TxnBody::error(e.code()));
        PreparedTxn {
            seq,
            txn_type: body.txn_type(),
            body,
        }
    }

    /// The txn with sequence number `seq` (and every earlier one) is in the
    /// tree now: its pending records are no longer needed.
    pub fn applied(&mut self, seq: u64) {
        while self.queue.front().is_some_and(|c| c.seq <= seq) {
            if let Some(c) = self.queue.pop_front() {
                if self.for_path.get(&c.path).is_some_and(|r| r.seq == c.seq) {
                    self.for_path.remove(&c.path);
                }
            }
        }
    }

    /// Forgets every pending change, e.g. when this member stops leading and
    /// its prepared txns may never commit.
    pub fn reset(&mut self) {
        self.queue.clear();
        self.for_path.clear();
        self.undo = None;
    }

    fn prep_request(&mut self, tree: &DataTree, ctx: &Ctx, opcode: i32, body: &[u8]) -> PrepResult {
        // An undecodable body is a MarshallingError in ZooKeeper (the
        // IOException of readRequestRecord lands in its catch-all).
        let bad = |_: JuteError| ErrorCode::MarshallingError;
        match opcode {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => {
                let r = CreateRequest::from_bytes(body).map_err(bad)?;
                self.prep_create(tree, ctx, opcode, with_no_ttl(r))
            }
            op::CREATE_TTL => {
                let r = CreateTtlRequest::from_bytes(body).map_err(bad)?;
                self.prep_create(tree, ctx, opcode, r)
            }
            op::DELETE => {
                let r = DeleteRequest::from_bytes(body).map_err(bad)?;
                self.prep_delete(tree, ctx, &r.path, r.version)
            }
            op::DELETE_CONTAINER => {
                // DeleteContainerRequest is a lone path.
                let path = Reader::from_slice(body).read_string().map_err(bad)?;
                self.prep_delete_container(tree, ctx, &path)
            }
            op::SET_DATA => {
                let r = SetDataRequest::from_bytes(body).map_err(bad)?;
                self.prep_set_data(tree, ctx, r)
            }
            op::SET_ACL => {
                let r = SetAclRequest::from_bytes(body).map_err(bad)?;
                self.prep_set_acl(tree, ctx, r)
            }
            op::CHECK => {
                let r = CheckVersionRequest::from_bytes(body).map_err(bad)?;
                self.prep_check(tree, ctx, r)
            }
            op::MULTI => {
                let ops = decode_multi(body)?;
                Ok(self.prep_multi(tree, ctx, ops))
            }
            op::CREATE_SESSION => {
                let t = CreateSessionTxn::from_bytes(body).map_err(bad)?;
                Ok(TxnBody::CreateSession(t))
            }
            op::CLOSE_SESSION => Ok(self.prep_close_session(tree, ctx)),
            // Membership changes go through consensus, not this stage; this is
            // ZooKeeper's answer while `reconfigEnabled` is false (its default).
            op::RECONFIG => Err(ErrorCode::ReconfigDisabled),
            // Reads and unknown opcodes make no txn in ZooKeeper; a caller
            // that sends one here gets a clear refusal.
            _ => Err(ErrorCode::Unimplemented),
        }
    }

    // ---- pending change records ----

    /// `getRecordForPath`: the pending record, else the tree's node.
    fn record(&self, tree: &DataTree, path: &str) -> Result<PendingNode, ErrorCode> {
        if let Some(c) = self.for_path.get(path) {
            return c.node.clone().ok_or(ErrorCode::NoNode);
        }
        let n = tree.node(path).ok_or(ErrorCode::NoNode)?;
        Ok(PendingNode {
            stat: n.stat.clone(),
            child_count: n.child_count() as i32,
            acl: tree.acl_cache().shared(n.acl),
        })
    }

    /// Whether `path` exists once the pending changes are applied: `record`
    /// without building the record (its ACL is a list made for the caller).
    fn exists(&self, tree: &DataTree, path: &str) -> bool {
        match self.for_path.get(path) {
            Some(c) => c.node.is_some(),
            None => tree.node(path).is_some(),
        }
    }

    fn add_change(&mut self, seq: u64, path: &str, node: Option<PendingNode>) {
        if let Some(undo) = self.undo.as_mut() {
            if !undo.contains_key(path) {
                undo.insert(path.to_owned(), self.for_path.get(path).cloned());
            }
        }
        let path: Arc<str> = path.into();
        self.queue.push_back(QueuedChange {
            seq,
            path: path.clone(),
            owner: node.as_ref().map(|n| n.stat.ephemeral_owner),
        });
        self.for_path.insert(path, ChangeRecord { seq, node });
    }

    fn check_acl(&self, acl: &[Acl], perm: i32, ctx: &Ctx) -> Result<(), ErrorCode> {
        if self.opts.skip_acl || check_acl(acl, perm, ctx.auth) {
            Ok(())
        } else {
            Err(ErrorCode::NoAuth)
        }
    }

    // ---- operations ----

    fn prep_create(
        &mut self,
        tree: &DataTree,
        ctx: &Ctx,
        opcode: i32,
        r: CreateTtlRequest,
    ) -> PrepResult {
        let mode = CreateMode::from_flags(r.flags).ok_or(ErrorCode::BadArguments)?;
        if mode.is_ttl() && !self.opts.extended_types_enabled {
            return Err(ErrorCode::Unimplemented);
        }
        // `EphemeralType.validateTTL`: a TTL mode needs a ttl in range, other
        // modes must not carry one. A createTTL request with a non-TTL mode
        // would log a CreateTTLTxn that ZooKeeper cannot apply: refuse it too.
        let ttl_owner = if mode.is_ttl() {
            Some(ttl_to_ephemeral_owner(r.ttl).ok_or(ErrorCode::BadArguments)?)
        } else if r.ttl >= 0 || opcode == op::CREATE_TTL {
            return Err(ErrorCode::BadArguments);
        } else {
            None
        };
        let parent_path = match r.path.rfind('/') {
            Some(i) if !r.path.contains('\0') => {
                if i == 0 {
                    "/".to_owned()
                } else {
                    r.path[..i].to_owned()
                }
            }
            _ => return Err(ErrorCode::BadArguments),
        };
        let acl = fixup_acl(&r.acl, ctx.auth)?;
        let mut parent = self.record(tree, &parent_path)?;
        self.check_acl(&parent.acl, perms::CREATE, ctx)?;
        let path = if mode.is_sequential() {
            format!("{}{:010}", r.path, parent.stat.cversion)
        } else {
            r.path
        };
        validate_path(&path, false).map_err(|_| ErrorCode::BadArguments)?;
        if self.exists(tree, &path) {
            return Err(ErrorCode::NodeExists);
        }
        if EphemeralType::of(parent.stat.ephemeral_owner) == EphemeralType::Normal {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let new_cversion = parent.stat.cversion.wrapping_add(1);
        if self.opts.enforce_quota {
            let len = r.data.as_ref().map_or(0, |d| d.len() as i64);
            tree.check_quota(&path, 0, len, true)
                .map_err(|_| ErrorCode::QuotaExceeded)?;
        }
        let data = r.data;
        let body = match opcode {
            op::CREATE_CONTAINER => TxnBody::CreateContainer(CreateContainerTxn {
                path: path.clone(),
                data,
                acl: acl.clone(),
                parent_c_version: new_cversion,
            }),
            op::CREATE_TTL => TxnBody::CreateTtl(CreateTtlTxn {
                path: path.clone(),
                data,
                acl: acl.clone(),
                parent_c_version: new_cversion,
                ttl: r.ttl,
            }),
            _ => {
                let t = CreateTxn {
                    path: path.clone(),
                    data,
                    acl: acl.clone(),
                    ephemeral: mode.is_ephemeral(),
                    parent_c_version: new_cversion,
                };
                if opcode == op::CREATE2 {
                    TxnBody::Create2(t)
                } else {
                    TxnBody::Create(t)
                }
            }
        };
        // The owner prep records follows the create mode, as ZooKeeper does
        // (apply derives it from the txn type).
        let owner = if mode.is_container() {
            CONTAINER_EPHEMERAL_OWNER
        } else if let Some(o) = ttl_owner {
            o
        } else if mode.is_ephemeral() {
            ctx.session_id
        } else {
            0
        };
        parent.child_count += 1;
        parent.stat.cversion = new_cversion;
        self.add_change(ctx.seq, &parent_path, Some(parent));
        let node = PendingNode {
            stat: new_stat(0, ctx.time, owner),
            child_count: 0,
            acl: acl.into(),
        };
        self.add_change(ctx.seq, &path, Some(node));
        Ok(body)
    }

    /// `getParentPathAndValidate`: no '/', a NUL, or one of ZooKeeper's own
    /// nodes ("/", "/zookeeper", its quota and config) is BadArguments.
    fn parent_for_delete(path: &str) -> Result<String, ErrorCode> {
        if path.contains('\0') || is_special_path(path) {
            return Err(ErrorCode::BadArguments);
        }
        parent_of(path)
            .map(str::to_owned)
            .ok_or(ErrorCode::BadArguments)
    }

    fn prep_delete(&mut self, tree: &DataTree, ctx: &Ctx, path: &str, version: i32) -> PrepResult {
        let parent_path = Self::parent_for_delete(path)?;
        let mut parent = self.record(tree, &parent_path)?;
        self.check_acl(&parent.acl, perms::DELETE, ctx)?;
        let node = self.record(tree, path)?;
        next_version(node.stat.version, version)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        parent.child_count -= 1;
        self.add_change(ctx.seq, &parent_path, Some(parent));
        self.add_change(ctx.seq, path, None);
        Ok(TxnBody::Delete(DeleteTxn {
            path: path.to_owned(),
        }))
    }

    /// deleteContainer comes from the container manager, not from users: no
    /// ACL check; only a session's ephemeral is refused (BadVersion).
    fn prep_delete_container(&mut self, tree: &DataTree, ctx: &Ctx, path: &str) -> PrepResult {
        let parent_path = Self::parent_for_delete(path)?;
        let node = self.record(tree, path)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        if EphemeralType::of(node.stat.ephemeral_owner) == EphemeralType::Normal {
            return Err(ErrorCode::BadVersion);
        }
        let mut parent = self.record(tree, &parent_path)?;
        parent.child_count -= 1;
        self.add_change(ctx.seq, &parent_path, Some(parent));
        self.add_change(ctx.seq, path, None);
        Ok(TxnBody::DeleteContainer(DeleteTxn {
            path: path.to_owned(),
        }))
    }

    fn prep_set_data(&mut self, tree: &DataTree, ctx: &Ctx, r: SetDataRequest) -> PrepResult {
        validate_path(&r.path, false).map_err(|_| ErrorCode::BadArguments)?;
        let mut node = self.record(tree, &r.path)?;
        self.check_acl(&node.acl, perms::WRITE, ctx)?;
        if self.opts.enforce_quota {
            let last = tree
                .get_data(&r.path)
                .and_then(|(d, _)| d)
                .map_or(0, |d| d.len() as i64);
            let len = r.data.as_ref().map_or(0, |d| d.len() as i64);
            tree.check_quota(&r.path, last, len, false)
                .map_err(|_| ErrorCode::QuotaExceeded)?;
        }
        let version = next_version(node.stat.version, r.version)?;
        node.stat.version = version;
        node.stat.mtime = ctx.time;
        self.add_change(ctx.seq, &r.path, Some(node));
        Ok(TxnBody::SetData(SetDataTxn {
            path: r.path,
            data: r.data,
            version,
        }))
    }

    fn prep_set_acl(&mut self, tree: &DataTree, ctx: &Ctx, r: SetAclRequest) -> PrepResult {
        validate_path(&r.path, false).map_err(|_| ErrorCode::BadArguments)?;
        let acl = fixup_acl(&r.acl, ctx.auth)?;
        let mut node = self.record(tree, &r.path)?;
        self.check_acl(&node.acl, perms::ADMIN, ctx)?;
        let version = next_version(node.stat.aversion, r.version)?;
        node.stat.aversion = version;
        // ZooKeeper keeps the old ACL in its pending record; checking later
        // requests against the ACL they will really meet is the intent.
        node.acl = acl.as_slice().into();
        self.add_change(ctx.seq, &r.path, Some(node));
        Ok(TxnBody::SetAcl(SetAclTxn {
            path: r.path,
            acl,
            version,
        }))
    }

    fn prep_check(&mut self, tree: &DataTree, ctx: &Ctx, r: CheckVersionRequest) -> PrepResult {
        validate_path(&r.path, false).map_err(|_| ErrorCode::BadArguments)?;
        let node = self.record(tree, &r.path)?;
        self.check_acl(&node.acl, perms::READ, ctx)?;
        // ZooKeeper logs the version the node would have next, not the one checked.
        let version = next_version(node.stat.version, r.version)?;
        Ok(TxnBody::Check(CheckVersionTxn {
            path: r.path,
            version,
        }))
    }

    /// A multi logs every op: on the first failure the ops before it stay as
    /// prepared (apply turns them into no-ops), the failing op becomes its
    /// error and the ops after it RuntimeInconsistency; the pending records
    /// of the ops before are rolled back.
    fn prep_multi(&mut self, tree: &DataTree, ctx: &Ctx, ops: Vec<MultiOp>) -> TxnBody {
        self.undo = Some(HashMap::new());
        let queue_len = self.queue.len();
        let mut failed = false;
        let mut subs = Vec::with_capacity(ops.len());
        for o in ops {
            if failed {
                subs.push(TxnBody::error(ErrorCode::RuntimeInconsistency.code()));
                continue;
            }
            let r = match o {
                MultiOp::Create { opcode, req } => self.prep_create(tree, ctx, opcode, req),
                MultiOp::Delete(r) => self.prep_delete(tree, ctx, &r.path, r.version),
                MultiOp::SetData(r) => self.prep_set_data(tree, ctx, r),
                MultiOp::Check(r) => self.prep_check(tree, ctx, r),
            };
            match r {
                Ok(body) => subs.push(body),
                Err(e) => {
                    failed = true;
                    subs.push(TxnBody::error(e.code()));
                    self.rollback(queue_len);
                }
            }
        }
        self.undo = None;
        TxnBody::Multi(subs)
    }

    fn rollback(&mut self, queue_len: usize) {
        self.queue.truncate(queue_len);
        if let Some(undo) = self.undo.as_mut() {
            for (path, prev) in undo.drain() {
                match prev {
                    Some(rec) => self.for_path.insert(path.into(), rec),
                    None => self.for_path.remove(path.as_str()),
                };
            }
        }
    }

    /// closeSession deletes the session's ephemerals, including those whose
    /// create is still pending and excluding those already being deleted;
    /// ZooKeeper 3.6+ names them in `CloseSessionTxn.paths2Delete`.
    fn prep_close_session(&mut self, tree: &DataTree, ctx: &Ctx) -> TxnBody {
        let mut paths: BTreeSet<String> = tree.ephemerals(ctx.session_id).into_iter().collect();
        for c in &self.queue {
            match c.owner {
                None => {
                    paths.remove(&*c.path);
                }
                Some(o) if o == ctx.session_id => {
                    paths.insert(c.path.to_string());
                }
                Some(_) => {}
            }
        }
        for p in &paths {
            if let Some(parent_path) = parent_of(p) {
                // ZooKeeper only bumps the parent's pzxid here; counting the
                // child out keeps a racing delete of the parent exact.
                if let Ok(mut parent) = self.record(tree, parent_path) {
                    parent.child_count -= 1;
                    let parent_path = parent_path.to_owned();
                    self.add_change(ctx.seq, &parent_path, Some(parent));
                }
            }
            self.add_change(ctx.seq, p, None);
        }
        TxnBody::CloseSession(CloseSessionTxn {
            paths2_delete: paths.into_iter().collect(),
        })
    }
}

/// `checkAndIncVersion` of ZooKeeper 3.9: -1 matches any version; the next
/// version is a plain 32-bit increment (3.10 skips -1, ZOOKEEPER-4743; 3.9.5
/// does not, so neither do we).
fn next_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

fn with_no_ttl(r: CreateRequest) -> CreateTtlRequest {
    CreateTtlRequest {
        path: r.path,
        data: r.data,
        acl: r.acl,
        flags: r.flags,
        ttl: -1,
    }
}

/// `MultiOperationRecord.deserialize`: (MultiHeader, op record) pairs until a
/// header with done=true. Unknown op types, create flags that are no create
/// mode, and read ops (which a write multi cannot carry) are MarshallingError.
fn decode_multi(body: &[u8]) -> Result<Vec<MultiOp>, ErrorCode> {
    let bad = |_: JuteError| ErrorCode::MarshallingError;
    let mut r = Reader::new(Bytes::copy_from_slice(body));
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(&mut r).map_err(bad)?;
        if h.done {
            return Ok(ops);
        }
        let o = match h.r#type {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => {
                let c = CreateRequest::read(&mut r).map_err(bad)?;
                if CreateMode::from_flags(c.flags).is_none() {
                    return Err(ErrorCode::MarshallingError);
                }
                MultiOp::Create {
                    opcode: h.r#type,
                    req: with_no_ttl(c),
                }
            }
            op::CREATE_TTL => {
                let c = CreateTtlRequest::read(&mut r).map_err(bad)?;
                if CreateMode::from_flags(c.flags).is_none() {
                    return Err(ErrorCode::MarshallingError);
                }
                MultiOp::Create {
                    opcode: h.r#type,
                    req: c,
                }
            }
            op::DELETE => MultiOp::Delete(DeleteRequest::read(&mut r).map_err(bad)?),
            op::SET_DATA => MultiOp::SetData(SetDataRequest::read(&mut r).map_err(bad)?),
            op::CHECK => MultiOp::Check(CheckVersionRequest::read(&mut r).map_err(bad)?),
            op::GET_CHILDREN => {
                GetChildrenRequest::read(&mut r).map_err(bad)?;
                return Err(ErrorCode::MarshallingError);
            }
            op::GET_DATA => {
                GetDataRequest::read(&mut r).map_err(bad)?;
                return Err(ErrorCode::MarshallingError);
            }
            _ => return Err(ErrorCode::MarshallingError),
        };
        ops.push(o);
    }
}
