//! The Raft log on disk, as ZooKeeper's txn log: one log, no second copy beside it.
//!
//! # What is written
//! Every Raft entry becomes one record of `dataLogDir/version-2/log.<zxid>` (see
//! `ensemble_storage::txnlog` for the bytes), numbered by a [`TermClock`]:
//! - a normal entry's payload is a `TxnHeader` (zxid 0) followed by the txn: the record is that
//!   header with the zxid filled in, and the txn bytes unchanged;
//! - blank (new leader) and membership entries are `ErrorTxn { err: 0 }` with client id 0,
//!   cxid 0, type `op::ERROR` and the wall-clock time, so zxids stay dense and ZooKeeper reads the
//!   log as its own.
//!
//! The vote, the membership and where each term started live in the side file (`side_file`).
//!
//! # Group commit
//! openraft's `append` does not wait for the disk: it puts the entries in the in-memory cache (so
//! openraft can read them back) and queues them for the writer thread. That thread takes
//! everything queued, appends it to the log, calls `commit` once (one write and one fdatasync),
//! and only then completes every batch's `IOFlushed` callback. While it syncs, new batches queue
//! up and share the next fsync. After an I/O error the writer fails every later batch: openraft
//! then stops the group (an fsync that failed cannot be retried safely).
//!
//! # Side-file ordering
//! A term's start is written to the side file before the term's first record reaches the log, so
//! every zxid on disk can be mapped back to a log index. A membership is written to the side file
//! after its record is fsynced and before the batch is acknowledged.
//!
//! # Restart
//! The server's recovery has already applied everything on disk (in standalone every record on
//! disk is committed), so the store starts with the log purged up to the recovered entry `L` and
//! the state machine resumes at `L`: openraft reads and re-applies nothing. `L` comes from the
//! recovered zxid: term = epoch, index = the term's start + counter - 1. New records go to a new
//! file, starting with the next election's blank entry.
//!
//! # Rolling
//! Files roll at ZooKeeper's randomised `snapCount` point ([`SnapshotTrigger`]), and when the
//! writer's size limit is reached. Old entries are never read back from disk: the cache follows
//! openraft's purges, and old files are removed by the server's purge.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ensemble_proto::{op, ErrorTxn, Jute, TxnHeader};
use ensemble_storage::txnlog::{self, TXN_HEADER_LEN};
use ensemble_storage::{SnapshotTrigger, TxnLogReader, TxnLogWriter};
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{BasicNode, EntryPayload, LogState, Membership, RaftLogReader};
use parking_lot::Mutex;

use crate::log_store::LogCache;
use crate::side_file::{self, RaftSideState};
use crate::types::{log_id, term_of, Entry, LogId, StoredMembership, Txn, TypeConfig, Vote};
use crate::zxid::{self, epoch_of, TermClock};
use crate::{ConsensusError, DurableLog};

/// Most records one fsync covers; more waiting records go to the next one.
const MAX_GROUP_RECORDS: usize = 20_000;
/// Most bytes one fsync covers.
const MAX_GROUP_BYTES: usize = 16 * 1024 * 1024;

/// Counters of the log writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Records appended to the txn log since start.
    pub records: u64,
    /// Group commits since start: each is one write and, with `forceSync`, one fdatasync.
    pub commits: u64,
}

/// State shared by the store, its readers, the writer thread and [`DurableLogHandle`].
struct Shared {
    side_path: PathBuf,
    /// Held while the side file is written, so the file always matches the last state written.
    side: Mutex<RaftSideState>,
    records: AtomicU64,
    commits: AtomicU64,
}

impl Shared {
    /// Applies `change` to the side state and writes the file; on failure the state is left as
    /// it was.
    fn update_side(&self, change: impl FnOnce(&mut RaftSideState)) -> io::Result<()> {
        let mut side = self.side.lock();
        let mut next = side.clone();
        change(&mut next);
        if next != *side {
            side_file::write(&self.side_path, &next).map_err(|e| {
                io::Error::new(e.kind(), format!("{}: {e}", self.side_path.display()))
            })?;
            *side = next;
        }
        Ok(())
    }
}

/// Where the state machine resumes: the recovered entry, its membership and the zxid clock.
pub struct Resume {
    pub last_applied: LogId,
    pub membership: StoredMembership,
    pub clock: TermClock,
}

