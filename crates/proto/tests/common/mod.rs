//! Shared test support: a small deterministic generator of arbitrary records
//! (driven by a proptest seed) and the list of every record type.
#![allow(dead_code)]

use bytes::Bytes;
use ensemble_proto::multi::{MultiOp, MultiRequest, MultiResponse, MultiResult};
use ensemble_proto::*;

/// xorshift64*: enough randomness for shaping values, reproducible from a seed.
pub struct Gen(u64);

impl Gen {
    pub fn new(seed: u64) -> Self {
        Gen(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

pub trait Arb {
    fn arb(g: &mut Gen) -> Self;
}

impl Arb for i32 {
    fn arb(g: &mut Gen) -> Self {
        match g.below(3) {
            0 => g.pick(&[0, 1, -1, i32::MIN, i32::MAX]),
            _ => g.next() as i32,
        }
    }
}

impl Arb for i64 {
    fn arb(g: &mut Gen) -> Self {
        match g.below(3) {
            0 => g.pick(&[0, 1, -1, i64::MIN, i64::MAX]),
            _ => g.next() as i64,
        }
    }
}

impl Arb for bool {
    fn arb(g: &mut Gen) -> Self {
        g.below(2) == 1
    }
}

impl Arb for String {
    fn arb(g: &mut Gen) -> Self {
        let n = g.below(7);
        (0..n)
            .map(|_| {
                g.pick(&[
                    '/',
                    'a',
                    'z',
                    '0',
                    '-',
                    ' ',
                    '\u{e9}',
                    '\u{4e16}',
                    '\u{1f980}',
                ])
            })
            .collect()
    }
}

impl Arb for Option<String> {
    fn arb(g: &mut Gen) -> Self {
        (g.below(3) != 0).then(|| String::arb(g))
    }
}

impl Arb for Option<Bytes> {
    fn arb(g: &mut Gen) -> Self {
        match g.below(3) {
            0 => None,
            _ => {
                let n = g.below(9);
                Some((0..n).map(|_| g.next() as u8).collect::<Vec<u8>>().into())
            }
        }
    }
}

impl<T: Arb> Arb for Vec<T> {
    fn arb(g: &mut Gen) -> Self {
        let n = g.below(4);
        (0..n).map(|_| T::arb(g)).collect()
    }
}

macro_rules! arb_records {
    ($($name:ident { $($f:ident),* })*) => {
        $(impl Arb for $name {
            fn arb(g: &mut Gen) -> Self {
                $name { $($f: Arb::arb(g),)* }
            }
        })*
    };
}

arb_records! {
    Id { scheme, id }
    Acl { perms, id }
    Stat { czxid, mzxid, ctime, mtime, version, cversion, aversion, ephemeral_owner, data_length, num_children, pzxid }
    StatPersisted { czxid, mzxid, ctime, mtime, version, cversion, aversion, ephemeral_owner, pzxid }
    ClientInfo { auth_scheme, user }
    SetWatches { relative_zxid, data_watches, exist_watches, child_watches }
    SetWatches2 { relative_zxid, data_watches, exist_watches, child_watches, persistent_watches, persistent_recursive_watches }
    RequestHeader { xid, r#type }
    MultiHeader { r#type, done, err }
    AuthPacket { r#type, scheme, auth }
    ReplyHeader { xid, zxid, err }
    GetDataRequest { path, watch }
    SetDataRequest { path, data, version }
    ReconfigRequest { joining_servers, leaving_servers, new_members, cur_config_id }
    SetDataResponse { stat }
    GetSaslRequest { token }
    SetSaslRequest { token }
    SetSaslResponse { token }
    CreateRequest { path, data, acl, flags }
    CreateTtlRequest { path, data, acl, flags, ttl }
    DeleteRequest { path, version }
    GetChildrenRequest { path, watch }
    GetAllChildrenNumberRequest { path }
    GetChildren2Request { path, watch }
    CheckVersionRequest { path, version }
    GetMaxChildrenRequest { path }
    GetMaxChildrenResponse { max }
    SetMaxChildrenRequest { path, max }
    SyncRequest { path }
    SyncResponse { path }
    GetAclRequest { path }
    SetAclRequest { path, acl, version }
    SetAclResponse { stat }
    AddWatchRequest { path, mode }
    WatcherEvent { r#type, state, path }
    ErrorResponse { err }
    CreateResponse { path }
    Create2Response { path, stat }
    ExistsRequest { path, watch }
    ExistsResponse { stat }
    GetDataResponse { data, stat }
    GetChildrenResponse { children }
    GetAllChildrenNumberResponse { total_number }
    GetChildren2Response { children, stat }
    GetAclResponse { acl, stat }
    CheckWatchesRequest { path, r#type }
    RemoveWatchesRequest { path, r#type }
    GetEphemeralsRequest { prefix_path }
    GetEphemeralsResponse { ephemerals }
    WhoAmIResponse { client_info }
    LearnerInfo { serverid, protocol_version, config_version }
    QuorumPacket { r#type, zxid, data, authinfo }
    QuorumAuthPacket { magic, status, token }
    FileHeader { magic, version, dbid }
    TxnDigest { version, tree_digest }
    TxnHeader { client_id, cxid, zxid, time, r#type }
    CreateTxnV0 { path, data, acl, ephemeral }
    CreateTxn { path, data, acl, ephemeral, parent_c_version }
    CreateTtlTxn { path, data, acl, parent_c_version, ttl }
    CreateContainerTxn { path, data, acl, parent_c_version }
    DeleteTxn { path }
    SetDataTxn { path, data, version }
    CheckVersionTxn { path, version }
    SetAclTxn { path, acl, version }
    SetMaxChildrenTxn { path, max }
    CreateSessionTxn { time_out }
    CloseSessionTxn { paths2_delete }
    ErrorTxn { err }
    Txn { r#type, data }
    MultiTxn { txns }
    ConnectRequest { protocol_version, last_zxid_seen, time_out, session_id, passwd, read_only }
    ConnectResponse { protocol_version, time_out, session_id, passwd, read_only }
}

impl Arb for Option<bool> {
    fn arb(g: &mut Gen) -> Self {
        (g.below(2) == 0).then(|| bool::arb(g))
    }
}

impl Arb for MultiOp {
    fn arb(g: &mut Gen) -> Self {
        // A write op; `MultiRequest::arb` picks read ops separately.
        match g.below(5) {
            0 => {
                let mut req = CreateRequest::arb(g);
                req.flags = g.below(7) as i32;
                MultiOp::Create(
                    g.pick(&[op::CREATE, op::CREATE2, op::CREATE_CONTAINER]),
                    req,
                )
            }
            1 => MultiOp::CreateTtl(Arb::arb(g)),
            2 => MultiOp::Delete(Arb::arb(g)),
            3 => MultiOp::SetData(Arb::arb(g)),
            _ => MultiOp::Check(Arb::arb(g)),
        }
    }
}

impl Arb for MultiRequest {
    fn arb(g: &mut Gen) -> Self {
        let n = g.below(5);
        let read = g.below(2) == 0;
        let ops = (0..n)
            .map(|_| {
                if !read {
                    MultiOp::arb(g)
                } else if g.below(2) == 0 {
                    MultiOp::GetData(Arb::arb(g))
                } else {
                    MultiOp::GetChildren(Arb::arb(g))
                }
            })
            .collect();
        MultiRequest { ops }
    }
}

impl Arb for MultiResult {
    fn arb(g: &mut Gen) -> Self {
        match g.below(8) {
            0 => MultiResult::Create { path: Arb::arb(g) },
            1 => MultiResult::Create2 {
                path: Arb::arb(g),
                stat: Arb::arb(g),
            },
            2 => MultiResult::Delete,
            3 => MultiResult::SetData { stat: Arb::arb(g) },
            4 => MultiResult::Check,
            5 => MultiResult::GetData {
                data: Arb::arb(g),
                stat: Arb::arb(g),
            },
            6 => MultiResult::GetChildren {
                children: Arb::arb(g),
            },
            _ => MultiResult::Error { err: Arb::arb(g) },
        }
    }
}

impl Arb for MultiResponse {
    fn arb(g: &mut Gen) -> Self {
        MultiResponse {
            results: Arb::arb(g),
        }
    }
}

/// Calls `$check!(Type)` for every record type of the crate: the 72 classes
/// of `zookeeper.jute` plus the multi request and response bodies.
#[macro_export]
macro_rules! for_every_record {
    ($check:ident) => {
        $check!(
            Id,
            Acl,
            Stat,
            StatPersisted,
            ClientInfo,
            SetWatches,
            SetWatches2,
            RequestHeader,
            MultiHeader,
            AuthPacket,
            ReplyHeader,
            GetDataRequest,
            SetDataRequest,
            ReconfigRequest,
            SetDataResponse,
            GetSaslRequest,
            SetSaslRequest,
            SetSaslResponse,
            CreateRequest,
            CreateTtlRequest,
            DeleteRequest,
            GetChildrenRequest,
            GetAllChildrenNumberRequest,
            GetChildren2Request,
            CheckVersionRequest,
            GetMaxChildrenRequest,
            GetMaxChildrenResponse,
            SetMaxChildrenRequest,
            SyncRequest,
            SyncResponse,
            GetAclRequest,
            SetAclRequest,
            SetAclResponse,
            AddWatchRequest,
            WatcherEvent,
            ErrorResponse,
            CreateResponse,
            Create2Response,
            ExistsRequest,
            ExistsResponse,
            GetDataResponse,
            GetChildrenResponse,
            GetAllChildrenNumberResponse,
            GetChildren2Response,
            GetAclResponse,
            CheckWatchesRequest,
            RemoveWatchesRequest,
            GetEphemeralsRequest,
            GetEphemeralsResponse,
            WhoAmIResponse,
            LearnerInfo,
            QuorumPacket,
            QuorumAuthPacket,
            FileHeader,
            TxnDigest,
            TxnHeader,
            CreateTxnV0,
            CreateTxn,
            CreateTtlTxn,
            CreateContainerTxn,
            DeleteTxn,
            SetDataTxn,
            CheckVersionTxn,
            SetAclTxn,
            SetMaxChildrenTxn,
            CreateSessionTxn,
            CloseSessionTxn,
            ErrorTxn,
            Txn,
            MultiTxn,
            ConnectRequest,
            ConnectResponse,
            MultiRequest,
            MultiResponse
        );
    };
}
