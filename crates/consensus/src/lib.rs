//! Consensus: orders transactions through Raft (openraft) and numbers them with zxids.
//!
//! This crate is the only one that names openraft types; the server sees [`Consensus`],
//! [`Applier`], [`PeerHandler`] and [`ConsensusError`]. A group has one member (standalone mode,
//! [`Consensus::start_standalone_durable`]) or several that talk over TCP (quorum mode,
//! [`Consensus::start_quorum`]). Its log is ZooKeeper's txn log, or memory for tests
//! ([`Consensus::start_standalone`]).
//!
//! # zxids
//! `zxid = (term << 32) | counter`, where `counter` is the entry's 1-based position within its
//! term: the term's first entry (the leader's blank entry) has counter 1. Blank and membership
//! entries are not passed to [`Applier::apply`] but still consume a counter, so the zxids the
//! applier sees may skip values; they strictly increase. See [`zxid`].
//!
//! # Seams
//! - `durable_log`: the Raft log as ZooKeeper's txn log, with group commit; `side_file` holds
//!   the vote, membership and term starts beside it.
//! - `log_store`: the Raft log and vote in memory (tests), and the cache of recent entries.
//! - `state_machine`: applies committed entries through the [`Applier`]; owns snapshot content.
//! - `network`: peer transport (Raft RPCs, and the server's own calls to the leader).
//! - `proposer`: the ordered queue between [`Consensus::propose`] and openraft's write API.
//! - `transport`: the sockets and received files under `network`: tokio's, or turmoil's
//!   simulated ones with the `sim` feature.
//! - `types`: openraft's type configuration (payload, node id, term).
//!
//! Not done yet: a leader whose counter nears 2^32 must step down (today applying such an entry
//! stops the group with a fatal error).

mod durable_log;
mod log_store;
mod network;
mod proposer;
mod side_file;
mod state_machine;
mod transport;
mod types;
pub mod zxid;

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use openraft::async_runtime::WatchReceiver;
use openraft::errors::ClientWriteError;
use openraft::storage::RaftLogStorage;
use openraft::{BasicNode, Config, SnapshotPolicy};

use crate::durable_log::DurableLogHandle;
pub use crate::durable_log::{committed_zxid_hint, LogStats, COMMIT_FILE_NAME};
use crate::log_store::MemLogStore;
use crate::network::{LeaderLink, PeerNetwork};
use crate::proposer::Proposer;
pub use crate::side_file::SIDE_FILE_NAME;
pub use crate::state_machine::SnapshotFile;
use crate::state_machine::{Staging, StateMachine};
use crate::types::{term_of, Raft, TypeConfig};

/// The most entries handed to [`Applier::apply_all`] at once.
pub const APPLY_BATCH: usize = 64;

/// Receives committed entries. Called in log order, exactly once per entry, never concurrently.
pub trait Applier: Send + Sync + 'static {
    fn apply(&self, zxid: i64, payload: &Bytes);

    /// Consecutive entries committed together, in log order (at most [`APPLY_BATCH`]). An
    /// applier that locks its state per entry can take the lock once for them all.
    fn apply_all(&self, txns: &[(i64, Bytes)]) {
        for (zxid, payload) in txns {
            self.apply(*zxid, payload);
        }
    }

    /// Captures the state after the entry `zxid` (called between applies, so it must be cheap)
    /// and returns the job that serializes it into a file under `dir` (a directory the job
    /// creates; it is removed with the file), run off the apply path. Quorum mode only: the
    /// file is what a lagging member receives. None: no data to send.
    #[allow(clippy::type_complexity)]
    fn capture(
        &self,
        zxid: i64,
        dir: PathBuf,
    ) -> Box<dyn FnOnce() -> io::Result<Option<SnapshotFile>> + Send> {
        let _ = (zxid, dir);
        Box::new(|| Ok(None))
    }

    /// Replaces the whole state with `file`, a capture made by another member after entry
    /// `zxid`. Entries after `zxid` follow through [`Applier::apply`]. The file is removed
    /// after the call: keep a copy under another name (a hard link) to keep it.
    fn install(&self, zxid: i64, file: &Path) -> io::Result<()> {
        let _ = (zxid, file);
        Err(io::Error::other("this server cannot install snapshots"))
    }
}

/// Wakes its holder when this member's role, its leader or the membership may have changed
/// (openraft's server metrics, which do not change with every batch of writes), so that a
/// watcher of the role sees a new leadership at once rather than at its next poll.
pub struct RoleChanges(
    openraft::alias::WatchReceiverOf<TypeConfig, openraft::metrics::RaftServerMetrics<TypeConfig>>,
);

