//! The Raft state machine: numbers committed entries with zxids and hands transactions to the
//! server's [`Applier`].
//!
//! The data tree itself lives in the server; this side keeps only what openraft asks of a state
//! machine (last applied log id, membership) plus the [`TermClock`]. In standalone mode a
//! snapshot carries just that clock: enough for openraft to purge the in-memory log. In quorum
//! mode it also carries the server's state serialized by [`Applier::capture`] into a file (a
//! ZooKeeper snapshot), which a leader streams to a member that lags behind its log; the member
//! hands the received file to [`Applier::install`]. Neither side holds the serialized state in
//! memory.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::{Stream, TryStreamExt};
use openraft::storage::{ApplyResponder, EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, RaftSnapshotBuilder};
use parking_lot::Mutex;

use ensemble_storage::fs;

use crate::durable_log::{InstalledSnapshot, Resume};
use crate::types::{term_of, LogId, Snapshot, SnapshotMeta, StoredMembership, Txn, TypeConfig};
use crate::zxid::TermClock;
use crate::Applier;

/// An applied entry's responder (None when nobody waits on it) and its zxid.
type Answer = (Option<ApplyResponder<TypeConfig>>, i64);

/// What a snapshot carries (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct SnapshotData {
    pub clock: TermClock,
    /// The server's serialized state at the snapshot's last log id; None when the snapshot
    /// carries no data (standalone mode, or a resumed state machine before its first build).
    pub file: Option<Arc<SnapshotFile>>,
}

/// A file holding a snapshot's serialized state. `remove` (the file itself, or the directory
/// it was written in) is deleted when the last handle to it goes.
#[derive(Debug)]
pub struct SnapshotFile {
    path: PathBuf,
    remove: PathBuf,
}

impl SnapshotFile {
    pub fn new(path: PathBuf, remove: PathBuf) -> SnapshotFile {
        SnapshotFile { path, remove }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SnapshotFile {
    fn drop(&mut self) {
        let result = if fs::metadata(&self.remove).is_ok_and(|m| m.is_dir()) {
            fs::remove_dir_all(&self.remove)
        } else {
            fs::remove_file(&self.remove)
        };
        if let Err(e) = result {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!("cannot remove {}: {e}", self.remove.display());
            }
        }
    }
}

/// Where snapshot files are written: captures of this member's state, and snapshots received
/// from a leader. Emptied at start.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    next: AtomicU64,
}

impl Staging {
    pub fn open(dir: PathBuf) -> io::Result<Staging> {
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        fs::create_dir_all(&dir)?;
        Ok(Staging {
            dir,
            next: AtomicU64::new(1),
        })
    }

    /// A path in the staging directory that no other transfer uses.
    pub fn fresh(&self, prefix: &str) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{prefix}.{n}"))
    }
}

pub struct StateMachine {
    applier: Arc<dyn Applier>,
    last_applied_zxid: Arc<AtomicI64>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    clock: TermClock,
    /// Shared with snapshot builders, which run outside `&mut self`.
    current_snapshot: Arc<Mutex<Option<Snapshot<SnapshotData>>>>,
    /// Whether snapshots carry the server's state (quorum mode).
    capture_data: bool,
    /// Tells the durable log where an installed snapshot leaves the log (quorum mode).
    installed: Option<InstalledSnapshot>,
    /// Where captures are written (quorum mode).
    staging: Option<Arc<Staging>>,
}

impl StateMachine {
    /// Applies the txns gathered so far and answers every entry up to the last one.
    fn flush(&mut self, txns: &mut Vec<(i64, bytes::Bytes)>, answers: &mut Vec<Answer>) {
        if !txns.is_empty() {
            self.applier.apply_all(txns);
            txns.clear();
        }
        if let Some((_, zxid)) = answers.last() {
            self.last_applied_zxid.store(*zxid, Ordering::Release);
        }
        for (responder, zxid) in answers.drain(..) {
            if let Some(responder) = responder {
                responder.send(zxid);
            }
        }
    }

    pub fn new(applier: Arc<dyn Applier>, last_applied_zxid: Arc<AtomicI64>) -> Self {
        StateMachine {
            applier,
            last_applied_zxid,
            last_applied: None,
            membership: StoredMembership::default(),
            clock: TermClock::default(),
            current_snapshot: Arc::default(),
            capture_data: false,
            installed: None,
            staging: None,
        }
    }

    /// Makes snapshots carry the server's state (written into `staging`), for members that
    /// lag behind the log; an installed snapshot's term start and membership are recorded
    /// through `installed`.
    pub fn with_data_snapshots(
        mut self,
        installed: InstalledSnapshot,
        staging: Arc<Staging>,
    ) -> Self {
        self.capture_data = true;
        self.installed = Some(installed);
        self.staging = Some(staging);
        self
    }

