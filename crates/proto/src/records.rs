//! Every record of ZooKeeper 3.9's `zookeeper.jute`, field for field and in the
//! same order: client protocol (`org.apache.zookeeper.proto`), data, txn log,
//! persistence file header and the quorum packets. `MultiRequest` and
//! `MultiResponse` are not jute records; they live in [`crate::multi`].

use crate::jute::{Jute, JuteError, Reader, Writer};
use crate::jute_record;
use bytes::Bytes;

// ---- org.apache.zookeeper.data ----

jute_record!(
    /// An identity: a scheme (`world`, `auth`, `digest`, `ip`, `super`...) and an id.
    Id { scheme: String, id: String }
);

jute_record!(
    /// An access control entry: permission bits for one identity.
    Acl { perms: i32, id: Id }
);

jute_record!(
    /// A znode's Stat as sent to clients.
    Stat {
        czxid: i64,
        mzxid: i64,
        ctime: i64,
        mtime: i64,
        version: i32,
        cversion: i32,
        aversion: i32,
        ephemeral_owner: i64,
        data_length: i32,
        num_children: i32,
        pzxid: i64,
    }
);

jute_record!(
    /// A znode's Stat as kept in snapshots (no dataLength or numChildren).
    StatPersisted {
        czxid: i64,
        mzxid: i64,
        ctime: i64,
        mtime: i64,
        version: i32,
        cversion: i32,
        aversion: i32,
        ephemeral_owner: i64,
        pzxid: i64,
    }
);

jute_record!(
    /// One authenticated identity of a session, as whoAmI reports it.
    ClientInfo { auth_scheme: String, user: String }
);

// ---- org.apache.zookeeper.proto ----

/// The first frame a client sends. The trailing `readOnly` byte is optional:
/// old clients omit it, and the server answers in the form the client used.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Option<Bytes>,
    /// `None` when the client did not send the byte.
    pub read_only: Option<bool>,
}

impl Jute for ConnectRequest {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        let protocol_version = r.read_i32()?;
        let last_zxid_seen = r.read_i64()?;
        let time_out = r.read_i32()?;
        let session_id = r.read_i64()?;
        let passwd = r.read_buffer()?;
        let read_only = if r.remaining() > 0 {
            Some(r.read_bool()?)
        } else {
            None
        };
        Ok(ConnectRequest {
            protocol_version,
            last_zxid_seen,
            time_out,
            session_id,
            passwd,
            read_only,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.write_i32(self.protocol_version);
        w.write_i64(self.last_zxid_seen);
        w.write_i32(self.time_out);
        w.write_i64(self.session_id);
        w.write_buffer(self.passwd.as_deref());
        if let Some(ro) = self.read_only {
            w.write_bool(ro);
        }
    }
}

/// The server's answer to [`ConnectRequest`]; `read_only` is written only when
/// it is `Some`, i.e. when the client sent the byte.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Option<Bytes>,
    pub read_only: Option<bool>,
}

impl Jute for ConnectResponse {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        let protocol_version = r.read_i32()?;
        let time_out = r.read_i32()?;
        let session_id = r.read_i64()?;
        let passwd = r.read_buffer()?;
        let read_only = if r.remaining() > 0 {
            Some(r.read_bool()?)
        } else {
            None
        };
        Ok(ConnectResponse {
            protocol_version,
            time_out,
            session_id,
            passwd,
            read_only,
        })
    }
    fn write(&self, w: &mut Writer) {
        w.write_i32(self.protocol_version);
        w.write_i32(self.time_out);
        w.write_i64(self.session_id);
        w.write_buffer(self.passwd.as_deref());
        if let Some(ro) = self.read_only {
            w.write_bool(ro);
        }
    }
}

jute_record!(SetWatches {
    relative_zxid: i64,
    data_watches: Vec<String>,
    exist_watches: Vec<String>,
    child_watches: Vec<String>,
});

jute_record!(SetWatches2 {
    relative_zxid: i64,
    data_watches: Vec<String>,
    exist_watches: Vec<String>,
    child_watches: Vec<String>,
    persistent_watches: Vec<String>,
    persistent_recursive_watches: Vec<String>,
});

