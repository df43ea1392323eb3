//! Writes small valid inputs for every target into `corpus/<target>/`:
//! real frames, every record, a txn log written by the storage crate's
//! writer and snapshots written by its snapshot writer. Run once before the
//! first fuzzing run (`cargo run --example seeds` in this directory); the
//! zoo.cfg seeds come from `conf/zoo.cfg` and the config tests, by hand.

use bytes::Bytes;
use ensemble_fuzz::entries_to_input;
use ensemble_proto::frame::{encode_frame, encode_request};
use ensemble_proto::*;
use ensemble_storage::txnlog::marshal_entry;
use ensemble_storage::{write_snapshot, Compression, TxnLogOptions, TxnLogWriter};
use ensemble_tree::{DataTree, TxnBody};
use std::path::Path;

fn save(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("create the corpus directory");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write a seed");
}

fn acl() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

fn create(path: &str, flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Some(Bytes::from_static(b"hello")),
        acl: acl(),
        flags,
    }
}

fn requests() -> Vec<(i32, Bytes)> {
    let multi = MultiRequest {
        ops: vec![
            MultiOp::Create(op::CREATE, create("/m", 0)),
            MultiOp::SetData(SetDataRequest {
                path: "/m".into(),
                data: Some(Bytes::from_static(b"x")),
                version: -1,
            }),
            MultiOp::Check(CheckVersionRequest {
                path: "/m".into(),
                version: 1,
            }),
            MultiOp::Delete(DeleteRequest {
                path: "/m".into(),
                version: -1,
            }),
        ],
    };
    let multi_read = MultiRequest {
        ops: vec![
            MultiOp::GetData(GetDataRequest {
                path: "/a".into(),
                watch: false,
            }),
            MultiOp::GetChildren(GetChildrenRequest {
                path: "/".into(),
                watch: false,
            }),
        ],
    };
    let watches = vec!["/a".to_string(), "/b/c".to_string()];
    vec![
        (op::CREATE, create("/a", 0).to_bytes()),
        (op::CREATE2, create("/a/seq-", 2).to_bytes()),
        (op::CREATE_CONTAINER, create("/c", 4).to_bytes()),
        (
            op::CREATE_TTL,
            CreateTtlRequest {
                path: "/t".into(),
                data: None,
                acl: acl(),
                flags: 5,
                ttl: 1000,
            }
            .to_bytes(),
        ),
        (
            op::DELETE,
            DeleteRequest {
                path: "/a".into(),
                version: 3,
            }
            .to_bytes(),
        ),
        (
            op::EXISTS,
            ExistsRequest {
                path: "/a".into(),
                watch: true,
            }
            .to_bytes(),
        ),
        (
            op::GET_DATA,
            GetDataRequest {
                path: "/a".into(),
                watch: true,
            }
            .to_bytes(),
        ),
        (
            op::SET_DATA,
            SetDataRequest {
                path: "/a".into(),
                data: Some(Bytes::from_static(b"data")),
                version: -1,
            }
            .to_bytes(),
        ),
        (op::GET_ACL, GetAclRequest { path: "/a".into() }.to_bytes()),
        (
            op::SET_ACL,
            SetAclRequest {
                path: "/a".into(),
                acl: acl(),
                version: 0,
            }
            .to_bytes(),
        ),
        (
            op::GET_CHILDREN,
            GetChildrenRequest {
                path: "/".into(),
                watch: true,
            }
            .to_bytes(),
        ),
        (
            op::GET_CHILDREN2,
            GetChildren2Request {
                path: "/".into(),
                watch: false,
            }
            .to_bytes(),
        ),
        (op::SYNC, SyncRequest { path: "/".into() }.to_bytes()),
        (
            op::CHECK,
            CheckVersionRequest {
                path: "/a".into(),
                version: 2,
            }
            .to_bytes(),
        ),
        (op::MULTI, multi.to_bytes()),
        (op::MULTI_READ, multi_read.to_bytes()),
        (
            op::RECONFIG,
            ReconfigRequest {
                joining_servers: Some("server.4=127.0.0.4:2888:3888;2181".into()),
                leaving_servers: None,
                new_members: None,
                cur_config_id: -1,
            }
            .to_bytes(),
        ),
        (
            op::CHECK_WATCHES,
            CheckWatchesRequest {
                path: "/a".into(),
                r#type: 1,
            }
            .to_bytes(),
        ),
        (
            op::REMOVE_WATCHES,
            RemoveWatchesRequest {
                path: "/a".into(),
                r#type: 3,
            }
            .to_bytes(),
        ),
        (
            op::AUTH,
            AuthPacket {
                r#type: 0,
                scheme: "digest".into(),
                auth: Some(Bytes::from_static(b"user:secret")),
            }
            .to_bytes(),
        ),
        (
            op::SET_WATCHES,
            SetWatches {
                relative_zxid: 5,
                data_watches: watches.clone(),
                exist_watches: watches.clone(),
                child_watches: watches.clone(),
            }
            .to_bytes(),
        ),
        (
            op::SET_WATCHES2,
            SetWatches2 {
                relative_zxid: 5,
                data_watches: watches.clone(),
                exist_watches: vec![],
                child_watches: watches.clone(),
                persistent_watches: watches.clone(),
                persistent_recursive_watches: watches,
            }
            .to_bytes(),
        ),
        (
            op::SASL,
            GetSaslRequest {
                token: Some(Bytes::from_static(b"tok")),
            }
            .to_bytes(),
        ),
        (
            op::GET_EPHEMERALS,
            GetEphemeralsRequest {
                prefix_path: "/".into(),
            }
            .to_bytes(),
        ),
        (
            op::GET_ALL_CHILDREN_NUMBER,
            GetAllChildrenNumberRequest { path: "/".into() }.to_bytes(),
        ),
        (
            op::ADD_WATCH,
            AddWatchRequest {
                path: "/a".into(),
                mode: 1,
            }
            .to_bytes(),
        ),
        (op::PING, Bytes::new()),
        (op::CLOSE_SESSION, Bytes::new()),
        (op::WHO_AM_I, Bytes::new()),
    ]
}

