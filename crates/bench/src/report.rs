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

/// User and system CPU seconds of this process.
#[derive(Clone, Copy)]
pub struct CpuTime {
    user: f64,
    system: f64,
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
        }
    }

    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
        }
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
}

impl Summary {
    pub fn new(
        args: &BenchArgs,
        stats: WorkerStats,
        started: SystemTime,
        elapsed: Duration,
        setup: f64,
        cpu: CpuTime,
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
                "per_wall_s": (self.cpu.user + self.cpu.system) / self.elapsed.max(1e-9),
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
        println!(
            "  latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            self.ms(0.5),
            self.ms(0.9),
            self.ms(0.99),
            self.ms(0.999),
            self.latency.max() as f64 / 1000.0
        );
        for (code, n) in &self.errors {
            println!("  error {code}: {n}");
        }
        println!(
            "  bench CPU: {:.2} s user + {:.2} s sys ({:.0}% of one core)",
            self.cpu.user,
            self.cpu.system,
            100.0 * (self.cpu.user + self.cpu.system) / self.elapsed.max(1e-9)
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
}
