//! Measuring and telling: latency histograms, errors by code, the bench
//! process's own CPU time, the live progress line and the final summary.

use crate::BenchArgs;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zookeeper_client as zk;

/// Latencies up to this many microseconds are recorded exactly (3 digits);
/// longer ones are clamped into the top bucket.
const MAX_LATENCY_MICROS: u64 = 120_000_000;

/// What one worker saw: latencies of successful requests and failures by code.
pub struct WorkerStats {
    latency: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

impl WorkerStats {
    pub fn new() -> WorkerStats {
        WorkerStats {
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3)
                .expect("constant histogram bounds are valid"),
            errors: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, micros: u64) {
        self.latency.saturating_record(micros.max(1));
    }

    pub fn error(&mut self, e: &zk::Error) {
        *self.errors.entry(error_code(e)).or_default() += 1;
    }

    /// Counts failures that carry no client error (a watch that never fired).
    pub fn error_named(&mut self, code: &str, n: u64) {
        if n > 0 {
            *self.errors.entry(code.to_string()).or_default() += n;
        }
    }

    /// Successful requests recorded.
    pub fn count(&self) -> u64 {
        self.latency.len()
    }

    /// Latency at a quantile, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latency.max() as f64 / 1000.0
    }

    /// Adds another's errors but not its latencies (a different measure).
    pub fn merge_errors(&mut self, other: &WorkerStats) {
        for (code, n) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += n;
        }
    }

    pub fn merge(&mut self, other: WorkerStats) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
    }
}

/// The name of an error's code, as the variant name (`NoNode`, `ConnectionLoss`...).
fn error_code(e: &zk::Error) -> String {
    let debug = format!("{e:?}");
    let end = debug
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(debug.len());
    debug[..end].to_string()
}

/// User and system CPU seconds of this process, and the wall-clock time they
/// were measured over.
#[derive(Clone, Copy)]
pub struct CpuTime {
    user: f64,
    system: f64,
    at: Instant,
    wall: f64,
}

impl CpuTime {
    pub fn now() -> CpuTime {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes a whole `rusage` into the pointer it is given,
        // which points at zeroed memory of that type; on failure it writes nothing
        // and the zeroes stand.
        let usage = unsafe {
            libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
            usage.assume_init()
        };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        CpuTime {
            user: secs(usage.ru_utime),
            system: secs(usage.ru_stime),
            at: Instant::now(),
            wall: 0.0,
        }
    }

    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
            at: self.at,
            wall: self.at.saturating_duration_since(earlier.at).as_secs_f64(),
        }
    }

    /// CPU seconds per wall-clock second (1.0 is one core busy).
    fn share(&self) -> f64 {
        (self.user + self.system) / self.wall.max(1e-9)
    }
}

/// Prints one line a second on stderr until `stop` is set.
pub async fn progress(
    started: Instant,
    done: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let mut tick = tokio::time::interval_at(
        (started + Duration::from_secs(1)).into(),
        Duration::from_secs(1),
    );
    let mut last = 0;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let now = done.load(Ordering::Relaxed);
        eprintln!(
            "[{:>4.0}s] {:>9} ops/s  {:>11} ops  {} errors",
            started.elapsed().as_secs_f64(),
            now - last,
            now,
            failed.load(Ordering::Relaxed)
        );
        last = now;
    }
}

/// What a workload reports beyond throughput and latency.
pub enum Details {
    None,
    Multi { set_data_ops: usize },
    Watch(WatchReport),
    Connect(ConnectReport),
}

/// The watch workload: one entry per round.
pub struct WatchReport {
    pub watchers: usize,
    /// Time to open the watchers' sessions.
    pub connect_s: f64,
    pub rounds: Vec<WatchRound>,
}

/// One watch round: every session armed a watch, then one setData.
#[derive(Clone, Debug, PartialEq)]
pub struct WatchRound {
    /// From sending the setData to the last notification that arrived.
    pub all_notified_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub notified: u64,
    /// Watchers that were armed but saw no notification in time.
    pub missed: u64,
    /// Latency of the setData itself.
    pub set_data_ms: f64,
    /// Time to arm every watch (one getData with a watch per session).
    pub arm_ms: f64,
}

/// The connect workload.
pub struct ConnectReport {
    pub requested: usize,
    pub established: u64,
    pub connect_s: f64,
    pub held_s: f64,
    /// Sessions no longer connected at the end of the hold.
    pub lost_during_hold: u64,
}

fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    }
}

impl WatchReport {
    fn median_of(&self, field: fn(&WatchRound) -> f64) -> f64 {
        median(self.rounds.iter().map(field).collect())
    }

