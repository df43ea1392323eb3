//! `dataDir/version-2/ensemble.raft`: the Raft state ZooKeeper's files have no place for.
//!
//! The txn log holds every entry (see `durable_log`), but not the vote, the membership (its
//! entries are logged as `ErrorTxn`s) or where each term started in the Raft log, which is needed
//! to turn a zxid back into a log index. These live here, beside ZooKeeper's
//! `acceptedEpoch`/`currentEpoch`, in a small text file that a person can read:
//!
//! ```text
//! ensemble-raft 1
//! vote <term> <voted for> committed|uncommitted       absent before the first vote
//! membership <term> <index>                           or `membership none`
//! voters <id>,<id>,...                                one line per config of a joint config
//! node <id> [<addr>]                                  every voter and learner
//! previous <term> <index>                             the membership before it, if known
//! previous-voters <id>,<id>,...                       as `voters`, for that membership
//! previous-node <id> [<addr>]                         as `node`, for that membership
//! term <term> <first log index>                       ascending; the most recent terms only
//! end
//! ```
//!
//! The previous membership is kept because the last membership entry may not be committed yet:
//! when Raft truncates it (or it never reached the log before a crash), the previous one, which
//! is committed (a group changes its membership one committed step at a time), is in force again.
//!
//! The file is replaced atomically: written to `ensemble.raft.tmp`, fsynced, renamed over the
//! old one, then the directory is fsynced. A file without its `end` line is rejected.

use ensemble_storage::fs::{self, File};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use openraft::{BasicNode, Membership};

use crate::types::{log_id, LogId, StoredMembership, Vote};

pub const SIDE_FILE_NAME: &str = "ensemble.raft";
const HEADER: &str = "ensemble-raft 1";
/// Term starts kept: enough to map any zxid Raft may still truncate to (it never truncates
/// committed entries, and the committed entries are in the last terms).
const MAX_TERM_STARTS: usize = 64;

/// The content of the side file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaftSideState {
    pub vote: Option<Vote>,
    pub membership: StoredMembership,
    /// The membership before `membership`, if known.
    pub prev_membership: Option<StoredMembership>,
    /// `(term, log index of the term's first entry)`, ascending by term.
    pub term_starts: Vec<(u64, u64)>,
}

impl RaftSideState {
    /// The log index where `term` started, if known.
    pub fn term_start(&self, term: u64) -> Option<u64> {
        self.term_starts
            .iter()
            .find(|(t, _)| *t == term)
            .map(|(_, i)| *i)
    }

    /// Records that `term` starts at `first_index`, forgetting any later (abandoned) term.
    pub fn record_term_start(&mut self, term: u64, first_index: u64) {
        self.term_starts.retain(|(t, _)| *t < term);
        self.term_starts.push((term, first_index));
        let excess = self.term_starts.len().saturating_sub(MAX_TERM_STARTS);
        self.term_starts.drain(..excess);
    }

    /// Records that `term` starts at `first_index` unless its start is known, keeping later terms
    /// (for a snapshot installed from the leader, whose term this member's log may not hold).
    pub fn insert_term_start(&mut self, term: u64, first_index: u64) {
        if self.term_start(term).is_some() {
            return;
        }
        let at = self.term_starts.partition_point(|(t, _)| *t < term);
        self.term_starts.insert(at, (term, first_index));
        let excess = self.term_starts.len().saturating_sub(MAX_TERM_STARTS);
        self.term_starts.drain(..excess);
    }

    /// Makes `membership` the last one, the current one becoming the previous.
    pub fn push_membership(&mut self, membership: StoredMembership) {
        let prev = std::mem::replace(&mut self.membership, membership);
        if prev.log_id().is_some() && prev.log_id() != self.membership.log_id() {
            self.prev_membership = Some(prev);
        }
    }

    /// Drops a membership logged after `last` (truncated, or never logged), falling back to the
    /// previous one. Fails when that one is after `last` too, or unknown.
    pub fn forget_membership_after(&mut self, last: Option<LogId>) -> Result<(), String> {
        if self.membership.log_id() <= &last {
            if self
                .prev_membership
                .as_ref()
                .is_some_and(|p| p.log_id() > &last)
            {
                self.prev_membership = None;
            }
            return Ok(());
        }
        match self.prev_membership.take() {
            Some(prev) if prev.log_id() <= &last => {
                self.membership = prev;
                Ok(())
            }
            _ => Err(format!(
                "the membership change at {} is after {} and no earlier membership is known",
                display(self.membership.log_id()),
                display(&last),
            )),
        }
    }

    /// The membership in force after the entry `at`: the last one logged at or before it.
    pub fn membership_at(&self, at: LogId) -> StoredMembership {
        let at = Some(at);
        if self.membership.log_id() <= &at {
            return self.membership.clone();
        }
        match &self.prev_membership {
            Some(prev) if prev.log_id() <= &at => prev.clone(),
            _ => StoredMembership::default(),
        }
    }

