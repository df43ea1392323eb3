//! The Ensemble server: accepts client connections, keeps sessions and
//! watches, and runs every write through prep, the consensus log and apply
//! (see `pipeline`). Configuration arrives parsed, as one `Config`.

mod admin;
pub mod conn;
mod containers;
pub mod disk;
mod fanout;
mod fourlw;
mod introspect;
mod json;
mod metrics;
mod mntr;
mod multi;
pub mod persist;
pub mod pipeline;
mod quorum;
mod reads;
mod reconfig;
pub mod session;
pub mod stats;
mod throttle;
pub mod watches;

use bytes::Bytes;
use ensemble_config::Config;
use ensemble_consensus::{Consensus, DurableLog, Member, QuorumOptions};
use ensemble_proto::{Jute, Writer};
use ensemble_storage::TxnLogOptions;
use ensemble_tree::{DataTree, Prep, PrepOptions};
use parking_lot::{Mutex, RwLock};
use pipeline::{PendingQueue, Replies, TreeApplier, WriteReq};
use session::SessionTable;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::{info, warn};
use watches::WatchManager;

/// What `srvr` and friends report as the version.
pub const VERSION_STRING: &str = concat!(
    "3.9.0-ensemble-",
    env!("CARGO_PKG_VERSION"),
    ", built on 1970-01-01 00:00 UTC"
);

/// The standalone server's id in session ids, as ZooKeeper's standalone server.
const STANDALONE_SERVER_ID: u64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen for clients on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write to {key} {path}: {why}")]
    DataDirNotWritable {
        key: &'static str,
        path: String,
        why: String,
    },
    #[error("consensus failed to start: {0}")]
    Consensus(String),
    #[error("cannot load the data directory: {0}")]
    Storage(String),
    #[error("cannot start {what} on {addr}: {source}")]
    Http {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
}

impl ServerError {
    /// The exit code ZooKeeper uses for the same failure: 3 when a data
    /// directory cannot be created or written, 4 when the AdminServer cannot
    /// start, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ServerError::DataDir { .. } | ServerError::DataDirNotWritable { .. } => 3,
            ServerError::Http {
                what: "AdminServer",
                ..
            } => 4,
            _ => 1,
        }
    }
}

/// State shared by every task of a server.
pub struct Shared {
    pub config: Config,
    pub tree: RwLock<DataTree>,
    pub watches: Mutex<WatchManager>,
    pub sessions: Mutex<SessionTable>,
    pub prep: Mutex<Prep>,
    pub pending: Mutex<PendingQueue>,
    /// Answers owed to this member's clients, by (session, cxid).
    pub replies: Mutex<Replies>,
    prep_tx: mpsc::UnboundedSender<WriteReq>,
    /// Quorum mode (`server.N` lines): writes go through the leader.
    pub quorum: bool,
    /// A leader not acknowledged by a quorum for this long stops serving.
    pub quorum_timeout: Duration,
    /// A follower that has not heard from its leader for this long (the
    /// shortest election timeout) stops serving until a leader is back.
    pub leader_timeout: Duration,
    /// Sessions touched here since the last report to the leader.
    touches: quorum::Touches,
    /// On the leader: the member holding each session's connection.
    pub owners: Mutex<quorum::Owners>,
    /// The quorum's membership and its version (`/zookeeper/config`).
    pub membership: Mutex<reconfig::Membership>,
    /// Read-only sessions' connections, closed when the quorum returns.
    pub read_only_conns: Mutex<HashMap<u64, conn::ConnHandle>>,
    consensus: OnceLock<Consensus>,
    pub snapshotter: persist::Snapshotter,
    /// Whether the data directories have room for client writes.
    pub disk: disk::DiskGuard,
    /// Counters behind `srvr`, `stat` and `mntr`.
    pub stats: Arc<stats::ServerStats>,
    /// `globalOutstandingLimit` and the RequestThrottler.
    pub throttle: throttle::Throttle,
    next_conn: AtomicU64,
    /// Numbers the txns of client writes made here (see [`Shared::write_cxid`]).
    next_write: AtomicU32,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
    started: Instant,
}

