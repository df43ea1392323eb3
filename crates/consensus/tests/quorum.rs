//! Three members on loopback: replication, leader failover, calls to the leader, read-index.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ensemble_consensus::{
    Applier, Consensus, ConsensusError, DurableLog, Member, PeerHandler, QuorumOptions, Role,
};
use ensemble_proto::{op, ErrorTxn, Jute, TxnHeader, Writer};
use parking_lot::Mutex;

#[derive(Default)]
struct Recorder(Mutex<Vec<(i64, Bytes)>>);

impl Applier for Recorder {
    fn apply(&self, zxid: i64, payload: &Bytes) {
        self.0.lock().push((zxid, payload.clone()));
    }
}

/// Answers every call with the caller's id followed by the body.
struct Echo;

impl PeerHandler for Echo {
    fn handle(
        &self,
        from: u64,
        body: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<Bytes, String>> + Send>> {
        Box::pin(async move {
            let mut v = from.to_be_bytes().to_vec();
            v.extend_from_slice(&body);
            Ok(Bytes::from(v))
        })
    }
}

fn payload(i: i32) -> Bytes {
    let header = TxnHeader {
        client_id: 7,
        cxid: i,
        zxid: 0,
        time: 0,
        r#type: op::ERROR,
    };
    let mut w = Writer::new();
    header.write(&mut w);
    ErrorTxn { err: i }.write(&mut w);
    w.into_bytes()
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

struct Node {
    consensus: Consensus,
    recorder: Arc<Recorder>,
}

async fn start(
    id: u64,
    dir: &std::path::Path,
    members: &[Member],
    ports: &BTreeMap<u64, u16>,
) -> Node {
    let recorder = Arc::new(Recorder::default());
    let data = dir.join(format!("m{id}"));
    std::fs::create_dir_all(&data).expect("mkdir");
    let log = DurableLog {
        data_dir: data.clone(),
        data_log_dir: data,
        options: ensemble_storage::TxnLogOptions {
            pre_alloc_size: 64 * 1024,
            force_sync: false,
            ..Default::default()
        },
        snap_count: 100_000,
    };
    let options = QuorumOptions {
        members: members.to_vec(),
        listen: format!("127.0.0.1:{}", ports[&id]).parse().expect("addr"),
        heartbeat: Duration::from_millis(50),
        election_timeout: (Duration::from_millis(300), Duration::from_millis(600)),
    };
    let consensus = Consensus::start_quorum(id, recorder.clone(), log, 0, options, Arc::new(Echo))
        .await
        .expect("start member");
    Node {
        consensus,
        recorder,
    }
}

async fn wait_for_leader(nodes: &BTreeMap<u64, Node>) -> u64 {
    for _ in 0..200 {
        let leaders: Vec<u64> = nodes
            .iter()
            .filter(|(_, n)| n.consensus.role() == Role::Leader)
            .map(|(id, _)| *id)
            .collect();
        let agreed = nodes
            .values()
            .all(|n| n.consensus.leader_id() == leaders.first().copied());
        if leaders.len() == 1 && agreed {
            return leaders[0];
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no leader elected within 5 s");
}

async fn wait_same_entries(nodes: &BTreeMap<u64, Node>, count: usize) {
    // Generous: a member catching up on tens of megabytes fsyncs them first, and CI machines
    // are slow and shared.
    for _ in 0..1200 {
        if nodes.values().all(|n| n.recorder.0.lock().len() >= count) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let logs: Vec<(u64, Vec<_>)> = nodes
        .iter()
        .map(|(id, n)| (*id, n.recorder.0.lock().clone()))
        .collect();
    let lengths: Vec<(u64, usize)> = logs.iter().map(|(id, l)| (*id, l.len())).collect();
    let (_, first) = &logs[0];
    for (id, other) in &logs {
        assert_eq!(
            other.len(),
            count,
            "entries applied by each member: {lengths:?}"
        );
        let differs = first.iter().zip(other).position(|(a, b)| a != b);
        assert!(
            differs.is_none(),
            "member {id} applied a different entry at {differs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_members_replicate_fail_over_and_answer_calls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port_list = free_ports(3);
    let ports: BTreeMap<u64, u16> = (1..=3).zip(port_list).collect();
    let members: Vec<Member> = ports
        .iter()
        .map(|(id, port)| Member {
            id: *id,
            peer_addr: format!("127.0.0.1:{port}"),
            voter: true,
        })
        .collect();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, start(id, dir.path(), &members, &ports).await);
    }
    let leader = wait_for_leader(&nodes).await;

    // Writes through the leader reach every member, in the same order with the same zxids.
    let pending: Vec<_> = (0..100)
        .map(|i| nodes[&leader].consensus.propose(payload(i)))
        .collect();
    let zxids = futures_util::future::try_join_all(pending)
        .await
        .expect("proposals commit");
    assert!(zxids.windows(2).all(|w| w[0] < w[1]));
    wait_same_entries(&nodes, 100).await;

    // A follower proposing directly is refused; it reaches the leader by call_leader.
    let follower = *nodes.keys().find(|id| **id != leader).expect("follower");
    let refused = nodes[&follower].consensus.propose(payload(1000)).await;
    assert!(
        matches!(refused, Err(ConsensusError::NotLeader)),
        "{refused:?}"
    );
    let answer = nodes[&follower]
        .consensus
        .call_leader(Bytes::from_static(b"hi"))
        .await
        .expect("call the leader");
    assert_eq!(&answer[..8], &follower.to_be_bytes());
    assert_eq!(&answer[8..], b"hi");

    // Read-index on the leader covers every committed write; a follower waits to reach it.
    let read_at = nodes[&leader]
        .consensus
        .read_index()
        .await
        .expect("read index");
    assert!(read_at >= *zxids.last().expect("zxid"));
    assert!(
        nodes[&follower]
            .consensus
            .wait_applied(read_at, Duration::from_secs(5))
            .await
    );

    // Stop the leader: the other two elect a new one, in a higher epoch, and keep committing.
    let old = nodes.remove(&leader).expect("leader");
    old.consensus.shutdown().await;
    let new_leader = wait_for_leader(&nodes).await;
    assert_ne!(new_leader, leader);
    let zxid = nodes[&new_leader]
        .consensus
        .propose(payload(2000))
        .await
        .expect("commit after failover");
    assert!(zxid >> 32 > zxids[0] >> 32, "a new epoch: 0x{zxid:x}");
    wait_same_entries(&nodes, 101).await;

    drop(old);

    // The old leader restarts from its own directory (nothing applied yet: its whole log is
    // read back and re-applied as committed) and catches up with the entry it missed.
    nodes.insert(leader, start(leader, dir.path(), &members, &ports).await);
    wait_same_entries(&nodes, 101).await;
    assert_eq!(wait_for_leader(&nodes).await, new_leader);
    for node in nodes.values() {
        node.consensus.shutdown().await;
    }
}

/// An entry of about `size` bytes (an ErrorTxn with padding after it).
fn big_payload(i: i32, size: usize) -> Bytes {
    let mut v = payload(i).to_vec();
    v.resize(size, (i % 251) as u8);
    Bytes::from(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lagging_member_receives_large_entries_in_several_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port_list = free_ports(3);
    let ports: BTreeMap<u64, u16> = (1..=3).zip(port_list).collect();
    let members: Vec<Member> = ports
        .iter()
        .map(|(id, port)| Member {
            id: *id,
            peer_addr: format!("127.0.0.1:{port}"),
            voter: true,
        })
        .collect();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, start(id, dir.path(), &members, &ports).await);
    }
    let leader = wait_for_leader(&nodes).await;
    let follower = *nodes.keys().find(|id| **id != leader).expect("follower");
    let stopped = nodes.remove(&follower).expect("follower");
    stopped.consensus.shutdown().await;
    drop(stopped);

    // 48 MB of entries while the follower is away: more than one AppendEntries may carry.
    let pending: Vec<_> = (0..48)
        .map(|i| nodes[&leader].consensus.propose(big_payload(i, 1 << 20)))
        .collect();
    futures_util::future::try_join_all(pending)
        .await
        .expect("proposals commit");

    nodes.insert(
        follower,
        start(follower, dir.path(), &members, &ports).await,
    );
    wait_same_entries(&nodes, 48).await;
    let entries = nodes[&follower].recorder.0.lock().clone();
    for (i, (_, p)) in entries.iter().enumerate() {
        assert_eq!(p, &big_payload(i as i32, 1 << 20), "entry {i}");
    }
    for node in nodes.values() {
        node.consensus.shutdown().await;
    }
}
