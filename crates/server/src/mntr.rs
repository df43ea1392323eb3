//! `mntr`: every key ZooKeeper 3.8 prints, one `zk_<key>\t<value>` line
//! each. ZooKeeper's own values (`dumpMonitorValues`: version, state) come
//! first, then what its default metrics provider dumps: gauges, per-namespace
//! quota gauges, counters and summaries (`avg_`, `min_`, `max_`, `cnt_`,
//! `sum_` of a name, plus `p50_` .. `p999_` for the percentile ones).
//!
//! Keys that measure something Ensemble does not have (ZooKeeper's commit
//! processor queues, its response cache, its JVM) print 0; the lists below
//! name them and docs/compatibility.md says why.

use crate::stats::{java_double, HistogramSnapshot, PercentileSummary, SummaryValues};
use crate::Shared;
use ensemble_consensus::Role;
use ensemble_tree::DataTree;
use std::collections::BTreeMap;
use std::fmt::{Display, Write};
use std::sync::atomic::Ordering::Relaxed;

/// Counters of ZooKeeper's pipeline and quorum code that Ensemble has no
/// counterpart for.
const ZERO_COUNTERS: &[&str] = &[
    "add_dead_watcher_stall_time",
    "cnxn_closed_without_zk_server_running",
    "commit_count",
    "connection_drop_count",
    "connection_revalidate_count",
    "dead_watchers_cleared",
    "dead_watchers_queued",
    "diff_count",
    "digest_mismatches_count",
    "ensemble_auth_fail",
    "ensemble_auth_skip",
    "ensemble_auth_success",
    "insecure_admin_count",
    "large_requests_rejected",
    "learner_commit_received_count",
    "learner_proposal_received_count",
    "outstanding_changes_queued",
    "outstanding_changes_removed",
    "prep_processor_request_queued",
    "proposal_count",
    "quit_leading_due_to_disloyal_voter",
    "request_commit_queued",
    "requests_not_forwarded_to_commit_processor",
    "response_packet_cache_hits",
    "response_packet_cache_misses",
    "response_packet_get_children_cache_hits",
    "response_packet_get_children_cache_misses",
    "revalidate_count",
    "sessionless_connections_expired",
    "skip_learner_request_to_next_processor_count",
    "snap_count",
    "stale_replies",
    "sync_processor_request_queued",
    "tls_handshake_exceeded",
    "unrecoverable_error_count",
    "unsuccessful_handshake",
];

/// Summaries (avg/min/max/cnt/sum) Ensemble does not measure.
const ZERO_SUMMARIES: &[&str] = &[
    "commit_commit_proc_req_queued",
    "commit_process_time",
    "concurrent_request_processing_in_commit_processor",
    "connection_token_deficit",
    "follower_sync_time",
    "fsynctime",
    "inflight_diff_count",
    "inflight_snap_count",
    "learner_request_processor_queue_size",
    "netty_queued_buffer_capacity",
    "observer_sync_time",
    "pending_session_queue_size",
    "prep_process_time",
    "prep_processor_queue_size",
    "proposal_process_time",
    "read_commit_proc_issued",
    "read_commit_proc_req_queued",
    "reads_after_write_in_session_queue",
    "reads_issued_from_session_queue",
    "requests_in_session_queue",
    "session_queues_drained",
    "socket_closing_time",
    "startup_snap_load_time",
    "startup_txns_load_time",
    "sync_process_time",
    "sync_processor_batch_size",
    "sync_processor_queue_size",
    "time_waiting_empty_pool_in_commit_processor_read_ms",
    "write_batch_time_in_commit_processor",
    "write_commit_proc_issued",
    "write_commit_proc_req_queued",
];

/// Percentile summaries Ensemble does not measure.
const ZERO_PERCENTILE_SUMMARIES: &[&str] = &[
    "close_session_prep_time",
    "commit_propagation_latency",
    "dead_watchers_cleaner_latency",
    "jvm_pause_time_ms",
    "local_write_committed_time_ms",
    "om_commit_process_time_ms",
    "om_proposal_process_time_ms",
    "prep_processor_queue_time_ms",
    "propagation_latency",
    "proposal_ack_creation_latency",
    "proposal_latency",
    "quorum_ack_latency",
    "read_commitproc_time_ms",
    "read_final_proc_time_ms",
    "server_write_committed_time_ms",
    "sync_processor_queue_and_flush_time_ms",
    "sync_processor_queue_flush_time_ms",
    "sync_processor_queue_time_ms",
    "write_commitproc_time_ms",
    "write_final_proc_time_ms",
];