fn txns() -> Vec<TxnBody> {
    let create = CreateTxn {
        path: "/a".into(),
        data: Some(Bytes::from_static(b"hello")),
        acl: acl(),
        ephemeral: false,
        parent_c_version: 1,
    };
    vec![
        TxnBody::CreateSession(CreateSessionTxn { time_out: 30000 }),
        TxnBody::Create(create.clone()),
        TxnBody::Create2(CreateTxn {
            path: "/a/e".into(),
            ephemeral: true,
            ..create.clone()
        }),
        TxnBody::CreateContainer(CreateContainerTxn {
            path: "/c".into(),
            data: None,
            acl: acl(),
            parent_c_version: 2,
        }),
        TxnBody::CreateTtl(CreateTtlTxn {
            path: "/t".into(),
            data: Some(Bytes::new()),
            acl: acl(),
            parent_c_version: 3,
            ttl: 5000,
        }),
        TxnBody::SetData(SetDataTxn {
            path: "/a".into(),
            data: Some(Bytes::from_static(b"v2")),
            version: 1,
        }),
        TxnBody::SetAcl(SetAclTxn {
            path: "/a".into(),
            acl: acl(),
            version: 1,
        }),
        TxnBody::Check(CheckVersionTxn {
            path: "/a".into(),
            version: 1,
        }),
        TxnBody::Multi(vec![
            TxnBody::Create(CreateTxn {
                path: "/m".into(),
                ..create.clone()
            }),
            TxnBody::SetData(SetDataTxn {
                path: "/m".into(),
                data: None,
                version: 1,
            }),
            TxnBody::Delete(DeleteTxn { path: "/m".into() }),
        ]),
        TxnBody::Reconfig(SetDataTxn {
            path: "/zookeeper/config".into(),
            data: Some(Bytes::from_static(
                b"server.1=127.0.0.1:2888:3888;2181\nversion=100000000",
            )),
            version: -1,
        }),
        TxnBody::DeleteContainer(DeleteTxn { path: "/c".into() }),
        TxnBody::Delete(DeleteTxn { path: "/t".into() }),
        TxnBody::Error(ErrorTxn { err: -101 }),
        TxnBody::CloseSession(CloseSessionTxn {
            paths2_delete: vec!["/a/e".into()],
        }),
    ]
}

const SESSION: i64 = 0x1000_0000_0000_0001;

/// The txns as (header, body), zxids 1, 2, ... and times in 2024.
fn logged() -> Vec<(TxnHeader, TxnBody)> {
    txns()
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let hdr = TxnHeader {
                client_id: SESSION,
                cxid: i as i32,
                zxid: i as i64 + 1,
                time: 1_717_000_000_000 + i as i64,
                r#type: body.txn_type(),
            };
            (hdr, body)
        })
        .collect()
}

fn frame_seeds() {
    let connect = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 30000,
        session_id: 0,
        passwd: Some(Bytes::from_static(&[0; 16])),
        read_only: Some(false),
    };
    let mut stream = encode_frame(&connect).to_vec();
    for (i, (opcode, body)) in requests().into_iter().enumerate() {
        let hdr = RequestHeader {
            xid: i as i32 + 1,
            r#type: opcode,
        };
        let frame = if body.is_empty() {
            encode_request(&hdr, None::<&RequestHeader>)
        } else {
            encode_request(&hdr, Some(&RawBody(body)))
        };
        stream.extend_from_slice(&frame);
    }
    let mut all = vec![0, 7];
    all.extend_from_slice(&stream);
    save("frame", "session", &all);
    let mut small = vec![1, 3];
    small.extend_from_slice(&stream[..stream.len().min(200)]);
    save("frame", "small-max", &small);
    save("frame", "ruok", b"\x00\x02ruok");
    save("frame", "oversized", b"\x00\x04\x00\x10\x00\x00abcd");
    save("frame", "negative", b"\x00\x04\xff\xff\xff\xfe");
}

