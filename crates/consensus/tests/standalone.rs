//! Behaviour of a single-member group as the server sees it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ensemble_consensus::{Applier, Consensus, ConsensusError};
use parking_lot::Mutex;

/// Records what was applied and fails the test if two applies overlap.
#[derive(Default)]
struct Recorder {
    applied: Mutex<Vec<(i64, Bytes)>>,
    applying: AtomicBool,
}

impl Applier for Recorder {
    fn apply(&self, zxid: i64, payload: &Bytes) {
        assert!(
            !self.applying.swap(true, Ordering::SeqCst),
            "apply called concurrently"
        );
        self.applied.lock().push((zxid, payload.clone()));
        self.applying.store(false, Ordering::SeqCst);
    }
}

fn payload(i: u32) -> Bytes {
    Bytes::from(i.to_be_bytes().to_vec())
}

async fn start() -> (Consensus, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let consensus = Consensus::start_standalone(1, recorder.clone())
        .await
        .expect("standalone start");
    (consensus, recorder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_member_leads_after_start() {
    let (consensus, recorder) = start().await;
    assert!(consensus.is_leader());
    // Term 1's blank entry is applied (but not handed to the applier).
    assert_eq!(consensus.last_applied_zxid(), 0x1_0000_0001);
    assert!(recorder.applied.lock().is_empty());
    consensus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_in_flight_together_are_applied_in_call_order_with_increasing_zxids() {
    const N: u32 = 10_000;
    let (consensus, recorder) = start().await;

    let pending: Vec<_> = (0..N).map(|i| consensus.propose(payload(i))).collect();
    let zxids = futures_util::future::try_join_all(pending)
        .await
        .expect("all proposals commit");

    // The blank entry took counter 1 of term 1; proposals follow without gaps.
    let expected: Vec<i64> = (0..N as i64).map(|i| 0x1_0000_0002 + i).collect();
    assert_eq!(zxids, expected);

    let applied = recorder.applied.lock().clone();
    let applied_payloads: Vec<Bytes> = applied.iter().map(|(_, p)| p.clone()).collect();
    let proposed_payloads: Vec<Bytes> = (0..N).map(payload).collect();
    assert_eq!(applied_payloads, proposed_payloads);
    let applied_zxids: Vec<i64> = applied.iter().map(|(z, _)| *z).collect();
    assert_eq!(applied_zxids, zxids);
    assert_eq!(
        consensus.last_applied_zxid(),
        *expected.last().unwrap_or(&0)
    );
    consensus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propose_resolves_only_after_apply_returned() {
    let (consensus, recorder) = start().await;
    for i in 0..100 {
        let zxid = consensus.propose(payload(i)).await.expect("commit");
        let applied = recorder.applied.lock();
        assert_eq!(applied.last().map(|(z, _)| *z), Some(zxid));
    }
    consensus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propose_after_shutdown_fails_with_shutdown() {
    let (consensus, _recorder) = start().await;
    consensus
        .propose(payload(0))
        .await
        .expect("commit before shutdown");
    consensus.shutdown().await;
    consensus.shutdown().await; // a second call is harmless

    let err = consensus.propose(payload(1)).await;
    assert!(matches!(err, Err(ConsensusError::Shutdown)), "{err:?}");
    assert!(!consensus.is_leader());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_racing_shutdown_all_resolve() {
    let (consensus, _recorder) = start().await;
    let pending: Vec<_> = (0..5_000).map(|i| consensus.propose(payload(i))).collect();
    let handle = tokio::spawn(futures_util::future::join_all(pending));
    consensus.shutdown().await;
    let results = handle.await.expect("join");
    // Every proposal either committed or failed with Shutdown; none hangs.
    assert!(results
        .iter()
        .all(|r| matches!(r, Ok(_) | Err(ConsensusError::Shutdown))));
}

/// Not a benchmark, just a visible number; run `cargo run --release --example propose_throughput`
/// for the release-mode figure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposal_throughput_is_printed() {
    const N: u32 = 20_000;
    let (consensus, _recorder) = start().await;
    let started = Instant::now();
    let pending: Vec<_> = (0..N).map(|i| consensus.propose(payload(i))).collect();
    futures_util::future::try_join_all(pending)
        .await
        .expect("all proposals commit");
    let rate = N as f64 / started.elapsed().as_secs_f64();
    println!("{N} proposals in flight together: {rate:.0} proposals/s (debug build)");
    consensus.shutdown().await;
}
