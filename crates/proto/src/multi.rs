//! The bodies of `multi` (opcode 14) and `multiRead` (22), which are not jute
//! records but hand-written sequences, as in ZooKeeper's
//! `MultiOperationRecord` and `MultiResponse`:
//!
//! ```text
//! request:  { MultiHeader{type=op, done=false, err=-1} op-request }*  MultiHeader{-1, true, -1}
//! response: { MultiHeader{type=res, done=false, err=e}  res-body   }*  MultiHeader{-1, true, -1}
//! ```
//!
//! Readers stop at the first header with `done` set, whatever its other fields.
//! Request ops: create/create2/createContainer carry a `CreateRequest`,
//! createTTL a `CreateTtlRequest`, delete, setData and check their requests,
//! and (multiRead only) getChildren and getData theirs.
//! Result bodies: create -> `CreateResponse`, create2 -> `Create2Response`
//! (the server answers create2, createTTL and createContainer ops with it),
//! delete and check -> nothing, setData -> `SetDataResponse`, getData ->
//! `GetDataResponse`, getChildren -> `GetChildrenResponse`, error (-1) ->
//! `ErrorResponse`; the header's `err` is the error code for an error result
//! and 0 otherwise. When a multi fails, every result is an error: 0 for the
//! ops before the failed one, its code for it, and -2 (runtimeInconsistency)
//! for the ops after it.

use crate::consts::{op, CreateMode};
use crate::jute::{Jute, JuteError, Reader, Writer};
use crate::records::*;
use bytes::Bytes;

/// One operation of a multi or multiRead request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// Opcode `create`, `create2` or `createContainer`: they share a record.
    Create(i32, CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    /// multiRead only. ZooKeeper sets no watch from it, whatever `watch` says.
    GetChildren(GetChildrenRequest),
    /// multiRead only. ZooKeeper sets no watch from it, whatever `watch` says.
    GetData(GetDataRequest),
}

impl MultiOp {
    /// The opcode written in this op's `MultiHeader`.
    pub fn opcode(&self) -> i32 {
        match self {
            MultiOp::Create(opcode, _) => *opcode,
            MultiOp::CreateTtl(_) => op::CREATE_TTL,
            MultiOp::Delete(_) => op::DELETE,
            MultiOp::SetData(_) => op::SET_DATA,
            MultiOp::Check(_) => op::CHECK,
            MultiOp::GetChildren(_) => op::GET_CHILDREN,
            MultiOp::GetData(_) => op::GET_DATA,
        }
    }

    /// The node this op is about.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(_, r) => &r.path,
            MultiOp::CreateTtl(r) => &r.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetChildren(r) => &r.path,
            MultiOp::GetData(r) => &r.path,
        }
    }

    /// Read ops belong in multiRead, the others in multi; ZooKeeper refuses
    /// to decode a request that mixes them.
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetChildren(_) | MultiOp::GetData(_))
    }

    fn write_body(&self, w: &mut Writer) {
        match self {
            MultiOp::Create(_, r) => r.write(w),
            MultiOp::CreateTtl(r) => r.write(w),
            MultiOp::Delete(r) => r.write(w),
            MultiOp::SetData(r) => r.write(w),
            MultiOp::Check(r) => r.write(w),
            MultiOp::GetChildren(r) => r.write(w),
            MultiOp::GetData(r) => r.write(w),
        }
    }
}

/// The header that ends both a multi request and a multi response.
const END: MultiHeader = MultiHeader {
    r#type: -1,
    done: true,
    err: -1,
};

/// Reads the body of a multi or multiRead request, checking what
/// `MultiOperationRecord.deserialize` checks: known op types, valid create
/// flags, and read and write ops not mixed.
pub fn read_multi_request(r: &mut Reader) -> Result<Vec<MultiOp>, JuteError> {
    let mut ops: Vec<MultiOp> = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(ops);
        }
        let o = match h.r#type {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => {
                let req = CreateRequest::read(r)?;
                if CreateMode::from_flags(req.flags).is_none() {
                    return Err(JuteError::Invalid(format!(
                        "invalid flag {} for create mode",
                        req.flags
                    )));
                }
                MultiOp::Create(h.r#type, req)
            }
            op::CREATE_TTL => MultiOp::CreateTtl(CreateTtlRequest::read(r)?),
            op::DELETE => MultiOp::Delete(DeleteRequest::read(r)?),
            op::SET_DATA => MultiOp::SetData(SetDataRequest::read(r)?),
            op::CHECK => MultiOp::Check(CheckVersionRequest::read(r)?),
            op::GET_CHILDREN => MultiOp::GetChildren(GetChildrenRequest::read(r)?),
            op::GET_DATA => MultiOp::GetData(GetDataRequest::read(r)?),
            t => return Err(JuteError::Invalid(format!("invalid op type {t} in multi"))),
        };
        if ops
            .first()
            .is_some_and(|first| first.is_read() != o.is_read())
        {
            return Err(JuteError::Invalid(
                "multi mixes read and write operations".to_string(),
            ));
        }
        ops.push(o);
    }
}