/// Already-encoded bytes written as they are.
struct RawBody(Bytes);

impl Jute for RawBody {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        Ok(RawBody(r.rest()))
    }
    fn write(&self, w: &mut Writer) {
        w.write_raw(&self.0);
    }
}

fn jute_seeds() {
    // The default value of every record, in the order of the target's list.
    let defaults: Vec<Bytes> = vec![
        Id::default().to_bytes(),
        acl()[0].to_bytes(),
        Stat::default().to_bytes(),
        StatPersisted::default().to_bytes(),
        ClientInfo::default().to_bytes(),
        ConnectRequest::default().to_bytes(),
        ConnectResponse::default().to_bytes(),
        SetWatches::default().to_bytes(),
        SetWatches2::default().to_bytes(),
        RequestHeader::default().to_bytes(),
        MultiHeader::default().to_bytes(),
        AuthPacket::default().to_bytes(),
        ReplyHeader::default().to_bytes(),
        GetDataRequest::default().to_bytes(),
        SetDataRequest::default().to_bytes(),
        ReconfigRequest::default().to_bytes(),
        SetDataResponse::default().to_bytes(),
        GetSaslRequest::default().to_bytes(),
        SetSaslRequest::default().to_bytes(),
        SetSaslResponse::default().to_bytes(),
        create("/a", 0).to_bytes(),
        CreateTtlRequest::default().to_bytes(),
        DeleteRequest::default().to_bytes(),
        GetChildrenRequest::default().to_bytes(),
        GetAllChildrenNumberRequest::default().to_bytes(),
        GetChildren2Request::default().to_bytes(),
        CheckVersionRequest::default().to_bytes(),
        GetMaxChildrenRequest::default().to_bytes(),
        GetMaxChildrenResponse::default().to_bytes(),
        SetMaxChildrenRequest::default().to_bytes(),
        SyncRequest::default().to_bytes(),
        SyncResponse::default().to_bytes(),
        GetAclRequest::default().to_bytes(),
        SetAclRequest::default().to_bytes(),
        SetAclResponse::default().to_bytes(),
        AddWatchRequest::default().to_bytes(),
        WatcherEvent::default().to_bytes(),
        ErrorResponse::default().to_bytes(),
        CreateResponse::default().to_bytes(),
        Create2Response::default().to_bytes(),
        ExistsRequest::default().to_bytes(),
        ExistsResponse::default().to_bytes(),
        GetDataResponse::default().to_bytes(),
        GetChildrenResponse {
            children: vec!["a".into(), "b".into()],
        }
        .to_bytes(),
        GetAllChildrenNumberResponse::default().to_bytes(),
        GetChildren2Response::default().to_bytes(),
        GetAclResponse {
            acl: acl(),
            stat: Stat::default(),
        }
        .to_bytes(),
        CheckWatchesRequest::default().to_bytes(),
        RemoveWatchesRequest::default().to_bytes(),
        GetEphemeralsRequest::default().to_bytes(),
        GetEphemeralsResponse::default().to_bytes(),
        WhoAmIResponse {
            client_info: vec![ClientInfo {
                auth_scheme: "ip".into(),
                user: "127.0.0.1".into(),
            }],
        }
        .to_bytes(),
        LearnerInfo::default().to_bytes(),
        QuorumPacket::default().to_bytes(),
        QuorumAuthPacket::default().to_bytes(),
        FileHeader::default().to_bytes(),
        TxnDigest::default().to_bytes(),
        TxnHeader::default().to_bytes(),
        CreateTxnV0::default().to_bytes(),
        CreateTxn::default().to_bytes(),
        CreateTtlTxn::default().to_bytes(),
        CreateContainerTxn::default().to_bytes(),
        DeleteTxn::default().to_bytes(),
        SetDataTxn::default().to_bytes(),
        CheckVersionTxn::default().to_bytes(),
        SetAclTxn::default().to_bytes(),
        SetMaxChildrenTxn::default().to_bytes(),
        CreateSessionTxn::default().to_bytes(),
        CloseSessionTxn::default().to_bytes(),
        ErrorTxn::default().to_bytes(),
        Txn::default().to_bytes(),
        MultiTxn::default().to_bytes(),
        requests()[14].1.clone(),
        MultiResponse {
            results: vec![
                MultiResult::Create { path: "/a".into() },
                MultiResult::Create2 {
                    path: "/b".into(),
                    stat: Stat::default(),
                },
                MultiResult::Delete,
                MultiResult::SetData {
                    stat: Stat::default(),
                },
                MultiResult::Check,
                MultiResult::GetData {
                    data: None,
                    stat: Stat::default(),
                },
                MultiResult::GetChildren {
                    children: vec!["x".into()],
                },
                MultiResult::Error { err: -101 },
            ],
        }
        .to_bytes(),
    ];
    for (i, b) in defaults.iter().enumerate() {
        let mut s = vec![i as u8];
        s.extend_from_slice(b);
        save("jute_records", &format!("record-{i:02}"), &s);
    }
    for (hdr, body) in logged() {
        let mut s = vec![0x80, body.txn_type() as i8 as u8];
        s.extend_from_slice(&body.encode());
        save("jute_records", &format!("txn-{}", hdr.zxid), &s);
        let mut s = vec![0xc0];
        let digest = TxnDigest {
            version: 2,
            tree_digest: 0x1234_5678,
        };
        s.extend_from_slice(&marshal_entry(&hdr, &body.encode(), Some(&digest)));
        save("jute_records", &format!("entry-{}", hdr.zxid), &s);
    }
    for (opcode, body) in requests() {
        let mut s = vec![0xe0, opcode as i8 as u8];
        s.extend_from_slice(&body);
        save("jute_records", &format!("request-{opcode}"), &s);
    }
}

