//! Rough proposal throughput of a standalone group.
//!
//! `cargo run --release -p ensemble-consensus --example propose_throughput`

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ensemble_consensus::{Applier, Consensus};

/// Counts applies, roughly what a cheap tree update costs.
#[derive(Default)]
struct Counter(AtomicU64);

impl Applier for Counter {
    fn apply(&self, _zxid: i64, payload: &Bytes) {
        self.0.fetch_add(payload.len() as u64, Ordering::Relaxed);
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let consensus = Consensus::start_standalone(1, Arc::new(Counter::default())).await?;
    let payload = Bytes::from(vec![7u8; 100]);

    // Everything in flight at once.
    let n = 500_000;
    let started = Instant::now();
    let pending: Vec<_> = (0..n).map(|_| consensus.propose(payload.clone())).collect();
    futures_util::future::try_join_all(pending).await?;
    report("all in flight", n, started);

    // A sliding window, as a server with many busy clients would keep it.
    for window in [1, 16, 256, 4096] {
        let n = if window == 1 { 20_000 } else { 500_000 };
        let started = Instant::now();
        let mut in_flight = VecDeque::with_capacity(window);
        for _ in 0..n {
            if in_flight.len() == window {
                if let Some(oldest) = in_flight.pop_front() {
                    oldest.await??;
                }
            }
            in_flight.push_back(tokio::spawn(consensus.propose(payload.clone())));
        }
        for p in in_flight {
            p.await??;
        }
        report(&format!("window {window}"), n, started);
    }

    consensus.shutdown().await;
    Ok(())
}

fn report(label: &str, n: usize, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label:>14}: {n} proposals in {secs:.2}s = {:.0}/s",
        n as f64 / secs
    );
}
