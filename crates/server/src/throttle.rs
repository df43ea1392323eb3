//! Load beyond capacity, as ZooKeeper brakes it, in two places:
//!
//! - `globalOutstandingLimit` (ZooKeeper's `ServerCnxn.incrOutstandingAndCheckThrottle`):
//!   while more requests are outstanding on this server than the limit, a
//!   connection that has requests of its own outstanding stops reading from its
//!   socket; it reads again once its own answers have gone out. The limit is
//!   divided by (voters - 1) in a quorum of three or more, as ZooKeeper's leader
//!   and followers divide it.
//! - The RequestThrottler (`request_throttle_max_requests`): at most that many
//!   requests are in process at once; the next waits in arrival order, looking
//!   again every `request_throttle_stall_time` (each wait counts in
//!   `request_throttle_wait_count`). A request that waited longer than
//!   `throttled_op_wait_time` is answered with Throttled (-127) and not run
//!   (`throttled_ops`). A request whose connection closed while it waited is
//!   stale: dropped with `request_throttle_drop_stale` (the default), else still
//!   run; with `request_stale_latency_check` a request that waited longer than
//!   its session timeout is stale too, and dropping it closes its connection.
//!
//! Unlike ZooKeeper, a ping never waits for the throttler: a busy server does
//! not expire the sessions it is too slow to serve.

use crate::stats::ServerStats;
use ensemble_config::Config;
use ensemble_proto::op;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Throttle {
    /// Outstanding requests on this server above which connections with
    /// requests of their own outstanding stop reading.
    pub outstanding_limit: i64,
    /// The RequestThrottler's slots; None when `request_throttle_max_requests` is 0.
    gate: Option<Arc<Semaphore>>,
    stall: Duration,
    pub drop_stale: bool,
    latency_check: bool,
    op_wait: Option<Duration>,
}

/// How a wait for the throttler ended.
pub enum Admission {
    /// The request may run; the permit is held until it is answered.
    Run(OwnedSemaphorePermit),
    /// It waited longer than `throttled_op_wait_time`: answer Throttled.
    Throttled(OwnedSemaphorePermit),
    /// It waited longer than its session timeout (`request_stale_latency_check`):
    /// drop it and close the connection.
    Stale,
}

impl Throttle {
    pub fn new(config: &Config) -> Throttle {
        let voters = config.servers.values().filter(|s| !s.observer).count();
        let divisor = if config.is_quorum() && voters > 2 {
            voters - 1
        } else {
            1
        };
        let max = config.request_throttle_max_requests as usize;
        Throttle {
            outstanding_limit: (config.global_outstanding_limit as usize / divisor) as i64,
            gate: (max > 0).then(|| Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS)))),
            stall: Duration::from_millis(config.request_throttle_stall_time_ms.max(1)),
            drop_stale: config.request_throttle_drop_stale,
            latency_check: config.request_stale_latency_check,
            op_wait: (config.throttled_op_wait_time_ms > 0)
                .then(|| Duration::from_millis(config.throttled_op_wait_time_ms)),
        }
    }

    /// Whether a connection with `own` requests outstanding stops reading now.
    pub fn stop_reading(&self, stats: &ServerStats, own: usize) -> bool {
        own > 0 && stats.outstanding() > self.outstanding_limit
    }

    /// Whether requests pass through the RequestThrottler at all.
    pub fn enabled(&self) -> bool {
        self.gate.is_some()
    }

    /// A slot for a request of type `opcode` without waiting: Some(None)
    /// when no throttler is configured or the request needs no slot,
    /// Some(permit) when one is free, None when the request must wait.
    pub fn try_admit(
        &self,
        opcode: i32,
        stats: &ServerStats,
    ) -> Option<Option<OwnedSemaphorePermit>> {
        let Some(gate) = &self.gate else {
            return Some(None);
        };
        if opcode == op::PING {
            return Some(None);
        }
        let permit = gate.clone().try_acquire_owned().ok()?;
        stats.request_throttle_queue_time.add(0);
        Some(Some(permit))
    }

    /// Waits for a slot for a request received at `received` on a session
    /// with `session_timeout`. Each stall counts in `request_throttle_wait_count`.
    pub fn admit(
        &self,
        opcode: i32,
        received: Instant,
        session_timeout: Duration,
        stats: Arc<ServerStats>,
    ) -> impl std::future::Future<Output = Admission> + Send + 'static {
        let gate = self.gate.clone();
        let stall = self.stall;
        let latency_check = self.latency_check;
        let op_wait = self.op_wait;
        async move {
            let Some(gate) = gate else {
                // Not reached: without a throttler every request is admitted at once.
                return Admission::Stale;
            };
            let start = Instant::now();
            // One acquire, kept across stalls, keeps the request's place in line.
            let acquire = gate.acquire_owned();
            tokio::pin!(acquire);
            let permit = loop {
                if latency_check && received.elapsed() > session_timeout {
                    stats.stale_requests_dropped.fetch_add(1, Relaxed);
                    return Admission::Stale;
                }
                stats.request_throttle_wait_count.fetch_add(1, Relaxed);
                match tokio::time::timeout(stall, &mut acquire).await {
                    Ok(Ok(p)) => break p,
                    // The semaphore is never closed.
                    Ok(Err(_)) => return Admission::Stale,
                    Err(_) => continue,
                }
            };
            let waited = start.elapsed();
            stats
                .request_throttle_queue_time
                .add(waited.as_millis() as u64);
            let throttlable = !matches!(opcode, op::PING | op::CLOSE_SESSION | op::CREATE_SESSION);
            match op_wait {
                Some(limit) if throttlable && waited > limit => {
                    stats.throttled_ops.fetch_add(1, Relaxed);
                    Admission::Throttled(permit)
                }
                _ => Admission::Run(permit),
            }
        }
    }
}
