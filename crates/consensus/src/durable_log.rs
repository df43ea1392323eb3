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
//! The vote, the last two memberships and where each term started live in the side file
//! (`side_file`). The last committed zxid known to this member is kept as a hint in
//! `dataDir/version-2/ensemble.commit` ([`committed_zxid_hint`]).
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
//! A term's start and a membership are written to the side file before their first record
//! reaches the log, so every zxid on disk can be mapped back to a log index and every membership
//! record back to its config. A side file may thus describe a membership whose record a crash
//! lost: at restart it is dropped for the previous one.
//!
//! # The commit hint
//! With several members, the log may end in records that are not committed, which Raft may still
//! replace. So the server's recovery applies records only up to the committed zxid hint, a value
//! the writer thread replaces (temp file and rename, no fsync: a lower value after a crash only
//! means more records are read back as uncommitted) at most once per group commit, and never
//! with a lower one. In standalone mode every record is committed once it is on disk.
//!
//! # Restart
//! The server's recovery has applied the log up to `recovered_zxid`, which maps to the entry `L`
//! (term = epoch, index = the term's start + counter - 1). The store starts with the log purged
//! up to `L`, the state machine resumes at `L`, and the records after `L` on disk (the tail) are
//! read back into the cache as entries after `L`: openraft learns from the leader (or, alone, by
//! its own election) which of them are committed and applies those. A tail record whose term
//! start is unknown ends the tail, and the records from it on are cut off the files. New records
//! go to a new file.
//!
//! # Truncation and snapshots from the leader
//! `truncate_after` cuts the records after the kept entry off the files (later files are
//! removed), forgets the later terms and a membership it removed, and the writer continues in a
//! new file. When openraft installs a snapshot from the leader and purges beyond the last record,
//! the next record starts a new file (its zxid jumps ahead; recovery starts from the server's
//! snapshot there). Records of later terms than the snapshot's are removed, since new records
//! would sort before them.
//!
//! # Rolling
//! Files roll at ZooKeeper's randomised `snapCount` point ([`SnapshotTrigger`]), and when the
//! writer's size limit is reached. Old entries are read back from disk only at start-up: the
//! cache follows openraft's purges, and old files are removed by the server's purge.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
#[cfg(not(feature = "sim"))]
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ensemble_proto::{op, ErrorTxn, Jute, TxnHeader};
use ensemble_storage::fs;
use ensemble_storage::txnlog::{self, TXN_HEADER_LEN};
use ensemble_storage::{LogEntry, SnapshotTrigger, StorageError, TxnLogReader, TxnLogWriter};
use openraft::entry::RaftEntry;
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

/// The commit hint's file in `dataDir/version-2`.
pub const COMMIT_FILE_NAME: &str = "ensemble.commit";

/// The last zxid this member knew to be committed, from `dataDir/version-2/ensemble.commit`;
/// `None` when the file is missing or unreadable. Every record up to it is committed; records
/// after it may not be (in quorum mode), so the server's recovery should apply only up to it.
pub fn committed_zxid_hint(data_dir: &Path) -> Option<i64> {
    let text = fs::read_to_string(commit_file_path(data_dir)).ok()?;
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
    .filter(|z| *z >= 0)
}

fn commit_file_path(data_dir: &Path) -> PathBuf {
    ensemble_storage::version_dir(data_dir).join(COMMIT_FILE_NAME)
}

/// Replaces the commit hint (temp file and rename; see the module docs for why no fsync).
/// How often, at most, the commit hint is rewritten under load.
const HINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

fn write_commit_hint(path: &Path, zxid: i64) -> io::Result<()> {
    let tmp = path.with_extension("commit.tmp");
    fs::write(&tmp, format!("0x{zxid:x}\n"))?;
    fs::rename(&tmp, path)
}

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

    /// The zxid of the entry `at`, through the side file's term starts.
    fn zxid_of(&self, at: LogId) -> io::Result<i64> {
        let term = term_of(&at);
        let start = self.side.lock().term_start(term).ok_or_else(|| {
            io::Error::other(format!(
                "no zxid for {at}: the start of term {term} is unknown"
            ))
        })?;
        let counter = (at.index + 1).checked_sub(start).ok_or_else(|| {
            io::Error::other(format!("no zxid for {at}: term {term} starts at {start}"))
        })?;
        zxid::zxid(term, counter).map_err(io::Error::other)
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
    thread: Mutex<Option<WriterThread>>,
}

/// The writer's thread; in the simulation, its task.
#[cfg(not(feature = "sim"))]
type WriterThread = JoinHandle<()>;
#[cfg(feature = "sim")]
type WriterThread = tokio::task::JoinHandle<()>;

/// Lets the state machine tell the log about a snapshot installed from the leader: where the
/// snapshot's term started (needed to number the entries after it when they continue that term)
/// and its membership (in force after it). Call [`InstalledSnapshot::record`] in
/// `install_snapshot`, before returning: openraft purges the log only after that.
#[derive(Clone)]
pub struct InstalledSnapshot {
    shared: Arc<Shared>,
}

impl InstalledSnapshot {
    /// Records, in the side file, the term start held by `clock` (the clock after the
    /// snapshot's last entry) unless that term's start is known already, and `membership` (the
    /// snapshot's) if it is newer than the log's last.
    pub fn record(&self, clock: TermClock, membership: &StoredMembership) -> io::Result<()> {
        self.shared.update_side(|s| {
            if let Some((term, start)) = clock.position() {
                s.insert_term_start(term, start);
            }
            if membership.log_id() > s.membership.log_id() {
                s.push_membership(membership.clone());
            }
        })
    }
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
    /// openraft purged the log up to this entry.
    Purged(LogId),
    /// openraft's committed entry advanced to this one.
    Committed(LogId),
    Stop,
}

