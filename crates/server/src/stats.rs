//! Server statistics behind `srvr`, `stat` and `mntr`, with the meaning
//! ZooKeeper's `ServerStats` and `ServerMetrics` give them: packets received
//! and sent, requests outstanding, request latency from receipt to answer
//! (`updateLatency`), response sizes, and the connections `stat` lists.
//!
//! Everything a request touches is an atomic counter updated with relaxed
//! ordering: no lock and no allocation per request. The registry of
//! connections is locked only when a connection opens or closes, and by the
//! four-letter words that read it.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// ZooKeeper's `AvgMinMaxCounter`: count, sum, min and max of the values
/// added (latencies in milliseconds, sizes in bytes).
#[derive(Debug)]
pub struct Summary {
    count: AtomicU64,
    total: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
}

/// What a [`Summary`] holds at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SummaryValues {
    pub count: u64,
    pub total: u64,
    /// 0 while empty, as ZooKeeper.
    pub min: u64,
    pub max: u64,
}

impl SummaryValues {
    /// The mean rounded to four decimals (half up), as ZooKeeper's `getAvg`.
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        ((self.total as f64 / self.count as f64) * 10_000.0).round() / 10_000.0
    }

    /// Two summaries as one (ZooKeeper's request latency covers reads and
    /// updates).
    pub fn merge(self, other: SummaryValues) -> SummaryValues {
        let min = match (self.count, other.count) {
            (0, _) => other.min,
            (_, 0) => self.min,
            _ => self.min.min(other.min),
        };
        SummaryValues {
            count: self.count + other.count,
            total: self.total + other.total,
            min,
            max: self.max.max(other.max),
        }
    }
}

impl Default for Summary {
    fn default() -> Self {
        Summary::new()
    }
}

impl Summary {
    pub const fn new() -> Summary {
        Summary {
            count: AtomicU64::new(0),
            total: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
        }
    }

    pub fn add(&self, v: u64) {
        self.total.fetch_add(v, Relaxed);
        self.count.fetch_add(1, Relaxed);
        // Loads first: min and max rarely move, and a load is cheaper than a
        // read-modify-write on a shared line.
        if v < self.min.load(Relaxed) {
            self.min.fetch_min(v, Relaxed);
        }
        if v > self.max.load(Relaxed) {
            self.max.fetch_max(v, Relaxed);
        }
    }

    pub fn values(&self) -> SummaryValues {
        let count = self.count.load(Relaxed);
        let min = self.min.load(Relaxed);
        SummaryValues {
            count,
            total: self.total.load(Relaxed),
            min: if min == u64::MAX { 0 } else { min },
            max: self.max.load(Relaxed),
        }
    }

    pub fn reset(&self) {
        self.count.store(0, Relaxed);
        self.total.store(0, Relaxed);
        self.min.store(u64::MAX, Relaxed);
        self.max.store(0, Relaxed);
    }
}

/// Values below this have a bucket each; above, each power of two is split
/// into `SUB_BUCKETS` buckets (an error of at most 1/8 of the value).
const EXACT: u64 = 64;
const SUB_BUCKETS: u64 = 8;
const BUCKETS: usize = EXACT as usize + (64 - 6) * SUB_BUCKETS as usize;

/// ZooKeeper's `AvgMinMaxPercentileCounter`: a [`Summary`] plus the 50th, 95th,
/// 99th and 99.9th percentiles. ZooKeeper samples values into a reservoir;
/// here every value lands in a bucket of a histogram (one atomic increment),
/// exact below 64 and within 1/8 above.
pub struct PercentileSummary {
    summary: Summary,
    buckets: Box<[AtomicU64]>,
}

impl Default for PercentileSummary {
    fn default() -> Self {
        PercentileSummary::new()
    }
}

fn bucket_of(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let exp = 63 - u64::from(v.leading_zeros()); // 6..=63
    let sub = (v >> (exp - 3)) & (SUB_BUCKETS - 1);
    (EXACT + (exp - 6) * SUB_BUCKETS + sub) as usize
}

/// The smallest value of a bucket.
fn bucket_floor(b: usize) -> u64 {
    let b = b as u64;
    if b < EXACT {
        return b;
    }
    let exp = (b - EXACT) / SUB_BUCKETS + 6;
    let sub = (b - EXACT) % SUB_BUCKETS;
    (1u64 << exp) + (sub << (exp - 3))
}

impl PercentileSummary {
    pub fn new() -> PercentileSummary {
        PercentileSummary {
            summary: Summary::new(),
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn add(&self, v: u64) {
        self.summary.add(v);
        self.buckets[bucket_of(v)].fetch_add(1, Relaxed);
    }

    pub fn values(&self) -> SummaryValues {
        self.summary.values()
    }

    /// The value at quantile `q` (0..=1), 0 while empty.
    pub fn percentile(&self, q: f64) -> u64 {
        self.snapshot().quantile(q).unwrap_or(0)
    }

    /// The counts and the histogram at one moment.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            values: self.summary.values(),
            buckets: self.buckets.iter().map(|b| b.load(Relaxed)).collect(),
        }
    }