impl RoleChanges {
    /// Returns after the next change; never once the group has stopped.
    pub async fn changed(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Answers the server's own calls from other members (see [`Consensus::call_leader`]).
pub trait PeerHandler: Send + Sync + 'static {
    /// Handles one call from member `from`. Calls from one member arrive in the order it made
    /// them; the answers may complete in any order.
    fn handle(
        &self,
        from: u64,
        body: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<Bytes, String>> + Send>>;
}

/// One member of a quorum, from `server.N=host:peerPort:electionPort[:role][;client]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    /// `host:peerPort`.
    pub peer_addr: String,
    /// A participant votes; an observer is a learner that only follows the log.
    pub voter: bool,
}

/// How a quorum member is started.
#[derive(Debug, Clone)]
pub struct QuorumOptions {
    pub members: Vec<Member>,
    /// Where this member listens for peers (its own `peerPort`).
    pub listen: SocketAddr,
    /// How often the leader sends heartbeats.
    pub heartbeat: Duration,
    /// A follower that hears nothing from a leader for a random time in this range starts an
    /// election.
    pub election_timeout: (Duration, Duration),
}

/// What this member is in the group, as ZooKeeper's `Mode:` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Observer,
    /// Looking for a leader: an election is running or no leader is known.
    Looking,
}

/// What the leader knows of another member (see [`Consensus::learners`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnerState {
    pub id: u64,
    /// A voter (ZooKeeper's participant); otherwise an observer.
    pub voter: bool,
    /// Milliseconds since the member last acknowledged the leader; None before the first time.
    pub millis_since_ack: Option<u64>,
    /// Whether the member's log holds an entry of the leader's term (it accepted this leader).
    pub in_term: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    /// This member is not the leader, or lost leadership before the proposal was committed
    /// (then whether it commits later is unknown, as with a ZooKeeper connection loss).
    #[error("this server is not the leader")]
    NotLeader,
    #[error("consensus is shut down")]
    Shutdown,
    /// The proposal cannot be logged (with a durable log, a payload must start with a
    /// `TxnHeader`).
    #[error("invalid proposal: {0}")]
    InvalidProposal(String),
    #[error("consensus failed: {0}")]
    Fatal(String),
    /// The leader answered a call with an error.
    #[error("the leader refused: {0}")]
    Remote(String),
}

/// Where and how the log is kept on disk: ZooKeeper's txn log plus a side file.
#[derive(Debug, Clone)]
pub struct DurableLog {
    /// `dataDir`: the side file [`SIDE_FILE_NAME`] lives in its `version-2`, beside ZooKeeper's
    /// `acceptedEpoch`/`currentEpoch`.
    pub data_dir: PathBuf,
    /// `dataLogDir`: the txn log lives in its `version-2`.
    pub data_log_dir: PathBuf,
    pub options: ensemble_storage::TxnLogOptions,
    /// `snapCount`: the log rolls to a new file at ZooKeeper's randomised point within it.
    pub snap_count: u64,
}

/// The directory in `dataDir` where snapshots sent to or received from other members are
/// staged (emptied at start).
pub const TRANSFER_DIR_NAME: &str = "ensemble-transfer";

/// What a quorum member starts with besides the standalone parts.
type QuorumStart = (
    QuorumOptions,
    Arc<dyn PeerHandler>,
    transport::TcpListener,
    Arc<Staging>,
);

/// How long start-up may take to elect this member and apply its first entry.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A handle to the Raft group. Clones share the same group.
#[derive(Clone)]
pub struct Consensus {
    inner: Arc<Inner>,
}

struct Inner {
    raft: Raft,
    proposer: Proposer,
    last_applied_zxid: Arc<AtomicI64>,
    shut_down: AtomicBool,
    /// The durable log's writer, if the log is on disk.
    log: Option<DurableLogHandle>,
    /// Quorum mode: the link for calls to the leader, and the peer addresses.
    link: Option<LeaderLink>,
    server_id: u64,
    /// Quorum mode's own tasks (peer listener, observer adder), stopped at shutdown.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// When a leader was last heard from (quorum mode).
    contact: Arc<network::LeaderContact>,
}

impl Consensus {
    /// Starts a single-member group with this server id (ZooKeeper myid) and makes it leader.
    ///
    /// Returns once the member leads and has applied its term's blank entry.
    pub async fn start_standalone(
        server_id: u64,
        applier: Arc<dyn Applier>,
    ) -> Result<Consensus, ConsensusError> {
        Self::start_standalone_with(server_id, applier, standalone_config()).await
    }

    async fn start_standalone_with(
        server_id: u64,
        applier: Arc<dyn Applier>,
        config: Config,
    ) -> Result<Consensus, ConsensusError> {
        let last_applied_zxid = Arc::new(AtomicI64::new(0));
        let state_machine = StateMachine::new(applier, last_applied_zxid.clone());
        let log_store = MemLogStore::default();
        Self::start(
            server_id,
            config,
            log_store,
            state_machine,
            last_applied_zxid,
            None,
            None,
        )
        .await
    }

    /// Starts the single-member group on a durable log: ZooKeeper's txn log in
    /// `log.data_log_dir`, and a side file in `log.data_dir` (see [`DurableLog`]).
    ///
    /// `recovered_zxid` is the last zxid the server's recovery applied from these directories
    /// (0 for an empty data directory). Nothing already on disk is passed to the applier again:
    /// the group continues after it, in a new term (a higher zxid epoch). A directory written by
    /// Apache ZooKeeper (no side file) continues the same way.
    ///
    /// Returns once the member leads and has applied its term's blank entry.
    pub async fn start_standalone_durable(
        server_id: u64,
        applier: Arc<dyn Applier>,
        log: DurableLog,
        recovered_zxid: i64,
    ) -> Result<Consensus, ConsensusError> {
        Self::start_durable_with(server_id, applier, log, recovered_zxid, standalone_config()).await
    }

