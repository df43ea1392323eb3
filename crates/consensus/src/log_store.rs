//! Raft log storage in memory: [`MemLogStore`] for tests and [`LogCache`], the recent entries
//! the durable store (`durable_log`) keeps so that openraft can read them back without touching
//! the files.

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
    inner: Arc<Mutex<LogCache>>,
}

/// Recent log entries with consecutive indexes, and what was purged before them.
#[derive(Default)]
pub(crate) struct LogCache {
    pub(crate) last_purged: Option<LogId>,
    /// Entries with consecutive indexes; the front one has index `first_index`.
    entries: VecDeque<Entry>,
    first_index: u64,
    pub(crate) committed: Option<LogId>,
    vote: Option<Vote>,
}

impl LogCache {
    /// A cache for a log whose entries up to `last` are all purged (applied by the server's
    /// recovery before start).
    pub(crate) fn purged_up_to(last: Option<LogId>) -> LogCache {
        LogCache {
            first_index: last.map_or(0, |id| id.index + 1),
            last_purged: last,
            committed: last,
            ..LogCache::default()
        }
    }

    pub(crate) fn log_state(&self) -> LogState<TypeConfig> {
        let last = self.entries.back().map(|e| e.log_id());
        LogState {
            last_purged_log_id: self.last_purged,
            last_log_id: last.or(self.last_purged),
        }
    }

    pub(crate) fn range(&self, range: impl RangeBounds<u64>) -> Vec<Entry> {
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

    pub(crate) fn append(&mut self, entry: Entry) -> io::Result<()> {
        let index = entry.index();
        if self.entries.is_empty() && self.last_purged.is_none() {
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

    /// Drops the entries after `last_log_id`.
    pub(crate) fn truncate_after(&mut self, last_log_id: Option<LogId>) {
        let keep_until = last_log_id.map_or(0, |id| id.index + 1);
        let keep = keep_until.saturating_sub(self.first_index) as usize;
        self.entries.truncate(keep);
    }

    /// Drops the entries up to and including `log_id`.
    pub(crate) fn purge(&mut self, log_id: LogId) {
        let drop = (log_id.index + 1).saturating_sub(self.first_index) as usize;
        let drop = drop.min(self.entries.len());
        self.entries.drain(..drop);
        self.first_index = log_id.index + 1;
        self.last_purged = Some(log_id);
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
        Ok(self.inner.lock().log_state())
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
        self.inner.lock().truncate_after(last_log_id);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.inner.lock().purge(log_id);
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
        let mut inner = LogCache::default();
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
        let mut inner = LogCache::default();
        inner.append(entry(1, 0)).expect("append");
        assert!(inner.append(entry(1, 2)).is_err());
    }
}