/// What start-up read back: the side state, where the state machine resumes, and the tail.
struct Loaded {
    state: RaftSideState,
    /// The entry the server's recovery applied last (`None`: nothing applied).
    applied: Option<LogId>,
    resume: Option<Resume>,
    tail: Vec<Entry>,
    /// The last entry in the log (the tail's last, else `applied`).
    last: Option<LogId>,
    clock: TermClock,
    committed: Option<LogId>,
    /// Nothing on disk: the commit hint of an earlier log is void.
    fresh: bool,
}

/// Opens the durable log: reads (or synthesises) the side file, maps `recovered_zxid` to a log
/// id, reads the records after it back into the cache and starts the writer thread.
///
/// Returns the store, a handle for shutdown, and where the state machine resumes (`None` when
/// nothing was applied: an empty log, which the caller initializes, or a log whose every record
/// is in the tail).
pub fn open(
    server_id: u64,
    log: &DurableLog,
    recovered_zxid: i64,
) -> Result<(DurableLogStore, DurableLogHandle, Option<Resume>), ConsensusError> {
    let fatal = ConsensusError::Fatal;
    let side_dir = ensemble_storage::version_dir(&log.data_dir);
    fs::create_dir_all(&side_dir).map_err(|e| fatal(format!("{}: {e}", side_dir.display())))?;
    let side_path = side_file::side_file_path(&log.data_dir);
    let stored = side_file::read(&side_path).map_err(fatal)?;
    let hint = committed_zxid_hint(&log.data_dir);
    let loaded = load(server_id, log, stored, recovered_zxid, hint, &side_path)?;
    side_file::write(&side_path, &loaded.state)
        .map_err(|e| fatal(format!("{}: {e}", side_path.display())))?;
    let commit_path = commit_file_path(&log.data_dir);
    if loaded.fresh {
        match fs::remove_file(&commit_path) {
            Ok(()) => tracing::warn!("{}: removed: the txn log is empty", commit_path.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(fatal(format!("{}: {e}", commit_path.display()))),
        }
    }

    let writer = TxnLogWriter::open(&log.data_log_dir, log.options.clone()).map_err(|e| {
        fatal(format!(
            "{}: {e}",
            ensemble_storage::version_dir(&log.data_log_dir).display()
        ))
    })?;
    let shared = Arc::new(Shared {
        side_path,
        side: Mutex::new(loaded.state),
        records: AtomicU64::new(0),
        commits: AtomicU64::new(0),
    });
    let mut cache = match loaded.applied {
        Some(at) => LogCache::purged_up_to(Some(at)),
        None => LogCache::default(),
    };
    for entry in loaded.tail {
        cache
            .append(entry)
            .map_err(|e| fatal(format!("reading back the txn log: {e}")))?;
    }
    cache.committed = loaded.committed;

    let (queue, rx) = mpsc::channel();
    let worker = Writer {
        log: writer,
        data_log_dir: log.data_log_dir.clone(),
        options: log.options.clone(),
        trigger: SnapshotTrigger::new(log.snap_count, 0),
        clock: loaded.clock,
        last: loaded.last,
        shared: shared.clone(),
        failed: None,
        pending: Vec::new(),
        dirty: false,
        commit_path,
        hint_written: if loaded.fresh { 0 } else { hint.unwrap_or(0) },
        hint_pending: None,
        hint_at: None,
    };
    #[cfg(not(feature = "sim"))]
    let thread = std::thread::Builder::new()
        .name("txnlog-writer".into())
        .spawn(move || worker.run(rx))
        .map_err(|e| fatal(format!("cannot start the txn log writer: {e}")))?;
    #[cfg(feature = "sim")]
    let thread = tokio::spawn(worker.run_simulated(rx));
    let store = DurableLogStore {
        cache: Arc::new(Mutex::new(cache)),
        shared: shared.clone(),
        queue: queue.clone(),
    };
    let handle = DurableLogHandle {
        shared,
        queue,
        thread: Mutex::new(Some(thread)),
    };
    Ok((store, handle, loaded.resume))
}

/// Works out the side state, the resume point and the tail from what is on disk.
fn load(
    server_id: u64,
    log: &DurableLog,
    stored: Option<RaftSideState>,
    recovered_zxid: i64,
    hint: Option<i64>,
    side_path: &Path,
) -> Result<Loaded, ConsensusError> {
    let fatal = ConsensusError::Fatal;
    let had_state = stored.is_some();
    let (mut state, applied) = if recovered_zxid > 0 {
        let (state, at) = resume_at(server_id, stored, recovered_zxid, side_path);
        (state, Some(at))
    } else {
        // Nothing applied: the whole log is the tail, if the side file describes it.
        (stored.unwrap_or_default(), None)
    };
    let tail = read_tail(&log.data_log_dir, recovered_zxid, applied, &state)?;
    if applied.is_none() && tail.entries.is_empty() {
        if tail.cut_from.is_some() {
            tracing::warn!(
                "{}: the txn log's records are not described by the Raft state; removing them",
                side_path.display()
            );
            cut_log_after(&log.data_log_dir, 0)
                .map_err(|e| fatal(format!("cutting the txn log: {e}")))?;
        } else if had_state {
            // Nothing reached the log, so nothing was acknowledged: start afresh.
            tracing::warn!(
                "{}: ignoring Raft state: the txn log is empty",
                side_path.display()
            );
        }
        return Ok(Loaded {
            state: RaftSideState::default(),
            applied: None,
            resume: None,
            tail: Vec::new(),
            last: None,
            clock: TermClock::default(),
            committed: None,
            fresh: true,
        });
    }
    if let Some(from) = tail.cut_from {
        let keep = tail.zxids.last().copied().unwrap_or(recovered_zxid);
        tracing::warn!(
            "cutting the txn log after zxid 0x{keep:x}: record 0x{from:x} cannot be read back \
             as a Raft entry"
        );
        if hint.is_some_and(|h| h >= from) {
            tracing::error!(
                "the cut removes records up to the commit hint 0x{:x}",
                hint.unwrap_or(0)
            );
        }
        cut_log_after(&log.data_log_dir, keep)
            .map_err(|e| fatal(format!("cutting the txn log: {e}")))?;
    }

    let last = tail.entries.last().map(|e| e.log_id).or(applied);
    state
        .forget_membership_after(last)
        .map_err(|e| fatal(format!("{}: {e}", side_path.display())))?;
    if let Some(last) = last {
        state.forget_terms_after(term_of(&last));
        // The vote may not be older than the last entry's term; the next election goes above it.
        let floor = Vote::new_committed(term_of(&last), server_id);
        if state.vote.is_none_or(|v| v < floor) {
            state.vote = Some(floor);
        }
    }
    let clock_at = |at: LogId| {
        let term = term_of(&at);
        TermClock::resume(term, state.term_start(term).unwrap_or(at.index))
    };
    let resume = applied.map(|at| Resume {
        last_applied: at,
        membership: state.membership_at(at),
        clock: clock_at(at),
    });
    let clock = last.map(clock_at).unwrap_or_default();
    // Tail entries up to the hint are committed: openraft applies them before anything else.
    let committed = match hint {
        Some(hint) => tail
            .entries
            .iter()
            .zip(&tail.zxids)
            .take_while(|(_, z)| **z <= hint)
            .last()
            .map(|(e, _)| e.log_id)
            .or(applied),
        None => applied,
    };
    if !tail.entries.is_empty() {
        tracing::info!(
            "read back {} txn log records after zxid 0x{recovered_zxid:x} (up to 0x{:x}); \
             committed up to {}",
            tail.entries.len(),
            tail.zxids.last().copied().unwrap_or(0),
            committed.map_or_else(|| "none".to_string(), |c| c.to_string())
        );
    }
    Ok(Loaded {
        state,
        applied,
        resume,
        tail: tail.entries,
        last,
        clock,
        committed,
        fresh: false,
    })
}

/// Maps the recovered zxid to a log id with the side state, or synthesises the state when the
/// side file is missing or does not describe that zxid (a directory written by ZooKeeper).
fn resume_at(
    server_id: u64,
    stored: Option<RaftSideState>,
    recovered_zxid: i64,
    side_path: &Path,
) -> (RaftSideState, LogId) {
    let epoch = epoch_of(recovered_zxid);
    let counter = zxid::counter_of(recovered_zxid);
    let from_side = stored.as_ref().and_then(|s| {
        let start = s.term_start(epoch)?;
        let index = (start + counter).checked_sub(1)?;
        let voters = s.membership.membership().voter_ids().next().is_some();
        voters.then_some(log_id(epoch, index))
    });
    match (stored, from_side) {
        (Some(state), Some(at)) => (state, at),
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
                prev_membership: None,
                term_starts: vec![(term, 1)],
            };
            (state, at)
        }
    }
}

