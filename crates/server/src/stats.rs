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
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
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
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let n: u64 = counts.iter().sum();
        if n == 0 {
            return 0;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        let s = self.summary.values();
        for (b, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_floor(b).clamp(s.min, s.max.max(s.min));
            }
        }
        s.max
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

/// Counters of one client connection, as `stat` shows them.
#[derive(Debug)]
pub struct ConnStats {
    pub peer: SocketAddr,
    received: AtomicU64,
    sent: AtomicU64,
    queued: AtomicI64,
    /// A connection that sent a four-letter word: ZooKeeper stops reading
    /// from it (interest set 0).
    four_letter: AtomicBool,
}

impl ConnStats {
    /// (queued, received, sent).
    pub fn values(&self) -> (i64, u64, u64) {
        (
            self.queued.load(Relaxed).max(0),
            self.received.load(Relaxed),
            self.sent.load(Relaxed),
        )
    }

    /// ZooKeeper's `dumpConnectionInfo(brief)`:
    /// ` /127.0.0.1:53154[1](queued=0,recved=3,sent=3)`.
    pub fn brief(&self) -> String {
        let (queued, recved, sent) = self.values();
        let interest = if self.four_letter.load(Relaxed) { 0 } else { 1 };
        format!(
            " {}[{interest}](queued={queued},recved={recved},sent={sent})",
            java_socket_addr(&self.peer)
        )
    }
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
    /// `sync`s waiting for the leader's read index on the leader.
    pub pending_syncs: AtomicI64,
    pub snapshot_time: Summary,
    pub db_init_time: Summary,
    pub startup_txns_loaded: Summary,
    pub election_time: Summary,
    pub unavailable_time: Summary,
    pub leader_unavailable_time: Summary,
    /// When this member last started leading (None when it does not lead).
    leader_since: Mutex<Option<Instant>>,
    conns: Mutex<BTreeMap<u64, Arc<ConnStats>>>,
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
            pending_syncs: AtomicI64::new(0),
            snapshot_time: Summary::new(),
            db_init_time: Summary::new(),
            startup_txns_loaded: Summary::new(),
            election_time: Summary::new(),
            unavailable_time: Summary::new(),
            leader_unavailable_time: Summary::new(),
            leader_since: Mutex::new(None),
            conns: Mutex::new(BTreeMap::new()),
        }
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
        let conn = Arc::new(ConnStats {
            peer,
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            queued: AtomicI64::new(0),
            four_letter: AtomicBool::new(false),
        });
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

    /// A batch of frames is written to a connection.
    pub fn sent(&self, conn: &ConnStats, batch: &SentBatch) {
        if batch.packets == 0 {
            return;
        }
        conn.sent.fetch_add(batch.packets, Relaxed);
        self.packets_sent.fetch_add(batch.packets, Relaxed);
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
    /// A packet came in: a request frame of `bytes` bytes (length prefix
    /// included), waiting for its answer from now on.
    pub fn request_received(&self, bytes: u64) -> Instant {
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
            let ms = received.elapsed().as_millis() as u64;
            if txn {
                self.stats.update_latency.add(ms);
            } else {
                self.stats.read_latency.add(ms);
            }
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
}