jute_record!(RequestHeader {
    xid: i32,
    r#type: i32
});
jute_record!(MultiHeader {
    r#type: i32,
    done: bool,
    err: i32
});
jute_record!(AuthPacket { r#type: i32, scheme: String, auth: Option<Bytes> });
jute_record!(ReplyHeader {
    xid: i32,
    zxid: i64,
    err: i32
});
jute_record!(GetDataRequest {
    path: String,
    watch: bool
});
jute_record!(SetDataRequest { path: String, data: Option<Bytes>, version: i32 });
jute_record!(
    /// The three server lists are null when not given, and the server tells
    /// an incremental change (joining/leaving) from a full one (new members)
    /// by which of them are null, so they keep jute's null.
    ReconfigRequest {
        joining_servers: Option<String>,
        leaving_servers: Option<String>,
        new_members: Option<String>,
        cur_config_id: i64,
    }
);
jute_record!(SetDataResponse { stat: Stat });
jute_record!(GetSaslRequest { token: Option<Bytes> });
jute_record!(SetSaslRequest { token: Option<Bytes> });
jute_record!(SetSaslResponse { token: Option<Bytes> });
jute_record!(CreateRequest { path: String, data: Option<Bytes>, acl: Vec<Acl>, flags: i32 });
jute_record!(CreateTtlRequest {
    path: String,
    data: Option<Bytes>,
    acl: Vec<Acl>,
    flags: i32,
    ttl: i64,
});
jute_record!(DeleteRequest {
    path: String,
    version: i32
});
jute_record!(GetChildrenRequest {
    path: String,
    watch: bool
});
jute_record!(GetAllChildrenNumberRequest { path: String });
jute_record!(GetChildren2Request {
    path: String,
    watch: bool
});
jute_record!(CheckVersionRequest {
    path: String,
    version: i32
});
jute_record!(
    /// Declared in `zookeeper.jute` but used by no ZooKeeper 3.9 operation.
    GetMaxChildrenRequest { path: String }
);
jute_record!(
    /// Declared in `zookeeper.jute` but used by no ZooKeeper 3.9 operation.
    GetMaxChildrenResponse { max: i32 }
);
jute_record!(
    /// Declared in `zookeeper.jute` but used by no ZooKeeper 3.9 operation.
    SetMaxChildrenRequest { path: String, max: i32 }
);
jute_record!(SyncRequest { path: String });
jute_record!(SyncResponse { path: String });
jute_record!(GetAclRequest { path: String });
jute_record!(SetAclRequest { path: String, acl: Vec<Acl>, version: i32 });
jute_record!(SetAclResponse { stat: Stat });
jute_record!(AddWatchRequest {
    path: String,
    mode: i32
});
jute_record!(WatcherEvent {
    r#type: i32,
    state: i32,
    path: String
});
jute_record!(ErrorResponse { err: i32 });
jute_record!(CreateResponse { path: String });
jute_record!(Create2Response {
    path: String,
    stat: Stat
});
jute_record!(ExistsRequest {
    path: String,
    watch: bool
});
jute_record!(ExistsResponse { stat: Stat });
jute_record!(GetDataResponse { data: Option<Bytes>, stat: Stat });
jute_record!(GetChildrenResponse { children: Vec<String> });
jute_record!(GetAllChildrenNumberResponse { total_number: i32 });
jute_record!(GetChildren2Response { children: Vec<String>, stat: Stat });
jute_record!(GetAclResponse { acl: Vec<Acl>, stat: Stat });
jute_record!(CheckWatchesRequest {
    path: String,
    r#type: i32
});
jute_record!(RemoveWatchesRequest {
    path: String,
    r#type: i32
});
jute_record!(GetEphemeralsRequest {
    prefix_path: String
});
jute_record!(GetEphemeralsResponse { ephemerals: Vec<String> });
jute_record!(WhoAmIResponse { client_info: Vec<ClientInfo> });

// ---- org.apache.zookeeper.server.quorum ----

jute_record!(
    /// What a follower or observer tells the leader about itself.
    LearnerInfo { serverid: i64, protocol_version: i32, config_version: i64 }
);
jute_record!(
    /// A message between quorum peers; `data` is significant for requests,
    /// proposals and syncs only.
    QuorumPacket { r#type: i32, zxid: i64, data: Option<Bytes>, authinfo: Vec<Id> }
);
jute_record!(
    /// A SASL message of quorum peer authentication.
    QuorumAuthPacket { magic: i64, status: i32, token: Option<Bytes> }
);

// ---- org.apache.zookeeper.server.persistence ----

jute_record!(
    /// The first record of every txn log and snapshot file.
    FileHeader { magic: i32, version: i32, dbid: i64 }
);

impl FileHeader {
    /// `FileTxnLog.TXNLOG_MAGIC`: "ZKLG" read as a big-endian int.
    pub const TXNLOG_MAGIC: i32 = i32::from_be_bytes(*b"ZKLG");
    /// `FileSnap.SNAP_MAGIC`: "ZKSN" read as a big-endian int.
    pub const SNAP_MAGIC: i32 = i32::from_be_bytes(*b"ZKSN");
    /// The version both `FileTxnLog` and `FileSnap` write.
    pub const VERSION: i32 = 2;
    /// The dbid `FileTxnLog` writes (a field it never sets); readers ignore it.
    pub const TXNLOG_DBID: i64 = 0;
    /// The dbid `FileSnap` writes; readers ignore it.
    pub const SNAP_DBID: i64 = -1;
}

// ---- org.apache.zookeeper.txn ----

jute_record!(TxnDigest {
    version: i32,
    tree_digest: i64
});
jute_record!(TxnHeader {
    client_id: i64,
    cxid: i32,
    zxid: i64,
    time: i64,
    r#type: i32
});
jute_record!(CreateTxnV0 { path: String, data: Option<Bytes>, acl: Vec<Acl>, ephemeral: bool });
jute_record!(CreateTxn {
    path: String,
    data: Option<Bytes>,
    acl: Vec<Acl>,
    ephemeral: bool,
    parent_c_version: i32,
});
jute_record!(CreateTtlTxn {
    path: String,
    data: Option<Bytes>,
    acl: Vec<Acl>,
    parent_c_version: i32,
    ttl: i64,
});
jute_record!(CreateContainerTxn {
    path: String,
    data: Option<Bytes>,
    acl: Vec<Acl>,
    parent_c_version: i32,
});
jute_record!(DeleteTxn { path: String });
jute_record!(SetDataTxn { path: String, data: Option<Bytes>, version: i32 });
jute_record!(CheckVersionTxn {
    path: String,
    version: i32
});
jute_record!(SetAclTxn { path: String, acl: Vec<Acl>, version: i32 });
jute_record!(
    /// Declared in `zookeeper.jute`; ZooKeeper 3.9 writes none to its log.
    SetMaxChildrenTxn { path: String, max: i32 }
);
jute_record!(CreateSessionTxn { time_out: i32 });
jute_record!(CloseSessionTxn { paths2_delete: Vec<String> });
jute_record!(ErrorTxn { err: i32 });
jute_record!(
    /// One operation inside a [`MultiTxn`]: its opcode and its encoded txn.
    Txn { r#type: i32, data: Option<Bytes> }
);
jute_record!(MultiTxn { txns: Vec<Txn> });