const EMPTY: SummaryValues = SummaryValues {
    count: 0,
    total: 0,
    min: 0,
    max: 0,
};

/// A gauge's or a counter's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(v) => v as f64,
            Number::Float(v) => v,
        }
    }
}

impl Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Number::Int(v) => write!(f, "{v}"),
            Number::Float(v) => f.write_str(&java_double(*v)),
        }
    }
}

impl From<u64> for Number {
    fn from(v: u64) -> Number {
        Number::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<i64> for Number {
    fn from(v: i64) -> Number {
        Number::Int(v)
    }
}

impl From<usize> for Number {
    fn from(v: usize) -> Number {
        Number::from(v as u64)
    }
}

impl From<u32> for Number {
    fn from(v: u32) -> Number {
        Number::Int(i64::from(v))
    }
}

/// ZooKeeper's summary detail levels: a basic summary reports count, sum,
/// min, max and average; an advanced one also percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Basic,
    Advanced,
}

/// What one metric reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Gauge(Number),
    Counter(u64),
    Summary {
        detail: Detail,
        /// The histogram behind the quantiles; None for a summary Ensemble
        /// does not measure (always empty).
        histogram: Option<HistogramSnapshot>,
    },
}

/// One metric of ZooKeeper's metrics system: its name, the `key` of a
/// metric set (a namespace, a learner's server id), and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: String,
    pub key: Option<String>,
    pub kind: Kind,
}

impl Metric {
    fn summary_values(&self) -> SummaryValues {
        match &self.kind {
            Kind::Summary {
                histogram: Some(h), ..
            } => h.values,
            _ => EMPTY,
        }
    }

    /// The mntr key of a value of this metric: `<prefix>_<key>_<name>`.
    fn mntr_key(&self, prefix: Option<&str>) -> String {
        let mut out = String::new();
        if let Some(p) = prefix {
            out.push_str(p);
            out.push('_');
        }
        if let Some(k) = &self.key {
            out.push_str(k);
            out.push('_');
        }
        out.push_str(&self.name);
        out
    }

    /// The (key, value) pairs the default metrics provider dumps for this
    /// metric, in its order: the value itself, or a summary's `avg_`,
    /// `min_`, `max_`, `cnt_`, `sum_` and (advanced) `p50_` .. `p999_`.
    pub fn dump(&self) -> Vec<(String, Number)> {
        match &self.kind {
            Kind::Gauge(v) => vec![(self.mntr_key(None), *v)],
            Kind::Counter(v) => vec![(self.mntr_key(None), Number::from(*v))],
            Kind::Summary { detail, histogram } => {
                let v = self.summary_values();
                let mut out = vec![
                    (self.mntr_key(Some("avg")), Number::Float(v.avg())),
                    (self.mntr_key(Some("min")), Number::from(v.min)),
                    (self.mntr_key(Some("max")), Number::from(v.max)),
                    (self.mntr_key(Some("cnt")), Number::from(v.count)),
                    (self.mntr_key(Some("sum")), Number::from(v.total)),
                ];
                if *detail == Detail::Advanced {
                    for (label, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)]
                    {
                        let p = histogram.as_ref().and_then(|h| h.quantile(q)).unwrap_or(0);
                        out.push((self.mntr_key(Some(label)), Number::from(p)));
                    }
                }
                out
            }
        }
    }
}

/// Everything `mntr` reports: ZooKeeper's monitor values (`version`,
/// `server_state`, `peer_state`), then its metrics.
pub struct Report {
    pub monitor: Vec<(&'static str, String)>,
    pub metrics: Vec<Metric>,
}

#[derive(Default)]
struct Metrics(Vec<Metric>);

impl Metrics {
    fn gauge(&mut self, name: &str, value: impl Into<Number>) {
        self.push(name, None, Kind::Gauge(value.into()));
    }

    fn counter(&mut self, name: &str, value: u64) {
        self.push(name, None, Kind::Counter(value));
    }

    fn summary(&mut self, name: &str, detail: Detail, p: Option<&PercentileSummary>) {
        self.keyed_summary(name, None, detail, p);
    }

    fn keyed_summary(
        &mut self,
        name: &str,
        key: Option<String>,
        detail: Detail,
        p: Option<&PercentileSummary>,
    ) {
        let histogram = p.map(PercentileSummary::snapshot);
        self.push(name, key, Kind::Summary { detail, histogram });
    }

