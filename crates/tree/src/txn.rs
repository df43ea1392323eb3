//! The body of a logged transaction, one variant per ZooKeeper txn type, with
//! the record bytes exactly as ZooKeeper writes them after the `TxnHeader`.
//!
//! The txn type is `TxnHeader.type`, which ZooKeeper sets to the request
//! opcode; several opcodes share a record (create and create2 both log a
//! `CreateTxn`), so the variant carries the type and [`TxnBody::txn_type`]
//! gives it back. A multi logs a `MultiTxn` whose `Txn`s each hold a type and
//! the encoded sub-record.

use bytes::Bytes;
use ensemble_proto::{
    op, CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTtlTxn,
    CreateTxn, DeleteTxn, ErrorTxn, Jute, JuteError, MultiTxn, SetAclTxn, SetDataTxn, Txn, Writer,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnBody {
    /// Type `create` (1).
    Create(CreateTxn),
    /// Type `create2` (15): same record, the reply carries a Stat.
    Create2(CreateTxn),
    CreateContainer(CreateContainerTxn),
    CreateTtl(CreateTtlTxn),
    /// Type `delete` (2).
    Delete(DeleteTxn),
    /// Type `deleteContainer` (20): same record as delete.
    DeleteContainer(DeleteTxn),
    SetData(SetDataTxn),
    /// Type `reconfig` (16): a SetDataTxn on `/zookeeper/config`.
    Reconfig(SetDataTxn),
    SetAcl(SetAclTxn),
    Check(CheckVersionTxn),
    CreateSession(CreateSessionTxn),
    CloseSession(CloseSessionTxn),
    Error(ErrorTxn),
    /// Each element knows its own type (see [`TxnBody::txn_type`]).
    Multi(Vec<TxnBody>),
}

impl TxnBody {
    /// The `TxnHeader.type` (and, inside a multi, the `Txn.type`) of this body.
    pub fn txn_type(&self) -> i32 {
        match self {
            TxnBody::Create(_) => op::CREATE,
            TxnBody::Create2(_) => op::CREATE2,
            TxnBody::CreateContainer(_) => op::CREATE_CONTAINER,
            TxnBody::CreateTtl(_) => op::CREATE_TTL,
            TxnBody::Delete(_) => op::DELETE,
            TxnBody::DeleteContainer(_) => op::DELETE_CONTAINER,
            TxnBody::SetData(_) => op::SET_DATA,
            TxnBody::Reconfig(_) => op::RECONFIG,
            TxnBody::SetAcl(_) => op::SET_ACL,
            TxnBody::Check(_) => op::CHECK,
            TxnBody::CreateSession(_) => op::CREATE_SESSION,
            TxnBody::CloseSession(_) => op::CLOSE_SESSION,
            TxnBody::Error(_) => op::ERROR,
            TxnBody::Multi(_) => op::MULTI,
        }
    }

    /// An error txn with `code`.
    pub fn error(code: i32) -> TxnBody {
        TxnBody::Error(ErrorTxn { err: code })
    }

    /// The record bytes as ZooKeeper logs them.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::with_capacity(128);
        self.encode_into(&mut w);
        w.into_bytes()
    }

    /// Appends the record to `w` (after a `TxnHeader`, say) without a copy of its own.
    pub fn encode_into(&self, w: &mut Writer) {
        match self {
            TxnBody::Create(t) | TxnBody::Create2(t) => t.write(w),
            TxnBody::CreateContainer(t) => t.write(w),
            TxnBody::CreateTtl(t) => t.write(w),
            TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => t.write(w),
            TxnBody::SetData(t) | TxnBody::Reconfig(t) => t.write(w),
            TxnBody::SetAcl(t) => t.write(w),
            TxnBody::Check(t) => t.write(w),
            TxnBody::CreateSession(t) => t.write(w),
            TxnBody::CloseSession(t) => t.write(w),
            TxnBody::Error(t) => t.write(w),
            TxnBody::Multi(subs) => MultiTxn {
                txns: subs
                    .iter()
                    .map(|s| Txn {
                        r#type: s.txn_type(),
                        data: Some(s.encode()),
                    })
                    .collect(),
            }
            .write(w),
        }
    }

    /// Decodes the record that follows a `TxnHeader` of type `txn_type`.
    pub fn decode(txn_type: i32, b: &[u8]) -> Result<TxnBody, JuteError> {
        Self::decode_inner(txn_type, b, true)
    }

    fn decode_inner(txn_type: i32, b: &[u8], top: bool) -> Result<TxnBody, JuteError> {
        Ok(match txn_type {
            op::CREATE => TxnBody::Create(decode_create(b)?),
            op::CREATE2 => TxnBody::Create2(decode_create(b)?),
            op::CREATE_CONTAINER => TxnBody::CreateContainer(CreateContainerTxn::from_bytes(b)?),
            op::CREATE_TTL => TxnBody::CreateTtl(CreateTtlTxn::from_bytes(b)?),
            op::DELETE => TxnBody::Delete(DeleteTxn::from_bytes(b)?),
            op::DELETE_CONTAINER => TxnBody::DeleteContainer(DeleteTxn::from_bytes(b)?),
            op::SET_DATA => TxnBody::SetData(SetDataTxn::from_bytes(b)?),
            op::CHECK => TxnBody::Check(CheckVersionTxn::from_bytes(b)?),
            op::ERROR => TxnBody::Error(ErrorTxn::from_bytes(b)?),
            // Only the sub-txn types `DataTree.processTxn` accepts in a multi.
            _ if !top => {
                return Err(JuteError::Invalid(format!(
                    "invalid txn type {txn_type} inside a multi"
                )))
            }
            op::RECONFIG => TxnBody::Reconfig(SetDataTxn::from_bytes(b)?),
            op::SET_ACL => TxnBody::SetAcl(SetAclTxn::from_bytes(b)?),
            op::CREATE_SESSION => TxnBody::CreateSession(CreateSessionTxn::from_bytes(b)?),
            // Logs written before CloseSessionTxn existed (or with
            // closeSessionTxn.enabled=false) have an empty body; applying an
            // empty list still removes the session's ephemerals, as ZooKeeper.
            op::CLOSE_SESSION if b.is_empty() => TxnBody::CloseSession(CloseSessionTxn::default()),
            op::CLOSE_SESSION => TxnBody::CloseSession(CloseSessionTxn::from_bytes(b)?),
            op::MULTI => {
                let m = MultiTxn::from_bytes(b)?;
                let mut subs = Vec::with_capacity(m.txns.len());
                for t in m.txns {
                    let data = t.data.unwrap_or_default();
                    subs.push(Self::decode_inner(t.r#type, &data, false)?);
                }
                TxnBody::Multi(subs)
            }
            other => return Err(JuteError::Invalid(format!("unknown txn type {other}"))),
        })
    }
}

/// ZooKeeper 3.x still reads logs holding the pre-3.3 `CreateTxnV0` (no
/// parentCVersion; `SerializeUtils` falls back to it when the record is
/// short); -1 tells apply to bump the parent's cversion itself.
fn decode_create(b: &[u8]) -> Result<CreateTxn, JuteError> {
    match CreateTxn::from_bytes(b) {
        Ok(t) => Ok(t),
        Err(e) => match ensemble_proto::CreateTxnV0::from_bytes(b) {
            Ok(v0) => Ok(CreateTxn {
                path: v0.path,
                data: v0.data,
                acl: v0.acl,
                ephemeral: v0.ephemeral,
                parent_c_version: -1,
            }),
            Err(_) => Err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_proto::{Acl, Id};

    fn acl() -> Vec<Acl> {
        vec![Acl {
            perms: 31,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }]
    }

    fn every_variant() -> Vec<TxnBody> {
        let create = CreateTxn {
            path: "/a".into(),
            data: Some(Bytes::from_static(b"x")),
            acl: acl(),
            ephemeral: true,
            parent_c_version: 3,
        };
        let singles = vec![
            TxnBody::Create(create.clone()),
            TxnBody::Create2(CreateTxn {
                data: None,
                ..create.clone()
            }),
            TxnBody::CreateContainer(CreateContainerTxn {
                path: "/c".into(),
                data: Some(Bytes::new()),
                acl: acl(),
                parent_c_version: 1,
            }),
            TxnBody::CreateTtl(CreateTtlTxn {
                path: "/t".into(),
                data: None,
                acl: acl(),
                parent_c_version: 2,
                ttl: 1000,
            }),
            TxnBody::Delete(DeleteTxn { path: "/a".into() }),
            TxnBody::DeleteContainer(DeleteTxn { path: "/c".into() }),
            TxnBody::SetData(SetDataTxn {
                path: "/a".into(),
                data: Some(Bytes::from_static(b"y")),
                version: 4,
            }),
            TxnBody::Check(CheckVersionTxn {
                path: "/a".into(),
                version: 5,
            }),
            TxnBody::error(-101),
        ];
        let mut all = singles.clone();
        all.extend([
            TxnBody::Reconfig(SetDataTxn {
                path: "/zookeeper/config".into(),
                data: Some(Bytes::from_static(b"server.1=x")),
                version: -1,
            }),
            TxnBody::SetAcl(SetAclTxn {
                path: "/a".into(),
                acl: acl(),
                version: 1,
            }),
            TxnBody::CreateSession(CreateSessionTxn { time_out: 30000 }),
            TxnBody::CloseSession(CloseSessionTxn {
                paths2_delete: vec!["/e1".into(), "/e2".into()],
            }),
            TxnBody::Multi(singles),
            TxnBody::Multi(vec![]),
        ]);
        all
    }

    #[test]
    fn every_variant_round_trips() {
        for body in every_variant() {
            let bytes = body.encode();
            let back = TxnBody::decode(body.txn_type(), &bytes);
            assert_eq!(back.as_ref(), Ok(&body), "{body:?}");
        }
    }

    #[test]
    fn multi_encodes_as_txns_with_their_types() {
        let body = TxnBody::Multi(vec![
            TxnBody::Delete(DeleteTxn { path: "/a".into() }),
            TxnBody::error(0),
        ]);
        let m = MultiTxn::from_bytes(&body.encode());
        let types: Vec<i32> = m
            .map(|m| m.txns.iter().map(|t| t.r#type).collect())
            .unwrap_or_default();
        assert_eq!(types, vec![op::DELETE, op::ERROR]);
    }

    #[test]
    fn empty_close_session_body_decodes_as_no_paths() {
        assert_eq!(
            TxnBody::decode(op::CLOSE_SESSION, &[]),
            Ok(TxnBody::CloseSession(CloseSessionTxn::default()))
        );
    }

    #[test]
    fn old_create_txn_without_parent_cversion_decodes() {
        let v0 = ensemble_proto::CreateTxnV0 {
            path: "/old".into(),
            data: None,
            acl: acl(),
            ephemeral: false,
        };
        match TxnBody::decode(op::CREATE, &v0.to_bytes()) {
            Ok(TxnBody::Create(t)) => assert_eq!(t.parent_c_version, -1),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn garbage_and_unknown_types_are_errors_not_panics() {
        assert!(TxnBody::decode(op::CREATE, &[0, 0]).is_err());
        assert!(TxnBody::decode(42, &[]).is_err());
        let bad_multi = MultiTxn {
            txns: vec![Txn {
                r#type: op::SET_ACL,
                data: None,
            }],
        };
        assert!(TxnBody::decode(op::MULTI, &bad_multi.to_bytes()).is_err());
    }
}