/// The openraft log store over the txn log.
pub struct DurableLogStore {
    cache: Arc<Mutex<LogCache>>,
    shared: Arc<Shared>,
    queue: mpsc::Sender<Command>,
}

/// Reads entries from the cache and the vote from the side state.
#[derive(Clone)]
pub struct DurableLogReader {
    cache: Arc<Mutex<LogCache>>,
    shared: Arc<Shared>,
}

/// What [`Consensus`](crate::Consensus) keeps to stop the writer and read its counters.
pub struct DurableLogHandle {
    shared: Arc<Shared>,
    queue: mpsc::Sender<Command>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

enum Command {
    Append {
        entries: Vec<Entry>,
        callback: IOFlushed<TypeConfig>,
    },
    Truncate {
        after: Option<LogId>,
        done: tokio::sync::oneshot::Sender<io::Result<()>>,
    },
    Stop,
}

/// Opens the durable log: reads (or synthesises) the side file, maps `recovered_zxid` to a log
/// id and starts the writer thread.
///
/// Returns the store, a handle for shutdown, and where the state machine resumes (`None` for an
/// empty log, which the caller initializes).
pub fn open(
    server_id: u64,
    log: &DurableLog,
    recovered_zxid: i64,
) -> Result<(DurableLogStore, DurableLogHandle, Option<Resume>), ConsensusError> {
    let fatal = ConsensusError::Fatal;
    let side_dir = ensemble_storage::version_dir(&log.data_dir);
    std::fs::create_dir_all(&side_dir)
        .map_err(|e| fatal(format!("{}: {e}", side_dir.display())))?;
    let side_path = side_file::side_file_path(&log.data_dir);
    let stored = side_file::read(&side_path).map_err(fatal)?;

    let (state, resume) = if recovered_zxid <= 0 {
        if stored.is_some() {
            // Nothing reached the log, so nothing was acknowledged: start afresh.
            tracing::warn!(
                "{}: ignoring Raft state: the txn log is empty",
                side_path.display()
            );
        }
        (RaftSideState::default(), None)
    } else {
        let (state, resume) = resume_at(server_id, stored, recovered_zxid, &side_path);
        (state, Some(resume))
    };
    side_file::write(&side_path, &state)
        .map_err(|e| fatal(format!("{}: {e}", side_path.display())))?;

    let last = resume.as_ref().map(|r| r.last_applied);
    let clock = resume.as_ref().map_or_else(TermClock::default, |r| r.clock);
    let writer = TxnLogWriter::open(&log.data_log_dir, log.options.clone()).map_err(|e| {
        fatal(format!(
            "{}: {e}",
            ensemble_storage::version_dir(&log.data_log_dir).display()
        ))
    })?;
    let shared = Arc::new(Shared {
        side_path,
        side: Mutex::new(state),
        records: AtomicU64::new(0),
        commits: AtomicU64::new(0),
    });
    let (queue, rx) = mpsc::channel();
    let worker = Writer {
        log: writer,
        data_log_dir: log.data_log_dir.clone(),
        options: log.options.clone(),
        trigger: SnapshotTrigger::new(log.snap_count, 0),
        clock,
        shared: shared.clone(),
        failed: None,
        pending: Vec::new(),
        pending_membership: None,
        dirty: false,
    };
    let thread = std::thread::Builder::new()
        .name("txnlog-writer".into())
        .spawn(move || worker.run(rx))
        .map_err(|e| fatal(format!("cannot start the txn log writer: {e}")))?;
    let store = DurableLogStore {
        cache: Arc::new(Mutex::new(LogCache::purged_up_to(last))),
        shared: shared.clone(),
        queue: queue.clone(),
    };
    let handle = DurableLogHandle {
        shared,
        queue,
        thread: Mutex::new(Some(thread)),
    };
    Ok((store, handle, resume))
}

/// Maps the recovered zxid to a log id with the side state, or synthesises the state when the
/// side file is missing or does not describe that zxid (a directory written by ZooKeeper).
fn resume_at(
    server_id: u64,
    stored: Option<RaftSideState>,
    recovered_zxid: i64,
    side_path: &Path,
) -> (RaftSideState, Resume) {
    let epoch = epoch_of(recovered_zxid);
    let counter = zxid::counter_of(recovered_zxid);
    let from_side = stored.as_ref().and_then(|s| {
        let start = s.term_start(epoch)?;
        let index = (start + counter).checked_sub(1)?;
        let at = log_id(epoch, index);
        // A membership beyond the recovered entry would contradict the log.
        let membership_ok = s.membership.log_id().is_none_or(|m| m <= at)
            && s.membership.membership().voter_ids().next().is_some();
        membership_ok.then_some((at, start))
    });
    let (mut state, at, start) = match (stored, from_side) {
        (Some(state), Some((at, start))) => (state, at, start),
        (stored, _) => {
            if stored.is_some() {
                tracing::warn!(
                    "{}: Raft state does not describe zxid 0x{recovered_zxid:x}; \
                     continuing from the txn log alone",
                    side_path.display()
                );
            } else {
                tracing::info!(
                    "no Raft state in {}: continuing the txn log at zxid 0x{recovered_zxid:x}",
                    side_path.display()
                );
            }
            // Term = epoch (at least 1), the term starting at index 1, so index = counter.
            let term = epoch.max(1);
            let at = log_id(term, counter);
            let membership = Membership::new(
                vec![[server_id].into()],
                BTreeMap::from([(server_id, BasicNode::default())]),
            )
            .unwrap_or_else(|_| Membership::new_with_defaults(vec![[server_id].into()], []));
            let state = RaftSideState {
                vote: stored.and_then(|s| s.vote),
                membership: StoredMembership::new(Some(log_id(0, 0)), membership),
                term_starts: vec![(term, 1)],
            };
            (state, at, 1)
        }
    };
    state.forget_terms_after(term_of(&at));
    // The vote may not be older than the last entry's term; the next election goes above it.
    let floor = Vote::new_committed(term_of(&at), server_id);
    if state.vote.is_none_or(|v| v < floor) {
        state.vote = Some(floor);
    }
    let resume = Resume {
        last_applied: at,
        membership: state.membership.clone(),
        clock: TermClock::resume(term_of(&at), start),
    };
    (state, resume)
}

impl DurableLogHandle {
    pub fn stats(&self) -> LogStats {
        LogStats {
            records: self.shared.records.load(Ordering::Acquire),
            commits: self.shared.commits.load(Ordering::Acquire),
        }
    }