    /// Back to empty (`srst`).
    pub fn reset(&self) {
        self.summary.reset();
        for b in self.buckets.iter() {
            b.store(0, Relaxed);
        }
    }
}

/// A [`PercentileSummary`] read at one moment; two of them give the
/// quantiles of the values added in between (Prometheus' sliding window).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub values: SummaryValues,
    buckets: Vec<u64>,
}

impl HistogramSnapshot {
    /// The value at quantile `q` (0..=1), None while empty: the smallest
    /// value of the bucket holding that rank, kept within min and max.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let n: u64 = self.buckets.iter().sum();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let (min, max) = (self.values.min, self.values.max.max(self.values.min));
        let mut seen = 0;
        for (b, c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_floor(b).clamp(min, max));
            }
        }
        Some(max)
    }

    /// The values added since `earlier` (a snapshot of the same summary);
    /// min and max stay those of the whole run. A reset in between gives
    /// this snapshot unchanged.
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        if earlier.values.count > self.values.count || earlier.buckets.len() != self.buckets.len() {
            return self.clone();
        }
        HistogramSnapshot {
            values: SummaryValues {
                count: self.values.count - earlier.values.count,
                total: self.values.total.saturating_sub(earlier.values.total),
                ..self.values
            },
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|(now, then)| now.saturating_sub(*then))
                .collect(),
        }
    }
}

/// ZooKeeper's `BufferStats`: the last, smallest and largest size seen, -1
/// before the first.
#[derive(Debug)]
pub struct BufferStats {
    last: AtomicI64,
    min: AtomicI64,
    max: AtomicI64,
}

impl Default for BufferStats {
    fn default() -> Self {
        BufferStats::new()
    }
}

impl BufferStats {
    pub const fn new() -> BufferStats {
        BufferStats {
            last: AtomicI64::new(-1),
            min: AtomicI64::new(-1),
            max: AtomicI64::new(-1),
        }
    }

    pub fn record(&self, size: i64) {
        self.last.store(size, Relaxed);
        let min = self.min.load(Relaxed);
        if min == -1 || size < min {
            let _ = self
                .min
                .fetch_update(Relaxed, Relaxed, |m| (m == -1 || size < m).then_some(size));
        }
        if size > self.max.load(Relaxed) {
            self.max.fetch_max(size, Relaxed);
        }
    }

    /// (last, min, max).
    pub fn values(&self) -> (i64, i64, i64) {
        (
            self.last.load(Relaxed),
            self.min.load(Relaxed),
            self.max.load(Relaxed),
        )
    }

    pub fn reset(&self) {
        self.last.store(-1, Relaxed);
        self.min.store(-1, Relaxed);
        self.max.store(-1, Relaxed);
    }
}

/// `lop` before a connection's first answered request, and after `crst`.
const NO_OP: i32 = i32::MIN;
/// `lop` of a connect request (ZooKeeper's `SESS`).
const CONNECT_OP: i32 = i32::MIN + 1;

/// Counters of one client connection, as `stat` and `cons` show them
/// (ZooKeeper's `ServerCnxn` statistics).
#[derive(Debug)]
pub struct ConnStats {
    pub peer: SocketAddr,
    /// When the connection was accepted: wall-clock ms (`est`) and instant.
    pub established_ms: i64,
    pub opened: Instant,
    received: AtomicU64,
    sent: AtomicU64,
    queued: AtomicI64,
    /// A connection that sent a four-letter word: ZooKeeper stops reading
    /// from it (interest set 0).
    four_letter: AtomicBool,
    /// The opcode of the last request (`lop`).
    last_op: AtomicI32,
    /// The xid (`lcxid`, -1 before any) and zxid (`lzxid`) of the last reply.
    last_cxid: AtomicI64,
    last_zxid: AtomicI64,
    /// When the last answer went out, in ms of the server's clock (`lresp`),
    /// and how long it took (`llat`).
    last_response: AtomicU64,
    last_latency: AtomicU64,
    latency: Summary,
}

/// What `cons` and the AdminServer's `connections` show of one connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub interest_ops: u32,
    pub queued: i64,
    pub received: u64,
    pub sent: u64,
    pub established_ms: i64,
    pub last_op: &'static str,
    pub last_cxid: i64,
    pub last_zxid: i64,
    pub last_response: u64,
    pub last_latency: u64,
    pub min_latency: u64,
    /// Whole milliseconds, as ZooKeeper's integer division.
    pub avg_latency: u64,
    pub max_latency: u64,
}