    fn push(&mut self, name: &str, key: Option<String>, kind: Kind) {
        self.0.push(Metric {
            name: name.to_string(),
            key,
            kind,
        });
    }
}

/// The answer to `mntr` of a serving member in `mode` (ZooKeeper's
/// `server_state`).
pub fn answer(shared: &Shared, mode: &str) -> String {
    let report = report(shared, mode);
    let mut out = String::new();
    for (key, value) in &report.monitor {
        let _ = writeln!(out, "zk_{key}\t{value}");
    }
    for m in &report.metrics {
        for (key, value) in m.dump() {
            let _ = writeln!(out, "zk_{key}\t{value}");
        }
    }
    out
}

/// ZooKeeper's monitor values and metrics of a serving member in `mode`:
/// one source for `mntr`, the AdminServer's `monitor` and `/metrics`.
pub fn report(shared: &Shared, mode: &str) -> Report {
    let stats = &shared.stats;
    let mut monitor = vec![
        ("version", crate::VERSION_STRING.to_string()),
        ("server_state", mode.to_string()),
    ];
    let in_quorum = matches!(mode, "leader" | "follower" | "observer");
    if in_quorum {
        monitor.push(("peer_state", format!("{} - broadcast", peer_state(mode))));
    }
    let mut out = Metrics::default();

    let latency = stats.request_latency();
    out.gauge("avg_latency", Number::Float(latency.avg()));
    out.gauge("max_latency", latency.max);
    out.gauge("min_latency", latency.min);
    out.gauge("packets_received", stats.packets_received());
    out.gauge("packets_sent", stats.packets_sent());
    out.gauge("num_alive_connections", shared.connection_count());
    out.gauge("outstanding_requests", stats.outstanding());
    out.gauge("uptime", stats.uptime_ms());
    let quotas = {
        let tree = shared.tree.read();
        out.gauge("znode_count", tree.node_count());
        out.gauge("watch_count", shared.watches.lock().watch_count());
        out.gauge("ephemerals_count", tree.ephemerals_count());
        out.gauge("approximate_data_size", tree.approximate_data_size());
        quota_gauges(&tree)
    };
    out.gauge("global_sessions", shared.sessions.lock().len());
    // Ensemble has no local sessions (localSessionsEnabled).
    out.gauge("local_sessions", 0u64);
    let (open_fds, max_fds) = file_descriptors();
    out.gauge("open_file_descriptor_count", open_fds);
    out.gauge("max_file_descriptor_count", max_fds);
    out.gauge("connection_drop_probability", Number::Float(0.0));
    let (last, min, max) = stats.client_response_size.values();
    out.gauge("last_client_response_size", last);
    out.gauge("max_client_response_size", max);
    out.gauge("min_client_response_size", min);
    out.gauge("outstanding_tls_handshake", 0u64);
    out.gauge("auth_failed_count", stats.auth_failed.load(Relaxed));
    out.gauge("non_mtls_remote_conn_count", 0u64);
    out.gauge("non_mtls_local_conn_count", 0u64);
    if in_quorum {
        let voters = shared
            .membership
            .lock()
            .servers
            .values()
            .filter(|s| !s.observer)
            .count();
        out.gauge("quorum_size", voters);
    }
    let mut learner_ids = Vec::new();
    match mode {
        "leader" => learner_ids = leader_gauges(shared, &mut out),
        "observer" => {
            if let Some(id) = shared.consensus().leader_id() {
                out.gauge("observer_master_id", id);
            }
        }
        _ => {}
    }
    for (name, values) in quotas {
        for (namespace, v) in values {
            out.push(name, Some(namespace), Kind::Gauge(Number::Int(v)));
        }
    }

    out.counter("bytes_received_count", stats.bytes_received());
    out.counter(
        "connection_rejected",
        stats.connection_rejected.load(Relaxed),
    );
    out.counter(
        "connection_request_count",
        stats.connection_requests.load(Relaxed),
    );
    out.counter("looking_count", stats.looking_count.load(Relaxed));
    out.counter("response_bytes", stats.response_bytes());
    out.counter(
        "stale_sessions_expired",
        stats.sessions_expired.load(Relaxed),
    );
    out.counter("watch_bytes", stats.watch_bytes());
    out.counter(
        "request_throttle_wait_count",
        stats.request_throttle_wait_count.load(Relaxed),
    );
    out.counter("stale_requests", stats.stale_requests.load(Relaxed));
    out.counter(
        "stale_requests_dropped",
        stats.stale_requests_dropped.load(Relaxed),
    );
    out.counter("throttled_ops", stats.throttled_ops.load(Relaxed));
    for name in ZERO_COUNTERS {
        out.counter(name, 0);
    }

    let basic = Detail::Basic;
    out.summary("dbinittime", basic, Some(&stats.db_init_time));
    out.summary("election_time", basic, Some(&stats.election_time));
    out.summary(
        "leader_unavailable_time",
        basic,
        Some(&stats.leader_unavailable_time),
    );
    {
        let watches = shared.watches.lock();
        let fired = &watches.fired;
        out.summary("node_changed_watch_count", basic, Some(&fired.changed));
        out.summary("node_children_watch_count", basic, Some(&fired.children));
        out.summary("node_created_watch_count", basic, Some(&fired.created));
        out.summary("node_deleted_watch_count", basic, Some(&fired.deleted));
    }
    out.summary("snapshottime", basic, Some(&stats.snapshot_time));
    out.summary(
        "startup_txns_loaded",
        basic,
        Some(&stats.startup_txns_loaded),
    );
    out.summary("unavailable_time", basic, Some(&stats.unavailable_time));
    for name in ZERO_SUMMARIES {
        out.summary(name, basic, None);
    }
    for id in &learner_ids {
        // Ensemble's replication has no per-learner packet queue.
        out.keyed_summary("learner_handler_qp_size", Some(id.to_string()), basic, None);
    }

    let advanced = Detail::Advanced;
    out.summary("readlatency", advanced, Some(&stats.read_latency));
    out.summary("updatelatency", advanced, Some(&stats.update_latency));
    out.summary(
        "request_throttle_queue_time_ms",
        advanced,
        Some(&stats.request_throttle_queue_time),
    );
    for name in ZERO_PERCENTILE_SUMMARIES {
        out.summary(name, advanced, None);
    }
    for id in &learner_ids {
        out.keyed_summary(
            "learner_handler_qp_time_ms",
            Some(id.to_string()),
            advanced,
            None,
        );
    }
    Report {
        monitor,
        metrics: out.0,
    }
}

fn peer_state(mode: &str) -> &'static str {
    match mode {
        "leader" => "leading",
        "follower" => "following",
        _ => "observing",
    }
}