    async fn start_durable_with(
        server_id: u64,
        applier: Arc<dyn Applier>,
        log: DurableLog,
        recovered_zxid: i64,
        config: Config,
    ) -> Result<Consensus, ConsensusError> {
        let (log_store, handle, resume) = durable_log::open(server_id, &log, recovered_zxid)?;
        let (state_machine, last_applied_zxid) =
            durable_state_machine(applier, resume, recovered_zxid);
        Self::start(
            server_id,
            config,
            log_store,
            state_machine,
            last_applied_zxid,
            Some(handle),
            None,
        )
        .await
    }

    async fn start<LS: RaftLogStorage<TypeConfig>>(
        server_id: u64,
        config: Config,
        log_store: LS,
        state_machine: StateMachine,
        last_applied_zxid: Arc<AtomicI64>,
        log: Option<DurableLogHandle>,
        quorum: Option<QuorumStart>,
    ) -> Result<Consensus, ConsensusError> {
        let config = match config.validate() {
            Ok(config) => Arc::new(config),
            Err(e) => {
                stop_log(&log).await;
                return Err(ConsensusError::Fatal(format!("raft config: {e}")));
            }
        };
        let addrs: BTreeMap<u64, String> = quorum
            .as_ref()
            .map(|(q, _, _, _)| {
                q.members
                    .iter()
                    .map(|m| (m.id, m.peer_addr.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let contact = Arc::new(network::LeaderContact::new());
        let network = PeerNetwork::new(server_id, addrs, contact.clone());
        let raft =
            match Raft::new(server_id, config, network.clone(), log_store, state_machine).await {
                Ok(raft) => raft,
                Err(e) => {
                    stop_log(&log).await;
                    return Err(fatal(e));
                }
            };
        let started = match &quorum {
            None => become_leader(server_id, &raft).await,
            Some((q, _, _, _)) => join_quorum(server_id, &raft, q).await,
        };
        if let Err(e) = started {
            if let Err(e) = raft.shutdown().await {
                tracing::warn!(error = %e, "raft did not shut down cleanly");
            }
            stop_log(&log).await;
            return Err(e);
        }

        let mut tasks = Vec::new();
        let link = match quorum {
            None => None,
            Some((q, handler, listener, staging)) => {
                // A snapshot with data from the start, so that a member that is behind this
                // one's (purged) log can be caught up at once.
                if let Err(e) = raft.trigger().snapshot().await {
                    tracing::warn!(error = %e, "cannot build the first snapshot");
                }
                tasks.push(tokio::spawn(network::serve(
                    server_id,
                    listener,
                    raft.clone(),
                    handler,
                    contact.clone(),
                    staging,
                )));
                tasks.push(tokio::spawn(add_observers(raft.clone(), q.members.clone())));
                let metrics = raft.server_metrics();
                let net = network.clone();
                let leader = move || {
                    let m = metrics.borrow_watched();
                    let id = m.current_leader?;
                    // Our own zoo.cfg first; a member added by a reconfiguration is known by
                    // its membership entry.
                    let addr = net.addr_of(id).or_else(|| {
                        m.membership_config
                            .membership()
                            .get_node(&id)
                            .map(|n| n.addr.clone())
                            .filter(|a| !a.is_empty())
                    })?;
                    Some((id, addr))
                };
                let wait = q.election_timeout.1 * 2;
                Some(LeaderLink::start(server_id, leader, wait))
            }
        };

        let proposer = Proposer::start(raft.clone());
        Ok(Consensus {
            inner: Arc::new(Inner {
                raft,
                proposer,
                last_applied_zxid,
                shut_down: AtomicBool::new(false),
                log,
                link,
                server_id,
                tasks,
                contact,
            }),
        })
    }

    /// Starts a member of a quorum on a durable log (see [`DurableLog`] and
    /// [`Consensus::start_standalone_durable`] for `recovered_zxid`). It listens for peers on
    /// `quorum.listen` and returns at once: a leader is elected when a majority of the voters
    /// can talk. `handler` answers the other members' [`Consensus::call_leader`] calls.
    pub async fn start_quorum(
        server_id: u64,
        applier: Arc<dyn Applier>,
        log: DurableLog,
        recovered_zxid: i64,
        quorum: QuorumOptions,
        handler: Arc<dyn PeerHandler>,
    ) -> Result<Consensus, ConsensusError> {
        let listener = transport::TcpListener::bind(quorum.listen)
            .await
            .map_err(|e| {
                ConsensusError::Fatal(format!("cannot listen for peers on {}: {e}", quorum.listen))
            })?;
        let (log_store, handle, resume) = durable_log::open(server_id, &log, recovered_zxid)?;
        let installed = log_store.installed_snapshot();
        let staging = Staging::open(log.data_dir.join(TRANSFER_DIR_NAME)).map_err(|e| {
            ConsensusError::Fatal(format!(
                "cannot prepare {}: {e}",
                log.data_dir.join(TRANSFER_DIR_NAME).display()
            ))
        })?;
        let staging = Arc::new(staging);
        let (state_machine, last_applied_zxid) =
            durable_state_machine(applier, resume, recovered_zxid);
        let state_machine = state_machine.with_data_snapshots(installed, staging.clone());
        let config = quorum_config(&quorum, log.snap_count);
        Self::start(
            server_id,
            config,
            log_store,
            state_machine,
            last_applied_zxid,
            Some(handle),
            Some((quorum, handler, listener, staging)),
        )
        .await
    }

    /// Runs `future` with openraft's randomness (election timeouts) drawn from `seed`: a
    /// simulated member starts inside it, so that a seed replays exactly.
    #[cfg(feature = "sim")]
    pub fn with_seed<F: Future>(seed: u64, future: F) -> impl Future<Output = F::Output> {
        types::Runtime::scope(seed, future)
    }

    /// Sends `body` to the leader's [`PeerHandler`] and waits for its answer. Calls are
    /// delivered in the order of this method's calls (the future need not be polled for that).
    /// Fails with [`ConsensusError::NotLeader`] when no leader can be reached, or the leader
    /// changed before answering (then whether the call took effect is unknown).
    pub fn call_leader(
        &self,
        body: Bytes,
    ) -> impl Future<Output = Result<Bytes, ConsensusError>> + Send + 'static {
        let rx = match &self.inner.link {
            Some(link) => Ok(link.call(body)),
            None => Err(ConsensusError::NotLeader),
        };
        async move {
            match rx?.await {
                Ok(result) => result,
                Err(_) => Err(ConsensusError::Shutdown),
            }
        }
    }

    /// A linearizable read point (Raft read-index): confirms with a quorum that this member still
    /// leads, waits until everything committed before the call is applied here, and returns the
    /// last applied zxid. Only on the leader.
    pub async fn read_index(&self) -> Result<i64, ConsensusError> {
        match self
            .inner
            .raft
            .ensure_linearizable(openraft::ReadPolicy::ReadIndex)
            .await
        {
            Ok(_) => Ok(self.last_applied_zxid()),
            // Not the leader, or it could not confirm its leadership with a quorum.
            Err(_) => Err(ConsensusError::NotLeader),
        }
    }

    /// Changes the membership to exactly `members` (leader only): new members are added as
    /// learners and caught up first, then the voters are replaced (Raft joint consensus), then
    /// members no longer listed are removed. Returns the zxid of the last membership entry,
    /// which names the new configuration's version.
    pub async fn change_members(&self, members: &[Member]) -> Result<i64, ConsensusError> {
        use openraft::ChangeMembers;
        use std::collections::BTreeSet;
        let raft = &self.inner.raft;
        let (current, voter): (BTreeMap<u64, BasicNode>, bool) = {
            let m = raft.metrics();
            let m = m.borrow_watched();
            let membership = m.membership_config.membership();
            let nodes = membership.nodes().map(|(id, n)| (*id, n.clone())).collect();
            let voter = membership.voter_ids().any(|v| v == self.inner.server_id);
            (nodes, voter)
        };
        // A leader that a change removed leads on briefly until it hands over: it may not start
        // another change (openraft expects a membership to be appended by a voting leader).
        if !voter {
            return Err(ConsensusError::NotLeader);
        }
        let write_err = |e: openraft::errors::RaftError<
            TypeConfig,
            ClientWriteError<TypeConfig>,
        >| match e.forward_to_leader() {
            Some(_) => ConsensusError::NotLeader,
            None => ConsensusError::Remote(e.to_string()),
        };
        for m in members {
            if !current.contains_key(&m.id) {
                raft.add_learner(m.id, BasicNode::new(m.peer_addr.clone()), true)
                    .await
                    .map_err(write_err)?;
            }
        }
        let voters: BTreeSet<u64> = members.iter().filter(|m| m.voter).map(|m| m.id).collect();
        if voters.is_empty() {
            return Err(ConsensusError::InvalidProposal(
                "a configuration needs at least one participant".into(),
            ));
        }
        let r = raft
            .change_membership(ChangeMembers::ReplaceAllVoters(voters), true)
            .await
            .map_err(write_err)?;
        let mut last = r.data;
        let keep: BTreeSet<u64> = members.iter().map(|m| m.id).collect();
        let gone: BTreeSet<u64> = current
            .keys()
            .filter(|id| !keep.contains(id))
            .copied()
            .collect();
        if !gone.is_empty() {
            let r = raft
                .change_membership(ChangeMembers::RemoveNodes(gone), false)
                .await
                .map_err(write_err)?;
            last = r.data;
        }
        Ok(last)
    }

    /// Waits until this member has applied `zxid` (or a later entry), at most `timeout`.
    pub async fn wait_applied(&self, zxid: i64, timeout: Duration) -> bool {
        self.wait_applying(timeout, || self.last_applied_zxid() >= zxid)
            .await
    }

    /// Waits until this member has applied every entry it knew committed at the call, at most
    /// `timeout`; false on timeout. On the leader, afterwards, anything a member could have
    /// answered a client from is applied here too.
    pub async fn wait_applied_committed(&self, timeout: Duration) -> bool {
        let data = self.inner.raft.data_metrics();
        let target = data.borrow_watched().cluster_committed.map(|l| l.index);
        self.wait_applying(timeout, || {
            data.borrow_watched().last_applied.map(|l| l.index) >= target
        })
        .await
    }

    /// Waits until `ready` holds, looking again whenever this member applies entries, at most
    /// `timeout`.
    async fn wait_applying(&self, timeout: Duration, ready: impl Fn() -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut metrics = self.inner.raft.data_metrics();
        loop {
            if ready() {
                return true;
            }
            if tokio::time::timeout_at(deadline, metrics.changed())
                .await
                .map_or(true, |r| r.is_err())
            {
                return ready();
            }
        }
    }

    /// Waits until the group stops on its own (a log write or read failed: openraft treats
    /// storage errors as fatal) and returns why. Never returns after [`Consensus::shutdown`].
    pub async fn failure(&self) -> String {
        // Woken by the server metrics, which change with the role and the membership and end
        // with the core, and not by the full metrics, which change with every batch of writes:
        // a waiter on those woke thousands of times a second under load.
        let mut server = self.inner.raft.server_metrics();
        let running = || {
            let metrics = self.inner.raft.metrics();
            let state = metrics.borrow_watched().running_state.clone();
            state
        };
        loop {
            if let Err(fatal) = running() {
                if !self.inner.shut_down.load(Ordering::Acquire) {
                    return fatal.to_string();
                }
            }
            if server.changed().await.is_err() {
                if self.inner.shut_down.load(Ordering::Acquire) {
                    return std::future::pending().await;
                }
                // The core is gone; its last metrics say why.
                return match running() {
                    Err(fatal) => fatal.to_string(),
                    Ok(()) => "the consensus group stopped".to_string(),
                };
            }
        }
    }

    /// A watch of this member's role: see [`RoleChanges`].
    pub fn role_changes(&self) -> RoleChanges {
        RoleChanges(self.inner.raft.server_metrics())
    }

    /// This member's role now.
    pub fn role(&self) -> Role {
        let m = self.inner.raft.server_metrics();
        let m = m.borrow_watched();
        let member = m
            .membership_config
            .membership()
            .get_node(&self.inner.server_id)
            .is_some();
        if !member {
            // Removed by a reconfiguration, or not added yet.
            Role::Looking
        } else if m.state.is_leader() {
            Role::Leader
        } else if m.current_leader.is_none() {
            Role::Looking
        } else if m.state.is_learner() {
            Role::Observer
        } else {
            Role::Follower
        }
    }

    /// Whether this member has applied an entry of the current leader's term: a member that
    /// just joined, or is being caught up, has not, and must not serve reads yet.
    pub fn synced_with_leader(&self) -> bool {
        let m = self.inner.raft.metrics();
        let m = m.borrow_watched();
        m.current_leader.is_some() && m.last_applied.as_ref().map(term_of) == Some(m.current_term)
    }

    /// Milliseconds since this member last accepted an AppendEntries (a heartbeat or entries)
    /// from a leader; None before the first. A follower that has not heard from its leader for
    /// an election timeout presumes it gone, as a ZooKeeper follower whose leader socket closes.
    pub fn millis_since_leader_contact(&self) -> Option<u64> {
        self.inner.contact.millis_since()
    }

    /// Whether a connection that carried the leader's AppendEntries closed and none arrived
    /// since: the leader may have died, so do not take new clients until it is heard again.
    pub fn leader_contact_lost(&self) -> bool {
        self.inner.contact.lost()
    }

    /// The current Raft term (the epoch of the zxids the current leader assigns).
    pub fn current_term(&self) -> u64 {
        self.inner.raft.metrics().borrow_watched().current_term
    }

    /// Whether this member leads and has applied every entry of earlier terms (its own term's
    /// blank entry is applied), so that prep sees the whole committed tree.
    pub fn leader_ready(&self) -> bool {
        let m = self.inner.raft.metrics();
        let m = m.borrow_watched();
        m.state.is_leader() && m.last_applied.as_ref().map(term_of) == Some(m.current_term)
    }

    /// The current leader's server id, if one is known.
    pub fn leader_id(&self) -> Option<u64> {
        self.inner
            .raft
            .server_metrics()
            .borrow_watched()
            .current_leader
    }

    /// This member's server id.
    pub fn server_id(&self) -> u64 {
        self.inner.server_id
    }

    /// On the leader: how long since a quorum last acknowledged it, in milliseconds. A leader
    /// that has not heard from a majority for longer than an election timeout has likely been
    /// replaced on the other side of a partition.
    pub fn millis_since_quorum_ack(&self) -> Option<u64> {
        use openraft::Instant;
        let m = self.inner.raft.metrics();
        let acked = m.borrow_watched().last_quorum_acked;
        acked.map(|at| at.elapsed().as_millis() as u64)
    }

    /// Members that acknowledged the leader's log up to its last entry (leader only): the voters
    /// and learners whose replication matches the leader's last log index.
    pub fn synced_members(&self) -> Option<(usize, usize)> {
        let m = self.inner.raft.metrics();
        let m = m.borrow_watched();
        let replication = m.replication.as_ref()?;
        let last = m.last_log_index;
        let synced = replication
            .values()
            .filter(|r| r.map(|id| id.index) == last)
            .count();
        Some((synced, replication.len()))
    }

    /// Leader only: every other member of the membership as the leader sees it.
    pub fn learners(&self) -> Option<Vec<LearnerState>> {
        use openraft::Instant;
        let m = self.inner.raft.metrics();
        let m = m.borrow_watched();
        let replication = m.replication.as_ref()?;
        let heartbeat = m.heartbeat.as_ref();
        let membership = m.membership_config.membership();
        let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
        let out = membership
            .nodes()
            .map(|(id, _)| *id)
            .filter(|id| *id != self.inner.server_id)
            .map(|id| LearnerState {
                id,
                voter: voters.contains(&id),
                millis_since_ack: heartbeat
                    .and_then(|h| h.get(&id))
                    .and_then(|at| at.as_ref())
                    .map(|at| at.elapsed().as_millis() as u64),
                in_term: replication.get(&id).and_then(|l| l.as_ref()).map(term_of)
                    == Some(m.current_term),
            })
            .collect();
        Some(out)
    }

    /// Appends `payload` to the log.
    ///
    /// The proposal is queued before this returns, so calls made one after another are appended
    /// in call order. The future resolves with the entry's zxid after [`Applier::apply`] for it
    /// has returned. Many proposals may be in flight at once.
    pub fn propose(
        &self,
        payload: Bytes,
    ) -> impl Future<Output = Result<i64, ConsensusError>> + Send + 'static {
        let submitted = if self.inner.shut_down.load(Ordering::Acquire) {
            Err(ConsensusError::Shutdown)
        } else if self.inner.log.is_some()
            && payload.len() < ensemble_storage::txnlog::TXN_HEADER_LEN
        {
            Err(ConsensusError::InvalidProposal(
                durable_log::invalid_payload(payload.len()).to_string(),
            ))
        } else {
            self.inner.proposer.submit(payload)
        };
        async move {
            match submitted?.await {
                Ok(Ok(response)) => Ok(response.data),
                Ok(Err(ClientWriteError::ForwardToLeader(_)))
                | Ok(Err(ClientWriteError::LogEntryDiscarded(_))) => Err(ConsensusError::NotLeader),
                Ok(Err(other)) => Err(ConsensusError::Fatal(other.to_string())),
                // The responder was dropped: the drain task or openraft stopped.
                Err(_) => Err(ConsensusError::Shutdown),
            }
        }
    }

    /// The zxid of the last applied log entry, including blank and membership entries.
    pub fn last_applied_zxid(&self) -> i64 {
        self.inner.last_applied_zxid.load(Ordering::Acquire)
    }

    /// Counters of the durable log's writer (records, group commits); `None` for a log in
    /// memory.
    pub fn log_stats(&self) -> Option<LogStats> {
        self.inner.log.as_ref().map(DurableLogHandle::stats)
    }

    pub fn is_leader(&self) -> bool {
        !self.inner.shut_down.load(Ordering::Acquire) && self.inner.raft.is_leader()
    }

    /// Stops the group. Proposals still in flight fail with [`ConsensusError::Shutdown`] unless
    /// already applied; later ones fail at once. Calling it again does nothing.
    pub async fn shutdown(&self) {
        if self.inner.shut_down.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.proposer.stop();
        for task in &self.inner.tasks {
            task.abort();
        }
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not shut down cleanly");
        }
        stop_log(&self.inner.log).await;
    }
}

/// The state machine over a durable log: resumed after the recovered entry, or new for an
/// empty log; with the counter of its last applied zxid.
fn durable_state_machine(
    applier: Arc<dyn Applier>,
    resume: Option<durable_log::Resume>,
    recovered_zxid: i64,
) -> (StateMachine, Arc<AtomicI64>) {
    let last_applied_zxid = Arc::new(AtomicI64::new(0));
    let state_machine = match resume {
        Some(resume) => {
            StateMachine::resumed(applier, last_applied_zxid.clone(), recovered_zxid, resume)
        }
        None => StateMachine::new(applier, last_applied_zxid.clone()),
    };
    (state_machine, last_applied_zxid)
}

/// Initializes an empty group of one, then waits until this member leads and has applied an
/// entry of its own term (its blank entry), so proposals get the new term's zxids.
async fn become_leader(server_id: u64, raft: &Raft) -> Result<(), ConsensusError> {
    if !raft.is_initialized().await.map_err(fatal)? {
        let members = BTreeMap::from([(server_id, BasicNode::default())]);
        raft.initialize(members).await.map_err(fatal)?;
    }
    raft.wait(Some(STARTUP_TIMEOUT))
        .metrics(
            |m| {
                m.state.is_leader()
                    && m.last_applied.as_ref().map(term_of) == Some(m.current_term)
                    && m.last_applied.map(|id| id.index) == m.last_log_index
            },
            "standalone member leads and has applied its term's blank entry",
        )
        .await
        .map_err(fatal)?;
    Ok(())
}

async fn stop_log(log: &Option<DurableLogHandle>) {
    if let Some(log) = log {
        log.stop().await;
    }
}

fn fatal(e: impl std::fmt::Display) -> ConsensusError {
    ConsensusError::Fatal(e.to_string())
}

/// Initializes a fresh member with the configured voters (every member does the same, so the
/// initial membership entry is identical everywhere), then returns without waiting for a leader.
async fn join_quorum(
    server_id: u64,
    raft: &Raft,
    quorum: &QuorumOptions,
) -> Result<(), ConsensusError> {
    let voter = quorum.members.iter().any(|m| m.id == server_id && m.voter);
    // An observer waits for the leader to add it as a learner.
    if voter && !raft.is_initialized().await.map_err(fatal)? {
        // A fresh member whose peers already form a group is joining it (a reconfiguration
        // will add it): initializing a group of its own would disturb theirs. Peers that are
        // fresh too (a new ensemble) initialize together, with the same membership.
        for m in quorum.members.iter().filter(|m| m.id != server_id) {
            if network::probe(server_id, &m.peer_addr, Duration::from_millis(500)).await
                == Some(true)
            {
                tracing::info!(
                    "server.{} already belongs to a group: waiting to be added to it",
                    m.id
                );
                return Ok(());
            }
        }
        let voters: BTreeMap<u64, BasicNode> = quorum
            .members
            .iter()
            .filter(|m| m.voter)
            // No addresses in the initial membership: every member dials the addresses of
            // its own zoo.cfg (as ZooKeeper does), and the entry is identical everywhere.
            .map(|m| (m.id, BasicNode::default()))
            .collect();
        raft.initialize(voters).await.map_err(fatal)?;
    }
    Ok(())
}

/// While this member leads, makes every configured observer a learner: it receives the log but
/// does not vote, as a ZooKeeper observer.
async fn add_observers(raft: Raft, members: Vec<Member>) {
    let observers: Vec<&Member> = members.iter().filter(|m| !m.voter).collect();
    if observers.is_empty() {
        return;
    }
    let mut metrics = raft.metrics();
    loop {
        let missing: Vec<&Member> = {
            let m = metrics.borrow_watched();
            let ready =
                m.state.is_leader() && m.last_applied.as_ref().map(term_of) == Some(m.current_term);
            if ready {
                let known = m.membership_config.membership();
                observers
                    .iter()
                    .copied()
                    .filter(|o| known.get_node(&o.id).is_none())
                    .collect()
            } else {
                Vec::new()
            }
        };
        for o in missing {
            match raft
                .add_learner(o.id, BasicNode::new(o.peer_addr.clone()), false)
                .await
            {
                Ok(_) => tracing::info!("added observer server.{} as a learner", o.id),
                Err(e) => tracing::debug!("cannot add observer server.{} yet: {e}", o.id),
            }
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

fn quorum_config(quorum: &QuorumOptions, snap_count: u64) -> Config {
    let ms = |d: Duration| d.as_millis().max(1) as u64;
    Config {
        cluster_name: "ensemble".to_string(),
        heartbeat_interval: ms(quorum.heartbeat),
        election_timeout_min: ms(quorum.election_timeout.0),
        election_timeout_max: ms(quorum.election_timeout.1).max(ms(quorum.election_timeout.0) + 1),
        // A member that lags by more than this is caught up with a snapshot instead of the log.
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snap_count.max(1000)),
        max_in_snapshot_log_to_keep: snap_count.max(1000),
        max_payload_entries: 4096,
        purge_batch_size: 1024,
        enable_leader_restore: Some(false),
        // A member whose data directory was wiped rejoins with an empty log and is caught up
        // by the leader, as a ZooKeeper member with an empty dataDir resyncs from the leader.
        allow_log_reversion: Some(true),
        // Replicate an entry while the leader's own fsync of it is still running, so the
        // leader's and the followers' fsyncs overlap instead of adding up.
        broadcast_submitted_on_append: Some(true),
        ..Config::default()
    }
}

fn standalone_config() -> Config {
    Config {
        cluster_name: "ensemble".to_string(),
        // Snapshots carry only the zxid clock for now; they exist so the in-memory log can be
        // purged. Keep enough entries after the snapshot for a future follower to catch up from.
        snapshot_policy: SnapshotPolicy::LogsSinceLast(20_000),
        max_in_snapshot_log_to_keep: 2_000,
        purge_batch_size: 1024,
        // A restarted member holds a new election, so its first entry opens a new zxid epoch
        // instead of continuing the old term.
        enable_leader_restore: Some(false),
        ..Config::default()
    }
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(i64, Bytes)>>);

    impl Applier for Recorder {
        fn apply(&self, zxid: i64, payload: &Bytes) {
            self.0.lock().push((zxid, payload.clone()));
        }
    }

    /// Records the size of each `apply_all` call beside the txns.
    #[derive(Default)]
    struct BatchRecorder {
        txns: Mutex<Vec<(i64, Bytes)>>,
        batches: Mutex<Vec<usize>>,
    }

    impl Applier for BatchRecorder {
        fn apply(&self, zxid: i64, payload: &Bytes) {
            self.apply_all(&[(zxid, payload.clone())]);
        }

        fn apply_all(&self, txns: &[(i64, Bytes)]) {
            self.batches.lock().push(txns.len());
            self.txns.lock().extend_from_slice(txns);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn txns_committed_together_are_applied_together_in_log_order() {
        let recorder = Arc::new(BatchRecorder::default());
        let consensus = Consensus::start_standalone_with(1, recorder.clone(), standalone_config())
            .await
            .expect("start");
        let pending: Vec<_> = (0..1000u32)
            .map(|i| consensus.propose(Bytes::from(i.to_be_bytes().to_vec())))
            .collect();
        futures_util::future::try_join_all(pending)
            .await
            .expect("proposals");
        let txns = recorder.txns.lock().clone();
        let expected: Vec<(i64, Bytes)> = (0..1000u32)
            .map(|i| {
                (
                    0x1_0000_0002 + i64::from(i),
                    Bytes::from(i.to_be_bytes().to_vec()),
                )
            })
            .collect();
        assert_eq!(txns, expected);
        let batches = recorder.batches.lock().clone();
        assert!(batches.iter().all(|n| (1..=APPLY_BATCH).contains(n)));
        assert!(
            batches.len() < 1000,
            "every txn applied alone: {} calls",
            batches.len()
        );
        consensus.shutdown().await;
    }

    #[test]
    fn consensus_handle_and_proposals_cross_threads() {
        fn send_sync<T: Send + Sync + 'static>(_: &T) {}
        fn send_static<T: Send + 'static>(_: &T) {}
        fn check(c: &Consensus) {
            send_sync(c);
            send_static(&c.propose(Bytes::new()));
        }
        let _ = check;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn log_is_purged_behind_snapshots_without_disturbing_zxids() {
        let recorder = Arc::new(Recorder::default());
        let config = Config {
            snapshot_policy: SnapshotPolicy::LogsSinceLast(100),
            max_in_snapshot_log_to_keep: 10,
            purge_batch_size: 1,
            ..standalone_config()
        };
        let consensus = Consensus::start_standalone_with(1, recorder.clone(), config)
            .await
            .expect("start");
        let pending: Vec<_> = (0..1000u32)
            .map(|i| consensus.propose(Bytes::from(i.to_be_bytes().to_vec())))
            .collect();
        let zxids = futures_util::future::try_join_all(pending)
            .await
            .expect("proposals");
        let expected: Vec<i64> = (0..1000).map(|i| 0x1_0000_0002 + i).collect();
        assert_eq!(zxids, expected);

        let metrics = consensus
            .inner
            .raft
            .wait(Some(Duration::from_secs(5)))
            .metrics(|m| m.purged.is_some(), "log purged")
            .await
            .expect("log purged");
        assert!(metrics.snapshot.is_some());
        consensus.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn durable_log_cache_is_purged_behind_snapshots_and_restarts_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = DurableLog {
            data_dir: dir.path().to_path_buf(),
            data_log_dir: dir.path().to_path_buf(),
            options: ensemble_storage::TxnLogOptions {
                pre_alloc_size: 64 * 1024,
                force_sync: false,
                ..Default::default()
            },
            snap_count: 100_000,
        };
        let config = Config {
            snapshot_policy: SnapshotPolicy::LogsSinceLast(100),
            max_in_snapshot_log_to_keep: 10,
            purge_batch_size: 1,
            ..standalone_config()
        };
        let payload = |i: i32| {
            let header = ensemble_proto::TxnHeader {
                client_id: 1,
                cxid: i,
                zxid: 0,
                time: 0,
                r#type: ensemble_proto::op::ERROR,
            };
            let mut w = ensemble_proto::Writer::new();
            ensemble_proto::Jute::write(&header, &mut w);
            ensemble_proto::Jute::write(&ensemble_proto::ErrorTxn { err: i }, &mut w);
            w.into_bytes()
        };
        let mut recovered = 0;
        for round in 0..2 {
            let recorder = Arc::new(Recorder::default());
            let consensus = Consensus::start_durable_with(
                1,
                recorder.clone(),
                log.clone(),
                recovered,
                config.clone(),
            )
            .await
            .expect("start");
            let pending: Vec<_> = (0..1000).map(|i| consensus.propose(payload(i))).collect();
            let zxids = futures_util::future::try_join_all(pending)
                .await
                .expect("proposals");
            // Each start is a new term; its blank entry takes counter 1.
            let epoch = round + 1;
            let expected: Vec<i64> = (0..1000).map(|i| (epoch << 32) + 2 + i).collect();
            assert!(zxids == expected, "round {round}: from 0x{:x}", zxids[0]);
            assert_eq!(recorder.0.lock().len(), 1000);
            consensus
                .inner
                .raft
                .wait(Some(Duration::from_secs(5)))
                .metrics(|m| m.purged.is_some_and(|p| p.index > 500), "log purged")
                .await
                .expect("log purged");
            consensus.shutdown().await;
            recovered = ensemble_storage::txnlog::last_logged_zxid(&log.data_log_dir)
                .expect("read log")
                .unwrap_or(0);
            assert_eq!(recovered, *expected.last().unwrap_or(&0));
        }
    }
}