impl ConnStats {
    fn new(peer: SocketAddr) -> ConnStats {
        ConnStats {
            peer,
            established_ms: wall_clock_ms(),
            opened: Instant::now(),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            queued: AtomicI64::new(0),
            four_letter: AtomicBool::new(false),
            last_op: AtomicI32::new(NO_OP),
            last_cxid: AtomicI64::new(-1),
            last_zxid: AtomicI64::new(-1),
            last_response: AtomicU64::new(0),
            last_latency: AtomicU64::new(0),
            latency: Summary::new(),
        }
    }

    /// (queued, received, sent).
    pub fn values(&self) -> (i64, u64, u64) {
        (
            self.queued.load(Relaxed).max(0),
            self.received.load(Relaxed),
            self.sent.load(Relaxed),
        )
    }

    fn interest_ops(&self) -> u32 {
        if self.four_letter.load(Relaxed) {
            0
        } else {
            1
        }
    }

    /// ZooKeeper's `dumpConnectionInfo(brief)`:
    /// ` /127.0.0.1:53154[1](queued=0,recved=3,sent=3)`.
    pub fn brief(&self) -> String {
        let (queued, recved, sent) = self.values();
        format!(
            " {}[{}](queued={queued},recved={recved},sent={sent})",
            java_socket_addr(&self.peer),
            self.interest_ops()
        )
    }

    pub fn info(&self) -> ConnInfo {
        let (queued, received, sent) = self.values();
        let latency = self.latency.values();
        ConnInfo {
            peer: self.peer,
            interest_ops: self.interest_ops(),
            queued,
            received,
            sent,
            established_ms: self.established_ms,
            last_op: op_name(self.last_op.load(Relaxed)),
            last_cxid: self.last_cxid.load(Relaxed),
            last_zxid: self.last_zxid.load(Relaxed),
            last_response: self.last_response.load(Relaxed),
            last_latency: self.last_latency.load(Relaxed),
            min_latency: latency.min,
            avg_latency: latency.total.checked_div(latency.count).unwrap_or(0),
            max_latency: latency.max,
        }
    }

    /// ZooKeeper's `resetStats` (`crst`).
    pub fn reset(&self) {
        self.received.store(0, Relaxed);
        self.sent.store(0, Relaxed);
        self.last_op.store(NO_OP, Relaxed);
        self.last_cxid.store(-1, Relaxed);
        self.last_zxid.store(-1, Relaxed);
        self.last_response.store(0, Relaxed);
        self.last_latency.store(0, Relaxed);
        self.latency.reset();
    }
}

impl ConnInfo {
    /// ZooKeeper's `dumpConnectionInfo(false)` (`cons`): the brief form plus,
    /// for a connection with a session, its id, timeout and last request.
    pub fn full(&self, session: Option<(i64, i32)>) -> String {
        let mut out = format!(
            " {}[{}](queued={},recved={},sent={}",
            java_socket_addr(&self.peer),
            self.interest_ops,
            self.queued,
            self.received,
            self.sent
        );
        if let Some((sid, timeout)) = session.filter(|(sid, _)| *sid != 0) {
            use std::fmt::Write;
            let _ = write!(
                out,
                ",sid=0x{sid:x},lop={},est={},to={timeout}",
                self.last_op, self.established_ms
            );
            if self.last_cxid >= 0 {
                let _ = write!(out, ",lcxid=0x{:x}", self.last_cxid);
            }
            let _ = write!(
                out,
                ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
                self.last_zxid,
                self.last_response,
                self.last_latency,
                self.min_latency,
                self.avg_latency,
                self.max_latency
            );
        }
        out.push(')');
        out
    }
}

/// ZooKeeper's name of a request in `lop` (`FinalRequestProcessor`).
fn op_name(op: i32) -> &'static str {
    use ensemble_proto::op;
    match op {
        NO_OP => "NA",
        CONNECT_OP => "SESS",
        op::PING => "PING",
        op::CREATE_SESSION => "SESS",
        op::MULTI => "MULT",
        op::MULTI_READ => "MLTR",
        op::CREATE | op::CREATE2 | op::CREATE_TTL | op::CREATE_CONTAINER => "CREA",
        op::DELETE | op::DELETE_CONTAINER => "DELE",
        op::SET_DATA => "SETD",
        op::RECONFIG => "RECO",
        op::SET_ACL => "SETA",
        op::CLOSE_SESSION => "CLOS",
        op::SYNC => "SYNC",
        op::CHECK => "CHEC",
        op::EXISTS => "EXIS",
        op::GET_DATA => "GETD",
        op::SET_WATCHES => "SETW",
        op::SET_WATCHES2 => "STW2",
        op::ADD_WATCH => "ADDW",
        op::GET_ACL => "GETA",
        op::GET_CHILDREN | op::GET_CHILDREN2 => "GETC",
        op::GET_ALL_CHILDREN_NUMBER => "GETACN",
        op::CHECK_WATCHES => "CHKW",
        op::REMOVE_WATCHES => "REMW",
        op::WHO_AM_I => "HOMI",
        op::GET_EPHEMERALS => "GETE",
        _ => "NA",
    }
}