/// The records after the applied entry, read back as Raft entries.
struct Tail {
    entries: Vec<Entry>,
    /// The zxid of each entry.
    zxids: Vec<i64>,
    /// The zxid of the first record that could not be read back; it and later records must go.
    cut_from: Option<i64>,
}

/// Reads the records with zxid > `after_zxid` (the entry `after`) as entries, numbered with the
/// side state's term starts. A torn last record is cut off, as the server's recovery does.
fn read_tail(
    data_log_dir: &Path,
    after_zxid: i64,
    after: Option<LogId>,
    state: &RaftSideState,
) -> Result<Tail, ConsensusError> {
    let storage = |e: StorageError| ConsensusError::Fatal(format!("reading the txn log: {e}"));
    let mut reader = TxnLogReader::open(data_log_dir, after_zxid + 1).map_err(storage)?;
    let mut tail = Tail {
        entries: Vec::new(),
        zxids: Vec::new(),
        cut_from: None,
    };
    let mut prev = after;
    for record in reader.by_ref() {
        let record = record.map_err(storage)?;
        let zxid = record.header.zxid;
        if zxid <= after_zxid {
            continue;
        }
        let term = epoch_of(zxid);
        let counter = zxid::counter_of(zxid);
        let id = match state.term_start(term) {
            Some(start) if counter > 0 => log_id(term, start + counter - 1),
            _ => {
                tracing::warn!(
                    "{}: record 0x{zxid:x} ends the readable log: the start of term {term} is \
                     unknown",
                    record.file.display()
                );
                tail.cut_from = Some(zxid);
                break;
            }
        };
        if let Some(p) = prev {
            if id.index != p.index + 1 || term_of(&id) < term_of(&p) {
                tracing::warn!(
                    "{}: record 0x{zxid:x} (entry {id}) does not follow entry {p}",
                    record.file.display()
                );
                tail.cut_from = Some(zxid);
                break;
            }
        }
        tail.entries.push(entry_of(&record, id, state));
        tail.zxids.push(zxid);
        prev = Some(id);
    }
    if tail.cut_from.is_none() && reader.torn_tail().is_some() {
        reader.truncate_torn_tail().map_err(storage)?;
    }
    Ok(tail)
}

