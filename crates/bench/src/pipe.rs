//! The request workloads spoken at the wire, pipelined as redis-benchmark's
//! `-P`. One task per session keeps `--inflight` requests outstanding: what it
//! may send goes out in one write, the answers are read as far as they came,
//! and each is matched to its request in order (a ZooKeeper server answers a
//! session's requests in the order it received them). A request costs the
//! generator a few dozen bytes of encoding and a histogram entry; through a
//! client library it cost a future, a channel and a task wake-up each, and the
//! generator took more CPU than the server it measured.

use crate::report::WorkerStats;
use crate::wire::{self, put_i32, put_str};
use crate::workload::{Plan, XorShift};
use crate::Workload;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// opcodes of ZooKeeper's client protocol.
const OP_CREATE: i32 = 1;
const OP_DELETE: i32 = 2;
const OP_GET_DATA: i32 = 4;
const OP_SET_DATA: i32 = 5;
const OP_CHECK: i32 = 13;
const OP_MULTI: i32 = 14;
/// A multi's closing header, and the type of a failed op's result.
const MULTI_END: i32 = -1;
const MULTI_ERROR: i32 = -1;
/// xids of frames that answer no request.
const XID_NOTIFICATION: i32 = -1;
const XID_PING: i32 = -2;
/// Any version (setData, delete).
const ANY_VERSION: i32 = -1;
/// READ | WRITE | CREATE | DELETE | ADMIN for world:anyone.
const PERMS_ALL: i32 = 31;
/// A Stat's size on the wire: eight longs and ints, 68 bytes.
const STAT_LEN: usize = 68;
/// Largest answer accepted (a getData of a big value).
const MAX_FRAME: usize = 16 * 1024 * 1024;
/// Extra rounds over the hosts when no server takes a new session.
const CONNECT_TRIES: u32 = 4;

/// What every session of a run reads.
pub struct Run {
    pub plan: Arc<Plan>,
    pub hosts: Vec<String>,
    pub inflight: usize,
    pub timeout_ms: u64,
}

/// What all sessions of a run share: when to stop and the live counts.
#[derive(Clone)]
pub struct Counters {
    pub stop: Arc<AtomicBool>,
    pub done: Arc<AtomicU64>,
    pub failed: Arc<AtomicU64>,
}

/// One session and its requests under way.
pub struct Session {
    stream: TcpStream,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    next_xid: i32,
    /// The requests sent and not answered yet, oldest first: xid, when, and
    /// whether it is a multi.
    waiting: VecDeque<(i32, Instant, bool)>,
    /// A path being built.
    path: String,
}