/// Milliseconds since the Unix epoch.
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How Java prints an `InetSocketAddress` without a host name:
/// `/127.0.0.1:2181`, `/0:0:0:0:0:0:0:1:2181` (every IPv6 group, no zero
/// compression).
pub fn java_socket_addr(addr: &SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6
                .segments()
                .iter()
                .map(|s| format!("{s:x}"))
                .collect::<Vec<_>>()
                .join(":"),
        },
        std::net::IpAddr::V4(v4) => v4.to_string(),
    };
    format!("/{ip}:{}", addr.port())
}

/// How Java's `Double.toString` prints the averages ZooKeeper reports
/// (`0.0`, `3.5`, `0.3333`, `1.0E7`).
pub fn java_double(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let a = v.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = format!("{v}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        if mantissa.contains('.') {
            format!("{mantissa}E{exp}")
        } else {
            format!("{mantissa}.0E{exp}")
        }
    }
}

/// The statistics of one server.
pub struct ServerStats {
    started: Instant,
    packets_received: AtomicU64,
    packets_sent: AtomicU64,
    bytes_received: AtomicU64,
    response_bytes: AtomicU64,
    watch_bytes: AtomicU64,
    /// Requests received and not yet answered (ZooKeeper's
    /// `requestsInProcess`).
    outstanding: AtomicI64,
    /// Requests answered without a txn (reads, pings, sync, SetWatches).
    pub read_latency: PercentileSummary,
    /// Requests answered by a txn (writes, new sessions).
    pub update_latency: PercentileSummary,
    pub client_response_size: BufferStats,
    /// Sizes of the txns applied since this member last became leader
    /// (ZooKeeper's `Proposal sizes`).
    pub proposal_sizes: Arc<BufferStats>,
    pub auth_failed: AtomicU64,
    pub connection_rejected: AtomicU64,
    pub connection_requests: AtomicU64,
    /// Sessions expired by this member (as leader).
    pub sessions_expired: AtomicU64,
    pub looking_count: AtomicU64,
    /// The RequestThrottler's counters (see `throttle`): requests answered
    /// Throttled, waits of a stall time, requests run or dropped after their
    /// connection closed, and the time requests waited for a slot.
    pub throttled_ops: AtomicU64,
    pub request_throttle_wait_count: AtomicU64,
    pub stale_requests: AtomicU64,
    pub stale_requests_dropped: AtomicU64,
    pub request_throttle_queue_time: PercentileSummary,
    /// `sync`s waiting for the leader's read index on the leader.
    pub pending_syncs: AtomicI64,
    pub snapshot_time: PercentileSummary,
    pub db_init_time: PercentileSummary,
    pub startup_txns_loaded: PercentileSummary,
    pub election_time: PercentileSummary,
    pub unavailable_time: PercentileSummary,
    pub leader_unavailable_time: PercentileSummary,
    /// When this member last started leading (None when it does not lead).
    leader_since: Mutex<Option<Instant>>,
    conns: Mutex<BTreeMap<u64, Arc<ConnStats>>>,
    /// ZooKeeper's text trace mask (`gtmk`, `stmk`): kept and reported,
    /// Ensemble's logging does not read it.
    pub trace_mask: AtomicI64,
    /// Tree digests of recent zxids (`hash`).
    pub digests: DigestLog,
}

/// ZooKeeper's default trace mask (`ZooTrace.textTraceMask`).
pub const DEFAULT_TRACE_MASK: i64 = 306;

/// ZooKeeper's digest history (`DataTree.digestLog`): the tree digest after
/// each txn whose zxid is a multiple of 128, the latest 1024 of them.
#[derive(Default)]
pub struct DigestLog {
    entries: Mutex<std::collections::VecDeque<(i64, i64)>>,
}

impl DigestLog {
    const INTERVAL: i64 = 128;
    const LIMIT: usize = 1024;

    /// Called for every applied txn; keeps one in 128.
    pub fn record(&self, zxid: i64, digest: i64) {
        if zxid % Self::INTERVAL != 0 {
            return;
        }
        let mut entries = self.entries.lock();
        entries.push_back((zxid, digest));
        if entries.len() > Self::LIMIT {
            entries.pop_front();
        }
    }

    /// (zxid, digest), oldest first.
    pub fn list(&self) -> Vec<(i64, i64)> {
        self.entries.lock().iter().copied().collect()
    }
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats::new()
    }
}

