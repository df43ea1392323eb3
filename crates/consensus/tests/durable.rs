//! A single-member group on ZooKeeper's txn log: what reaches the files, when, and restarts.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ensemble_consensus::{Applier, Consensus, ConsensusError, DurableLog, SIDE_FILE_NAME};
use ensemble_proto::{op, ErrorTxn, Jute, SetDataTxn, TxnHeader, Writer};
use ensemble_storage::txnlog::last_logged_zxid;
use ensemble_storage::{LogEntry, TxnLogOptions, TxnLogReader, TxnLogWriter};
use parking_lot::Mutex;

#[derive(Default)]
struct Recorder(Mutex<Vec<(i64, Bytes)>>);

impl Applier for Recorder {
    fn apply(&self, zxid: i64, payload: &Bytes) {
        self.0.lock().push((zxid, payload.clone()));
    }
}

fn header(i: u32) -> TxnHeader {
    TxnHeader {
        client_id: 0x4200 + i64::from(i % 7),
        cxid: i as i32,
        zxid: 0,
        time: 1_700_000_000_000 + i64::from(i),
        r#type: op::SET_DATA,
    }
}

fn txn(i: u32) -> Bytes {
    SetDataTxn {
        path: format!("/node{i}"),
        data: Some(Bytes::from(format!("value {i}"))),
        version: i as i32,
    }
    .to_bytes()
}

/// What the server proposes: a TxnHeader with zxid 0, then the txn.
fn payload(i: u32) -> Bytes {
    let mut w = Writer::new();
    header(i).write(&mut w);
    w.write_raw(&txn(i));
    w.into_bytes()
}

fn durable_log(dir: &Path, snap_count: u64) -> DurableLog {
    DurableLog {
        data_dir: dir.join("data"),
        data_log_dir: dir.join("datalog"),
        options: TxnLogOptions {
            pre_alloc_size: 64 * 1024,
            ..TxnLogOptions::default()
        },
        snap_count,
    }
}

async fn start(log: &DurableLog, recovered_zxid: i64) -> (Consensus, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let consensus =
        Consensus::start_standalone_durable(1, recorder.clone(), log.clone(), recovered_zxid)
            .await
            .expect("durable start");
    (consensus, recorder)
}

async fn propose_all(consensus: &Consensus, ids: std::ops::Range<u32>) -> Vec<i64> {
    let pending: Vec<_> = ids.map(|i| consensus.propose(payload(i))).collect();
    futures_util::future::try_join_all(pending)
        .await
        .expect("all proposals commit")
}

fn read_log(log: &DurableLog) -> Vec<LogEntry> {
    TxnLogReader::open(&log.data_log_dir, 0)
        .expect("open txn log")
        .collect::<Result<Vec<_>, _>>()
        .expect("txn log reads back")
}

fn recovered_zxid(log: &DurableLog) -> i64 {
    last_logged_zxid(&log.data_log_dir)
        .expect("read txn log")
        .unwrap_or(0)
}

/// zxids strictly increase, and within an epoch the counter goes up by one from 1.
fn assert_dense(records: &[LogEntry]) {
    for pair in records.windows(2) {
        let (a, b) = (pair[0].header.zxid, pair[1].header.zxid);
        let dense = if a >> 32 == b >> 32 {
            b == a + 1
        } else {
            b >> 32 > a >> 32 && b & 0xffff_ffff == 1
        };
        assert!(dense, "zxid 0x{b:x} does not follow 0x{a:x}");
    }
}

