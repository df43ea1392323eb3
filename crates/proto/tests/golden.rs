//! Frames captured from Apache ZooKeeper 3.8's Java client and server by
//! `tests/golden/capture.py` (see there to recapture). Every frame must decode
//! to the record its opcode names, with nothing left over, and re-encode to
//! the same bytes; selected frames are checked field by field.

use bytes::Bytes;
use ensemble_proto::frame::{encode_frame, encode_reply, encode_request};
use ensemble_proto::multi::{MultiOp, MultiRequest, MultiResponse, MultiResult};
use ensemble_proto::*;

const SCENARIOS: &[(&str, &str)] = &[
    ("zkcli_create", include_str!("golden/zkcli_create.hex")),
    ("zkcli_get", include_str!("golden/zkcli_get.hex")),
    (
        "zkcli_get_missing",
        include_str!("golden/zkcli_get_missing.hex"),
    ),
    ("zkcli_ls", include_str!("golden/zkcli_ls.hex")),
    ("zkcli_stat", include_str!("golden/zkcli_stat.hex")),
    ("java_multi", include_str!("golden/java_multi.hex")),
    ("java_misc", include_str!("golden/java_misc.hex")),
];

struct Frame {
    to_server: bool,
    label: String,
    bytes: Vec<u8>,
}

fn frames(text: &str) -> Vec<Frame> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let dir = parts.next().unwrap();
            let label = parts.next().unwrap().to_string();
            let h = parts.next().unwrap();
            let bytes = (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect();
            Frame {
                to_server: dir == ">",
                label,
                bytes,
            }
        })
        .collect()
}

fn scenario(name: &str) -> Vec<Frame> {
    frames(SCENARIOS.iter().find(|(n, _)| *n == name).unwrap().1)
}

fn find<'a>(fs: &'a [Frame], to_server: bool, label: &str, nth: usize) -> &'a Frame {
    fs.iter()
        .filter(|f| f.to_server == to_server && f.label == label)
        .nth(nth)
        .unwrap_or_else(|| panic!("no frame {label} #{nth}"))
}

/// Decodes the whole of `r` as a `T`.
fn whole<T: Jute>(r: &mut Reader) -> T {
    let v = T::read(r).unwrap_or_else(|e| panic!("{}: {e}", std::any::type_name::<T>()));
    assert_eq!(
        r.remaining(),
        0,
        "{} left bytes",
        std::any::type_name::<T>()
    );
    v
}

fn body_of(frame: &Frame) -> Reader {
    let len = i32::from_be_bytes(frame.bytes[..4].try_into().unwrap());
    assert_eq!(
        len as usize,
        frame.bytes.len() - 4,
        "length prefix of {}",
        frame.label
    );
    Reader::from_slice(&frame.bytes[4..])
}

/// A request's header and record.
fn request<T: Jute>(frame: &Frame) -> (RequestHeader, T) {
    let mut r = body_of(frame);
    let h = RequestHeader::read(&mut r).unwrap();
    (h, whole(&mut r))
}

/// A reply's header and record.
fn reply<T: Jute>(frame: &Frame) -> (ReplyHeader, T) {
    let mut r = body_of(frame);
    let h = ReplyHeader::read(&mut r).unwrap();
    (h, whole(&mut r))
}

struct Empty;
impl Jute for Empty {
    fn read(_: &mut Reader) -> Result<Self, JuteError> {
        Ok(Empty)
    }
    fn write(&self, _: &mut Writer) {}
}

fn reencode_request<T: Jute>(frame: &Frame) -> Bytes {
    let (h, body) = request::<T>(frame);
    encode_request(&h, Some(&body))
}

fn reencode_reply<T: Jute>(frame: &Frame) -> Bytes {
    let (h, body) = reply::<T>(frame);
    encode_reply(&h, Some(&body))
}