impl ServerStats {
    pub fn new() -> ServerStats {
        ServerStats {
            started: Instant::now(),
            packets_received: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            response_bytes: AtomicU64::new(0),
            watch_bytes: AtomicU64::new(0),
            outstanding: AtomicI64::new(0),
            read_latency: PercentileSummary::new(),
            update_latency: PercentileSummary::new(),
            client_response_size: BufferStats::new(),
            proposal_sizes: Arc::new(BufferStats::new()),
            auth_failed: AtomicU64::new(0),
            connection_rejected: AtomicU64::new(0),
            connection_requests: AtomicU64::new(0),
            sessions_expired: AtomicU64::new(0),
            looking_count: AtomicU64::new(0),
            throttled_ops: AtomicU64::new(0),
            request_throttle_wait_count: AtomicU64::new(0),
            stale_requests: AtomicU64::new(0),
            stale_requests_dropped: AtomicU64::new(0),
            request_throttle_queue_time: PercentileSummary::new(),
            pending_syncs: AtomicI64::new(0),
            snapshot_time: PercentileSummary::new(),
            db_init_time: PercentileSummary::new(),
            startup_txns_loaded: PercentileSummary::new(),
            election_time: PercentileSummary::new(),
            unavailable_time: PercentileSummary::new(),
            leader_unavailable_time: PercentileSummary::new(),
            leader_since: Mutex::new(None),
            conns: Mutex::new(BTreeMap::new()),
            trace_mask: AtomicI64::new(DEFAULT_TRACE_MASK),
            digests: DigestLog::default(),
        }
    }

    /// ZooKeeper's `ServerStats.reset` (`srst`, the AdminServer's
    /// `stat_reset`): latencies, packet counts, response sizes, and every
    /// counter and summary of the metrics (`ServerMetrics.resetAll`).
    pub fn reset(&self) {
        for counter in [
            &self.packets_received,
            &self.packets_sent,
            &self.bytes_received,
            &self.response_bytes,
            &self.watch_bytes,
            &self.connection_rejected,
            &self.connection_requests,
            &self.sessions_expired,
            &self.looking_count,
            &self.throttled_ops,
            &self.request_throttle_wait_count,
            &self.stale_requests,
            &self.stale_requests_dropped,
        ] {
            counter.store(0, Relaxed);
        }
        for summary in [
            &self.read_latency,
            &self.update_latency,
            &self.snapshot_time,
            &self.db_init_time,
            &self.startup_txns_loaded,
            &self.election_time,
            &self.unavailable_time,
            &self.leader_unavailable_time,
            &self.request_throttle_queue_time,
        ] {
            summary.reset();
        }
        self.client_response_size.reset();
    }

    /// Milliseconds of the server's clock (since it started) at `t`.
    pub fn clock_ms(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.started).as_millis() as u64
    }

    /// Milliseconds since the server started.
    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn packets_received(&self) -> u64 {
        self.packets_received.load(Relaxed)
    }

    pub fn packets_sent(&self) -> u64 {
        self.packets_sent.load(Relaxed)
    }

    pub fn bytes_received(&self) -> u64 {
        self.bytes_received.load(Relaxed)
    }

    pub fn response_bytes(&self) -> u64 {
        self.response_bytes.load(Relaxed)
    }

    pub fn watch_bytes(&self) -> u64 {
        self.watch_bytes.load(Relaxed)
    }

    pub fn outstanding(&self) -> i64 {
        self.outstanding.load(Relaxed).max(0)
    }

    /// Latency of every request answered here (`srvr`'s min/avg/max).
    pub fn request_latency(&self) -> SummaryValues {
        self.read_latency
            .values()
            .merge(self.update_latency.values())
    }

    /// Registers a new connection; it is listed until the returned guard is
    /// dropped.
    pub fn open_conn(self: &Arc<Self>, id: u64, peer: SocketAddr) -> ConnGuard {
        let conn = Arc::new(ConnStats::new(peer));
        self.conns.lock().insert(id, conn.clone());
        ConnGuard {
            stats: self.clone(),
            conn,
            id,
        }
    }

    /// The connections open now, oldest first.
    pub fn connections(&self) -> Vec<Arc<ConnStats>> {
        self.conns.lock().values().cloned().collect()
    }

    /// The connections open now with their ids, oldest first.
    pub fn connections_by_id(&self) -> Vec<(u64, Arc<ConnStats>)> {
        self.conns
            .lock()
            .iter()
            .map(|(id, c)| (*id, c.clone()))
            .collect()
    }

    /// A batch of frames is written to a connection.
    pub fn sent(&self, conn: &ConnStats, batch: &SentBatch) {
        if batch.packets == 0 {
            return;
        }
        conn.sent.fetch_add(batch.packets, Relaxed);
        self.packets_sent.fetch_add(batch.packets, Relaxed);
        if let Some((cxid, zxid)) = batch.last_reply {
            if cxid >= 0 {
                conn.last_cxid.store(i64::from(cxid), Relaxed);
            }
            conn.last_zxid.store(zxid, Relaxed);
        }
        if batch.response_bytes > 0 {
            self.response_bytes.fetch_add(batch.response_bytes, Relaxed);
        }
        if batch.watch_bytes > 0 {
            self.watch_bytes.fetch_add(batch.watch_bytes, Relaxed);
        }
        if let Some(last) = batch.last_response {
            // The batch's smallest and largest first, its last one last.
            if batch.min_response < last {
                self.client_response_size.record(batch.min_response);
            }
            if batch.max_response > last {
                self.client_response_size.record(batch.max_response);
            }
            self.client_response_size.record(last);
        }
    }

    /// Marks the start (or the end) of this member's leadership. A new
    /// leader's proposal sizes start afresh, as ZooKeeper's.
    pub fn set_leading(&self, leading: bool) {
        let mut since = self.leader_since.lock();
        if leading && since.is_none() {
            *since = Some(Instant::now());
            self.proposal_sizes.reset();
        } else if !leading {
            *since = None;
        }
    }

    /// Milliseconds since this member started leading.
    pub fn leader_uptime_ms(&self) -> Option<u64> {
        self.leader_since
            .lock()
            .map(|t| t.elapsed().as_millis() as u64)
    }
}