fn is_blank(record: &LogEntry) -> bool {
    record.header.r#type == op::ERROR
        && record.header.client_id == 0
        && record.header.cxid == 0
        && record.txn == ErrorTxn { err: 0 }.to_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_are_written_as_zookeeper_txns_with_dense_zxids() {
    const N: u32 = 500;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = durable_log(dir.path(), 100_000);
    let (consensus, recorder) = start(&log, 0).await;
    let zxids = propose_all(&consensus, 0..N).await;
    consensus.shutdown().await;

    let records = read_log(&log);
    assert_dense(&records);
    // The initial membership entry (term 0), then term 1's blank entry, then the proposals.
    assert_eq!(records.len(), N as usize + 2);
    assert_eq!(records[0].header.zxid, 0x1);
    assert_eq!(records[1].header.zxid, 0x1_0000_0001);
    assert!(records[..2].iter().all(is_blank));
    for (i, (record, zxid)) in records[2..].iter().zip(&zxids).enumerate() {
        let i = i as u32;
        assert_eq!(record.header.zxid, *zxid);
        assert_eq!(
            record.header,
            TxnHeader {
                zxid: *zxid,
                ..header(i)
            }
        );
        assert_eq!(record.txn, txn(i));
        assert!(record.digest.is_none());
    }
    let applied: Vec<i64> = recorder.0.lock().iter().map(|(z, _)| *z).collect();
    assert_eq!(applied, zxids);
    assert!(log
        .data_dir
        .join("version-2")
        .join(SIDE_FILE_NAME)
        .is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_member_continues_in_a_higher_epoch_and_reapplies_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = durable_log(dir.path(), 100_000);
    let (consensus, _) = start(&log, 0).await;
    let first = propose_all(&consensus, 0..100).await;
    consensus.shutdown().await;

    let mut last = recovered_zxid(&log);
    assert_eq!(last, *first.last().expect("proposals"));
    for round in 1..=3u32 {
        let (consensus, recorder) = start(&log, last).await;
        assert!(
            consensus.last_applied_zxid() >> 32 > last >> 32,
            "round {round}: 0x{:x} after 0x{last:x}",
            consensus.last_applied_zxid()
        );
        let ids = round * 1000..round * 1000 + 50;
        let zxids = propose_all(&consensus, ids.clone()).await;
        consensus.shutdown().await;

        // A new term: its blank entry took counter 1.
        assert_eq!(zxids[0], (((last >> 32) + 1) << 32) | 2, "round {round}");
        assert!(zxids.windows(2).all(|w| w[0] < w[1]));
        let applied = recorder.0.lock().clone();
        let expected: Vec<(i64, Bytes)> = zxids.iter().copied().zip(ids.map(payload)).collect();
        assert_eq!(applied, expected, "round {round}: only the new entries");
        last = recovered_zxid(&log);
        assert_eq!(last, *zxids.last().expect("proposals"));
    }
    let records = read_log(&log);
    assert_dense(&records);
    assert_eq!(records.len(), 2 + 100 + 3 * (1 + 50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zookeeper_log_without_raft_state_is_continued_above_its_last_zxid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = durable_log(dir.path(), 100_000);
    // As Apache ZooKeeper leaves it: epoch 5, txns 1..=10, no side file.
    let mut writer =
        TxnLogWriter::open(&log.data_log_dir, log.options.clone()).expect("open writer");
    for i in 1..=10u32 {
        let hdr = TxnHeader {
            zxid: 0x5_0000_0000 | i64::from(i),
            ..header(i)
        };
        writer.append(&hdr, &txn(i), None).expect("append");
    }
    writer.close().expect("close");
    let last = recovered_zxid(&log);
    assert_eq!(last, 0x5_0000_000a);

    let (consensus, recorder) = start(&log, last).await;
    let zxids = propose_all(&consensus, 100..110).await;
    consensus.shutdown().await;
    assert_eq!(zxids[0], 0x6_0000_0002);
    assert_eq!(recorder.0.lock().len(), 10);

    let records = read_log(&log);
    assert_dense(&records);
    assert_eq!(records.len(), 10 + 1 + 10);
    assert!(is_blank(&records[10]));
    assert_eq!(records[10].header.zxid, 0x6_0000_0001);

    // And the synthesised Raft state carries the next restart.
    let (consensus, _) = start(&log, recovered_zxid(&log)).await;
    let zxids = propose_all(&consensus, 200..201).await;
    consensus.shutdown().await;
    assert_eq!(zxids, vec![0x7_0000_0002]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_resolves_only_after_its_record_is_in_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = durable_log(dir.path(), 100_000);
    let (consensus, _) = start(&log, 0).await;
    for i in 0..20 {
        let zxid = consensus.propose(payload(i)).await.expect("commit");
        assert_eq!(recovered_zxid(&log), zxid);
    }
    consensus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_share_fsyncs() {
    const N: u32 = 10_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = durable_log(dir.path(), 1_000_000);
    assert!(log.options.force_sync);
    let (consensus, _) = start(&log, 0).await;
    let before = consensus.log_stats().expect("durable log");
    let started = Instant::now();
    let zxids = propose_all(&consensus, 0..N).await;
    let took = started.elapsed();
    let after = consensus.log_stats().expect("durable log");
    consensus.shutdown().await;

    assert_eq!(zxids.len(), N as usize);
    let records = after.records - before.records;
    let commits = after.commits - before.commits;
    assert_eq!(records, u64::from(N));
    println!(
        "{N} proposals in flight: {commits} fsyncs, {:.1} txns per fsync, {:.0} txns/s (debug build)",
        records as f64 / commits as f64,
        f64::from(N) / took.as_secs_f64()
    );
    assert!(
        commits * 20 <= records,
        "{commits} fsyncs for {records} txns: appends do not share fsyncs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_rolls_to_new_files_at_the_snap_count_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = durable_log(dir.path(), 20);
    let (consensus, _) = start(&log, 0).await;
    for i in 0..100 {
        // One at a time, so the rolls fall between commits as well as within them.
        consensus.propose(payload(i)).await.expect("commit");
    }
    let _ = propose_all(&consensus, 100..200).await;
    consensus.shutdown().await;

    let files = std::fs::read_dir(log.data_log_dir.join("version-2"))
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("log."))
        .count();
    // A roll every 11..=20 txns.
    assert!(files >= 10, "only {files} log files");
    let records = read_log(&log);
    assert_dense(&records);
    assert_eq!(records.len(), 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_without_a_txn_header_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = durable_log(dir.path(), 100_000);
    let (consensus, _) = start(&log, 0).await;
    let err = consensus.propose(Bytes::from_static(b"oops")).await;
    assert!(
        matches!(err, Err(ConsensusError::InvalidProposal(_))),
        "{err:?}"
    );
    // The group is unharmed.
    consensus.propose(payload(1)).await.expect("commit");
    consensus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_leaves_every_resolved_proposal_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = durable_log(dir.path(), 100_000);
    let (consensus, _) = start(&log, 0).await;
    let pending: Vec<_> = (0..2_000).map(|i| consensus.propose(payload(i))).collect();
    let handle = tokio::spawn(futures_util::future::join_all(pending));
    tokio::time::sleep(Duration::from_millis(5)).await;
    consensus.shutdown().await;
    let results = handle.await.expect("join");
    let committed: Vec<i64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .copied()
        .collect();
    assert!(results
        .iter()
        .all(|r| matches!(r, Ok(_) | Err(ConsensusError::Shutdown))));
    let on_disk: Vec<i64> = read_log(&log).iter().map(|r| r.header.zxid).collect();
    assert!(committed.iter().all(|z| on_disk.contains(z)));
}