    /// Lets the writer finish what is queued (one last commit) and waits for its thread.
    pub async fn stop(&self) {
        let _ = self.queue.send(Command::Stop);
        let thread = self.thread.lock().take();
        if let Some(thread) = thread {
            if tokio::task::spawn_blocking(move || thread.join())
                .await
                .is_err()
            {
                tracing::warn!("the txn log writer did not stop cleanly");
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for DurableLogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(self.cache.lock().range(range))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.shared.side.lock().vote)
    }
}

impl RaftLogReader<TypeConfig> for DurableLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(self.cache.lock().range(range))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.shared.side.lock().vote)
    }
}

impl RaftLogStorage<TypeConfig> for DurableLogStore {
    type LogReader = DurableLogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        Ok(self.cache.lock().log_state())
    }

    async fn get_log_reader(&mut self) -> DurableLogReader {
        DurableLogReader {
            cache: self.cache.clone(),
            shared: self.shared.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        // Rare (elections), so written in place; durable before this returns.
        self.shared.update_side(|s| s.vote = Some(*vote))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Not persisted: in standalone everything on disk is committed.
        self.cache.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.cache.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        {
            let mut cache = self.cache.lock();
            for entry in &entries {
                cache.append(entry.clone())?;
            }
        }
        self.queue
            .send(Command::Append { entries, callback })
            .map_err(|_| io::Error::other("the txn log writer has stopped"))
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        self.cache.lock().truncate_after(last_log_id);
        let (done, result) = tokio::sync::oneshot::channel();
        self.queue
            .send(Command::Truncate {
                after: last_log_id,
                done,
            })
            .map_err(|_| io::Error::other("the txn log writer has stopped"))?;
        result
            .await
            .map_err(|_| io::Error::other("the txn log writer has stopped"))?
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        // Only the cache: files are removed by the server's purge, after its snapshots.
        self.cache.lock().purge(log_id);
        Ok(())
    }
}