fn reencode(frame: &Frame) -> Bytes {
    if frame.label == "connect" {
        let mut r = body_of(frame);
        return if frame.to_server {
            encode_frame(&whole::<ConnectRequest>(&mut r))
        } else {
            encode_frame(&whole::<ConnectResponse>(&mut r))
        };
    }
    if frame.to_server {
        match frame.label.as_str() {
            "create" | "create2" | "createContainer" => reencode_request::<CreateRequest>(frame),
            "createTTL" => reencode_request::<CreateTtlRequest>(frame),
            "delete" => reencode_request::<DeleteRequest>(frame),
            "exists" => reencode_request::<ExistsRequest>(frame),
            "getData" => reencode_request::<GetDataRequest>(frame),
            "setData" => reencode_request::<SetDataRequest>(frame),
            "getChildren" => reencode_request::<GetChildrenRequest>(frame),
            "getChildren2" => reencode_request::<GetChildren2Request>(frame),
            "getACL" => reencode_request::<GetAclRequest>(frame),
            "setACL" => reencode_request::<SetAclRequest>(frame),
            "addWatch" => reencode_request::<AddWatchRequest>(frame),
            "getEphemerals" => reencode_request::<GetEphemeralsRequest>(frame),
            "getAllChildrenNumber" => reencode_request::<GetAllChildrenNumberRequest>(frame),
            "sync" => reencode_request::<SyncRequest>(frame),
            "auth" => reencode_request::<AuthPacket>(frame),
            "multi" | "multiRead" => reencode_request::<MultiRequest>(frame),
            "closeSession" | "ping" => reencode_request::<Empty>(frame),
            other => panic!("no decoder for request {other}"),
        }
    } else {
        let h = ReplyHeader::read(&mut body_of(frame)).unwrap();
        if h.err != 0 {
            return reencode_reply::<Empty>(frame);
        }
        match frame.label.as_str() {
            "create" => reencode_reply::<CreateResponse>(frame),
            "create2" | "createTTL" | "createContainer" => reencode_reply::<Create2Response>(frame),
            "exists" => reencode_reply::<ExistsResponse>(frame),
            "getData" => reencode_reply::<GetDataResponse>(frame),
            "setData" => reencode_reply::<SetDataResponse>(frame),
            "getChildren" => reencode_reply::<GetChildrenResponse>(frame),
            "getChildren2" => reencode_reply::<GetChildren2Response>(frame),
            "getACL" => reencode_reply::<GetAclResponse>(frame),
            "setACL" => reencode_reply::<SetAclResponse>(frame),
            "getEphemerals" => reencode_reply::<GetEphemeralsResponse>(frame),
            "getAllChildrenNumber" => reencode_reply::<GetAllChildrenNumberResponse>(frame),
            "sync" => reencode_reply::<SyncResponse>(frame),
            "notification" => reencode_reply::<WatcherEvent>(frame),
            "multi" | "multiRead" => reencode_reply::<MultiResponse>(frame),
            // FinalRequestProcessor answers addWatch with ErrorResponse(0).
            "addWatch" => reencode_reply::<ErrorResponse>(frame),
            "delete" | "auth" | "closeSession" | "ping" => reencode_reply::<Empty>(frame),
            other => panic!("no decoder for reply {other}"),
        }
    }
}

#[test]
fn every_captured_frame_decodes_and_reencodes_to_the_same_bytes() {
    let mut count = 0;
    for (name, text) in SCENARIOS {
        for f in frames(text) {
            assert_eq!(&reencode(&f)[..], &f.bytes[..], "{name}: {} frame", f.label);
            count += 1;
        }
    }
    assert!(count > 60, "only {count} frames");
}

#[test]
fn java_client_connect_request_has_read_only_byte() {
    let fs = scenario("zkcli_create");
    let req: ConnectRequest = whole(&mut body_of(find(&fs, true, "connect", 0)));
    assert_eq!(
        req,
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            time_out: 30000,
            session_id: 0,
            passwd: Some(Bytes::from_static(&[0; 16])),
            read_only: Some(false),
        }
    );
}

#[test]
fn java_server_connect_response_has_read_only_byte() {
    let fs = scenario("zkcli_create");
    let rsp: ConnectResponse = whole(&mut body_of(find(&fs, false, "connect", 0)));
    assert_eq!(rsp.protocol_version, 0);
    assert_eq!(rsp.time_out, 30000);
    assert_ne!(rsp.session_id, 0);
    assert_eq!(rsp.passwd.map(|p| p.len()), Some(16));
    assert_eq!(rsp.read_only, Some(false));
}