    fn to_json(&self) -> serde_json::Value {
        let rounds: Vec<serde_json::Value> = self
            .rounds
            .iter()
            .map(|r| {
                serde_json::json!({
                    "all_notified_ms": r.all_notified_ms,
                    "p50_ms": r.p50_ms,
                    "p99_ms": r.p99_ms,
                    "notified": r.notified,
                    "missed": r.missed,
                    "set_data_ms": r.set_data_ms,
                    "arm_ms": r.arm_ms,
                })
            })
            .collect();
        serde_json::json!({
            "watchers": self.watchers,
            "connect_s": self.connect_s,
            "rounds": rounds,
            "all_notified_ms": self.median_of(|r| r.all_notified_ms),
            "p50_ms": self.median_of(|r| r.p50_ms),
            "p99_ms": self.median_of(|r| r.p99_ms),
            "set_data_ms": self.median_of(|r| r.set_data_ms),
            "missed": self.rounds.iter().map(|r| r.missed).sum::<u64>(),
        })
    }
}

impl ConnectReport {
    fn sessions_per_s(&self) -> f64 {
        if self.connect_s > 0.0 {
            self.established as f64 / self.connect_s
        } else {
            0.0
        }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "sessions": self.requested,
            "established": self.established,
            "connect_s": self.connect_s,
            "sessions_per_s": self.sessions_per_s(),
            "held_s": self.held_s,
            "lost_during_hold": self.lost_during_hold,
        })
    }
}

/// The result of a run.
pub struct Summary {
    workload: &'static str,
    hosts: String,
    sessions: usize,
    inflight: usize,
    value_size: usize,
    keys: u64,
    /// Wall-clock start of the measured phase, so that server-side counters
    /// (an strace of fsyncs, say) can be cut to the same window.
    started_unix: f64,
    elapsed: f64,
    setup: f64,
    ok: u64,
    errors: BTreeMap<String, u64>,
    latency: Histogram<u64>,
    cpu: CpuTime,
    json: bool,
    details: Details,
}

impl Summary {
    pub fn new(
        args: &BenchArgs,
        stats: WorkerStats,
        started: SystemTime,
        elapsed: Duration,
        setup: f64,
        cpu: CpuTime,
        details: Details,
    ) -> Summary {
        Summary {
            workload: args.workload.name(),
            hosts: args.hosts.clone(),
            sessions: args.sessions,
            inflight: args.inflight,
            value_size: args.value_size,
            keys: args.keys,
            started_unix: started
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            elapsed: elapsed.as_secs_f64(),
            setup,
            ok: stats.latency.len(),
            errors: stats.errors,
            latency: stats.latency,
            cpu,
            json: args.json,
            details,
        }
    }

    fn ops_per_sec(&self) -> f64 {
        if self.elapsed > 0.0 {
            self.ok as f64 / self.elapsed
        } else {
            0.0
        }
    }