/// The leader's gauges (`LeaderZooKeeperServer.registerMetrics`). A member
/// counts as a learner while it acknowledges the leader within a quorum
/// timeout, and as synced once it also holds the leader's log of this term.
/// Returns the ids of the learners.
fn leader_gauges(shared: &Shared, out: &mut Metrics) -> Vec<u64> {
    let consensus = shared.consensus();
    let timeout = shared.quorum_timeout.as_millis() as u64;
    let learners: Vec<_> = if consensus.role() == Role::Leader {
        consensus
            .learners()
            .unwrap_or_default()
            .into_iter()
            .filter(|l| l.millis_since_ack.is_some_and(|ms| ms <= timeout))
            .collect()
    } else {
        Vec::new()
    };
    let synced = |voter: bool| {
        learners
            .iter()
            .filter(|l| l.voter == voter && l.in_term)
            .count()
    };
    out.gauge("learners", learners.len());
    out.gauge("synced_followers", synced(true));
    out.gauge("synced_non_voting_followers", 0u64);
    out.gauge("synced_observers", synced(false));
    out.gauge(
        "pending_syncs",
        shared.stats.pending_syncs.load(Relaxed).max(0),
    );
    out.gauge(
        "leader_uptime",
        shared.stats.leader_uptime_ms().unwrap_or(0),
    );
    let (last, min, max) = shared.stats.proposal_sizes.values();
    out.gauge("last_proposal_size", last);
    out.gauge("max_proposal_size", max);
    out.gauge("min_proposal_size", min);
    learners.iter().map(|l| l.id).collect()
}