#[test]
fn zkcli_create_sends_create_with_open_acl() {
    let fs = scenario("zkcli_create");
    let (h, req) = request::<CreateRequest>(find(&fs, true, "create", 0));
    assert_eq!(
        h,
        RequestHeader {
            xid: 1,
            r#type: op::CREATE
        }
    );
    let world_anyone = Id {
        scheme: "world".into(),
        id: "anyone".into(),
    };
    assert_eq!(
        req,
        CreateRequest {
            path: "/golden".into(),
            data: Some(Bytes::from_static(b"hello")),
            acl: vec![Acl {
                perms: perms::ALL,
                id: world_anyone
            }],
            flags: CreateMode::Persistent.flags(),
        }
    );
    let (rh, rsp) = reply::<CreateResponse>(find(&fs, false, "create", 0));
    assert_eq!((rh.xid, rh.err), (1, 0));
    assert_eq!(rsp.path, "/golden");
}

#[test]
fn zkcli_get_reads_data_and_stat() {
    let fs = scenario("zkcli_get");
    let (_, req) = request::<GetDataRequest>(find(&fs, true, "getData", 0));
    assert_eq!(
        req,
        GetDataRequest {
            path: "/golden".into(),
            watch: false
        }
    );
    let (_, rsp) = reply::<GetDataResponse>(find(&fs, false, "getData", 0));
    assert_eq!(rsp.data, Some(Bytes::from_static(b"hello")));
    assert_eq!(rsp.stat.data_length, 5);
    assert_eq!(rsp.stat.czxid, rsp.stat.mzxid);
}

#[test]
fn zkcli_get_missing_node_replies_header_only_with_no_node() {
    let fs = scenario("zkcli_get_missing");
    let f = find(&fs, false, "getData", 0);
    assert_eq!(f.bytes.len(), 20);
    let (h, Empty) = reply::<Empty>(f);
    assert_eq!(ErrorCode::from_code(h.err), Some(ErrorCode::NoNode));
}

#[test]
fn zkcli_ls_uses_get_children2() {
    let fs = scenario("zkcli_ls");
    let (_, req) = request::<GetChildren2Request>(find(&fs, true, "getChildren2", 0));
    assert_eq!(req.path, "/");
    let (_, rsp) = reply::<GetChildren2Response>(find(&fs, false, "getChildren2", 0));
    assert!(rsp.children.contains(&"golden".to_string()));
    assert!(rsp.children.contains(&"zookeeper".to_string()));
}

