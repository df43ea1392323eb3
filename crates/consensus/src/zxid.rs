//! zxid derivation: how a Raft log position becomes a ZooKeeper transaction id.
//!
//! `zxid = (term << 32) | counter`, where `counter` is the entry's 1-based position among the
//! entries of its term. The first entry of a term (the new leader's blank entry) gets counter 1.
//! Blank and membership entries are not handed to the applier but still consume a counter, so
//! every replica derives the same zxid for the same entry from the log alone, and zxids grow
//! strictly along the log (terms never decrease along a Raft log).

use thiserror::Error;

/// Largest term that still gives a non-negative zxid (ZooKeeper's epoch is a signed 32-bit half).
pub const MAX_TERM: u64 = i32::MAX as u64;

/// Largest counter a term may reach; the leader must step down before this (see crate docs).
pub const MAX_COUNTER: u64 = u32::MAX as u64;

/// A zxid could not be formed from a term and counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ZxidError {
    #[error("term {0} does not fit in a zxid epoch (max {MAX_TERM})")]
    TermOverflow(u64),
    #[error("counter {0} does not fit in a zxid (max {MAX_COUNTER})")]
    CounterOverflow(u64),
}

/// Builds `(term << 32) | counter`.
pub fn zxid(term: u64, counter: u64) -> Result<i64, ZxidError> {
    if term > MAX_TERM {
        return Err(ZxidError::TermOverflow(term));
    }
    if counter > MAX_COUNTER {
        return Err(ZxidError::CounterOverflow(counter));
    }
    Ok(((term << 32) | counter) as i64)
}

/// The epoch (Raft term) half of a zxid.
pub fn epoch_of(zxid: i64) -> u64 {
    (zxid as u64) >> 32
}

/// The counter half of a zxid.
pub fn counter_of(zxid: i64) -> u64 {
    (zxid as u64) & MAX_COUNTER
}

/// Tracks where the current term started in the log, so that entries fed in log order get their
/// zxids. The state machine owns one; a durable log store that writes zxids into ZooKeeper txn
/// headers can own another, and both agree because they see the same log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TermClock {
    /// `(term, log index of that term's first entry)` of the last entry seen.
    current: Option<(u64, u64)>,
}

impl TermClock {
    /// A clock resumed from a saved position (e.g. from snapshot metadata).
    pub fn resume(term: u64, first_index: u64) -> Self {
        TermClock {
            current: Some((term, first_index)),
        }
    }

    /// `(term, first index of that term)` of the last entry seen.
    pub fn position(&self) -> Option<(u64, u64)> {
        self.current
    }

    /// Returns the zxid of the entry at `(term, index)`. Entries must be fed in log order.
    pub fn next(&mut self, term: u64, index: u64) -> Result<i64, ZxidError> {
        let first_index = match self.current {
            Some((t, first)) if t == term => first,
            _ => {
                self.current = Some((term, index));
                index
            }
        };
        zxid(term, index - first_index + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zxid_puts_term_in_high_half_and_counter_in_low_half() {
        assert_eq!(zxid(3, 5), Ok(0x3_0000_0005));
        assert_eq!(zxid(0, 1), Ok(1));
        assert_eq!(epoch_of(0x3_0000_0005), 3);
        assert_eq!(counter_of(0x3_0000_0005), 5);
    }

    #[test]
    fn zxid_rejects_values_that_do_not_fit() {
        assert_eq!(
            zxid(MAX_TERM + 1, 1),
            Err(ZxidError::TermOverflow(MAX_TERM + 1))
        );
        assert_eq!(
            zxid(1, MAX_COUNTER + 1),
            Err(ZxidError::CounterOverflow(MAX_COUNTER + 1))
        );
        assert!(zxid(MAX_TERM, MAX_COUNTER).unwrap_or(-1) > 0);
    }

    #[test]
    fn term_clock_counts_from_one_within_each_term() {
        let mut clock = TermClock::default();
        // Index 0 is the initial membership entry, written in term 0.
        assert_eq!(clock.next(0, 0), Ok(0x0_0000_0001));
        // Term 1 starts at index 1 with the leader's blank entry.
        assert_eq!(clock.next(1, 1), Ok(0x1_0000_0001));
        assert_eq!(clock.next(1, 2), Ok(0x1_0000_0002));
        assert_eq!(clock.next(1, 3), Ok(0x1_0000_0003));
        // A later term restarts the counter at its first entry, wherever that is in the log.
        assert_eq!(clock.next(4, 4), Ok(0x4_0000_0001));
        assert_eq!(clock.next(4, 5), Ok(0x4_0000_0002));
        assert_eq!(clock.position(), Some((4, 4)));
    }

    #[test]
    fn term_clock_zxids_strictly_increase_along_the_log() {
        let log = [
            (0, 0),
            (1, 1),
            (1, 2),
            (2, 3),
            (5, 4),
            (5, 5),
            (5, 6),
            (6, 7),
        ];
        let mut clock = TermClock::default();
        let zxids: Vec<i64> = log
            .iter()
            .map(|&(t, i)| clock.next(t, i).unwrap_or(-1))
            .collect();
        assert!(zxids.windows(2).all(|w| w[0] < w[1]), "{zxids:x?}");
    }

    #[test]
    fn resumed_term_clock_continues_the_counter() {
        let mut clock = TermClock::resume(7, 100);
        assert_eq!(clock.next(7, 150), Ok(0x7_0000_0033));
    }
}