    /// Forgets the terms after `term` (their entries are gone from the log).
    pub fn forget_terms_after(&mut self, term: u64) {
        self.term_starts.retain(|(t, _)| *t <= term);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        out.push_str(HEADER);
        out.push('\n');
        if let Some(vote) = &self.vote {
            out.push_str(&format!(
                "vote {} {} {}\n",
                vote.leader_id.term,
                vote.leader_id.voted_for,
                if vote.committed {
                    "committed"
                } else {
                    "uncommitted"
                }
            ));
        }
        match self.membership.log_id() {
            Some(id) => out.push_str(&format!("membership {} {}\n", id.leader_id.term, id.index)),
            None => out.push_str("membership none\n"),
        }
        encode_config(&mut out, "", self.membership.membership());
        if let Some(prev) = &self.prev_membership {
            match prev.log_id() {
                Some(id) => out.push_str(&format!("previous {} {}\n", id.leader_id.term, id.index)),
                None => out.push_str("previous none\n"),
            }
            encode_config(&mut out, "previous-", prev.membership());
        }
        for (term, index) in &self.term_starts {
            out.push_str(&format!("term {term} {index}\n"));
        }
        out.push_str("end\n");
        out
    }

    pub fn decode(text: &str) -> Result<RaftSideState, String> {
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, HEADER)) => {}
            Some((_, other)) => return Err(format!("unknown header {other:?} (want {HEADER:?})")),
            None => return Err("empty file".into()),
        }
        let mut vote = None;
        let mut membership_log_id = None;
        let mut configs: Vec<BTreeSet<u64>> = Vec::new();
        let mut nodes: BTreeMap<u64, BasicNode> = BTreeMap::new();
        let mut prev: Option<Option<LogId>> = None;
        let mut prev_configs: Vec<BTreeSet<u64>> = Vec::new();
        let mut prev_nodes: BTreeMap<u64, BasicNode> = BTreeMap::new();
        let mut term_starts: Vec<(u64, u64)> = Vec::new();
        let mut ended = false;
        for (n, line) in lines {
            let bad = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
            let num = |s: Option<&str>| -> Result<u64, String> {
                s.and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad("expected a number"))
            };
            if ended {
                return Err(bad("text after the end line"));
            }
            let mut words = line.split_whitespace();
            match words.next() {
                Some("vote") => {
                    let term = num(words.next())?;
                    let voted_for = num(words.next())?;
                    let committed = match words.next() {
                        Some("committed") => true,
                        Some("uncommitted") => false,
                        _ => return Err(bad("expected committed or uncommitted")),
                    };
                    vote = Some(if committed {
                        Vote::new_committed(term, voted_for)
                    } else {
                        Vote::new(term, voted_for)
                    });
                }
                Some("membership") => match words.next() {
                    Some("none") => membership_log_id = None,
                    term => {
                        let term = num(term)?;
                        membership_log_id = Some(log_id(term, num(words.next())?));
                    }
                },
                Some("previous") => match words.next() {
                    Some("none") => prev = Some(None),
                    term => {
                        let term = num(term)?;
                        prev = Some(Some(log_id(term, num(words.next())?)));
                    }
                },
                Some(word @ ("voters" | "previous-voters")) => {
                    let mut config = BTreeSet::new();
                    for id in words
                        .next()
                        .unwrap_or("")
                        .split(',')
                        .filter(|s| !s.is_empty())
                    {
                        config.insert(num(Some(id))?);
                    }
                    if word == "voters" {
                        configs.push(config);
                    } else {
                        prev_configs.push(config);
                    }
                }
                Some(word @ ("node" | "previous-node")) => {
                    let id = num(words.next())?;
                    let addr = words.next().unwrap_or("").to_string();
                    if word == "node" {
                        nodes.insert(id, BasicNode { addr });
                    } else {
                        prev_nodes.insert(id, BasicNode { addr });
                    }
                }
                Some("term") => {
                    let term = num(words.next())?;
                    let first = num(words.next())?;
                    if term_starts.last().is_some_and(|(t, _)| *t >= term) {
                        return Err(bad("terms out of order"));
                    }
                    term_starts.push((term, first));
                }
                Some("end") => ended = true,
                None => {}
                Some(_) => return Err(bad("unknown line")),
            }
        }
        if !ended {
            return Err("no end line (truncated file)".into());
        }
        let membership = Membership::new(configs, nodes).map_err(|e| e.to_string())?;
        let prev_membership = match prev {
            None => None,
            Some(id) => Some(StoredMembership::new(
                id,
                Membership::new(prev_configs, prev_nodes).map_err(|e| e.to_string())?,
            )),
        };
        Ok(RaftSideState {
            vote,
            membership: StoredMembership::new(membership_log_id, membership),
            prev_membership,
            term_starts,
        })
    }
}