impl Session {
    /// Opens a session on one of `hosts`, starting at `first` and going round
    /// them, a few rounds, as a client looks for a server that takes it.
    pub async fn connect(hosts: &[String], first: usize, timeout_ms: u64) -> io::Result<Session> {
        let mut last = None;
        for round in 0..=CONNECT_TRIES {
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            for i in 0..hosts.len() {
                let host = &hosts[(first + i) % hosts.len()];
                match wire::Watcher::connect(host, timeout_ms).await {
                    Ok(w) => {
                        let (stream, rbuf) = w.into_parts();
                        return Ok(Session {
                            stream,
                            rbuf,
                            wbuf: Vec::with_capacity(4096),
                            next_xid: 1,
                            waiting: VecDeque::new(),
                            path: String::new(),
                        });
                    }
                    Err(e) => last = Some(io::Error::new(e.kind(), format!("{host}: {e}"))),
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no hosts")))
    }

    /// Sends requests as `plan` says, `inflight` at a time, until `stop` is
    /// raised or the plan runs out, then waits for the answers still due. A
    /// session that breaks (its server went away, or stopped answering for
    /// two thirds of the session timeout, when a client would give up on it)
    /// counts what it had under way as ConnectionLoss and is replaced by a
    /// new one on the next host. The session comes back, when it lasted,
    /// for the caller to close once the run is measured.
    pub async fn run(
        self,
        run: Arc<Run>,
        counters: Counters,
        seed: u64,
    ) -> (WorkerStats, Option<Session>) {
        let mut stats = WorkerStats::new();
        let mut rng = XorShift::new(seed);
        let mut host = seed as usize;
        let mut session = self;
        loop {
            match session.serve(&run, &counters, &mut rng, &mut stats).await {
                Ok(()) => return (stats, Some(session)),
                Err(e) => {
                    let lost = session.waiting.len() as u64;
                    let name = match e.kind() {
                        io::ErrorKind::InvalidData => "BadAnswer",
                        _ => "ConnectionLoss",
                    };
                    stats.error_named(name, lost.max(1));
                    counters.failed.fetch_add(lost.max(1), Ordering::Relaxed);
                    if counters.stop.load(Ordering::Relaxed) {
                        return (stats, None);
                    }
                    host += 1;
                    match Session::connect(&run.hosts, host, run.timeout_ms).await {
                        Ok(s) => session = s,
                        Err(_) => return (stats, None),
                    }
                }
            }
        }
    }

    /// The session's share of the run; an error when the session broke.
    async fn serve(
        &mut self,
        run: &Run,
        counters: &Counters,
        rng: &mut XorShift,
        stats: &mut WorkerStats,
    ) -> io::Result<()> {
        let patience = Duration::from_millis(run.timeout_ms * 2 / 3);
        let plan = &*run.plan;
        loop {
            let now = Instant::now();
            while self.waiting.len() < run.inflight && !counters.stop.load(Ordering::Relaxed) {
                let Some(n) = plan.claim() else { break };
                let xid = self.next_xid;
                self.next_xid = self.next_xid.wrapping_add(1).max(1);
                encode(&mut self.wbuf, &mut self.path, plan, xid, n, rng);
                self.waiting
                    .push_back((xid, now, plan.workload == Workload::Multi));
            }
            if !self.wbuf.is_empty() {
                self.stream.write_all(&self.wbuf).await?;
                self.wbuf.clear();
            }
            if self.waiting.is_empty() {
                return Ok(());
            }
            tokio::time::timeout(patience, self.answers(stats, counters))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer"))??;
        }
    }

    /// Reads once (at least one whole answer) and accounts every answer read.
    async fn answers(&mut self, stats: &mut WorkerStats, counters: &Counters) -> io::Result<()> {
        let mut answered = 0;
        let mut failed = 0;
        loop {
            let mut at = 0;
            while let Some(len) = frame_len(&self.rbuf[at..])? {
                let frame = &self.rbuf[at + 4..at + 4 + len];
                at += 4 + len;
                let xid = wire::i32_at(frame, 0)?;
                if xid == XID_NOTIFICATION || xid == XID_PING {
                    continue;
                }
                let Some((sent_xid, sent, multi)) = self.waiting.pop_front() else {
                    return Err(out_of_order(xid, None));
                };
                if sent_xid != xid {
                    return Err(out_of_order(xid, Some(sent_xid)));
                }
                match answer_error(frame, multi)? {
                    None => {
                        stats.record(sent.elapsed().as_micros() as u64);
                        answered += 1;
                    }
                    Some(code) => {
                        stats.error_named(error_name(code), 1);
                        failed += 1;
                    }
                }
            }
            self.rbuf.drain(..at);
            if answered + failed > 0 {
                counters.done.fetch_add(answered, Ordering::Relaxed);
                counters.failed.fetch_add(failed, Ordering::Relaxed);
                return Ok(());
            }
            self.rbuf.reserve(16 * 1024);
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
        }
    }

    /// Closes the session and waits (briefly) for the server to answer.
    pub async fn close(self) {
        let Session { stream, rbuf, .. } = self;
        wire::Watcher::from_parts(stream, rbuf).close().await;
    }
}

/// Appends the `n`-th request of the plan, as a frame, to `b`; `path` is
/// room to build paths in.
fn encode(b: &mut Vec<u8>, path: &mut String, plan: &Plan, xid: i32, n: u64, rng: &mut XorShift) {
    let start = b.len();
    put_i32(b, 0); // the length, set below
    put_i32(b, xid);
    path.clear();
    let read = match plan.workload {
        Workload::Read => true,
        Workload::Mixed => rng.unit() < plan.read_ratio,
        _ => false,
    };
    match plan.workload {
        Workload::Read | Workload::Write | Workload::Mixed => {
            plan.write_key(path, rng.below(plan.keys));
            if read {
                put_i32(b, OP_GET_DATA);
                put_str(b, path);
                b.push(0); // no watch
            } else {
                put_i32(b, OP_SET_DATA);
                put_str(b, path);
                put_bytes(b, &plan.data);
                put_i32(b, ANY_VERSION);
            }
        }
        Workload::Create | Workload::Populate => {
            plan.write_unique(path, n);
            put_i32(b, OP_CREATE);
            put_str(b, path);
            put_bytes(b, &plan.data);
            put_i32(b, 1); // one ACL: world:anyone, all permissions
            put_i32(b, PERMS_ALL);
            put_str(b, "world");
            put_str(b, "anyone");
            put_i32(b, 0); // persistent
        }
        Workload::Delete => {
            plan.write_unique(path, n);
            put_i32(b, OP_DELETE);
            put_str(b, path);
            put_i32(b, ANY_VERSION);
        }
        Workload::Multi => {
            put_i32(b, OP_MULTI);
            multi_header(b, OP_CHECK, false);
            put_str(b, &plan.prefix);
            put_i32(b, plan.prefix_version());
            for _ in 0..plan.multi_ops {
                path.clear();
                plan.write_key(path, rng.below(plan.keys));
                multi_header(b, OP_SET_DATA, false);
                put_str(b, path);
                put_bytes(b, &plan.data);
                put_i32(b, ANY_VERSION);
            }
            multi_header(b, MULTI_END, true);
        }
        // Run by `sessions`, never here.
        Workload::Watch | Workload::Connect => {}
    }
    let len = (b.len() - start - 4) as i32;
    b[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_bytes(b: &mut Vec<u8>, data: &[u8]) {
    put_i32(b, data.len() as i32);
    b.extend_from_slice(data);
}

fn multi_header(b: &mut Vec<u8>, op: i32, done: bool) {
    put_i32(b, op);
    b.push(u8::from(done));
    put_i32(b, -1);
}

/// The length of the first frame in `buf` if all of it is there.
fn frame_len(buf: &[u8]) -> io::Result<Option<usize>> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let n = wire::i32_at(buf, 0)?;
    if n < 16 || n as usize > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("answer of {n} bytes"),
        ));
    }
    let n = n as usize;
    Ok((buf.len() >= 4 + n).then_some(n))
}

fn out_of_order(xid: i32, expected: Option<i32>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("answer to xid {xid}, expected {expected:?}"),
    )
}