impl Shared {
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// The cxid written into the txn of a client's write: this member's id in
    /// the top 8 bits and a counter below, so that no two pending writes share
    /// one even when a client numbers the requests of each connection from 1
    /// again (kazoo does). Answers are matched to txns by (session, cxid); the
    /// client's own xid stays with the answer.
    pub fn write_cxid(&self) -> i32 {
        let n = self.next_write.fetch_add(1, Ordering::Relaxed) & 0x7F_FFFF;
        let member = (self.consensus().server_id() & 0xFF) as i32;
        (member << 23) | n as i32
    }

    /// Milliseconds since the server started: the clock of session expiry.
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Wall-clock milliseconds: the time stamped into txns.
    pub fn wall_clock_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    pub fn touch(&self, session_id: i64) {
        let now = self.now_ms();
        self.sessions.lock().touch(session_id, now);
        if self.quorum {
            self.touches.record(session_id);
        }
    }

    /// Whether this member may serve clients now (always in standalone mode).
    pub fn serving(&self) -> bool {
        quorum::serving(self)
    }

    /// ZooKeeper's `Mode:` value (`standalone`, `leader`, `follower`,
    /// `observer`), or None while the member is not serving.
    pub fn mode(&self) -> Option<&'static str> {
        quorum::mode_name(self)
    }

    pub fn submit_write(&self, req: WriteReq) {
        if self.prep_tx.send(req).is_err() {
            warn!("write dropped: the prep stage has stopped");
        }
    }

    /// The consensus handle; set once at startup before any client is served.
    pub fn consensus(&self) -> &Consensus {
        self.consensus
            .get()
            .expect("consensus is started before connections are accepted")
    }

    pub fn connection_count(&self) -> u32 {
        self.per_ip.lock().values().sum()
    }

    /// Forgets a connection: its watches, and its place in its session.
    /// Whether this member now serves read-only sessions: quorum mode with
    /// `readonlymode.enabled`, and no quorum.
    pub fn read_only_mode(&self) -> bool {
        self.quorum && self.config.read_only_mode_enabled && !self.serving()
    }

    /// Forgets a closed connection. True when it was the connection of a
    /// session that lives on (not closing): the session is left without a
    /// connection on this member.
    pub fn connection_closed(&self, state: &conn::ConnState) -> bool {
        self.watches.lock().remove_conn(state.handle.id);
        if state.read_only {
            self.read_only_conns.lock().remove(&state.handle.id);
        }
        let mut sessions = self.sessions.lock();
        if let Some(s) = sessions.get_mut(state.session_id) {
            if s.conn.as_ref().map(|c| c.id) == Some(state.handle.id) {
                s.conn = None;
                return !s.closing;
            }
        }
        false
    }

    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, String> {
        let max = self.config.max_client_cnxns;
        let max_total = self.config.max_cnxns;
        let mut m = self.per_ip.lock();
        if max_total > 0 && m.values().sum::<u32>() >= max_total {
            return Err(format!(
                "too many connections in all - max is {max_total} (maxCnxns)"
            ));
        }
        let n = m.entry(ip).or_insert(0);
        if max > 0 && *n >= max {
            return Err(format!("too many connections from {ip} - max is {max}"));
        }
        *n += 1;
        Ok(Admitted {
            shared: self.clone(),
            ip,
        })
    }

    fn release(&self, ip: IpAddr) {
        let mut m = self.per_ip.lock();
        if let Some(n) = m.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&ip);
            }
        }
    }
}

/// A connection's place under maxClientCnxns and maxCnxns, given back when
/// dropped.
pub struct Admitted {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.shared.release(self.ip);
    }
}

