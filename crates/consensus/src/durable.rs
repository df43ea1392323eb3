//! The durable half of the Raft log: every entry becomes one record of
//! ZooKeeper's transaction log (`ensemble_storage::TxnLogWriter`), so the
//! consensus log and ZooKeeper's log are one and the same file.
//!
//! - A normal entry is its payload (a jute TxnHeader with zxid 0, then the
//!   txn) with the zxid filled in from the entry's log id ([`TermClock`]).
//! - A blank leader entry or a membership entry is an ErrorTxn with err 0
//!   (client 0, cxid 0, type -1), which ZooKeeper replays as a no-op, so the
//!   zxids in the file stay dense.
//! - One writer thread drains every batch queued since its last fsync, writes
//!   them, fsyncs once (group commit), and only then reports each batch
//!   flushed to openraft. Nothing is applied or answered before that.
//! - The file is rolled at ZooKeeper's randomised snapCount point
//!   (`SnapshotTrigger`), so that purging old logs behind snapshots works.

use std::io;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ensemble_proto::{ErrorTxn, Jute, Reader, TxnHeader};
use ensemble_storage::{SnapshotTrigger, TxnLogOptions, TxnLogWriter};
use openraft::storage::IOFlushed;
use openraft::EntryPayload;

use crate::types::{term_of, Entry, Txn, TypeConfig};
use crate::zxid::TermClock;

/// Where and how the log is written.
#[derive(Debug, Clone)]
pub struct DurableLog {
    /// `dataDir`: where Raft's own small side files will live.
    pub data_dir: PathBuf,
    /// `dataLogDir` (or `dataDir`): the txn log goes in its `version-2`.
    pub data_log_dir: PathBuf,
    pub options: TxnLogOptions,
    /// `snapCount`: the log rolls at ZooKeeper's randomised point in it.
    pub snap_count: u64,
}

struct Batch {
    records: Vec<(TxnHeader, Bytes)>,
    callback: IOFlushed<TypeConfig>,
}

/// The handle the log store keeps: it turns entries into records and hands
/// them to the writer thread.
pub struct DiskLog {
    clock: TermClock,
    tx: mpsc::Sender<Batch>,
}

impl DiskLog {
    pub fn open(log: &DurableLog, clock: TermClock) -> io::Result<DiskLog> {
        let mut writer = TxnLogWriter::open(&log.data_log_dir, log.options.clone())?;
        let mut trigger = SnapshotTrigger::new(log.snap_count, 0);
        let (tx, rx) = mpsc::channel::<Batch>();
        std::thread::Builder::new()
            .name("txn-log".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batches = vec![first];
                    while let Ok(more) = rx.try_recv() {
                        batches.push(more);
                    }
                    let mut result: io::Result<()> = Ok(());
                    let mut roll = false;
                    'write: for b in &batches {
                        for (hdr, txn) in &b.records {
                            if let Err(e) = writer.append(hdr, txn, None) {
                                result = Err(e);
                                break 'write;
                            }
                            trigger.record_append(txn.len() as u64 + 64);
                            roll |= trigger.should_snapshot();
                        }
                    }
                    if result.is_ok() {
                        result = writer.commit().map(|_| ());
                    }
                    let err = result.as_ref().err().map(|e| e.to_string());
                    for b in batches {
                        let r = match &err {
                            None => Ok(()),
                            Some(msg) => Err(io::Error::other(format!(
                                "writing the txn log failed: {msg}"
                            ))),
                        };
                        b.callback.io_completed(r);
                    }
                    if let Some(msg) = err {
                        tracing::error!("writing the txn log failed: {msg}");
                    }
                    if roll {
                        trigger.reset();
                        if let Err(e) = writer.roll() {
                            tracing::error!("rolling the txn log failed: {e}");
                        }
                    }
                }
                if let Err(e) = writer.close() {
                    tracing::warn!("closing the txn log failed: {e}");
                }
            })?;
        Ok(DiskLog { clock, tx })
    }

    /// Queues the entries of one append; `callback` fires after their fsync.
    pub fn append(&mut self, entries: &[Entry], callback: IOFlushed<TypeConfig>) -> io::Result<()> {
        let mut records = Vec::with_capacity(entries.len());
        for e in entries {
            let zxid = self
                .clock
                .next(term_of(&e.log_id), e.log_id.index)
                .map_err(io::Error::other)?;
            records.push(record(e, zxid)?);
        }
        self.tx
            .send(Batch { records, callback })
            .map_err(|_| io::Error::other("the txn log writer has stopped"))
    }
}

fn record(e: &Entry, zxid: i64) -> io::Result<(TxnHeader, Bytes)> {
    match &e.payload {
        EntryPayload::Normal(Txn(payload)) => {
            let mut r = Reader::new(payload.clone());
            let mut hdr = TxnHeader::read(&mut r).map_err(|err| {
                io::Error::other(format!("entry {} has no txn header: {err}", e.log_id))
            })?;
            hdr.zxid = zxid;
            Ok((hdr, r.rest()))
        }
        EntryPayload::Blank | EntryPayload::Membership(_) => {
            let time = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            Ok((
                TxnHeader {
                    client_id: 0,
                    cxid: 0,
                    zxid,
                    time,
                    r#type: ensemble_proto::op::ERROR,
                },
                ErrorTxn { err: 0 }.to_bytes(),
            ))
        }
    }
}