/// The entry a record was written from (see the module docs).
fn entry_of(record: &LogEntry, id: LogId, state: &RaftSideState) -> Entry {
    let header = &record.header;
    let raft_own = header.r#type == op::ERROR
        && header.client_id == 0
        && record.txn == ErrorTxn { err: 0 }.to_bytes();
    if raft_own {
        let membership = [Some(&state.membership), state.prev_membership.as_ref()]
            .into_iter()
            .flatten()
            .find(|m| m.log_id() == &Some(id));
        return match membership {
            Some(m) => Entry::new_membership(id, m.membership().clone()),
            None => Entry::new_blank(id),
        };
    }
    let proposed = TxnHeader {
        zxid: 0,
        ..header.clone()
    };
    let payload = txnlog::marshal_entry(&proposed, &record.txn, record.digest.as_ref());
    Entry::new_normal(id, Txn(Bytes::from(payload)))
}

/// Removes every record with zxid > `keep_zxid` from the log files: later files are removed and
/// the file holding the first such record is cut there.
fn cut_log_after(data_log_dir: &Path, keep_zxid: i64) -> io::Result<()> {
    let dir = ensemble_storage::version_dir(data_log_dir);
    let files = ensemble_storage::files::list_files(&dir, ensemble_storage::files::LOG_PREFIX)
        .map_err(io::Error::other)?;
    let mut removed = false;
    for (start, path) in files.iter().rev() {
        if *start <= keep_zxid {
            break;
        }
        tracing::warn!("truncating the txn log: removing {}", path.display());
        fs::remove_file(path)?;
        removed = true;
    }
    if removed {
        fs::sync_dir(&dir)?;
    }
    // Only the file that may hold `keep_zxid` is left to walk.
    let mut reader = TxnLogReader::open(data_log_dir, keep_zxid + 1).map_err(io::Error::other)?;
    let mut cut = None;
    for record in reader.by_ref() {
        match record {
            Ok(e) if e.header.zxid > keep_zxid => {
                cut = Some((e.file, e.offset));
                break;
            }
            Ok(_) => {}
            // Records after a gap are after `keep_zxid` too.
            Err(StorageError::Gap { file, offset, .. }) => {
                cut = Some((file, offset));
                break;
            }
            Err(e) => return Err(io::Error::other(e)),
        }
    }
    match cut {
        Some((file, offset)) => txnlog::truncate_log_at(&file, offset).map_err(io::Error::other),
        None => reader
            .truncate_torn_tail()
            .map(|_| ())
            .map_err(io::Error::other),
    }
}

impl DurableLogStore {
    /// See [`InstalledSnapshot`].
    pub fn installed_snapshot(&self) -> InstalledSnapshot {
        InstalledSnapshot {
            shared: self.shared.clone(),
        }
    }

    fn send(&self, command: Command) -> io::Result<()> {
        self.queue
            .send(command)
            .map_err(|_| io::Error::other("the txn log writer has stopped"))
    }
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
            #[cfg(not(feature = "sim"))]
            let stopped = tokio::task::spawn_blocking(move || thread.join())
                .await
                .is_ok();
            #[cfg(feature = "sim")]
            let stopped = thread.await.is_ok();
            if !stopped {
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
        self.cache.lock().committed = committed;
        // The writer turns it into the commit hint after its next group commit.
        match committed {
            Some(at) => self.send(Command::Committed(at)),
            None => Ok(()),
        }
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
        self.send(Command::Append { entries, callback })
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        self.cache.lock().truncate_after(last_log_id);
        let (done, result) = tokio::sync::oneshot::channel();
        self.send(Command::Truncate {
            after: last_log_id,
            done,
        })?;
        result
            .await
            .map_err(|_| io::Error::other("the txn log writer has stopped"))?
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        // Files are removed by the server's purge, after its snapshots; the writer only needs to
        // know when the log jumps ahead (a snapshot installed from the leader).
        self.cache.lock().purge(log_id);
        self.send(Command::Purged(log_id))
    }
}

/// The writer thread's state.
struct Writer {
    log: TxnLogWriter,
    data_log_dir: PathBuf,
    options: ensemble_storage::TxnLogOptions,
    trigger: SnapshotTrigger,
    clock: TermClock,
    /// The last entry in the log: appended, kept by a truncation, or purged beyond the records.
    last: Option<LogId>,
    shared: Arc<Shared>,
    /// Set by the first I/O error; every later batch fails with it.
    failed: Option<(io::ErrorKind, String)>,
    /// Callbacks of the batches appended since the last commit.
    pending: Vec<IOFlushed<TypeConfig>>,
    /// Records appended since the last commit.
    dirty: bool,
    commit_path: PathBuf,
    /// The commit hint last written (or found at start).
    hint_written: i64,
    /// The latest committed entry not yet in the hint.
    hint_pending: Option<LogId>,
    /// When the hint was last written.
    hint_at: Option<tokio::time::Instant>,
}

