//! Raft log storage, kept in memory for now.
//!
//! This is the seam for durable storage: openraft sees the log only through
//! [`RaftLogStorage`]/[`RaftLogReader`] implemented here. A later version writes entries to
//! ZooKeeper's `log.<zxid>` files (zxids from [`crate::zxid::TermClock`]) and the vote to a side
//! file; it must then call the `append` callback only after the fsync (group commit: one fsync may
//! cover many appended entries), and `get_log_state`/`read_vote` must reflect what was recovered.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogReader};
use parking_lot::Mutex;

use crate::types::{Entry, LogId, TypeConfig, Vote};

/// An in-memory Raft log. Clones share the same log (the reader is a clone).
#[derive(Clone, Default)]
pub struct MemLogStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    last_purged: Option<LogId>,
    /// Entries with consecutive indexes; the front one has index `first_index`.
    entries: VecDeque<Entry>,
    first_index: u64,
    committed: Option<LogId>,
    vote: Option<Vote>,
}

impl Inner {
    fn range(&self, range: impl RangeBounds<u64>) -> Vec<Entry> {
        let end_of_log = self.first_index + self.entries.len() as u64;
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        }
        .clamp(self.first_index, end_of_log);
        let end = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => end_of_log,
        }
        .clamp(start, end_of_log);
        let (lo, hi) = (
            (start - self.first_index) as usize,
            (end - self.first_index) as usize,
        );
        self.entries.range(lo..hi).cloned().collect()
    }

    fn append(&mut self, entry: Entry) -> io::Result<()> {
        let index = entry.index();
        if self.entries.is_empty() {
            self.first_index = index;
        } else {
            let expected = self.first_index + self.entries.len() as u64;
            if index != expected {
                return Err(io::Error::other(format!(
                    "log gap: appending index {index}, expected {expected}"
                )));
            }
        }
        self.entries.push_back(entry);
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for MemLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(self.inner.lock().range(range))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.inner.lock().vote)
    }
}

impl RaftLogStorage<TypeConfig> for MemLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let inner = self.inner.lock();
        let last = inner.entries.back().map(|e| e.log_id());
        Ok(LogState {
            last_purged_log_id: inner.last_purged,
            last_log_id: last.or(inner.last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.inner.lock().vote = Some(*vote);
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.inner.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.inner.lock().committed)
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
        {
            let mut inner = self.inner.lock();
            for entry in entries {
                inner.append(entry)?;
            }
        }
        // Memory is "flushed" as soon as it is written.
        callback.io_completed(Ok(()));
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let mut inner = self.inner.lock();
        let keep_until = last_log_id.map_or(0, |id| id.index + 1);
        let keep = keep_until.saturating_sub(inner.first_index) as usize;
        inner.entries.truncate(keep);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let mut inner = self.inner.lock();
        let drop = (log_id.index + 1).saturating_sub(inner.first_index) as usize;
        let drop = drop.min(inner.entries.len());
        inner.entries.drain(..drop);
        inner.first_index = log_id.index + 1;
        inner.last_purged = Some(log_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use openraft::vote::RaftLeaderId;

    use super::*;
    use crate::types::Txn;

    fn entry(term: u64, index: u64) -> Entry {
        let leader = openraft::impls::leader_id_std::LeaderId::<u64, u64>::new(term, 1);
        Entry::new_normal(
            LogId::new(leader.to_committed(), index),
            Txn(bytes::Bytes::new()),
        )
    }

    fn indexes(entries: &[Entry]) -> Vec<u64> {
        entries.iter().map(|e| e.index()).collect()
    }

    #[test]
    fn range_reads_clamp_to_what_the_log_holds() {
        let mut inner = Inner::default();
        for i in 3..8 {
            inner.append(entry(1, i)).expect("append");
        }
        assert_eq!(indexes(&inner.range(..)), vec![3, 4, 5, 6, 7]);
        assert_eq!(indexes(&inner.range(4..6)), vec![4, 5]);
        assert_eq!(indexes(&inner.range(0..=3)), vec![3]);
        assert_eq!(indexes(&inner.range(6..100)), vec![6, 7]);
        assert!(inner.range(10..20).is_empty());
    }

    #[test]
    fn append_rejects_a_gap() {
        let mut inner = Inner::default();
        inner.append(entry(1, 0)).expect("append");
        assert!(inner.append(entry(1, 2)).is_err());
    }
}