/// What one batch of frames written to a connection adds to the counters.
#[derive(Debug, Default)]
pub struct SentBatch {
    /// Whether the connect response has gone out: frames before it are
    /// counted as packets only.
    handshake_done: bool,
    packets: u64,
    response_bytes: u64,
    watch_bytes: u64,
    last_response: Option<i64>,
    min_response: i64,
    max_response: i64,
    /// The xid and zxid of the batch's last reply (`lcxid`, `lzxid`).
    last_reply: Option<(i32, i64)>,
}

impl SentBatch {
    pub fn after_handshake(done: bool) -> SentBatch {
        SentBatch {
            handshake_done: done,
            ..SentBatch::default()
        }
    }

    /// One frame: a length prefix, then a reply header whose xid -1 marks a
    /// watch notification. The size ZooKeeper reports is the length the
    /// prefix states. Anything else (a four-letter word's text) counts as a
    /// packet only.
    pub fn frame(&mut self, frame: &[u8]) {
        self.packets += 1;
        if !self.handshake_done {
            self.handshake_done = true;
            return;
        }
        if frame.len() < 8 {
            return;
        }
        let len = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        if len < 0 || len as usize + 4 != frame.len() {
            return;
        }
        let xid = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let size = i64::from(len);
        if xid == ensemble_proto::xid::NOTIFICATION {
            self.watch_bytes += size as u64;
            return;
        }
        if let Some(zxid) = frame.get(8..16) {
            let mut b = [0u8; 8];
            b.copy_from_slice(zxid);
            self.last_reply = Some((xid, i64::from_be_bytes(b)));
        }
        self.response_bytes += size as u64;
        if self.last_response.is_none() {
            self.min_response = size;
            self.max_response = size;
        } else {
            self.min_response = self.min_response.min(size);
            self.max_response = self.max_response.max(size);
        }
        self.last_response = Some(size);
    }
}

/// A registered connection: the counters its tasks update. Dropping it
/// takes the connection off the list and forgets its unanswered requests.
pub struct ConnGuard {
    stats: Arc<ServerStats>,
    pub conn: Arc<ConnStats>,
    id: u64,
}

impl ConnGuard {
    /// A request frame came in (its body after the length prefix: xid,
    /// opcode, record), waiting for its answer from now on.
    pub fn request_frame_received(&self, body: &[u8]) -> Instant {
        if let Some(op) = body.get(4..8) {
            let op = i32::from_be_bytes([op[0], op[1], op[2], op[3]]);
            // As ZooKeeper, auth packets leave the last operation alone.
            if op != ensemble_proto::op::AUTH && op != ensemble_proto::op::SASL {
                self.conn.last_op.store(op, Relaxed);
            }
        }
        self.waiting(4 + body.len() as u64)
    }

    /// The connect request came in: a frame of `bytes` bytes (length prefix
    /// included), waiting for its answer from now on.
    pub fn request_received(&self, bytes: u64) -> Instant {
        self.conn.last_op.store(CONNECT_OP, Relaxed);
        self.waiting(bytes)
    }

    fn waiting(&self, bytes: u64) -> Instant {
        self.packet_received(bytes);
        self.conn.queued.fetch_add(1, Relaxed);
        self.stats.outstanding.fetch_add(1, Relaxed);
        Instant::now()
    }

    /// A four-letter word came in: a packet that is no request.
    pub fn four_letter_word(&self) {
        self.conn.four_letter.store(true, Relaxed);
        self.packet_received(4);
    }

    fn packet_received(&self, bytes: u64) {
        self.conn.received.fetch_add(1, Relaxed);
        self.stats.packets_received.fetch_add(1, Relaxed);
        self.stats.bytes_received.fetch_add(bytes, Relaxed);
    }