impl Writer {
    #[cfg_attr(feature = "sim", allow(dead_code))]
    fn run(mut self, queue: mpsc::Receiver<Command>) {
        loop {
            // A pending hint is written once the interval has passed, also when no more
            // commands come.
            let first = if self.hint_pending.is_some() {
                match queue.recv_timeout(HINT_INTERVAL) {
                    Ok(command) => command,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.write_hint(true);
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match queue.recv() {
                    Ok(command) => command,
                    Err(_) => break,
                }
            };
            if self.batch(first, &queue) {
                break;
            }
        }
        self.commit();
        self.write_hint(true);
    }

    /// Handles `first` and what else is queued, up to a group's limits, then commits the group
    /// and writes the commit hint if it is due. True once told to stop.
    fn batch(&mut self, first: Command, queue: &mpsc::Receiver<Command>) -> bool {
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
                Command::Purged(upto) => {
                    if self.last.is_none_or(|last| upto.index > last.index) {
                        self.commit();
                        let _ = self.guarded(|w| w.purged_beyond(upto));
                    }
                }
                Command::Committed(at) => {
                    self.hint_pending = self.hint_pending.max(Some(at));
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
        self.write_hint(false);
        stop
    }

    /// The same loop as [`Writer::run`] as a task of the member's own runtime, which looks for
    /// commands every millisecond: in the simulation no thread runs beside the simulated clock,
    /// so a seed replays exactly.
    #[cfg(feature = "sim")]
    async fn run_simulated(mut self, queue: mpsc::Receiver<Command>) {
        loop {
            match queue.try_recv() {
                Ok(first) => {
                    if self.batch(first, &queue) {
                        break;
                    }
                }
                Err(mpsc::TryRecvError::Empty) => {
                    self.write_hint(false);
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
                Err(mpsc::TryRecvError::Disconnected) => break,
            }
        }
        self.commit();
        self.write_hint(true);
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
            if self.last.is_some_and(|l| term_of(&l) == term) {
                // The log jumped ahead within this term (a snapshot from the leader): its start
                // came from the snapshot.
                let start = self.shared.side.lock().term_start(term).ok_or_else(|| {
                    io::Error::other(format!(
                        "cannot number entry {}: the log continues term {term} after a \
                         snapshot, and the term's start is unknown",
                        entry.log_id
                    ))
                })?;
                self.clock = TermClock::resume(term, start);
            } else {
                // Before the term's first record can reach the disk.
                self.shared
                    .update_side(|s| s.record_term_start(term, index))?;
            }
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
                // Before the record, as a term start (see the module docs).
                let stored = StoredMembership::new(Some(entry.log_id), membership.clone());
                self.shared.update_side(|s| s.push_membership(stored))?;
                (error_header(zxid), ErrorTxn { err: 0 }.to_bytes())
            }
        };
        self.log.append(&header, &txn, None)?;
        self.last = Some(entry.log_id);
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

    /// Writes and fsyncs what was appended, then completes the callbacks of every batch it
    /// covered.
    fn commit(&mut self) {
        let result = self.guarded(|w| {
            if w.dirty {
                w.log.commit()?;
                w.dirty = false;
                w.shared.commits.fetch_add(1, Ordering::Relaxed);
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

    /// Writes the commit hint if the committed entry moved past it. An entry whose term start is
    /// not known yet (not appended here yet) waits for a later round.
    /// Writes the pending commit hint, unless one was written less than [`HINT_INTERVAL`]
    /// ago and `now` is false. The hint is a file rename: per group commit it cost the writer
    /// thread as much as the fsync's bookkeeping, and a hint that lags is safe.
    fn write_hint(&mut self, now: bool) {
        let Some(at) = self.hint_pending else {
            return;
        };
        if !now && self.hint_at.is_some_and(|t| t.elapsed() < HINT_INTERVAL) {
            return;
        }
        self.hint_at = Some(tokio::time::Instant::now());
        let Ok(zxid) = self.shared.zxid_of(at) else {
            return;
        };
        self.hint_pending = None;
        if zxid <= self.hint_written {
            return;
        }
        match write_commit_hint(&self.commit_path, zxid) {
            Ok(()) => self.hint_written = zxid,
            // Only a hint: a lower one is safe, so a failure is not fatal.
            Err(e) => tracing::warn!("{}: {e}", self.commit_path.display()),
        }
    }

    /// Removes the records after `after` from the files: the file holding the first later record
    /// is cut there, and later files are removed. Callers commit first.
    fn truncate_after(&mut self, after: Option<LogId>) -> io::Result<()> {
        if after.is_some() && after >= self.last {
            // Nothing after it was logged.
            return Ok(());
        }
        let keep_zxid = match after {
            None => 0,
            Some(at) => self.shared.zxid_of(at).map_err(|e| {
                io::Error::other(format!("cannot truncate the txn log after {at}: {e}"))
            })?,
        };
        // A membership change after the cut is dropped with it; the one before it is in force
        // again. Checked before anything is cut.
        self.shared
            .side
            .lock()
            .clone()
            .forget_membership_after(after)
            .map_err(|e| io::Error::other(format!("cannot truncate the txn log: {e}")))?;
        // Stop writing into the current file; the next record starts a new one.
        self.log = TxnLogWriter::open(&self.data_log_dir, self.options.clone())?;
        cut_log_after(&self.data_log_dir, keep_zxid)?;
        self.clock = match after {
            None => TermClock::default(),
            Some(at) => {
                let term = term_of(&at);
                let start = self.shared.side.lock().term_start(term).unwrap_or(at.index);
                TermClock::resume(term, start)
            }
        };
        self.last = after;
        self.shared.update_side(|s| {
            if let Some(at) = after {
                s.forget_terms_after(term_of(&at));
            } else {
                s.term_starts.clear();
            }
            // Checked above, under the same writer.
            let _ = s.forget_membership_after(after);
        })
    }

    /// openraft purged the log up to `upto`, beyond its last record: every record on disk is
    /// behind the snapshot, and the next record's zxid jumps ahead. It starts a new file, so that
    /// each file's records stay dense. Records of later terms than the snapshot's would sort
    /// after the records to come: they are removed. Callers commit first.
    fn purged_beyond(&mut self, upto: LogId) -> io::Result<()> {
        let term = term_of(&upto);
        tracing::info!("the txn log continues after {upto}, beyond its last record");
        if self.last.is_some_and(|l| term_of(&l) > term) {
            self.log = TxnLogWriter::open(&self.data_log_dir, self.options.clone())?;
            let keep = zxid::zxid(term, zxid::MAX_COUNTER).map_err(io::Error::other)?;
            cut_log_after(&self.data_log_dir, keep)?;
        }
        self.log.roll()?;
        self.last = Some(upto);
        self.clock = match self.shared.side.lock().term_start(term) {
            Some(start) => TermClock::resume(term, start),
            // The next entry starts a new term, or finds the start in the side file.
            None => TermClock::default(),
        };
        self.shared.update_side(|s| {
            s.forget_terms_after(term);
            // A membership of a removed term is gone with its record.
            let _ = s.forget_membership_after(Some(upto));
        })
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

    fn membership(voters: &[u64]) -> Membership<u64, BasicNode> {
        Membership::new_with_defaults(vec![voters.iter().copied().collect()], [])
    }

    fn test_log(dir: &Path, snap_count: u64) -> DurableLog {
        DurableLog {
            data_dir: dir.join("data"),
            data_log_dir: dir.join("log"),
            options: ensemble_storage::TxnLogOptions {
                pre_alloc_size: 4096,
                ..Default::default()
            },
            snap_count,
        }
    }

    /// The first entries of a new log: the initial membership, term 1's blank entry, and
    /// normal entries up to `last`.
    fn first_entries(last: u64) -> Vec<Entry> {
        let mut entries = vec![
            Entry::new_membership(log_id(0, 0), membership(&[1])),
            blank(1, 1),
        ];
        entries.extend((2..=last).map(|i| normal(1, i)));
        entries
    }

    async fn all_entries(store: &mut DurableLogStore) -> Vec<Entry> {
        store.try_get_log_entries(..).await.expect("read")
    }

    /// A snapshot of an empty tree at `zxid`, so that the server's recovery replays after it.
    fn empty_snapshot(log: &DurableLog, zxid: i64) {
        let empty = tempfile::tempdir().expect("tempdir");
        let fresh = ensemble_storage::recover(empty.path(), empty.path()).expect("fresh");
        ensemble_storage::write_snapshot(
            &log.data_dir,
            &fresh.tree,
            &[],
            zxid,
            ensemble_storage::Compression::None,
        )
        .expect("snapshot");
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
        stored.membership = StoredMembership::new(Some(log_id(0, 0)), membership(&[1]));
        stored.term_starts = vec![(0, 0), (1, 1), (3, 40), (4, 60)];
        let (state, at) = resume_at(1, Some(stored.clone()), 0x3_0000_0005, Path::new("x"));
        assert_eq!(at, log_id(3, 44));
        assert_eq!(state, stored);
    }

    #[test]
    fn a_zookeeper_directory_gets_synthesised_raft_state() {
        let (state, at) = resume_at(5, None, 0x7_0000_0010, Path::new("ensemble.raft"));
        assert_eq!(at, log_id(7, 0x10));
        assert_eq!(state.term_starts, vec![(7, 1)]);
        let voters: Vec<u64> = state.membership.membership().voter_ids().collect();
        assert_eq!(voters, vec![5]);
    }

    #[test]
    fn epoch_zero_is_synthesised_as_term_one() {
        let (_, at) = resume_at(1, None, 0x5, Path::new("ensemble.raft"));
        assert_eq!(at, log_id(1, 5));
    }

    #[tokio::test]
    async fn a_restart_forgets_terms_that_never_reached_the_log_and_raises_the_vote() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = test_log(dir.path(), 1000);
        let (mut store, handle, _) = open(1, &log, 0).expect("open");
        append(&mut store, first_entries(3)).await;
        handle.stop().await;
        // A term recorded in the side file whose first record a crash lost.
        let path = side_file::side_file_path(&log.data_dir);
        let mut side = side_file::read(&path).expect("read").expect("side file");
        side.record_term_start(4, 4);
        side.vote = Some(Vote::new(0, 2));
        side_file::write(&path, &side).expect("write");

        let (_, handle, resume) = open(1, &log, 0x1_0000_0003).expect("reopen");
        handle.stop().await;
        let resume = resume.expect("resume");
        assert_eq!(resume.last_applied, log_id(1, 3));
        assert_eq!(resume.clock, TermClock::resume(1, 1));
        let side = side_file::read(&path).expect("read").expect("side file");
        assert_eq!(side.term_starts, vec![(0, 0), (1, 1)]);
        assert_eq!(side.vote, Some(Vote::new_committed(1, 1)));
    }

    #[tokio::test]
    async fn the_commit_hint_follows_the_committed_entry_and_never_goes_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = test_log(dir.path(), 1000);
        assert_eq!(committed_zxid_hint(&log.data_dir), None);
        let (mut store, handle, _) = open(1, &log, 0).expect("open");
        append(&mut store, first_entries(6)).await;
        store
            .save_committed(Some(log_id(1, 4)))
            .await
            .expect("save");
        // A lower value within the run is not written.
        store
            .save_committed(Some(log_id(1, 2)))
            .await
            .expect("save");
        handle.stop().await;
        assert_eq!(committed_zxid_hint(&log.data_dir), Some(0x1_0000_0004));
        assert_eq!(
            std::fs::read_to_string(commit_file_path(&log.data_dir)).expect("read"),
            "0x100000004\n"
        );

        std::fs::write(commit_file_path(&log.data_dir), "garbage").expect("write");
        assert_eq!(committed_zxid_hint(&log.data_dir), None);
        std::fs::write(commit_file_path(&log.data_dir), "4294967298\n").expect("write");
        assert_eq!(committed_zxid_hint(&log.data_dir), Some(0x1_0000_0002));
    }

    #[tokio::test]
    async fn a_restart_reads_back_the_uncommitted_tail_as_the_same_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = test_log(dir.path(), 4);
        let (mut store, handle, _) = open(1, &log, 0).expect("open");
        let written = first_entries(6);
        append(&mut store, written.clone()).await;
        store
            .save_committed(Some(log_id(1, 4)))
            .await
            .expect("save");
        handle.stop().await;

        // The server's recovery applied up to zxid 0x100000003; the hint says 4 is committed.
        let (mut store, handle, resume) = open(1, &log, 0x1_0000_0003).expect("reopen");
        let resume = resume.expect("resume");
        assert_eq!(resume.last_applied, log_id(1, 3));
        assert_eq!(resume.membership.log_id(), &Some(log_id(0, 0)));
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 3)));
        assert_eq!(state.last_log_id, Some(log_id(1, 6)));
        assert_eq!(all_entries(&mut store).await, written[4..].to_vec());
        assert_eq!(
            store.read_committed().await.expect("committed"),
            Some(log_id(1, 4))
        );

        // The writer continues after the tail.
        append(&mut store, vec![blank(2, 7), normal(2, 8)]).await;
        handle.stop().await;
        let zxids = zxids_on_disk(&log);
        assert_eq!(
            &zxids[zxids.len() - 3..],
            &[0x1_0000_0006, 0x2_0000_0001, 0x2_0000_0002]
        );

        // Nothing applied at all: the whole log is the tail, the membership entry included.
        let (mut store, handle, resume) = open(1, &log, 0).expect("reopen from nothing");
        assert!(resume.is_none());
        let mut expected = written;
        expected.extend([blank(2, 7), normal(2, 8)]);
        assert_eq!(all_entries(&mut store).await, expected);
        assert_eq!(
            store
                .get_log_state()
                .await
                .expect("state")
                .last_purged_log_id,
            None
        );
        handle.stop().await;
    }

    #[tokio::test]
    async fn a_membership_whose_record_a_crash_lost_gives_way_to_the_previous_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = test_log(dir.path(), 1000);
        let (mut store, handle, _) = open(1, &log, 0).expect("open");
        append(&mut store, first_entries(3)).await;
        handle.stop().await;
        // As if the side file were written for (1, 4) and the record never reached the disk.
        let path = side_file::side_file_path(&log.data_dir);
        let mut side = side_file::read(&path).expect("read").expect("side file");
        side.push_membership(StoredMembership::new(
            Some(log_id(1, 4)),
            membership(&[1, 2, 3]),
        ));
        side_file::write(&path, &side).expect("write");

        let (mut store, handle, resume) = open(1, &log, 0x1_0000_0002).expect("reopen");
        assert_eq!(
            resume.expect("resume").membership.log_id(),
            &Some(log_id(0, 0))
        );
        assert_eq!(all_entries(&mut store).await, vec![normal(1, 3)]);
        // A membership appended now, read back after a restart as a membership entry.
        let change = Entry::new_membership(log_id(1, 4), membership(&[1, 2]));
        append(&mut store, vec![change.clone()]).await;
        handle.stop().await;
        let (mut store, handle, _) = open(1, &log, 0x1_0000_0002).expect("reopen");
        assert_eq!(all_entries(&mut store).await, vec![normal(1, 3), change]);
        handle.stop().await;
    }