/// The error an answer carries: its header's, or for a multi the first
/// failed op's (ZooKeeper answers a failed multi with no error in the header
/// and one result per op; the ops before the failure say 0, those after it
/// RuntimeInconsistency).
fn answer_error(frame: &[u8], multi: bool) -> io::Result<Option<i32>> {
    // ReplyHeader: xid, zxid, err.
    let err = wire::i32_at(frame, 12)?;
    if err != 0 {
        return Ok(Some(err));
    }
    if !multi {
        return Ok(None);
    }
    multi_error(frame, 16)
}

/// Walks a multi's results from `at`: a MultiHeader (type, done, err) and the
/// op's result each, up to the header marked done. The bench's multis hold
/// checks and setData only, so those are the results it knows the size of.
fn multi_error(frame: &[u8], mut at: usize) -> io::Result<Option<i32>> {
    let mut first = None;
    while at + 9 <= frame.len() {
        let op = wire::i32_at(frame, at)?;
        let done = frame[at + 4] != 0;
        at += 9;
        if done {
            break;
        }
        match op {
            MULTI_ERROR => {
                let code = wire::i32_at(frame, at)?;
                at += 4;
                if code != 0 && code != RUNTIME_INCONSISTENCY {
                    return Ok(Some(code));
                }
                first.get_or_insert(RUNTIME_INCONSISTENCY);
            }
            OP_CHECK => {}
            OP_SET_DATA => at += STAT_LEN,
            _ => break,
        }
    }
    Ok(first)
}

