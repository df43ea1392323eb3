//! Round trips of every record, jute's null encodings, truncation and the
//! optional readOnly byte of the handshake.

mod common;

use bytes::Bytes;
use common::{Arb, Gen};
use ensemble_proto::multi::{MultiRequest, MultiResponse};
use ensemble_proto::*;
use proptest::prelude::*;

fn round_trips<T: Jute + Arb + PartialEq + std::fmt::Debug>(seed: u64) {
    let v = T::arb(&mut Gen::new(seed));
    let bytes = v.to_bytes();
    let mut r = Reader::from_slice(&bytes);
    let back = T::read(&mut r)
        .unwrap_or_else(|e| panic!("{}: {e} decoding {v:?}", std::any::type_name::<T>()));
    assert_eq!(back, v, "{}", std::any::type_name::<T>());
    assert_eq!(
        r.remaining(),
        0,
        "{} left bytes",
        std::any::type_name::<T>()
    );
}

/// A strict prefix of an encoding either fails to decode or is itself the
/// whole encoding of what it decodes to (only the handshake's optional
/// trailing readOnly byte allows that).
fn truncation_is_an_error<T: Jute + Arb + PartialEq + std::fmt::Debug>(seed: u64) {
    let v = T::arb(&mut Gen::new(seed));
    let bytes = v.to_bytes();
    for k in 0..bytes.len() {
        if let Ok(w) = T::from_bytes(&bytes[..k]) {
            assert_eq!(
                w.to_bytes(),
                &bytes[..k],
                "{}: prefix {k} of {v:?} decoded to {w:?}",
                std::any::type_name::<T>()
            );
        }
    }
}

macro_rules! check_round_trips {
    ($seed:expr; $($t:ty),*) => { $(round_trips::<$t>($seed);)* };
}
macro_rules! check_truncation {
    ($seed:expr; $($t:ty),*) => { $(truncation_is_an_error::<$t>($seed);)* };
}

proptest! {
    #[test]
    fn every_record_round_trips(seed in any::<u64>()) {
        macro_rules! go { ($($t:ty),*) => { check_round_trips!(seed; $($t),*) }; }
        for_every_record!(go);
    }

    #[test]
    fn every_truncated_record_fails_to_decode(seed in any::<u64>()) {
        macro_rules! go { ($($t:ty),*) => { check_truncation!(seed; $($t),*) }; }
        for_every_record!(go);
    }
}

#[test]
fn null_buffer_and_empty_buffer_are_distinct() {
    let null = GetDataResponse {
        data: None,
        stat: Stat::default(),
    };
    let empty = GetDataResponse {
        data: Some(Bytes::new()),
        stat: Stat::default(),
    };
    assert_eq!(&null.to_bytes()[..4], &[0xff, 0xff, 0xff, 0xff]);
    assert_eq!(&empty.to_bytes()[..4], &[0, 0, 0, 0]);
    assert_eq!(
        GetDataResponse::from_bytes(&null.to_bytes()).unwrap().data,
        None
    );
    assert_eq!(
        GetDataResponse::from_bytes(&empty.to_bytes()).unwrap().data,
        Some(Bytes::new())
    );
}

#[test]
fn null_string_reads_as_empty_string() {
    let bytes = [0xff, 0xff, 0xff, 0xff];
    assert_eq!(SyncRequest::from_bytes(&bytes).unwrap().path, "");
}

#[test]
fn reconfig_request_keeps_null_server_lists() {
    let req = ReconfigRequest {
        joining_servers: Some("server.4=h:2888:3888;2181".into()),
        leaving_servers: None,
        new_members: Some(String::new()),
        cur_config_id: -1,
    };
    let bytes = req.to_bytes();
    assert_eq!(ReconfigRequest::from_bytes(&bytes).unwrap(), req);
}

#[test]
fn null_vector_reads_as_empty() {
    let bytes = [0xff, 0xff, 0xff, 0xff];
    assert!(GetChildrenResponse::from_bytes(&bytes)
        .unwrap()
        .children
        .is_empty());
}