/// Writes the body of a multi or multiRead request, as the Java client does.
pub fn write_multi_request(w: &mut Writer, ops: &[MultiOp]) {
    for o in ops {
        MultiHeader {
            r#type: o.opcode(),
            done: false,
            err: -1,
        }
        .write(w);
        o.write_body(w);
    }
    END.write(w);
}

/// The body of a multi or multiRead request as one value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiRequest {
    pub ops: Vec<MultiOp>,
}

impl Jute for MultiRequest {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        Ok(MultiRequest {
            ops: read_multi_request(r)?,
        })
    }
    fn write(&self, w: &mut Writer) {
        write_multi_request(w, &self.ops)
    }
}

/// The outcome of one op of a multi or multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// For a `create` op.
    Create {
        path: String,
    },
    /// For `create2`, `createTTL` and `createContainer` ops.
    Create2 {
        path: String,
        stat: Stat,
    },
    Delete,
    SetData {
        stat: Stat,
    },
    Check,
    GetData {
        data: Option<Bytes>,
        stat: Stat,
    },
    GetChildren {
        children: Vec<String>,
    },
    /// `err` is a `KeeperException.Code`; 0 for ops of a failed multi that
    /// came before the op that failed.
    Error {
        err: i32,
    },
}

impl MultiResult {
    /// The opcode written in this result's `MultiHeader`.
    pub fn opcode(&self) -> i32 {
        match self {
            MultiResult::Create { .. } => op::CREATE,
            MultiResult::Create2 { .. } => op::CREATE2,
            MultiResult::Delete => op::DELETE,
            MultiResult::SetData { .. } => op::SET_DATA,
            MultiResult::Check => op::CHECK,
            MultiResult::GetData { .. } => op::GET_DATA,
            MultiResult::GetChildren { .. } => op::GET_CHILDREN,
            MultiResult::Error { .. } => op::ERROR,
        }
    }

    /// The `err` of this result's `MultiHeader`.
    pub fn err(&self) -> i32 {
        match self {
            MultiResult::Error { err } => *err,
            _ => 0,
        }
    }
}

/// Reads the body of a multi or multiRead response.
pub fn read_multi_response(r: &mut Reader) -> Result<Vec<MultiResult>, JuteError> {
    let mut results = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(results);
        }
        results.push(match h.r#type {
            op::CREATE => MultiResult::Create {
                path: CreateResponse::read(r)?.path,
            },
            op::CREATE2 => {
                let c = Create2Response::read(r)?;
                MultiResult::Create2 {
                    path: c.path,
                    stat: c.stat,
                }
            }
            op::DELETE => MultiResult::Delete,
            op::SET_DATA => MultiResult::SetData {
                stat: SetDataResponse::read(r)?.stat,
            },
            op::CHECK => MultiResult::Check,
            op::GET_DATA => {
                let g = GetDataResponse::read(r)?;
                MultiResult::GetData {
                    data: g.data,
                    stat: g.stat,
                }
            }
            op::GET_CHILDREN => MultiResult::GetChildren {
                children: GetChildrenResponse::read(r)?.children,
            },
            op::ERROR => MultiResult::Error {
                err: ErrorResponse::read(r)?.err,
            },
            t => {
                return Err(JuteError::Invalid(format!(
                    "invalid type {t} in MultiResponse"
                )))
            }
        });
    }
}

/// Writes the body of a multi or multiRead response, as the server does.
pub fn write_multi_response(w: &mut Writer, results: &[MultiResult]) {
    for res in results {
        MultiHeader {
            r#type: res.opcode(),
            done: false,
            err: res.err(),
        }
        .write(w);
        match res {
            MultiResult::Create { path } => w.write_string(path),
            MultiResult::Create2 { path, stat } => {
                w.write_string(path);
                stat.write(w);
            }
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData { stat } => stat.write(w),
            MultiResult::GetData { data, stat } => {
                w.write_buffer(data.as_deref());
                stat.write(w);
            }
            MultiResult::GetChildren { children } => children.write(w),
            MultiResult::Error { err } => w.write_i32(*err),
        }
    }
    END.write(w);
}

/// The body of a multi or multiRead response as one value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    pub results: Vec<MultiResult>,
}

impl Jute for MultiResponse {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        Ok(MultiResponse {
            results: read_multi_response(r)?,
        })
    }
    fn write(&self, w: &mut Writer) {
        write_multi_response(w, &self.results)
    }
}
