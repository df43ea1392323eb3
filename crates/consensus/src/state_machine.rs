//! The Raft state machine: numbers committed entries with zxids and hands transactions to the
//! server's [`Applier`].
//!
//! The data tree itself lives in the server; this side keeps only what openraft asks of a state
//! machine (last applied log id, membership) plus the [`TermClock`]. Snapshots here carry just
//! that clock: enough for openraft to purge the in-memory log in standalone mode. Quorum mode must
//! put the data tree into [`SnapshotData`] (or a handle to the server's snapshot file) so that a
//! lagging follower can be caught up.

use std::io;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use futures_util::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, RaftSnapshotBuilder};
use parking_lot::Mutex;

use crate::durable_log::Resume;
use crate::types::{term_of, LogId, Snapshot, SnapshotMeta, StoredMembership, Txn, TypeConfig};
use crate::zxid::TermClock;
use crate::Applier;

/// What a snapshot carries (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct SnapshotData {
    pub clock: TermClock,
}

pub struct StateMachine {
    applier: Arc<dyn Applier>,
    last_applied_zxid: Arc<AtomicI64>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    clock: TermClock,
    /// Shared with snapshot builders, which run outside `&mut self`.
    current_snapshot: Arc<Mutex<Option<Snapshot<SnapshotData>>>>,
}

impl StateMachine {
    pub fn new(applier: Arc<dyn Applier>, last_applied_zxid: Arc<AtomicI64>) -> Self {
        StateMachine {
            applier,
            last_applied_zxid,
            last_applied: None,
            membership: StoredMembership::default(),
            clock: TermClock::default(),
            current_snapshot: Arc::default(),
        }
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
            },
        };
        StateMachine {
            applier,
            last_applied_zxid,
            last_applied: Some(resume.last_applied),
            membership: resume.membership,
            clock: resume.clock,
            current_snapshot: Arc::new(Mutex::new(Some(snapshot))),
        }
    }
}

pub struct SnapshotBuilder {
    snapshot: Snapshot<SnapshotData>,
    current_snapshot: Arc<Mutex<Option<Snapshot<SnapshotData>>>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot<SnapshotData>, io::Error> {
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
        while let Some((entry, responder)) = entries.try_next().await? {
            let zxid = self
                .clock
                .next(term_of(&entry.log_id), entry.log_id.index)
                .map_err(io::Error::other)?;
            match &entry.payload {
                EntryPayload::Normal(Txn(payload)) => self.applier.apply(zxid, payload),
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership.clone());
                }
                EntryPayload::Blank => {}
            }
            self.last_applied = Some(entry.log_id);
            self.last_applied_zxid.store(zxid, Ordering::Release);
            if let Some(responder) = responder {
                responder.send(zxid);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            snapshot: Snapshot {
                meta: SnapshotMeta {
                    last_log_id: self.last_applied,
                    last_membership: self.membership.clone(),
                },
                snapshot: SnapshotData { clock: self.clock },
            },
            current_snapshot: self.current_snapshot.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.clock = snapshot.clock;
        if let Some(log_id) = meta.last_log_id {
            let mut clock = snapshot.clock;
            let zxid = clock
                .next(term_of(&log_id), log_id.index)
                .map_err(io::Error::other)?;
            self.last_applied_zxid.store(zxid, Ordering::Release);
        }
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