const RUNTIME_INCONSISTENCY: i32 = -2;

/// The name of a ZooKeeper error code, as `KeeperException.Code` spells it.
fn error_name(code: i32) -> &'static str {
    match code {
        -1 => "SystemError",
        -2 => "RuntimeInconsistency",
        -3 => "DataInconsistency",
        -4 => "ConnectionLoss",
        -5 => "MarshallingError",
        -6 => "Unimplemented",
        -7 => "OperationTimeout",
        -8 => "BadArguments",
        -12 => "UnknownSession",
        -13 => "NewConfigNoQuorum",
        -14 => "ReconfigInProgress",
        -100 => "APIError",
        -101 => "NoNode",
        -102 => "NoAuth",
        -103 => "BadVersion",
        -108 => "NoChildrenForEphemerals",
        -110 => "NodeExists",
        -111 => "NotEmpty",
        -112 => "SessionExpired",
        -113 => "InvalidCallback",
        -114 => "InvalidACL",
        -115 => "AuthFailed",
        -118 => "SessionMoved",
        -119 => "NotReadOnly",
        -120 => "EphemeralOnLocalSession",
        -121 => "NoWatcher",
        -122 => "RequestTimeout",
        -123 => "ReconfigDisabled",
        -124 => "SessionClosedRequireSaslAuth",
        -125 => "QuotaExceeded",
        -127 => "Throttled",
        _ => "UnknownError",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Plan {
        Plan::new(&crate::parse_args(args))
    }

    /// Reads what `encode` wrote: (xid, opcode, the rest).
    fn decode(frame: &[u8]) -> (i32, i32, &[u8]) {
        let len = wire::i32_at(frame, 0).unwrap() as usize;
        assert_eq!(len + 4, frame.len(), "the length prefix covers the request");
        let (xid, op) = (
            wire::i32_at(frame, 4).unwrap(),
            wire::i32_at(frame, 8).unwrap(),
        );
        (xid, op, &frame[12..])
    }

    fn string(b: &[u8]) -> (String, &[u8]) {
        let n = wire::i32_at(b, 0).unwrap() as usize;
        (
            String::from_utf8(b[4..4 + n].to_vec()).unwrap(),
            &b[4 + n..],
        )
    }

    fn encoded(plan: &Plan, xid: i32, n: u64) -> Vec<u8> {
        let (mut b, mut path) = (Vec::new(), String::new());
        encode(&mut b, &mut path, plan, xid, n, &mut XorShift::new(7));
        b
    }

    #[test]
    fn requests_are_framed_as_zookeeper_reads_them() {
        let read = plan(&["--workload", "read", "--keys", "10"]);
        let b = encoded(&read, 5, 0);
        let (xid, op, rest) = decode(&b);
        assert_eq!((xid, op), (5, OP_GET_DATA));
        let (path, rest) = string(rest);
        assert!(path.starts_with("/bench/k"), "{path}");
        assert!(path[8..].parse::<u64>().unwrap() < 10);
        assert_eq!(rest, &[0], "no watch");

        let write = plan(&["--workload", "write", "--value-size", "3"]);
        let b = encoded(&write, 1, 0);
        let (_, op, rest) = decode(&b);
        assert_eq!(op, OP_SET_DATA);
        let (_, rest) = string(rest);
        assert_eq!(
            rest,
            &[0, 0, 0, 3, b'x', b'x', b'x', 0xff, 0xff, 0xff, 0xff]
        );

        let create = plan(&["--workload", "create", "--value-size", "0"]);
        let b = encoded(&create, 1, 42);
        let (_, op, rest) = decode(&b);
        assert_eq!(op, OP_CREATE);
        let (path, rest) = string(rest);
        assert_eq!(path, create.unique(42));
        // No data, one ACL (all permissions, world:anyone), persistent.
        assert_eq!(&rest[..12], &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 31]);
        let (scheme, rest) = string(&rest[12..]);
        let (id, rest) = string(rest);
        assert_eq!(
            (scheme.as_str(), id.as_str(), rest),
            ("world", "anyone", &[0u8; 4][..])
        );

        let delete = plan(&["--workload", "delete"]);
        let b = encoded(&delete, 1, 3);
        let (_, op, rest) = decode(&b);
        assert_eq!(op, OP_DELETE);
        let (path, rest) = string(rest);
        assert_eq!((path, rest), (delete.unique(3), &[0xffu8; 4][..]));

        // A multi: the prefix's version check, the setData, the closing header.
        let multi = plan(&[
            "--workload",
            "multi",
            "--multi-ops",
            "2",
            "--value-size",
            "1",
        ]);
        let b = encoded(&multi, 1, 0);
        let (_, op, mut rest) = decode(&b);
        assert_eq!(op, OP_MULTI);
        let mut ops = Vec::new();
        loop {
            let (op, done) = (wire::i32_at(rest, 0).unwrap(), rest[4] != 0);
            rest = &rest[9..];
            if done {
                break;
            }
            let (path, after) = string(rest);
            ops.push((op, path));
            rest = match op {
                OP_CHECK => &after[4..],
                _ => &after[4 + 1 + 4..],
            };
        }
        assert!(rest.is_empty());
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[0], (OP_CHECK, "/bench".to_string()));
        assert!(ops[1..]
            .iter()
            .all(|(op, p)| *op == OP_SET_DATA && p.starts_with("/bench/k")));
    }

    fn answer(err: i32, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        put_i32(&mut f, 9); // xid
        f.extend_from_slice(&7i64.to_be_bytes());
        put_i32(&mut f, err);
        f.extend_from_slice(body);
        f
    }

    fn result(b: &mut Vec<u8>, op: i32, done: bool, err: i32) {
        put_i32(b, op);
        b.push(u8::from(done));
        put_i32(b, err);
    }

    #[test]
    fn an_answer_says_which_error_it_carries() {
        assert_eq!(answer_error(&answer(-101, &[]), false).unwrap(), Some(-101));
        assert_eq!(error_name(-101), "NoNode");
        // A getData answer's data is not read as a multi's results.
        assert_eq!(answer_error(&answer(0, &[0xff; 80]), false).unwrap(), None);

        let mut ok = Vec::new();
        result(&mut ok, OP_CHECK, false, 0);
        result(&mut ok, OP_SET_DATA, false, 0);
        ok.extend_from_slice(&[0; STAT_LEN]);
        result(&mut ok, MULTI_END, true, -1);
        assert_eq!(answer_error(&answer(0, &ok), true).unwrap(), None);

        // A failed multi: the op before the failure says 0, the failed one
        // its code, the ones after it RuntimeInconsistency.
        let mut failed = Vec::new();
        for code in [0, -103, -2] {
            result(&mut failed, MULTI_ERROR, false, code);
            put_i32(&mut failed, code);
        }
        result(&mut failed, MULTI_END, true, -1);
        assert_eq!(answer_error(&answer(0, &failed), true).unwrap(), Some(-103));
        assert_eq!(error_name(-103), "BadVersion");
    }

    #[test]
    fn frames_are_taken_whole_and_bad_lengths_refused() {
        let mut b = Vec::new();
        put_i32(&mut b, 16);
        b.extend_from_slice(&[0; 10]);
        assert_eq!(frame_len(&b).unwrap(), None, "not all there yet");
        b.extend_from_slice(&[0; 6]);
        assert_eq!(frame_len(&b).unwrap(), Some(16));
        assert!(frame_len(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(
            frame_len(&[0, 0, 0, 3]).is_err(),
            "shorter than a reply header"
        );
    }
}