    #[tokio::test]
    async fn truncate_append_and_restart_give_the_new_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = test_log(dir.path(), 4);
        let (mut store, handle, _) = open(1, &log, 0).expect("open");
        let mut entries = first_entries(4);
        // An uncommitted membership change and entries of a leader that lost its term.
        entries.push(Entry::new_membership(log_id(2, 5), membership(&[1, 2, 3])));
        entries.extend((6..=9).map(|i| normal(2, i)));
        append(&mut store, entries.clone()).await;
        store
            .truncate_after(Some(log_id(1, 4)))
            .await
            .expect("truncate");
        let side = store.shared.side.lock().clone();
        assert_eq!(side.membership.log_id(), &Some(log_id(0, 0)));
        assert_eq!(side.term_starts, vec![(0, 0), (1, 1)]);
        let new = vec![blank(3, 5), normal(3, 6), normal(3, 7)];
        append(&mut store, new.clone()).await;
        store
            .save_committed(Some(log_id(3, 6)))
            .await
            .expect("save");
        handle.stop().await;

        let mut expected: Vec<i64> = vec![0x1];
        expected.extend((1..=4).map(|c| 0x1_0000_0000 + c));
        expected.extend((1..=3).map(|c| 0x3_0000_0000 + c));
        assert_eq!(zxids_on_disk(&log), expected);
        for file in TxnLogReader::open(&log.data_log_dir, 0)
            .expect("open")
            .files()
        {
            let summary = ensemble_storage::dump::verify_txn_log(file).expect("verify");
            assert_eq!((summary.crc_errors, summary.partial_tail), (0, None));
        }

