//! Every jute record of `zookeeper.jute`, the multi request and response
//! bodies, and every logged txn type: byte 0 picks what to decode from the
//! rest. Whatever decodes is encoded again, and that encoding must decode to
//! the same value.
#![no_main]

use ensemble_fuzz::round_trip;
use ensemble_proto::*;
use ensemble_tree::TxnBody;
use libfuzzer_sys::fuzz_target;

macro_rules! records {
    ($sel:expr, $b:expr, $($t:ty),* $(,)?) => {{
        let all: &[fn(&[u8]) -> bool] = &[$(round_trip::<$t>),*];
        match all.get($sel as usize) {
            Some(f) => {
                f($b);
                true
            }
            None => false,
        }
    }};
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let known = records!(
        sel,
        rest,
        Id,
        Acl,
        Stat,
        StatPersisted,
        ClientInfo,
        ConnectRequest,
        ConnectResponse,
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
        MultiRequest,
        MultiResponse,
    );
    if known {
        return;
    }
    match sel {
        // A logged txn body: byte 1 is the txn type (as a signed byte, which
        // covers every type ZooKeeper logs, -11 to 22, and unknown ones).
        0x80..=0xbf => {
            let Some((&t, body)) = rest.split_first() else {
                return;
            };
            let txn_type = t as i8 as i32;
            if let Ok(txn) = TxnBody::decode(txn_type, body) {
                assert_eq!(txn.txn_type(), txn_type);
                let again = TxnBody::decode(txn_type, &txn.encode());
                assert_eq!(again.as_ref(), Ok(&txn), "re-encoding changed the txn");
            }
        }
        // A whole log entry: TxnHeader, txn, optional TxnDigest.
        0xc0..=0xdf => {
            let entry = bytes::Bytes::copy_from_slice(rest);
            if let Ok((hdr, txn, raw, digest)) = ensemble_storage::txnlog::decode_entry(&entry) {
                assert_eq!(txn.txn_type(), hdr.r#type);
                assert!(raw.len() <= rest.len());
                let _ = digest;
            }
        }
        // A request body by opcode, as the server dispatches it.
        _ => {
            let Some((&t, body)) = rest.split_first() else {
                return;
            };
            ensemble_fuzz::decode_request(t as i8 as i32, body);
        }
    }
});