/// The `voters` and `node` lines of one membership, their names prefixed by `prefix`.
fn encode_config(out: &mut String, prefix: &str, membership: &Membership<u64, BasicNode>) {
    for config in membership.get_joint_config() {
        let ids: Vec<String> = config.iter().map(u64::to_string).collect();
        out.push_str(&format!("{prefix}voters {}\n", ids.join(",")));
    }
    for (id, node) in membership.nodes() {
        if node.addr.is_empty() {
            out.push_str(&format!("{prefix}node {id}\n"));
        } else {
            out.push_str(&format!("{prefix}node {id} {}\n", node.addr));
        }
    }
}

fn display(id: &Option<LogId>) -> String {
    id.map_or_else(|| "the start of the log".to_string(), |id| id.to_string())
}

/// Where the side file of `data_dir` lives.
pub fn side_file_path(data_dir: &Path) -> PathBuf {
    ensemble_storage::version_dir(data_dir).join(SIDE_FILE_NAME)
}

/// Reads the side file; `Ok(None)` when there is none.
pub fn read(path: &Path) -> Result<Option<RaftSideState>, String> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    RaftSideState::decode(&text)
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Replaces the side file atomically (temp file, fsync, rename, fsync of the directory).
pub fn write(path: &Path, state: &RaftSideState) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other(format!("{}: no parent directory", path.display())))?;
    let tmp = path.with_extension("raft.tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(state.encode().as_bytes())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    fs::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_state_survives_encode_and_decode() {
        let membership = Membership::new(
            vec![BTreeSet::from([1, 2, 3])],
            BTreeMap::from([
                (1, BasicNode::new("10.0.0.1:2888")),
                (2, BasicNode::new("10.0.0.2:2888")),
                (3, BasicNode::default()),
                (4, BasicNode::new("10.0.0.4:2888")),
            ]),
        )
        .expect("membership");
        let prev = Membership::new_with_defaults(vec![BTreeSet::from([1, 2])], [5]);
        let state = RaftSideState {
            vote: Some(Vote::new_committed(7, 2)),
            membership: StoredMembership::new(Some(log_id(3, 40)), membership),
            prev_membership: Some(StoredMembership::new(Some(log_id(2, 9)), prev)),
            term_starts: vec![(0, 0), (1, 1), (7, 99)],
        };
        let text = state.encode();
        assert_eq!(RaftSideState::decode(&text), Ok(state));
        assert_eq!(
            RaftSideState::decode(&RaftSideState::default().encode()),
            Ok(RaftSideState::default())
        );
    }

    #[test]
    fn a_truncated_membership_falls_back_to_the_previous_one() {
        let config = |ids: &[u64]| {
            Membership::new_with_defaults(vec![ids.iter().copied().collect::<BTreeSet<_>>()], [])
        };
        let mut state = RaftSideState::default();
        state.push_membership(StoredMembership::new(Some(log_id(0, 0)), config(&[1])));
        state.push_membership(StoredMembership::new(
            Some(log_id(2, 7)),
            config(&[1, 2, 3]),
        ));
        assert_eq!(
            state.membership_at(log_id(1, 5)).log_id(),
            &Some(log_id(0, 0))
        );
        assert_eq!(
            state.membership_at(log_id(2, 7)).log_id(),
            &Some(log_id(2, 7))
        );
        state
            .forget_membership_after(Some(log_id(2, 8)))
            .expect("nothing to forget");
        assert_eq!(state.membership.log_id(), &Some(log_id(2, 7)));
        state
            .forget_membership_after(Some(log_id(1, 6)))
            .expect("falls back");
        assert_eq!(state.membership.log_id(), &Some(log_id(0, 0)));
        assert_eq!(state.prev_membership, None);
        let err = state
            .forget_membership_after(None)
            .expect_err("nothing before");
        assert!(err.contains("no earlier membership"), "{err}");
    }

    #[test]
    fn a_snapshot_term_start_is_inserted_in_order() {
        let mut state = RaftSideState::default();
        state.record_term_start(1, 1);
        state.record_term_start(5, 40);
        state.insert_term_start(3, 20);
        state.insert_term_start(5, 99);
        assert_eq!(state.term_starts, vec![(1, 1), (3, 20), (5, 40)]);
    }

    #[test]
    fn a_side_file_without_its_end_line_is_rejected() {
        let text = "ensemble-raft 1\nvote 3 1 committed\n";
        let err = RaftSideState::decode(text).expect_err("truncated");
        assert!(err.contains("end line"), "{err}");
    }

    #[test]
    fn recording_a_term_start_forgets_abandoned_later_terms() {
        let mut state = RaftSideState::default();
        state.record_term_start(1, 1);
        state.record_term_start(3, 10);
        state.record_term_start(2, 5);
        assert_eq!(state.term_starts, vec![(1, 1), (2, 5)]);
        for t in 10..200 {
            state.record_term_start(t, t * 10);
        }
        assert_eq!(state.term_starts.len(), MAX_TERM_STARTS);
        assert_eq!(state.term_start(199), Some(1990));
    }
}