    /// A state machine that has applied everything up to `last_applied` (by the server's own
    /// recovery), with a snapshot there so that openraft reads no older entry.
    pub fn resumed(
        applier: Arc<dyn Applier>,
        last_applied_zxid: Arc<AtomicI64>,
        recovered_zxid: i64,
        resume: Resume,
    ) -> Self {
        last_applied_zxid.store(recovered_zxid, Ordering::Release);
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                last_log_id: Some(resume.last_applied),
                last_membership: resume.membership.clone(),
            },
            snapshot: SnapshotData {
                clock: resume.clock,
                file: None,
            },
        };
        StateMachine {
            applier,
            last_applied_zxid,
            last_applied: Some(resume.last_applied),
            membership: resume.membership,
            clock: resume.clock,
            current_snapshot: Arc::new(Mutex::new(Some(snapshot))),
            capture_data: false,
            installed: None,
            staging: None,
        }
    }
}

pub struct SnapshotBuilder {
    snapshot: Snapshot<SnapshotData>,
    current_snapshot: Arc<Mutex<Option<Snapshot<SnapshotData>>>>,
    /// Serializes the state captured when the builder was made.
    serialize: Option<Mutex<Option<SerializeJob>>>,
}

type SerializeJob = Box<dyn FnOnce() -> io::Result<Option<SnapshotFile>> + Send>;

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot<SnapshotData>, io::Error> {
        if let Some(job) = self.serialize.take().and_then(|j| j.into_inner()) {
            // In the simulation the file is written at once, on the member's own runtime: no
            // thread runs beside the simulated clock, so a seed replays exactly.
            #[cfg(feature = "sim")]
            let file = job()?;
            #[cfg(not(feature = "sim"))]
            let file = tokio::task::spawn_blocking(job)
                .await
                .map_err(io::Error::other)??;
            self.snapshot.snapshot.file = file.map(Arc::new);
        }
        *self.current_snapshot.lock() = Some(self.snapshot.clone());
        Ok(self.snapshot.clone())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<S>(&mut self, mut entries: S) -> Result<(), io::Error>
    where
        S: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + Send,
    {
        // Consecutive txns go to the applier together; the entries' responders are answered
        // once their txns are applied.
        let mut txns = Vec::new();
        let mut answers = Vec::new();
        loop {
            // On an error the entries gathered before it are applied first, as one by one.
            let (entry, responder) = match entries.try_next().await {
                Ok(Some(next)) => next,
                Ok(None) => break,
                Err(e) => {
                    self.flush(&mut txns, &mut answers);
                    return Err(e);
                }
            };
            let zxid = match self.clock.next(term_of(&entry.log_id), entry.log_id.index) {
                Ok(zxid) => zxid,
                Err(e) => {
                    self.flush(&mut txns, &mut answers);
                    return Err(io::Error::other(e));
                }
            };
            match &entry.payload {
                EntryPayload::Normal(Txn(payload)) => txns.push((zxid, payload.clone())),
                EntryPayload::Membership(membership) => {
                    self.flush(&mut txns, &mut answers);
                    self.membership = StoredMembership::new(Some(entry.log_id), membership.clone());
                }
                EntryPayload::Blank => {}
            }
            self.last_applied = Some(entry.log_id);
            answers.push((responder, zxid));
            if txns.len() >= crate::APPLY_BATCH {
                self.flush(&mut txns, &mut answers);
            }
        }
        self.flush(&mut txns, &mut answers);
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        // Called between applies, so the capture matches `last_applied` exactly.
        let serialize = match (&self.staging, self.capture_data) {
            (Some(staging), true) => Some(Mutex::new(Some(self.applier.capture(
                self.last_applied_zxid.load(Ordering::Acquire),
                staging.fresh("out"),
            )))),
            _ => None,
        };
        SnapshotBuilder {
            snapshot: Snapshot {
                meta: SnapshotMeta {
                    last_log_id: self.last_applied,
                    last_membership: self.membership.clone(),
                },
                snapshot: SnapshotData {
                    clock: self.clock,
                    file: None,
                },
            },
            current_snapshot: self.current_snapshot.clone(),
            serialize,
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        if let Some(log_id) = meta.last_log_id {
            let mut clock = snapshot.clock;
            let zxid = clock
                .next(term_of(&log_id), log_id.index)
                .map_err(io::Error::other)?;
            if let Some(file) = &snapshot.file {
                self.applier.install(zxid, file.path())?;
            }
            self.last_applied_zxid.store(zxid, Ordering::Release);
        }
        if let Some(installed) = &self.installed {
            installed.record(snapshot.clock, &meta.last_membership)?;
        }
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.clock = snapshot.clock;
        *self.current_snapshot.lock() = Some(Snapshot {
            meta: meta.clone(),
            snapshot,
        });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<SnapshotData>>, io::Error> {
        Ok(self.current_snapshot.lock().clone())
    }
}