/// The writer thread's state.
struct Writer {
    log: TxnLogWriter,
    data_log_dir: PathBuf,
    options: ensemble_storage::TxnLogOptions,
    trigger: SnapshotTrigger,
    clock: TermClock,
    shared: Arc<Shared>,
    /// Set by the first I/O error; every later batch fails with it.
    failed: Option<(io::ErrorKind, String)>,
    /// Callbacks of the batches appended since the last commit.
    pending: Vec<IOFlushed<TypeConfig>>,
    /// The last membership appended since the last commit.
    pending_membership: Option<StoredMembership>,
    /// Records appended since the last commit.
    dirty: bool,
}

impl Writer {
    fn run(mut self, queue: mpsc::Receiver<Command>) {
        while let Ok(first) = queue.recv() {
            let mut next = Some(first);
            let mut stop = false;
            let mut records = 0;
            while let Some(command) = next.take() {
                match command {
                    Command::Append { entries, callback } => {
                        records += entries.len();
                        self.append(&entries);
                        self.pending.push(callback);
                    }
                    Command::Truncate { after, done } => {
                        self.commit();
                        let result = self.guarded(|w| w.truncate_after(after));
                        let _ = done.send(result);
                    }
                    Command::Stop => {
                        stop = true;
                        break;
                    }
                }
                if records >= MAX_GROUP_RECORDS || self.log.buffered_bytes() >= MAX_GROUP_BYTES {
                    break;
                }
                next = queue.try_recv().ok();
            }
            self.commit();
            if stop {
                break;
            }
        }
        self.commit();
    }

    /// Runs `op` unless the writer already failed; a failure is remembered.
    fn guarded(&mut self, op: impl FnOnce(&mut Self) -> io::Result<()>) -> io::Result<()> {
        if let Some((kind, msg)) = &self.failed {
            return Err(io::Error::new(*kind, msg.clone()));
        }
        op(self).inspect_err(|e| {
            tracing::error!("txn log writer failed: {e}");
            self.failed = Some((e.kind(), e.to_string()));
        })
    }

    fn append(&mut self, entries: &[Entry]) {
        let _ = self.guarded(|w| entries.iter().try_for_each(|e| w.append_entry(e)));
    }

    fn append_entry(&mut self, entry: &Entry) -> io::Result<()> {
        let (term, index) = (term_of(&entry.log_id), entry.log_id.index);
        if self.clock.position().map(|(t, _)| t) != Some(term) {
            // Before the term's first record can reach the disk.
            self.shared
                .update_side(|s| s.record_term_start(term, index))?;
        }
        let zxid = self.clock.next(term, index).map_err(io::Error::other)?;
        let (header, txn) = match &entry.payload {
            EntryPayload::Normal(Txn(payload)) => {
                let mut header = decode_header(payload)?;
                header.zxid = zxid;
                (header, payload.slice(TXN_HEADER_LEN..))
            }
            EntryPayload::Blank => (error_header(zxid), ErrorTxn { err: 0 }.to_bytes()),
            EntryPayload::Membership(membership) => {
                self.pending_membership = Some(StoredMembership::new(
                    Some(entry.log_id),
                    membership.clone(),
                ));
                (error_header(zxid), ErrorTxn { err: 0 }.to_bytes())
            }
        };
        self.log.append(&header, &txn, None)?;
        self.dirty = true;
        self.shared.records.fetch_add(1, Ordering::Relaxed);
        self.trigger
            .record_append((TXN_HEADER_LEN + txn.len()) as u64);
        if self.trigger.should_snapshot() {
            self.log.roll()?;
            self.trigger.reset();
        }
        Ok(())
    }

