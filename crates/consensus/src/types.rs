//! openraft's type configuration for Ensemble: what a log entry carries and how nodes are named.

use std::fmt;

use bytes::Bytes;

/// One proposed transaction: an opaque payload the server encoded (TxnHeader + txn).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Txn(pub Bytes);

impl fmt::Debug for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Txn({} bytes)", self.0.len())
    }
}

impl fmt::Display for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The async runtime: tokio's.
#[cfg(not(feature = "sim"))]
pub type Runtime = openraft_rt_tokio::TokioRuntime;

/// The simulation's runtime: tokio's, with openraft's randomness (election timeouts) drawn from
/// the seed given to `Consensus::with_seed`.
#[cfg(feature = "sim")]
pub type Runtime =
    openraft_rt::deterministic_rng::DeterministicRng<openraft_rt_tokio::TokioRuntime>;

openraft::declare_raft_types!(
    /// Node ids are ZooKeeper `myid` numbers; terms are zxid epochs.
    pub TypeConfig:
        D = Txn,
        // The response of applying an entry is its zxid.
        R = i64,
        NodeId = u64,
        // `addr` is the peer address (`server.N` host:peerPort).
        Node = openraft::BasicNode,
        Term = u64,
        // Standard Raft: at most one leader per term, so a term is a ZooKeeper epoch.
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>,
        AsyncRuntime = Runtime,
);

pub type Raft = openraft::Raft<TypeConfig, crate::state_machine::StateMachine>;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot<D> = openraft::alias::SnapshotOf<TypeConfig, D>;
pub type WriteResult = openraft::raft::ClientWriteResult<TypeConfig>;
pub type WriteResponder = openraft::impls::ProgressResponder<TypeConfig, WriteResult>;

pub type CommittedLeaderId = openraft::alias::CommittedLeaderIdOf<TypeConfig>;

/// The term of a log id.
pub fn term_of(log_id: &LogId) -> u64 {
    log_id.leader_id.term
}

/// The log id of the entry at `index`, written in `term`.
pub fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term), index)
}
