//! multi and multiRead bodies as `MultiOperationRecord` and `MultiResponse`
//! write them.

use bytes::Bytes;
use ensemble_proto::multi::*;
use ensemble_proto::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn request_ops_have_err_minus_one_and_a_done_terminator() {
    let req = MultiRequest {
        ops: vec![MultiOp::Delete(DeleteRequest {
            path: "/a".into(),
            version: 3,
        })],
    };
    let expected = hex(concat!(
        "00000002",
        "00",
        "ffffffff", // MultiHeader{delete, false, -1}
        "000000022f61",
        "00000003", // DeleteRequest
        "ffffffff",
        "01",
        "ffffffff", // MultiHeader{-1, true, -1}
    ));
    assert_eq!(&req.to_bytes()[..], &expected[..]);
    assert_eq!(MultiRequest::from_bytes(&expected).unwrap(), req);
}

#[test]
fn results_carry_their_error_in_header_and_body() {
    let rsp = MultiResponse {
        results: vec![
            MultiResult::Error { err: 0 },
            MultiResult::Error { err: -110 },
            MultiResult::Error { err: -2 },
        ],
    };
    let expected = hex(concat!(
        "ffffffff", "00", "00000000", "00000000", "ffffffff", "00", "ffffff92", "ffffff92",
        "ffffffff", "00", "fffffffe", "fffffffe", "ffffffff", "01", "ffffffff",
    ));
    assert_eq!(&rsp.to_bytes()[..], &expected[..]);
    assert_eq!(MultiResponse::from_bytes(&expected).unwrap(), rsp);
}

#[test]
fn delete_and_check_results_have_no_body() {
    let rsp = MultiResponse {
        results: vec![MultiResult::Delete, MultiResult::Check],
    };
    let expected = hex("0000000200000000000000000d0000000000ffffffff01ffffffff");
    assert_eq!(&rsp.to_bytes()[..], &expected[..]);
}

#[test]
fn create_results_choose_response_by_opcode() {
    let rsp = MultiResponse {
        results: vec![
            MultiResult::Create { path: "/a".into() },
            MultiResult::Create2 {
                path: "/b".into(),
                stat: Stat::default(),
            },
        ],
    };
    let bytes = rsp.to_bytes();
    assert_eq!(&bytes[..4], &[0, 0, 0, 1]);
    assert_eq!(&bytes[15..19], &[0, 0, 0, 15]);
    assert_eq!(bytes.len(), 9 + 6 + 9 + 6 + 68 + 9);
    assert_eq!(MultiResponse::from_bytes(&bytes).unwrap(), rsp);
}

#[test]
fn reader_stops_at_done_whatever_the_type() {
    let bytes = hex("0000000d01000000000000000d00");
    assert_eq!(MultiRequest::from_bytes(&bytes).unwrap().ops, vec![]);
}

#[test]
fn unknown_op_type_is_an_error() {
    let bytes = hex("0000000300ffffffff000000012f00ffffffff01ffffffff");
    assert!(matches!(
        MultiRequest::from_bytes(&bytes),
        Err(JuteError::Invalid(_))
    ));
}

#[test]
fn unknown_result_type_is_an_error() {
    let bytes = hex("0000000300000000000000000000ffffffff01ffffffff");
    assert!(matches!(
        MultiResponse::from_bytes(&bytes),
        Err(JuteError::Invalid(_))
    ));
}

#[test]
fn mixing_read_and_write_ops_is_an_error() {
    let req = MultiRequest {
        ops: vec![
            MultiOp::GetData(GetDataRequest {
                path: "/a".into(),
                watch: false,
            }),
            MultiOp::Check(CheckVersionRequest {
                path: "/a".into(),
                version: 1,
            }),
        ],
    };
    assert!(matches!(
        MultiRequest::from_bytes(&req.to_bytes()),
        Err(JuteError::Invalid(_))
    ));
}

#[test]
fn create_op_with_invalid_flags_is_an_error() {
    let create = |flags| MultiRequest {
        ops: vec![MultiOp::Create(
            op::CREATE,
            CreateRequest {
                path: "/a".into(),
                data: Some(Bytes::new()),
                acl: vec![],
                flags,
            },
        )],
    };
    assert!(MultiRequest::from_bytes(&create(6).to_bytes()).is_ok());
    assert!(matches!(
        MultiRequest::from_bytes(&create(7).to_bytes()),
        Err(JuteError::Invalid(_))
    ));
}

#[test]
fn missing_terminator_is_truncation() {
    let req = MultiRequest {
        ops: vec![MultiOp::Check(CheckVersionRequest::default())],
    };
    let bytes = req.to_bytes();
    assert!(matches!(
        MultiRequest::from_bytes(&bytes[..bytes.len() - 9]),
        Err(JuteError::Truncated { .. })
    ));
}

#[test]
fn op_and_result_opcodes_match_zookeeper() {
    assert_eq!(MultiOp::CreateTtl(CreateTtlRequest::default()).opcode(), 21);
    assert_eq!(
        MultiOp::GetChildren(GetChildrenRequest::default()).opcode(),
        8
    );
    assert_eq!(MultiResult::Error { err: -101 }.opcode(), -1);
    assert_eq!(MultiResult::Error { err: -101 }.err(), -101);
    assert_eq!(
        MultiResult::SetData {
            stat: Stat::default()
        }
        .err(),
        0
    );
}