    /// Writes and fsyncs what was appended, records a new membership, then completes the
    /// callbacks of every batch it covered.
    fn commit(&mut self) {
        let result = self.guarded(|w| {
            if w.dirty {
                w.log.commit()?;
                w.dirty = false;
                w.shared.commits.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(membership) = w.pending_membership.take() {
                w.shared.update_side(|s| s.membership = membership)?;
            }
            Ok(())
        });
        for callback in self.pending.drain(..) {
            let result = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            callback.io_completed(result);
        }
    }

    /// Removes the records after `after` from the files: the file holding the first later record
    /// is cut there, and later files are removed. Callers commit first.
    fn truncate_after(&mut self, after: Option<LogId>) -> io::Result<()> {
        let keep_zxid = match after {
            None => 0,
            Some(at) => {
                let term = term_of(&at);
                let start = self.shared.side.lock().term_start(term).ok_or_else(|| {
                    io::Error::other(format!(
                        "cannot truncate the txn log after {at}: the start of term {term} is unknown"
                    ))
                })?;
                let counter = (at.index + 1).checked_sub(start).ok_or_else(|| {
                    io::Error::other(format!(
                        "cannot truncate the txn log after {at}: term {term} starts at {start}"
                    ))
                })?;
                zxid::zxid(term, counter).map_err(io::Error::other)?
            }
        };
        let membership_at = *self.shared.side.lock().membership.log_id();
        if membership_at.is_some() && membership_at > after {
            return Err(io::Error::other(format!(
                "cannot truncate the txn log after {}: it would remove the membership change at \
                 {}, whose config the log does not hold",
                after.map_or("the start".to_string(), |a| a.to_string()),
                membership_at.map_or(String::new(), |m| m.to_string()),
            )));
        }
        // Stop writing into the current file; the next record starts a new one.
        self.log = TxnLogWriter::open(&self.data_log_dir, self.options.clone())?;
        let dir = ensemble_storage::version_dir(&self.data_log_dir);
        let files = ensemble_storage::files::list_files(&dir, ensemble_storage::files::LOG_PREFIX)
            .map_err(io::Error::other)?;
        let mut removed = false;
        for (start, path) in files.iter().rev() {
            if *start <= keep_zxid {
                break;
            }
            tracing::warn!("truncating the txn log: removing {}", path.display());
            std::fs::remove_file(path)?;
            removed = true;
        }
        if removed {
            std::fs::File::open(&dir)?.sync_all()?;
        }
        let cut = TxnLogReader::open(&self.data_log_dir, keep_zxid + 1)
            .map_err(io::Error::other)?
            .find_map(|e| match e {
                Ok(e) if e.header.zxid > keep_zxid => Some(Ok((e.file, e.offset))),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .transpose()
            .map_err(io::Error::other)?;
        if let Some((file, offset)) = cut {
            txnlog::truncate_log_at(&file, offset).map_err(io::Error::other)?;
        }
        self.clock = match after {
            None => TermClock::default(),
            Some(at) => {
                let term = term_of(&at);
                let start = self.shared.side.lock().term_start(term).unwrap_or(at.index);
                TermClock::resume(term, start)
            }
        };
        let last_term = after.map_or(0, |a| term_of(&a));
        self.shared.update_side(|s| {
            if after.is_none() {
                s.term_starts.clear();
            } else {
                s.forget_terms_after(last_term);
            }
        })?;
        Ok(())
    }
}

/// The `TxnHeader` a proposal's payload starts with.
fn decode_header(payload: &Bytes) -> io::Result<TxnHeader> {
    if payload.len() < TXN_HEADER_LEN {
        return Err(invalid_payload(payload.len()));
    }
    TxnHeader::from_bytes(&payload[..TXN_HEADER_LEN])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad TxnHeader: {e}")))
}

pub(crate) fn invalid_payload(len: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a proposal of {len} bytes cannot hold a TxnHeader ({TXN_HEADER_LEN} bytes)"),
    )
}

/// The header of the `ErrorTxn` standing for a blank or membership entry.
fn error_header(zxid: i64) -> TxnHeader {
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    TxnHeader {
        client_id: 0,
        cxid: 0,
        zxid,
        time,
        r#type: op::ERROR,
    }
}

#[cfg(test)]
mod tests {
    use openraft::entry::RaftEntry;
    use openraft::type_config::TypeConfigExt;

    use super::*;
    use ensemble_proto::{SetDataTxn, Writer};

    fn normal(term: u64, index: u64) -> Entry {
        let mut w = Writer::new();
        TxnHeader {
            client_id: 1,
            cxid: index as i32,
            zxid: 0,
            time: 0,
            r#type: op::SET_DATA,
        }
        .write(&mut w);
        SetDataTxn {
            path: "/a".into(),
            data: None,
            version: 0,
        }
        .write(&mut w);
        Entry::new_normal(log_id(term, index), Txn(w.into_bytes()))
    }

    fn blank(term: u64, index: u64) -> Entry {
        Entry::new_blank(log_id(term, index))
    }

    async fn append(store: &mut DurableLogStore, entries: Vec<Entry>) {
        let (tx, rx) = TypeConfig::oneshot();
        store
            .append(entries, IOFlushed::signal(tx))
            .await
            .expect("append");
        rx.await.expect("flushed").expect("fsync");
    }

    fn zxids_on_disk(log: &DurableLog) -> Vec<i64> {
        TxnLogReader::open(&log.data_log_dir, 0)
            .expect("open")
            .map(|e| e.expect("record").header.zxid)
            .collect()
    }

    #[tokio::test]
    async fn truncation_cuts_the_txn_log_after_the_kept_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = DurableLog {
            data_dir: dir.path().join("data"),
            data_log_dir: dir.path().join("log"),
            options: ensemble_storage::TxnLogOptions {
                pre_alloc_size: 4096,
                ..Default::default()
            },
            // Rolls within the entries, so the cut removes whole files too.
            snap_count: 4,
        };
        let (mut store, handle, resume) = open(1, &log, 0).expect("open");
        assert!(resume.is_none());
        let membership = Membership::new_with_defaults(vec![[1].into()], []);
        let mut entries = vec![Entry::new_membership(log_id(0, 0), membership), blank(1, 1)];
        entries.extend((2..=6).map(|i| normal(1, i)));
        entries.push(blank(2, 7));
        entries.extend((8..=9).map(|i| normal(2, i)));
        append(&mut store, entries).await;
        assert_eq!(
            zxids_on_disk(&log),
            vec![
                0x1,
                0x1_0000_0001,
                0x1_0000_0002,
                0x1_0000_0003,
                0x1_0000_0004,
                0x1_0000_0005,
                0x1_0000_0006,
                0x2_0000_0001,
                0x2_0000_0002,
                0x2_0000_0003,
            ]
        );

        store
            .truncate_after(Some(log_id(1, 4)))
            .await
            .expect("truncate");
        let kept = vec![
            0x1,
            0x1_0000_0001,
            0x1_0000_0002,
            0x1_0000_0003,
            0x1_0000_0004,
        ];
        assert_eq!(zxids_on_disk(&log), kept);
        assert_eq!(store.shared.side.lock().term_starts, vec![(0, 0), (1, 1)]);

        // The log continues after the cut with a new term.
        append(&mut store, vec![blank(3, 5), normal(3, 6)]).await;
        let mut expected = kept;
        expected.extend([0x3_0000_0001, 0x3_0000_0002]);
        assert_eq!(zxids_on_disk(&log), expected);

        // The membership change's config is only in the side file: not cut.
        let err = store.truncate_after(None).await.expect_err("refused");
        assert!(err.to_string().contains("membership"), "{err}");
        handle.stop().await;
        assert_eq!(zxids_on_disk(&log), expected);
    }

    #[test]
    fn a_recovered_zxid_maps_to_its_log_index_through_the_term_start() {
        let mut stored = RaftSideState {
            vote: Some(Vote::new_committed(3, 1)),
            ..RaftSideState::default()
        };
        stored.membership = StoredMembership::new(
            Some(log_id(0, 0)),
            Membership::new_with_defaults(vec![[1].into()], []),
        );
        stored.term_starts = vec![(0, 0), (1, 1), (3, 40), (4, 60)];
        let (state, resume) = resume_at(1, Some(stored), 0x3_0000_0005, Path::new("ensemble.raft"));
        assert_eq!(resume.last_applied, log_id(3, 44));
        assert_eq!(resume.clock, TermClock::resume(3, 40));
        // Term 4 never reached the log: forgotten.
        assert_eq!(state.term_starts, vec![(0, 0), (1, 1), (3, 40)]);
        assert_eq!(state.vote, Some(Vote::new_committed(3, 1)));
    }

    #[test]
    fn a_zookeeper_directory_gets_synthesised_raft_state() {
        let (state, resume) = resume_at(5, None, 0x7_0000_0010, Path::new("ensemble.raft"));
        assert_eq!(resume.last_applied, log_id(7, 0x10));
        assert_eq!(state.term_starts, vec![(7, 1)]);
        assert_eq!(state.vote, Some(Vote::new_committed(7, 5)));
        let voters: Vec<u64> = state.membership.membership().voter_ids().collect();
        assert_eq!(voters, vec![5]);
        let mut clock = resume.clock;
        assert_eq!(clock.next(7, 0x10), Ok(0x7_0000_0010));
    }

    #[test]
    fn epoch_zero_is_synthesised_as_term_one() {
        let (_, resume) = resume_at(1, None, 0x5, Path::new("ensemble.raft"));
        assert_eq!(resume.last_applied, log_id(1, 5));
    }
}