#[test]
fn negative_lengths_other_than_null_are_errors() {
    let bytes = [0xff, 0xff, 0xff, 0xfe, 0, 0];
    assert!(matches!(
        SyncRequest::from_bytes(&bytes),
        Err(JuteError::BadLength { len: -2, .. })
    ));
    assert!(matches!(
        GetSaslRequest::from_bytes(&bytes),
        Err(JuteError::BadLength { len: -2, .. })
    ));
    assert!(matches!(
        GetChildrenResponse::from_bytes(&bytes),
        Err(JuteError::BadLength { len: -2, .. })
    ));
}

#[test]
fn huge_vector_count_is_rejected_before_allocating() {
    let bytes = [0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0];
    assert!(matches!(
        GetChildrenResponse::from_bytes(&bytes),
        Err(JuteError::BadLength { .. })
    ));
}

#[test]
fn invalid_utf8_string_is_an_error() {
    let bytes = [0, 0, 0, 2, 0xc3, 0x28];
    assert!(matches!(
        SyncRequest::from_bytes(&bytes),
        Err(JuteError::BadUtf8 { offset: 0 })
    ));
}

#[test]
fn truncated_stat_reports_offset_and_shortfall() {
    let bytes = Stat::default().to_bytes();
    assert_eq!(
        Stat::from_bytes(&bytes[..66]),
        Err(JuteError::Truncated {
            offset: 60,
            needed: 2
        })
    );
}

fn connect_request(read_only: Option<bool>) -> ConnectRequest {
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0x1_0000_0002,
        time_out: 30000,
        session_id: 0x0100_0008_e6ce_0000,
        passwd: Some(Bytes::from_static(&[7; 16])),
        read_only,
    }
}

#[test]
fn connect_request_with_read_only_byte() {
    let req = connect_request(Some(true));
    let bytes = req.to_bytes();
    assert_eq!(bytes.len(), 4 + 8 + 4 + 8 + 4 + 16 + 1);
    assert_eq!(bytes[bytes.len() - 1], 1);
    assert_eq!(ConnectRequest::from_bytes(&bytes).unwrap(), req);
}

#[test]
fn connect_request_without_read_only_byte_from_old_clients() {
    let req = connect_request(None);
    let bytes = req.to_bytes();
    assert_eq!(bytes.len(), 4 + 8 + 4 + 8 + 4 + 16);
    assert_eq!(ConnectRequest::from_bytes(&bytes).unwrap(), req);
    // The same bytes as a new client's, minus the trailing byte.
    assert_eq!(
        &connect_request(Some(false)).to_bytes()[..bytes.len()],
        &bytes[..]
    );
}

#[test]
fn connect_response_writes_read_only_only_when_the_client_sent_it() {
    let mut rsp = ConnectResponse {
        protocol_version: 0,
        time_out: 30000,
        session_id: 42,
        passwd: Some(Bytes::from_static(&[1; 16])),
        read_only: None,
    };
    assert_eq!(rsp.to_bytes().len(), 36);
    assert_eq!(ConnectResponse::from_bytes(&rsp.to_bytes()).unwrap(), rsp);
    rsp.read_only = Some(false);
    assert_eq!(rsp.to_bytes().len(), 37);
    assert_eq!(ConnectResponse::from_bytes(&rsp.to_bytes()).unwrap(), rsp);
}

#[test]
fn file_header_magics_spell_zklg_and_zksn() {
    assert_eq!(FileHeader::TXNLOG_MAGIC, 0x5a4b_4c47);
    assert_eq!(FileHeader::SNAP_MAGIC, 0x5a4b_534e);
    let h = FileHeader {
        magic: FileHeader::TXNLOG_MAGIC,
        version: 2,
        dbid: 0,
    };
    assert_eq!(&h.to_bytes()[..8], b"ZKLG\0\0\0\x02");
}

#[test]
fn empty_multi_bodies_are_just_the_terminator() {
    let end = [0xff, 0xff, 0xff, 0xff, 1, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(&MultiRequest::default().to_bytes()[..], &end);
    assert_eq!(&MultiResponse::default().to_bytes()[..], &end);
}