        // The server's recovery up to the hint, and the log read back after it.
        empty_snapshot(&log, 0);
        let hint = committed_zxid_hint(&log.data_dir).expect("hint");
        assert_eq!(hint, 0x3_0000_0002);
        let recovered =
            ensemble_storage::recover_up_to(&log.data_dir, &log.data_log_dir, Some(hint))
                .expect("recover");
        assert_eq!(recovered.last_zxid, hint);
        let everything =
            ensemble_storage::recover(&log.data_dir, &log.data_log_dir).expect("recover all");
        assert_eq!(everything.last_zxid, 0x3_0000_0003);

        let (mut store, handle, resume) = open(1, &log, recovered.last_zxid).expect("reopen");
        assert_eq!(resume.expect("resume").last_applied, log_id(3, 6));
        assert_eq!(all_entries(&mut store).await, new[2..].to_vec());
        handle.stop().await;
        let (mut store, handle, _) = open(1, &log, 0x1_0000_0002).expect("reopen");
        let mut tail = entries[3..5].to_vec();
        tail.extend(new);
        assert_eq!(all_entries(&mut store).await, tail);
        handle.stop().await;
    }

    #[tokio::test]
    async fn a_snapshot_from_the_leader_makes_the_log_jump_to_a_new_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = test_log(dir.path(), 1000);
        let (mut store, handle, _) = open(2, &log, 0).expect("open");
        let mut entries = first_entries(4);
        // Uncommitted entries of a later term, which the snapshot's leader never had.
        entries.extend([blank(2, 5), normal(2, 6)]);
        append(&mut store, entries).await;

        // The leader's snapshot ends at (1, 20); term 1 started at index 1 there.
        let snapshot_membership = StoredMembership::new(Some(log_id(1, 10)), membership(&[1, 2]));
        store
            .installed_snapshot()
            .record(TermClock::resume(1, 1), &snapshot_membership)
            .expect("record");
        store.purge(log_id(1, 20)).await.expect("purge");
        let after = vec![normal(1, 21), normal(1, 22), blank(3, 23), normal(3, 24)];
        append(&mut store, after.clone()).await;
        handle.stop().await;

        let mut expected: Vec<i64> = vec![0x1];
        expected.extend((1..=4).map(|c| 0x1_0000_0000 + c));
        let jump = vec![0x1_0000_0015, 0x1_0000_0016, 0x3_0000_0001, 0x3_0000_0002];
        assert!(log
            .data_log_dir
            .join("version-2")
            .join("log.100000015")
            .is_file());
        // The records before the jump stay (the server's purge removes them later); the
        // term-2 records are gone.
        let before: Vec<i64> = TxnLogReader::open(&log.data_log_dir, 0)
            .expect("open")
            .map_while(Result::ok)
            .map(|e| e.header.zxid)
            .collect();
        assert_eq!(before, expected);

        // The server writes the installed snapshot; its recovery replays the records after it.
        empty_snapshot(&log, 0x1_0000_0014);
        let recovered =
            ensemble_storage::recover(&log.data_dir, &log.data_log_dir).expect("recover");
        assert_eq!(recovered.last_zxid, 0x3_0000_0002);
        assert_eq!(recovered.txns_replayed, 4);
        let recovered =
            ensemble_storage::recover_up_to(&log.data_dir, &log.data_log_dir, Some(0x1_0000_0014))
                .expect("recover to the snapshot");
        assert_eq!(recovered.last_zxid, 0x1_0000_0014);
        let zxids: Vec<i64> = TxnLogReader::open(&log.data_log_dir, 0x1_0000_0015)
            .expect("open")
            .map(|e| e.expect("record").header.zxid)
            .collect();
        assert_eq!(zxids, jump);

        // A restart at the snapshot reads the entries after it back.
        let (mut store, handle, resume) = open(2, &log, 0x1_0000_0014).expect("reopen");
        let resume = resume.expect("resume");
        assert_eq!(resume.last_applied, log_id(1, 20));
        assert_eq!(resume.membership, snapshot_membership);
        assert_eq!(all_entries(&mut store).await, after);
        handle.stop().await;
    }

    #[tokio::test]
    async fn a_jump_within_a_term_of_unknown_start_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = test_log(dir.path(), 1000);
        let (mut store, handle, _) = open(1, &log, 0).expect("open");
        append(&mut store, first_entries(3)).await;
        store.purge(log_id(2, 10)).await.expect("purge");
        let (tx, rx) = TypeConfig::oneshot();
        store
            .append(vec![normal(2, 11)], IOFlushed::signal(tx))
            .await
            .expect("queued");
        let err = rx.await.expect("flushed").expect_err("no zxid for it");
        assert!(err.to_string().contains("start is unknown"), "{err}");
        handle.stop().await;
        // Nothing after the jump reached the disk.
        assert_eq!(
            zxids_on_disk(&log),
            vec![0x1, 0x1_0000_0001, 0x1_0000_0002, 0x1_0000_0003]
        );
    }

    #[tokio::test]
    async fn an_empty_log_starts_afresh_and_voids_an_old_commit_hint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = test_log(dir.path(), 1000);
        std::fs::create_dir_all(ensemble_storage::version_dir(&log.data_dir)).expect("mkdir");
        std::fs::write(commit_file_path(&log.data_dir), "0x500000001\n").expect("write");
        let (mut store, handle, resume) = open(1, &log, 0).expect("open");
        assert!(resume.is_none());
        assert_eq!(committed_zxid_hint(&log.data_dir), None);
        assert_eq!(
            store.get_log_state().await.expect("state").last_log_id,
            None
        );
        handle.stop().await;
    }
}