/// ZooKeeper's per-namespace quota gauges (`QuotaMetricsUtils`): for each
/// leaf under `/zookeeper/quota`, a `zookeeper_limits` node adds its limits
/// (the hard limit when set) and a `zookeeper_stats` node its usage to the
/// top-level namespace of the quota's path.
fn quota_gauges(tree: &DataTree) -> BTreeMap<&'static str, BTreeMap<String, i64>> {
    use ensemble_tree::quota::{StatsTrack, LIMIT_NODE, STAT_NODE};
    let mut out: BTreeMap<&'static str, BTreeMap<String, i64>> = BTreeMap::new();
    let root = ensemble_tree::path::QUOTA;
    let mut stack = vec![root.to_string()];
    while let Some(path) = stack.pop() {
        let Some((children, _)) = tree.children(&path) else {
            continue;
        };
        if !children.is_empty() {
            stack.extend(children.iter().map(|c| format!("{path}/{c}")));
            continue;
        }
        let Some(namespace) = path[root.len()..]
            .split('/')
            .nth(1)
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        let Some((Some(data), _)) = tree.get_data(&path) else {
            continue;
        };
        let track = StatsTrack::parse(&data);
        let hard_or = |hard: i64, soft: i64| if hard > -1 { hard } else { soft };
        let values: [(&'static str, i64); 2] = if path.ends_with(&format!("/{LIMIT_NODE}")) {
            [
                (
                    "quota_count_limit_per_namespace",
                    hard_or(track.get("countHardLimit"), track.count()),
                ),
                (
                    "quota_bytes_limit_per_namespace",
                    hard_or(track.get("byteHardLimit"), track.bytes()),
                ),
            ]
        } else if path.ends_with(&format!("/{STAT_NODE}")) {
            [
                ("quota_count_usage_per_namespace", track.count()),
                ("quota_bytes_usage_per_namespace", track.bytes()),
            ]
        } else {
            continue;
        };
        for (name, v) in values {
            *out.entry(name)
                .or_default()
                .entry(namespace.to_string())
                .or_insert(0) += v;
        }
    }
    out
}

/// Open file descriptors and the soft limit on them, as the JVM reports
/// them (0 where /proc does not tell).
pub(crate) fn file_descriptors() -> (u64, u64) {
    // The directory being read holds a descriptor of its own.
    let open = std::fs::read_dir("/proc/self/fd")
        .map(|d| (d.count() as u64).saturating_sub(1))
        .unwrap_or(0);
    let max = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    (open, max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use ensemble_proto::TxnHeader;
    use ensemble_tree::TxnBody;

    fn create(tree: &mut DataTree, zxid: i64, path: &str, data: &str) {
        let hdr = TxnHeader {
            client_id: 1,
            cxid: 1,
            zxid,
            time: 0,
            r#type: ensemble_proto::op::CREATE,
        };
        let txn = TxnBody::Create(ensemble_proto::CreateTxn {
            path: path.into(),
            data: Some(Bytes::from(data.to_string())),
            acl: ensemble_tree::acl::open_acl_unsafe(),
            ephemeral: false,
            parent_c_version: 0,
        });
        let out = tree.apply(&hdr, &txn);
        assert_eq!(out.err, 0, "create {path}");
    }

    #[test]
    fn quota_gauges_sum_limits_and_usage_per_top_level_namespace() {
        let mut tree = DataTree::new();
        let q = ensemble_tree::path::QUOTA;
        create(&mut tree, 1, "/app", "");
        create(&mut tree, 2, &format!("{q}/app"), "");
        create(
            &mut tree,
            3,
            &format!("{q}/app/zookeeper_limits"),
            "count=10,bytes=-1=;countHardLimit=4",
        );
        create(
            &mut tree,
            4,
            &format!("{q}/app/zookeeper_stats"),
            "count=2,bytes=7",
        );
        // Applying keeps the usage up to date; the gauges report what the
        // stats node holds.
        let (data, _) = tree
            .get_data(&format!("{q}/app/zookeeper_stats"))
            .expect("stats node");
        let usage = ensemble_tree::quota::StatsTrack::parse(&data.unwrap_or_default());
        let g = quota_gauges(&tree);
        assert_eq!(g["quota_count_limit_per_namespace"]["app"], 4);
        assert_eq!(g["quota_bytes_limit_per_namespace"]["app"], -1);
        assert_eq!(g["quota_count_usage_per_namespace"]["app"], usage.count());
        assert_eq!(g["quota_bytes_usage_per_namespace"]["app"], usage.bytes());
        assert_eq!(g.len(), 4);
    }

    #[test]
    fn zero_lists_do_not_repeat_a_key() {
        let mut all: Vec<&str> = ZERO_COUNTERS
            .iter()
            .chain(ZERO_SUMMARIES)
            .chain(ZERO_PERCENTILE_SUMMARIES)
            .copied()
            .collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