    /// The request received at `received` is answered. `txn`: it was
    /// answered by a txn (an update); `timed`: it counts in the latency
    /// (ZooKeeper does not time auth packets, which skip its pipeline).
    pub fn request_answered(&self, received: Instant, txn: bool, timed: bool) {
        self.conn.queued.fetch_sub(1, Relaxed);
        self.stats.outstanding.fetch_sub(1, Relaxed);
        if timed {
            let now = Instant::now();
            let ms = now.saturating_duration_since(received).as_millis() as u64;
            if txn {
                self.stats.update_latency.add(ms);
            } else {
                self.stats.read_latency.add(ms);
            }
            self.conn.latency.add(ms);
            self.conn.last_latency.store(ms, Relaxed);
            self.conn
                .last_response
                .store(self.stats.clock_ms(now), Relaxed);
        }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.stats.conns.lock().remove(&self.id);
        let left = self.conn.queued.swap(0, Relaxed);
        if left > 0 {
            self.stats.outstanding.fetch_sub(left, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reports_zeros_until_the_first_value_then_zookeeper_rounding() {
        let s = Summary::new();
        assert_eq!(
            s.values(),
            SummaryValues {
                count: 0,
                total: 0,
                min: 0,
                max: 0
            }
        );
        assert_eq!(s.values().avg(), 0.0);
        for v in [1, 0, 0] {
            s.add(v);
        }
        let v = s.values();
        assert_eq!((v.count, v.total, v.min, v.max), (3, 1, 0, 1));
        assert_eq!(java_double(v.avg()), "0.3333");
    }

    #[test]
    fn merged_summary_takes_the_minimum_of_the_non_empty_side() {
        let a = Summary::new();
        let b = Summary::new();
        b.add(7);
        b.add(3);
        let m = a.values().merge(b.values());
        assert_eq!((m.count, m.total, m.min, m.max), (2, 10, 3, 7));
        assert_eq!(java_double(m.avg()), "5.0");
    }

    #[test]
    fn percentiles_are_exact_for_small_values_and_close_for_large_ones() {
        let p = PercentileSummary::new();
        assert_eq!(p.percentile(0.5), 0);
        for v in 1..=100 {
            p.add(v);
        }
        assert_eq!(p.percentile(0.5), 50);
        let p95 = p.percentile(0.95);
        assert!((88..=95).contains(&p95), "p95 {p95}");
        assert_eq!(p.percentile(0.999), 96); // the bucket 96..=103, within max
        let one = PercentileSummary::new();
        one.add(4);
        assert_eq!(one.percentile(0.5), 4);
        assert_eq!(one.percentile(0.999), 4);
    }

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for v in [0u64, 1, 63, 64, 71, 72, 127, 128, 1 << 20, u64::MAX] {
            let b = bucket_of(v);
            assert!(b < BUCKETS);
            assert!(b >= last);
            assert!(bucket_floor(b) <= v);
            last = b;
        }
    }

    #[test]
    fn buffer_stats_start_at_minus_one() {
        let b = BufferStats::new();
        assert_eq!(b.values(), (-1, -1, -1));
        b.record(90);
        b.record(48);
        b.record(164);
        b.record(90);
        assert_eq!(b.values(), (90, 48, 164));
        b.reset();
        assert_eq!(b.values(), (-1, -1, -1));
    }

    #[test]
    fn java_formats() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(3.5), "3.5");
        assert_eq!(java_double(12.0), "12.0");
        assert_eq!(java_double(3.6667), "3.6667");
        assert_eq!(java_double(1.0e7), "1.0E7");
        let v4: SocketAddr = "127.0.0.1:41554".parse().unwrap();
        assert_eq!(java_socket_addr(&v4), "/127.0.0.1:41554");
        let v6: SocketAddr = "[::1]:2181".parse().unwrap();
        assert_eq!(java_socket_addr(&v6), "/0:0:0:0:0:0:0:1:2181");
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:5".parse().unwrap();
        assert_eq!(java_socket_addr(&mapped), "/10.0.0.1:5");
    }