fn storage_seeds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = TxnLogOptions {
        pre_alloc_size: 0,
        force_sync: false,
        ..TxnLogOptions::default()
    };
    let mut log = TxnLogWriter::open(dir.path(), opts).expect("open the log");
    let mut tree = DataTree::new();
    let mut entries = Vec::new();
    for (hdr, body) in logged() {
        tree.apply(&hdr, &body);
        let digest = TxnDigest {
            version: ensemble_tree::DIGEST_VERSION,
            tree_digest: tree.digest(),
        };
        log.append(&hdr, &body.encode(), Some(&digest))
            .expect("append");
        entries.push(Bytes::from(marshal_entry(
            &hdr,
            &body.encode(),
            Some(&digest),
        )));
        if hdr.zxid == 9 {
            // A snapshot in the middle, with the session still open.
            for c in [Compression::None, Compression::Gzip, Compression::Snappy] {
                write_snapshot(dir.path(), &tree, &[(SESSION, 30000)], hdr.zxid, c)
                    .expect("write a snapshot");
            }
        }
    }
    log.commit().expect("commit");
    log.close().expect("close");
    let version = dir.path().join("version-2");
    let file = std::fs::read(version.join("log.1")).expect("read the log");
    let mut raw = vec![1];
    raw.extend_from_slice(&file);
    save("txnlog", "log", &raw);
    let mut built = vec![0];
    built.extend_from_slice(&entries_to_input(&entries));
    save("txnlog", "entries", &built);
    // Two files, the second starting at zxid 8; then the same from an
    // empty snapshot at zxid 9.
    let split = entries_to_input(&entries[..7]).len() as u16;
    for (mode, snap_zxid) in [(4u8, 0u8), (12, 9)] {
        let mut s = vec![mode];
        s.extend_from_slice(&split.to_be_bytes());
        s.extend_from_slice(&[7, snap_zxid]);
        s.extend_from_slice(&entries_to_input(&entries));
        save("txnlog", &format!("two-files-{mode}"), &s);
    }
    let mut torn = raw.clone();
    torn.truncate(torn.len() - 7);
    save("txnlog", "torn", &torn);

    let plain = std::fs::read(version.join("snapshot.9")).expect("read the snapshot");
    let gz = std::fs::read(version.join("snapshot.9.gz")).expect("read the snapshot");
    let snappy = std::fs::read(version.join("snapshot.9.snappy")).expect("read the snapshot");
    for (mode, name, bytes) in [
        (0u8, "plain", &plain),
        (1, "gz", &gz),
        (2, "snappy", &snappy),
        (3, "to-gz", &plain),
        (4, "to-snappy", &plain),
    ] {
        let mut s = vec![mode];
        s.extend_from_slice(bytes);
        save("snapshot", name, &s);
    }
    // Up to the first seal: the digest, last-zxid and their seals (67 bytes)
    // and the first seal (13) come off; the harness puts the seal back.
    let mut s = vec![5];
    s.extend_from_slice(&plain[..plain.len() - 67 - 13]);
    save("snapshot", "sealed", &s);
    let fresh = DataTree::new();
    let p = write_snapshot(dir.path(), &fresh, &[], 0, Compression::None).expect("snapshot.0");
    let mut s = vec![0];
    s.extend_from_slice(&std::fs::read(p).expect("read snapshot.0"));
    save("snapshot", "fresh", &s);
}

fn main() {
    frame_seeds();
    jute_seeds();
    storage_seeds();
}