    /// Latency at a quantile, in milliseconds.
    fn ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut json = self.common_json();
        let extra = match &self.details {
            Details::None => None,
            Details::Multi { set_data_ops } => Some(("multi_set_data_ops", (*set_data_ops).into())),
            Details::Watch(w) => Some(("watch", w.to_json())),
            Details::Connect(c) => Some(("connect", c.to_json())),
        };
        if let (Some((key, value)), Some(object)) = (extra, json.as_object_mut()) {
            object.insert(key.to_string(), value);
        }
        json
    }

    fn common_json(&self) -> serde_json::Value {
        serde_json::json!({
            "workload": self.workload,
            "hosts": self.hosts,
            "sessions": self.sessions,
            "inflight": self.inflight,
            "value_size": self.value_size,
            "keys": self.keys,
            "start_unix_s": self.started_unix,
            "elapsed_s": self.elapsed,
            "setup_s": self.setup,
            "ops": self.ok,
            "ops_per_s": self.ops_per_sec(),
            "errors": self.errors,
            "error_count": self.errors.values().sum::<u64>(),
            "latency_ms": {
                "mean": self.latency.mean() / 1000.0,
                "p50": self.ms(0.5),
                "p90": self.ms(0.9),
                "p99": self.ms(0.99),
                "p999": self.ms(0.999),
                "max": self.latency.max() as f64 / 1000.0,
            },
            "bench_cpu_s": {
                "user": self.cpu.user,
                "system": self.cpu.system,
                "per_wall_s": self.cpu.share(),
            },
        })
    }

    pub fn print(&self) {
        if self.json {
            println!("{}", self.to_json());
            return;
        }
        let errors: u64 = self.errors.values().sum();
        println!(
            "{} against {}: {} sessions x {} in flight, {} byte values",
            self.workload, self.hosts, self.sessions, self.inflight, self.value_size
        );
        println!(
            "  {} ops in {:.2} s: {:.0} ops/s ({} errors){}",
            self.ok,
            self.elapsed,
            self.ops_per_sec(),
            errors,
            if self.setup >= 0.01 {
                format!(", after {:.2} s of setup", self.setup)
            } else {
                String::new()
            }
        );
        let what = match self.details {
            Details::Watch(_) => "notified after, ms",
            Details::Connect(_) => "session handshake ms",
            _ => "latency ms",
        };
        println!(
            "  {what}: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            self.ms(0.5),
            self.ms(0.9),
            self.ms(0.99),
            self.ms(0.999),
            self.latency.max() as f64 / 1000.0
        );
        for (code, n) in &self.errors {
            println!("  error {code}: {n}");
        }
        match &self.details {
            Details::None => {}
            Details::Multi { set_data_ops } => {
                println!("  each multi: 1 version check + {set_data_ops} setData")
            }
            Details::Watch(w) => {
                println!(
                    "  {} watchers, median of {} rounds: all notified {:.1} ms after the setData \
                     was sent, p50 {:.1} ms, p99 {:.1} ms; setData {:.2} ms; {} missed",
                    w.watchers,
                    w.rounds.len(),
                    w.median_of(|r| r.all_notified_ms),
                    w.median_of(|r| r.p50_ms),
                    w.median_of(|r| r.p99_ms),
                    w.median_of(|r| r.set_data_ms),
                    w.rounds.iter().map(|r| r.missed).sum::<u64>()
                );
            }
            Details::Connect(c) => {
                println!(
                    "  {} of {} sessions in {:.2} s ({:.0} sessions/s), held {:.1} s, {} lost meanwhile",
                    c.established,
                    c.requested,
                    c.connect_s,
                    c.sessions_per_s(),
                    c.held_s,
                    c.lost_during_hold
                );
            }
        }
        println!(
            "  bench CPU: {:.2} s user + {:.2} s sys ({:.0}% of one core)",
            self.cpu.user,
            self.cpu.system,
            100.0 * self.cpu.share()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_variant_names() {
        assert_eq!(error_code(&zk::Error::NoNode), "NoNode");
        assert_eq!(
            error_code(&zk::Error::UnexpectedErrorCode(-999)),
            "UnexpectedErrorCode"
        );
    }

    #[test]
    fn merged_stats_add_latencies_and_errors() {
        let mut a = WorkerStats::new();
        a.record(100);
        a.error(&zk::Error::NodeExists);
        let mut b = WorkerStats::new();
        b.record(300);
        b.error(&zk::Error::NodeExists);
        a.merge(b);
        assert_eq!(a.latency.len(), 2);
        assert_eq!(a.errors.get("NodeExists"), Some(&2));
    }

    fn args(workload: &str) -> BenchArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        Cli::parse_from(["bench", "--workload", workload, "--sessions", "3"]).bench
    }

    fn summary(workload: &str, stats: WorkerStats, details: Details) -> serde_json::Value {
        let cpu = CpuTime::now();
        Summary::new(
            &args(workload),
            stats,
            SystemTime::now(),
            Duration::from_secs(2),
            0.5,
            cpu.since(&cpu),
            details,
        )
        .to_json()
    }

    fn round(all_notified_ms: f64, missed: u64) -> WatchRound {
        WatchRound {
            all_notified_ms,
            p50_ms: all_notified_ms / 2.0,
            p99_ms: all_notified_ms * 0.9,
            notified: 3 - missed,
            missed,
            set_data_ms: 1.0,
            arm_ms: 5.0,
        }
    }

    #[test]
    fn watch_json_gives_the_median_round_and_every_round() {
        let mut stats = WorkerStats::new();
        for micros in [1_000, 2_000, 40_000] {
            stats.record(micros);
        }
        stats.error_named("NoNotification", 1);
        let details = Details::Watch(WatchReport {
            watchers: 3,
            connect_s: 0.25,
            rounds: vec![round(40.0, 0), round(10.0, 1), round(20.0, 0)],
        });
        let json = summary("watch", stats, details);
        assert_eq!(json["workload"], "watch");
        let watch = &json["watch"];
        assert_eq!(watch["watchers"], 3);
        assert_eq!(watch["all_notified_ms"], 20.0);
        assert_eq!(watch["p50_ms"], 10.0);
        assert_eq!(watch["missed"], 1);
        assert_eq!(watch["rounds"].as_array().map(Vec::len), Some(3));
        assert_eq!(watch["rounds"][1]["missed"], 1);
        assert_eq!(json["errors"]["NoNotification"], 1);
        assert_eq!(json["ops"], 3);
    }

    #[test]
    fn connect_json_gives_the_session_rate() {
        let mut stats = WorkerStats::new();
        stats.record(500);
        stats.record(700);
        let details = Details::Connect(ConnectReport {
            requested: 3,
            established: 2,
            connect_s: 0.5,
            held_s: 10.0,
            lost_during_hold: 0,
        });
        let json = summary("connect", stats, details);
        let connect = &json["connect"];
        assert_eq!(connect["sessions"], 3);
        assert_eq!(connect["established"], 2);
        assert_eq!(connect["sessions_per_s"], 4.0);
        assert_eq!(connect["lost_during_hold"], 0);
        assert!(json.get("watch").is_none());
    }

    #[test]
    fn multi_json_names_its_set_data_ops() {
        let json = summary(
            "multi",
            WorkerStats::new(),
            Details::Multi { set_data_ops: 4 },
        );
        assert_eq!(json["workload"], "multi");
        assert_eq!(json["multi_set_data_ops"], 4);
    }

    #[test]
    fn median_of_an_even_count_is_the_middle_pair_mean() {
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }
}