    #[test]
    fn a_sent_batch_tells_replies_from_notifications() {
        let mut batch = SentBatch::after_handshake(false);
        batch.frame(&[0, 0, 0, 4, 0, 0, 0, 0]); // a connect response
        let reply = [0, 0, 0, 16, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        let notification = [0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff];
        batch.frame(&reply);
        batch.frame(&notification);
        batch.frame(b"imok");
        let stats = Arc::new(ServerStats::new());
        let guard = stats.open_conn(1, "127.0.0.1:1".parse().unwrap());
        stats.sent(&guard.conn, &batch);
        assert_eq!(stats.packets_sent(), 4);
        assert_eq!(stats.response_bytes(), 16);
        assert_eq!(stats.watch_bytes(), 4);
        assert_eq!(stats.client_response_size.values(), (16, 16, 16));
        assert_eq!(guard.conn.values(), (0, 0, 4));
    }

    #[test]
    fn a_closed_connection_leaves_the_list_and_the_outstanding_count() {
        let stats = Arc::new(ServerStats::new());
        let guard = stats.open_conn(7, "127.0.0.1:9".parse().unwrap());
        let t = guard.request_received(20);
        guard.request_received(20);
        guard.request_answered(t, false, true);
        assert_eq!(stats.outstanding(), 1);
        assert_eq!(stats.packets_received(), 2);
        assert_eq!(stats.bytes_received(), 40);
        assert_eq!(stats.read_latency.values().count, 1);
        assert_eq!(
            stats.connections()[0].brief(),
            " /127.0.0.1:9[1](queued=1,recved=2,sent=0)"
        );
        drop(guard);
        assert_eq!(stats.outstanding(), 0);
        assert!(stats.connections().is_empty());
    }

    #[test]
    fn cons_shows_the_last_request_and_the_latencies_of_a_connection_with_a_session() {
        let stats = Arc::new(ServerStats::new());
        let guard = stats.open_conn(1, "127.0.0.1:40000".parse().unwrap());
        let t = guard.request_received(48);
        guard.request_answered(t, true, true);
        // getData, xid 5: then its reply with zxid 0x2a.
        let t = guard.request_frame_received(&[0, 0, 0, 5, 0, 0, 0, 4, 1, 2]);
        guard.request_answered(t, false, true);
        let mut batch = SentBatch::after_handshake(true);
        batch.frame(&[
            0, 0, 0, 16, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0x2a, 0, 0, 0, 0,
        ]);
        stats.sent(&guard.conn, &batch);
        let info = guard.conn.info();
        assert_eq!(
            (info.last_op, info.last_cxid, info.last_zxid),
            ("GETD", 5, 0x2a)
        );
        assert_eq!((info.received, info.sent), (2, 1));
        let line = info.full(Some((0x1000, 30000)));
        assert!(
            line.starts_with(
                " /127.0.0.1:40000[1](queued=0,recved=2,sent=1,sid=0x1000,lop=GETD,est="
            ),
            "{line}"
        );
        assert!(
            line.contains(",to=30000,lcxid=0x5,lzxid=0x2a,lresp="),
            "{line}"
        );
        assert!(line.ends_with(",minlat=0,avglat=0,maxlat=0)"), "{line}");
        assert_eq!(
            info.full(None),
            " /127.0.0.1:40000[1](queued=0,recved=2,sent=1)"
        );
        guard.conn.reset();
        let info = guard.conn.info();
        assert_eq!(
            (info.last_op, info.last_cxid, info.last_zxid),
            ("NA", -1, -1)
        );
        assert_eq!((info.received, info.sent), (0, 0));
    }

    #[test]
    fn auth_packets_leave_the_last_operation_alone() {
        let stats = Arc::new(ServerStats::new());
        let guard = stats.open_conn(1, "127.0.0.1:1".parse().unwrap());
        guard.request_frame_received(&[0, 0, 0, 1, 0, 0, 0, 3]);
        guard.request_frame_received(&[0xff, 0xff, 0xff, 0xfc, 0, 0, 0, 100]);
        assert_eq!(guard.conn.info().last_op, "EXIS");
    }

    #[test]
    fn a_server_stats_reset_clears_counters_and_summaries() {
        let stats = Arc::new(ServerStats::new());
        let guard = stats.open_conn(1, "127.0.0.1:1".parse().unwrap());
        let t = guard.request_received(10);
        guard.request_answered(t, false, true);
        stats.snapshot_time.add(40);
        stats.reset();
        assert_eq!(stats.packets_received(), 0);
        assert_eq!(stats.bytes_received(), 0);
        assert_eq!(stats.read_latency.values().count, 0);
        assert_eq!(stats.snapshot_time.percentile(0.5), 0);
        assert_eq!(stats.client_response_size.values(), (-1, -1, -1));
    }

    #[test]
    fn the_digest_log_keeps_every_128th_zxid_up_to_1024() {
        let log = DigestLog::default();
        for zxid in 1..=(129 * 128) {
            log.record(zxid, zxid * 2);
        }
        let list = log.list();
        assert_eq!(list.len(), 129);
        assert_eq!(list[0], (128, 256));
        for zxid in 0..2000 {
            log.record((0x1_0000_0000 + zxid) * 128, 1);
        }
        assert_eq!(log.list().len(), 1024);
    }

    #[test]
    fn a_histogram_since_an_earlier_copy_holds_the_values_added_in_between() {
        let p = PercentileSummary::new();
        p.add(100);
        let earlier = p.snapshot();
        p.add(2);
        p.add(3);
        let window = p.snapshot().since(&earlier);
        assert_eq!(window.values.count, 2);
        assert_eq!(window.values.total, 5);
        assert_eq!(window.quantile(0.5), Some(2));
        p.reset();
        assert_eq!(p.snapshot().since(&earlier).values.count, 0);
        assert_eq!(p.snapshot().quantile(0.5), None);
    }
}
