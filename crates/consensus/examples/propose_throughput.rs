//! Rough proposal throughput of a standalone group, with the log in memory and on disk.
//!
//! `cargo run --release -p ensemble-consensus --example propose_throughput [-- DIR]`
//!
//! The durable runs write ZooKeeper's txn log with fsync under DIR (a temporary directory when
//! none is given) and report how many txns each fsync covered.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ensemble_consensus::{Applier, Consensus, DurableLog};
use ensemble_proto::{op, Jute, SetDataTxn, TxnHeader, Writer};
use ensemble_storage::TxnLogOptions;

/// Counts applies, roughly what a cheap tree update costs.
#[derive(Default)]
struct Counter(AtomicU64);

impl Applier for Counter {
    fn apply(&self, _zxid: i64, payload: &Bytes) {
        self.0.fetch_add(payload.len() as u64, Ordering::Relaxed);
    }
}

/// A 100-byte setData, as the server would propose it.
fn payload() -> Bytes {
    let mut w = Writer::new();
    TxnHeader {
        client_id: 1,
        cxid: 1,
        zxid: 0,
        time: 0,
        r#type: op::SET_DATA,
    }
    .write(&mut w);
    SetDataTxn {
        path: "/bench".into(),
        data: Some(Bytes::from(vec![7u8; 100])),
        version: 1,
    }
    .write(&mut w);
    w.into_bytes()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let consensus = Consensus::start_standalone(1, Arc::new(Counter::default())).await?;
    println!("log in memory:");
    run(&consensus, 500_000).await?;
    consensus.shutdown().await;

    let temp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| temp.path().to_path_buf(), Into::into);
    let log = DurableLog {
        data_dir: dir.join("data"),
        data_log_dir: dir.join("datalog"),
        options: TxnLogOptions::default(),
        snap_count: 100_000,
    };
    let consensus =
        Consensus::start_standalone_durable(1, Arc::new(Counter::default()), log, 0).await?;
    println!("txn log with fsync in {}:", dir.display());
    run(&consensus, 100_000).await?;
    consensus.shutdown().await;
    Ok(())
}

async fn run(consensus: &Consensus, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let payload = payload();

    // Everything in flight at once.
    let stats = consensus.log_stats();
    let started = Instant::now();
    let pending: Vec<_> = (0..n).map(|_| consensus.propose(payload.clone())).collect();
    futures_util::future::try_join_all(pending).await?;
    report(consensus, "all in flight", n, started, stats);

    // A sliding window, as a server with many busy clients would keep it.
    for window in [1, 16, 256, 4096] {
        let n = if window == 1 { n / 25 } else { n };
        let stats = consensus.log_stats();
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
        report(consensus, &format!("window {window}"), n, started, stats);
    }
    Ok(())
}

fn report(
    consensus: &Consensus,
    label: &str,
    n: usize,
    started: Instant,
    before: Option<ensemble_consensus::LogStats>,
) {
    let secs = started.elapsed().as_secs_f64();
    let fsyncs = match (before, consensus.log_stats()) {
        (Some(b), Some(a)) => format!(
            ", {} fsyncs = {:.1} txns/fsync",
            a.commits - b.commits,
            (a.records - b.records) as f64 / (a.commits - b.commits).max(1) as f64
        ),
        _ => String::new(),
    };
    println!(
        "{label:>14}: {n} proposals in {secs:.2}s = {:.0}/s{fsyncs}",
        n as f64 / secs
    );
}