#[test]
fn java_multi_request_decodes_into_ops() {
    let fs = scenario("java_multi");
    let (h, req) = request::<MultiRequest>(find(&fs, true, "multi", 0));
    assert_eq!(h.r#type, op::MULTI);
    let opcodes: Vec<i32> = req.ops.iter().map(MultiOp::opcode).collect();
    assert_eq!(
        opcodes,
        [
            op::CREATE,
            op::CREATE_TTL,
            op::CHECK,
            op::SET_DATA,
            op::DELETE
        ]
    );
    match &req.ops[1] {
        MultiOp::CreateTtl(c) => {
            assert_eq!(c.path, "/multi/ttl");
            assert_eq!(c.ttl, 60000);
            assert_eq!(c.flags, CreateMode::PersistentWithTtl.flags());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn java_multi_response_answers_create_ttl_with_create2() {
    let fs = scenario("java_multi");
    let (_, rsp) = reply::<MultiResponse>(find(&fs, false, "multi", 0));
    let opcodes: Vec<i32> = rsp.results.iter().map(MultiResult::opcode).collect();
    assert_eq!(
        opcodes,
        [op::CREATE, op::CREATE2, op::CHECK, op::SET_DATA, op::DELETE]
    );
    assert_eq!(
        rsp.results[0],
        MultiResult::Create {
            path: "/multi".into()
        }
    );
}

#[test]
fn java_failed_multi_reports_every_op_as_error() {
    let fs = scenario("java_multi");
    let (h, req) = request::<MultiRequest>(find(&fs, true, "multi", 1));
    assert_eq!(h.r#type, op::MULTI);
    assert!(matches!(&req.ops[1], MultiOp::Create(op::CREATE, c) if c.data.is_none()));
    let (rh, rsp) = reply::<MultiResponse>(find(&fs, false, "multi", 1));
    assert_eq!(rh.err, 0);
    assert_eq!(
        rsp.results,
        [
            MultiResult::Error { err: 0 },
            MultiResult::Error {
                err: ErrorCode::NodeExists.code()
            },
            MultiResult::Error {
                err: ErrorCode::RuntimeInconsistency.code()
            },
        ]
    );
}

#[test]
fn java_multi_read_mixes_results_and_errors() {
    let fs = scenario("java_multi");
    let (h, req) = request::<MultiRequest>(find(&fs, true, "multiRead", 0));
    assert_eq!(h.r#type, op::MULTI_READ);
    assert!(req.ops.iter().all(MultiOp::is_read));
    let (_, rsp) = reply::<MultiResponse>(find(&fs, false, "multiRead", 0));
    assert!(
        matches!(&rsp.results[0], MultiResult::GetData { data: Some(d), .. } if &d[..] == b"n")
    );
    assert!(
        matches!(&rsp.results[1], MultiResult::GetChildren { children } if children.contains(&"multi".to_string()))
    );
    assert_eq!(
        rsp.results[2],
        MultiResult::Error {
            err: ErrorCode::NoNode.code()
        }
    );
}

#[test]
fn java_data_watch_fires_notification_with_xid_minus_one() {
    let fs = scenario("java_misc");
    let (h, ev) = reply::<WatcherEvent>(find(&fs, false, "notification", 0));
    assert_eq!(
        h,
        ReplyHeader {
            xid: xid::NOTIFICATION,
            zxid: -1,
            err: 0
        }
    );
    assert_eq!(
        ev,
        WatcherEvent {
            r#type: event_type::NODE_DATA_CHANGED,
            state: keeper_state::SYNC_CONNECTED,
            path: "/golden".into(),
        }
    );
}

#[test]
fn java_auth_packet_uses_auth_xid() {
    let fs = scenario("java_misc");
    let (h, auth) = request::<AuthPacket>(find(&fs, true, "auth", 0));
    assert_eq!(
        h,
        RequestHeader {
            xid: xid::AUTH,
            r#type: op::AUTH
        }
    );
    assert_eq!(auth.scheme, "digest");
    assert_eq!(auth.auth, Some(Bytes::from_static(b"user:secret")));
    let (rh, Empty) = reply::<Empty>(find(&fs, false, "auth", 0));
    assert_eq!((rh.xid, rh.zxid, rh.err), (xid::AUTH, 0, 0));
}

#[test]
fn java_close_session_has_no_body_either_way() {
    let fs = scenario("java_misc");
    let f = find(&fs, true, "closeSession", 0);
    assert_eq!(f.bytes.len(), 12);
    let (h, Empty) = request::<Empty>(f);
    assert_eq!(h.r#type, op::CLOSE_SESSION);
    assert_eq!(find(&fs, false, "closeSession", 0).bytes.len(), 20);
}

#[test]
fn java_add_watch_and_create_modes_use_zookeeper_numbers() {
    let fs = scenario("java_misc");
    let (_, w) = request::<AddWatchRequest>(find(&fs, true, "addWatch", 0));
    assert_eq!(w.mode, add_watch_mode::PERSISTENT_RECURSIVE);
    let (_, ok) = reply::<ErrorResponse>(find(&fs, false, "addWatch", 0));
    assert_eq!(ok.err, 0);
    let (_, c) = request::<CreateRequest>(find(&fs, true, "create2", 0));
    assert_eq!(
        CreateMode::from_flags(c.flags),
        Some(CreateMode::EphemeralSequential)
    );
    let (_, c) = request::<CreateRequest>(find(&fs, true, "createContainer", 0));
    assert_eq!(CreateMode::from_flags(c.flags), Some(CreateMode::Container));
    let (_, set_acl) = request::<SetAclRequest>(find(&fs, true, "setACL", 0));
    assert_eq!(set_acl.acl[0].perms, perms::READ);
}