/// A length-prefixed frame holding one record.
pub fn encode_frame<T: Jute>(rec: &T) -> Bytes {
    let mut w = Writer::new_frame();
    rec.write(&mut w);
    w.finish_frame()
}

/// A running server.
pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Server {
    /// Binds the client port, starts the consensus group and the stages, and
    /// begins accepting clients.
    pub async fn start(config: Config) -> Result<Server, ServerError> {
        for (key, dir) in [
            ("dataDir", config.data_dir.as_path()),
            ("dataLogDir", config.txn_log_dir()),
        ] {
            std::fs::create_dir_all(dir).map_err(|source| ServerError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
            // As ZooKeeper, which will not start on a data directory it cannot write.
            if let Some(why) = disk::unwritable(dir) {
                return Err(ServerError::DataDirNotWritable {
                    key,
                    path: dir.display().to_string(),
                    why,
                });
            }
        }
        if !config.force_sync {
            warn!("forceSync=no: txns are acknowledged before they reach the disk");
        }
        let stats = Arc::new(stats::ServerStats::new());
        let load_started = Instant::now();
        let recovered = {
            let cfg = config.clone();
            tokio::task::spawn_blocking(move || persist::load(&cfg))
                .await
                .map_err(|e| ServerError::Storage(e.to_string()))?
                .map_err(|e| ServerError::Storage(e.to_string()))?
        };
        stats
            .db_init_time
            .add(load_started.elapsed().as_millis() as u64);
        if recovered.txns_replayed > 0 {
            stats
                .startup_txns_loaded
                .add(recovered.txns_replayed as u64);
        }
        let addr = config.client_addr();
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let addr = listener.local_addr().unwrap_or(addr);
        let admin_listener = admin::bind(&config).await?;
        let metrics_listener = metrics::bind(&config).await?;
        let (prep_tx, prep_rx) = mpsc::unbounded_channel();
        let started = Instant::now();
        let quorum = config.is_quorum();
        let server_id = if quorum {
            config.my_id.unwrap_or(STANDALONE_SERVER_ID)
        } else {
            STANDALONE_SERVER_ID
        };
        let timing = QuorumTiming::of(&config);
        let first_session = session::initial_session_id(
            server_id,
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        );
        let prep = Prep::new(PrepOptions {
            extended_types_enabled: config.extended_types_enabled,
            super_digest: config.super_digest.clone(),
            enforce_quota: config.enforce_quota,
            ..PrepOptions::default()
        });
        let mut sessions = SessionTable::new(config.tick_time as u64, first_session);
        for (&id, &timeout) in &recovered.sessions {
            // A restored session gets a full timeout to reconnect.
            sessions.add(id, timeout, 0, None);
        }
        let recovered_zxid = recovered.last_zxid;
        let mut recovered = recovered;
        if quorum {
            recovered.tree.set_config(
                Bytes::from(dynamic_config_text(&config)),
                config.config_version(),
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0),
            );
        }
        let shared = Arc::new(Shared {
            tree: RwLock::new(recovered.tree),
            watches: Mutex::new(WatchManager::default()),
            sessions: Mutex::new(sessions),
            prep: Mutex::new(prep),
            pending: Mutex::new(PendingQueue::default()),
            replies: Mutex::new(Replies::default()),
            prep_tx,
            quorum,
            quorum_timeout: timing.election_timeout.1,
            leader_timeout: timing.election_timeout.0,
            touches: quorum::Touches::default(),
            owners: Mutex::new(quorum::Owners::default()),
            read_only_conns: Mutex::new(HashMap::new()),
            membership: Mutex::new(reconfig::Membership {
                servers: config.servers.clone(),
                version: config.config_version(),
            }),
            consensus: OnceLock::new(),
            snapshotter: persist::Snapshotter::new(&config, stats.proposal_sizes.clone()),
            disk: disk::DiskGuard::default(),
            stats,
            throttle: throttle::Throttle::new(&config),
            next_conn: AtomicU64::new(1),
            next_write: AtomicU32::new(1),
            per_ip: Mutex::new(HashMap::new()),
            started,
            config,
        });
        let applier = Arc::new(TreeApplier {
            shared: Arc::downgrade(&shared),
        });
        let log = DurableLog {
            data_dir: shared.config.data_dir.clone(),
            data_log_dir: shared.config.txn_log_dir().to_path_buf(),
            options: TxnLogOptions {
                pre_alloc_size: shared.config.pre_alloc_size,
                force_sync: shared.config.force_sync,
                fsync_warning_threshold: Duration::from_millis(
                    shared.config.fsync_warning_threshold_ms,
                ),
                size_limit: shared.config.txn_log_size_limit,
            },
            snap_count: shared.config.snap_count,
        };
        let consensus = if quorum {
            let members = shared
                .config
                .servers
                .iter()
                .map(|(id, spec)| Member {
                    id: *id,
                    peer_addr: peer_addr(&spec.host, spec.peer_port),
                    voter: !spec.observer,
                })
                .collect();
            let listen = shared
                .config
                .servers
                .get(&server_id)
                .map(|spec| listen_addr(&spec.host, spec.peer_port))
                .ok_or_else(|| {
                    ServerError::Consensus(format!("no server.{server_id} line for this server"))
                })??;
            let options = QuorumOptions {
                members,
                listen,
                heartbeat: timing.heartbeat,
                election_timeout: timing.election_timeout,
            };
            let handler = Arc::new(quorum::ServerPeer {
                shared: Arc::downgrade(&shared),
            });
            info!(
                "quorum member server.{server_id}: heartbeat {} ms, election timeout {}-{} ms",
                timing.heartbeat.as_millis(),
                timing.election_timeout.0.as_millis(),
                timing.election_timeout.1.as_millis()
            );
            Consensus::start_quorum(server_id, applier, log, recovered_zxid, options, handler).await
        } else {
            Consensus::start_standalone_durable(server_id, applier, log, recovered_zxid).await
        }
        .map_err(|e| ServerError::Consensus(e.to_string()))?;
        let _ = shared.consensus.set(consensus);

        disk::look(&shared);
        tokio::spawn(disk::disk_task(shared.clone()));
        tokio::spawn(pipeline::prep_task(shared.clone(), prep_rx));
        tokio::spawn(session_ticker(shared.clone()));
        tokio::spawn(containers::container_task(shared.clone()));
        tokio::spawn(persist::snapshot_task(shared.clone()));
        tokio::spawn(persist::purge_task(shared.clone()));
        if quorum {
            tokio::spawn(quorum::role_task(shared.clone()));
        }
        tokio::spawn(accept_loop(shared.clone(), listener));
        if let Some(l) = admin_listener {
            tokio::spawn(admin::serve(shared.clone(), l));
        }
        if let Some((l, process_info)) = metrics_listener {
            tokio::spawn(metrics::serve(shared.clone(), l, process_info));
        }
        info!("serving clients on {addr}");
        Ok(Server { shared, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the server can no longer write (its consensus log failed, say on a
    /// disk that filled up past `ensemble.minFreeDiskSpaceMb`) and returns why. As
    /// ZooKeeper, whose log writer exits the server, the caller should exit: a restart
    /// loads what is on disk and, while the disk is still full, serves reads.
    pub async fn failure(&self) -> String {
        self.shared.consensus().failure().await
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let admitted = match shared.admit(peer.ip()) {
            Ok(a) => a,
            Err(why) => {
                shared
                    .stats
                    .connection_rejected
                    .fetch_add(1, Ordering::Relaxed);
                warn!("{why}");
                drop(stream);
                continue;
            }
        };
        tokio::spawn(conn::serve(shared.clone(), stream, peer, admitted));
    }
}

/// Checks session expiry once per tick and proposes closeSession for each
/// expired session, so their ephemerals go away through the log.
async fn session_ticker(shared: Arc<Shared>) {
    let tick = Duration::from_millis(shared.config.tick_time.max(1) as u64);
    let mut interval = tokio::time::interval(tick);
    loop {
        interval.tick().await;
        // Only the leader expires sessions; the others report touches to it.
        if shared.quorum && !shared.consensus().leader_ready() {
            continue;
        }
        let now = shared.now_ms();
        let expired = shared.sessions.lock().take_expired(now);
        for id in expired {
            shared
                .stats
                .sessions_expired
                .fetch_add(1, Ordering::Relaxed);
            let timeout = shared
                .sessions
                .lock()
                .get(id)
                .map(|s| s.timeout_ms)
                .unwrap_or(0);
            info!("expiring session 0x{id:x}, timeout of {timeout} ms exceeded");
            shared.submit_write(WriteReq::internal(id, ensemble_proto::op::CLOSE_SESSION));
        }
    }
}

/// Raft timing derived from ZooKeeper's settings. A ZooKeeper follower
/// notices a dead leader when its socket closes and elects a new one within
/// about a second; its `syncLimit` ticks bound how long a silent leader is
/// trusted. Here a follower that hears nothing for a random time between
/// `2 x tickTime` and twice that starts an election, with the lower bound
/// clamped to 300..1000 ms (so the default tickTime=2000 elects within 1-2 s)
/// and never above `syncLimit` ticks; the leader sends a heartbeat five times
/// per lower bound.
struct QuorumTiming {
    heartbeat: Duration,
    election_timeout: (Duration, Duration),
}

impl QuorumTiming {
    fn of(config: &Config) -> QuorumTiming {
        let tick = (config.tick_time.max(1)) as u64;
        let limit = tick * (config.sync_limit.max(1) as u64);
        let min = (tick * 2).clamp(300, 1000).min(limit.max(50));
        QuorumTiming {
            heartbeat: Duration::from_millis((min / 5).max(10)),
            election_timeout: (Duration::from_millis(min), Duration::from_millis(min * 2)),
        }
    }
}

pub(crate) fn peer_addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The socket address to listen on for peers: `server.N`'s host, resolved.
fn listen_addr(host: &str, port: u16) -> Result<SocketAddr, ServerError> {
    use std::net::ToSocketAddrs;
    let addr = peer_addr(host, port);
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ServerError::Consensus(format!("cannot resolve peer address {addr}")))
}

/// The membership as ZooKeeper writes it into `/zookeeper/config`
/// (`QuorumMaj.toString`): one `server.N=` line per member, then the config
/// version in hex (0 for a static config).
pub fn dynamic_config_text(config: &Config) -> String {
    reconfig::Membership {
        servers: config.servers.clone(),
        version: config.config_version(),
    }
    .text()
}

impl Server {
    /// Stops the server for a clean exit (SIGTERM): waits, at most `grace`, until every
    /// entry already in the log is applied and its client answered; closes the client
    /// connections once their queued replies are written; then stops the consensus group,
    /// whose log writer commits and fsyncs what it holds. A client connecting meanwhile
    /// cannot open a session after that, and its writes fail with ConnectionLoss.
    pub async fn shutdown(&self, grace: Duration) {
        let consensus = self.shared.consensus().clone();
        // A follower has no read index; what it forwarded is the leader's to finish.
        let _ = tokio::time::timeout(grace, consensus.read_index()).await;
        let mut conns = self.shared.sessions.lock().connections();
        conns.extend(self.shared.read_only_conns.lock().values().cloned());
        for conn in &conns {
            conn.close();
        }
        consensus.shutdown().await;
        // The writers flush the replies queued before the close.
        tokio::time::sleep(Duration::from_millis(100)).await;
        info!("stopped: {} client connections closed", conns.len());
    }
}
