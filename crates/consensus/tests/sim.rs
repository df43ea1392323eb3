//! Deterministic simulation of a three-member group with turmoil: simulated sockets with
//! latency, partitions and crashes, and a simulated disk that loses every write not yet fsynced
//! (and tears the last ones at 512-byte blocks) when its member crashes. Each member is a small
//! server over the real storage: it recovers its data tree from ZooKeeper's snapshot and txn log
//! files at every start (up to the commit hint, as the server does), applies committed txns to
//! the tree, writes a snapshot and purges old files every few hundred txns, and hands a lagging
//! member a snapshot of its tree when the log it needs is gone. Built only with the `sim`
//! feature:
//!
//! ```text
//! cargo test --release -p ensemble-consensus --features sim --test sim
//! SIM_SEED=17 cargo test --release -p ensemble-consensus --features sim --test sim  # one seed
//! SIM_SEEDS=500 SIM_FIRST_SEED=1000 SIM_SECONDS=120 cargo test --release ...        # a search
//! ```
//!
//! A seed decides everything: the faults, turmoil's latencies and torn blocks, and openraft's
//! election timeouts (each life of each member draws them from its own seed). Nothing runs
//! beside the simulated clock: with the `sim` feature the log writer and the snapshot capture
//! run on the member's own runtime. So a seed run alone replays exactly, on any machine; the
//! test checks it by running its first seed again in a process of its own and comparing a
//! fingerprint of everything observed. (Within one process a run can depend on the runs before
//! it, so a failing seed of a sweep prints the sweep up to it as a second replay.)
//!
//! What every run checks, whatever the faults:
//! - every acknowledged create is in every member's final tree, with its data;
//! - no two applies, on any member in any of its lives, put different txns at one zxid, and each
//!   member applies in strictly increasing zxid order;
//! - every member starts again after every crash (recovery never refuses its own files);
//! - when the faults stop, all members converge on the same tree (same zxid, same digest) and
//!   the group still commits.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ensemble_consensus::{
    committed_zxid_hint, Applier, Consensus, DurableLog, Member, PeerHandler, QuorumOptions,
    SnapshotFile, SIDE_FILE_NAME,
};
use ensemble_proto::{op, Acl, CreateTxn, Id, Jute, Reader, TxnHeader, Writer};
use ensemble_storage::{fs, Compression, SnapshotOptions};
use ensemble_tree::{DataTree, TxnBody};
use parking_lot::Mutex;

const MEMBERS: [u64; 3] = [1, 2, 3];
const PEER_PORT: u16 = 2888;
/// A member writes a snapshot of its tree (and purges old files) after this many applies.
const SNAP_EVERY: u64 = 700;

/// A small, seeded generator (splitmix64) for the fault schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

fn host(id: u64) -> String {
    format!("m{id}")
}

fn node_path(value: i32) -> String {
    format!("/v{value}")
}

fn node_data(value: i32) -> Bytes {
    Bytes::from(format!("value {value}"))
}

/// What a proposal carries: the create of `/v<value>`, as the server's prep would make it.
fn payload(value: i32) -> Bytes {
    let header = TxnHeader {
        client_id: 7,
        cxid: value,
        zxid: 0,
        time: 1_700_000_000_000,
        r#type: op::CREATE,
    };
    let mut w = Writer::new();
    header.write(&mut w);
    CreateTxn {
        path: node_path(value),
        data: Some(node_data(value)),
        acl: vec![Acl {
            perms: 31,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }],
        ephemeral: false,
        parent_c_version: value,
    }
    .write(&mut w);
    w.into_bytes()
}

/// Everything the run observed, kept outside the simulated hosts so that it outlives crashes.
#[derive(Default)]
struct Observed {
    /// Per member, one list of applied (zxid, payload) per life of the member.
    applied: BTreeMap<u64, Vec<Vec<(i64, Bytes)>>>,
    /// Per member, the tree of its current life.
    trees: BTreeMap<u64, Arc<Mutex<DataTree>>>,
    /// Acknowledged proposals: (zxid, value).
    acked: Vec<(i64, i32)>,
    /// Snapshots received from a leader, and snapshots written.
    installs: u64,
    snapshots: u64,
}

/// A member's state machine: the data tree, on the real storage files.
struct TreeApplier {
    id: u64,
    data_dir: PathBuf,
    tree: Arc<Mutex<DataTree>>,
    applies: AtomicU64,
    observed: Arc<Mutex<Observed>>,
}

impl Applier for TreeApplier {
    fn apply(&self, zxid: i64, payload: &Bytes) {
        let mut r = Reader::new(payload.clone());
        let mut hdr = TxnHeader::read(&mut r).expect("a txn header");
        hdr.zxid = zxid;
        let body = TxnBody::decode(hdr.r#type, &r.rest()).expect("a txn");
        let mut tree = self.tree.lock();
        tree.apply(&hdr, &body);
        {
            let mut o = self.observed.lock();
            let life = o.applied.get_mut(&self.id).and_then(|l| l.last_mut());
            life.expect("a life").push((zxid, payload.clone()));
        }
        // As the server's snapshotter, at once rather than in the background: the simulated
        // clock stands still meanwhile, and no thread of a crashed member writes on.
        if self.applies.fetch_add(1, Ordering::Relaxed) % SNAP_EVERY == SNAP_EVERY - 1 {
            ensemble_storage::write_snapshot(&self.data_dir, &tree, &[], zxid, Compression::None)
                .expect("write a snapshot");
            ensemble_storage::purge(&self.data_dir, &self.data_dir, 3).expect("purge");
            self.observed.lock().snapshots += 1;
        }
    }

    fn capture(
        &self,
        zxid: i64,
        dir: PathBuf,
    ) -> Box<dyn FnOnce() -> std::io::Result<Option<SnapshotFile>> + Send> {
        let tree = self.tree.lock().clone();
        Box::new(move || {
            let opts = SnapshotOptions {
                fsync: false,
                ..Default::default()
            };
            let path = ensemble_storage::write_snapshot_with(&dir, &tree, &[], zxid, &opts)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok(Some(SnapshotFile::new(path, dir)))
        })
    }

    fn install(&self, zxid: i64, file: &Path) -> std::io::Result<()> {
        let dir = ensemble_storage::version_dir(&self.data_dir);
        fs::create_dir_all(&dir)?;
        let path = dir.join(ensemble_storage::snapshot_file_name(zxid, ""));
        let tmp = dir.join(format!("snapshot.transfer.{zxid:x}"));
        fs::copy(file, &tmp)?;
        fs::File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, &path)?;
        fs::sync_dir(&dir)?;
        let loaded = ensemble_storage::read_snapshot(&path)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        *self.tree.lock() = loaded.tree;
        self.observed.lock().installs += 1;
        Ok(())
    }
}

/// The other members' calls are not used here.
struct NoCalls;

impl PeerHandler for NoCalls {
    fn handle(
        &self,
        _from: u64,
        _body: Bytes,
    ) -> Pin<Box<dyn Future<Output = Result<Bytes, String>> + Send>> {
        Box::pin(async { Err("no calls in the simulation".to_string()) })
    }
}

/// One member's software: recovers from its (simulated) data directory as the server does,
/// joins the group, and while it leads proposes two creates every 4 ms until the workload stops.
async fn member(
    id: u64,
    observed: Arc<Mutex<Observed>>,
    next_value: Arc<AtomicI32>,
    proposing: Arc<AtomicBool>,
) -> turmoil::Result {
    let data_dir = PathBuf::from("/data");
    fs::create_dir_all(&data_dir)?;
    // As the server's recovery: a directory with Raft state replays only what it knew committed.
    let side = ensemble_storage::version_dir(&data_dir).join(SIDE_FILE_NAME);
    let limit = fs::metadata(&side)
        .is_ok()
        .then(|| committed_zxid_hint(&data_dir).unwrap_or(0));
    let recovered = ensemble_storage::recover_up_to(&data_dir, &data_dir, limit)
        .map_err(|e| format!("member {id} cannot recover its files: {e}"))?;
    if recovered.fresh {
        ensemble_storage::write_snapshot(&data_dir, &recovered.tree, &[], 0, Compression::None)?;
    }
    let tree = Arc::new(Mutex::new(recovered.tree));
    {
        let mut o = observed.lock();
        o.applied.entry(id).or_default().push(Vec::new());
        o.trees.insert(id, tree.clone());
    }
    let log = DurableLog {
        data_dir: data_dir.clone(),
        data_log_dir: data_dir.clone(),
        options: ensemble_storage::TxnLogOptions {
            pre_alloc_size: 64 * 1024,
            force_sync: true,
            ..Default::default()
        },
        // openraft snapshots (and lets a lagging member install one) every 1000 entries.
        snap_count: 1000,
    };
    let members: Vec<Member> = MEMBERS
        .iter()
        .map(|m| Member {
            id: *m,
            peer_addr: format!("{}:{PEER_PORT}", host(*m)),
            voter: true,
        })
        .collect();
    let options = QuorumOptions {
        members,
        listen: (std::net::Ipv4Addr::UNSPECIFIED, PEER_PORT).into(),
        heartbeat: Duration::from_millis(50),
        election_timeout: (Duration::from_millis(300), Duration::from_millis(600)),
    };
    let applier = Arc::new(TreeApplier {
        id,
        data_dir: data_dir.clone(),
        tree,
        applies: AtomicU64::new(0),
        observed: observed.clone(),
    });
    let consensus = Consensus::start_quorum(
        id,
        applier,
        log,
        recovered.last_zxid,
        options,
        Arc::new(NoCalls),
    )
    .await
    .map_err(|e| format!("member {id} did not start: {e}"))?;
    loop {
        for _ in 0..2 {
            if !(proposing.load(Ordering::Relaxed) && consensus.is_leader()) {
                break;
            }
            let value = next_value.fetch_add(1, Ordering::Relaxed);
            let proposal = consensus.propose(payload(value));
            let observed = observed.clone();
            tokio::spawn(async move {
                if let Ok(zxid) = proposal.await {
                    observed.lock().acked.push((zxid, value));
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(4)).await;
    }
}

/// What ends a fault.
type Heal = Box<dyn FnOnce(&mut turmoil::Sim<'_>)>;

/// A run's summary, and a fingerprint of everything it observed: two runs of one seed must
/// give the same.
struct Outcome {
    summary: String,
    fingerprint: u64,
}

/// Runs one seeded simulation; Err says what went wrong.
fn run(seed: u64, seconds: u64) -> Result<Outcome, String> {
    let mut rng = Rng(seed);
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(seconds + 120))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(8));
    // A crash tears the unsynced writes at 512-byte blocks: some survive, some do not.
    builder.fs().block_size(512);
    let mut sim = builder.build();
    let result = drive(&mut sim, &mut rng, seed, seconds);
    // Stops the members inside the simulation, so that what their tasks drop finds its files.
    for m in MEMBERS {
        sim.crash(host(m));
    }
    result
}

/// Starts the members, injects the faults, lets the members converge, and checks.
fn drive(
    sim: &mut turmoil::Sim<'_>,
    rng: &mut Rng,
    seed: u64,
    seconds: u64,
) -> Result<Outcome, String> {
    let observed = Arc::new(Mutex::new(Observed::default()));
    let next_value = Arc::new(AtomicI32::new(1));
    let proposing = Arc::new(AtomicBool::new(true));
    for id in MEMBERS {
        let (observed, next_value, proposing) =
            (observed.clone(), next_value.clone(), proposing.clone());
        sim.host(host(id), move || {
            // Each life of each member draws openraft's randomness from its own seed.
            let life = observed.lock().applied.get(&id).map_or(0, Vec::len) as u64;
            let mut mix = Rng(seed ^ (id << 48) ^ (life << 32));
            Consensus::with_seed(
                mix.next(),
                member(id, observed.clone(), next_value.clone(), proposing.clone()),
            )
        });
    }

    // The fault schedule: one fault at a time, each healed before the next.
    let faults_end = Duration::from_secs(seconds);
    let mut log = Vec::new();
    let mut next_fault = rng.millis(1_000, 2_000);
    let mut heal_at: Option<(Duration, Heal)> = None;
    while sim.elapsed() < faults_end {
        sim.step()
            .map_err(|e| format!("the simulation failed: {e}"))?;
        let now = sim.elapsed();
        if let Some((at, _)) = &heal_at {
            if now >= *at {
                let (_, heal) = heal_at.take().expect("checked");
                heal(sim);
                next_fault = now + rng.millis(200, 1_500);
            }
            continue;
        }
        if now < next_fault {
            continue;
        }
        let victim = MEMBERS[rng.below(3) as usize];
        let others: Vec<String> = MEMBERS
            .iter()
            .filter(|m| **m != victim)
            .map(|m| host(*m))
            .collect();
        let lasts = rng.millis(300, 3_000);
        match rng.below(5) {
            0 | 1 => {
                log.push(format!("{now:?} crash m{victim} for {lasts:?}"));
                crash(sim, victim);
                heal_at = Some((
                    now + lasts,
                    Box::new(move |sim: &mut turmoil::Sim| {
                        sim.bounce(host(victim));
                    }),
                ));
            }
            2 => {
                log.push(format!("{now:?} isolate m{victim} for {lasts:?}"));
                for o in &others {
                    sim.partition(host(victim), o.as_str());
                }
                heal_at = Some((
                    now + lasts,
                    Box::new(move |sim: &mut turmoil::Sim| {
                        for o in &others {
                            sim.repair(host(victim), o.as_str());
                        }
                    }),
                ));
            }
            3 => {
                // A power loss: every member crashes at once and keeps only what it fsynced.
                log.push(format!("{now:?} crash every member for {lasts:?}"));
                for m in MEMBERS {
                    crash(sim, m);
                }
                heal_at = Some((
                    now + lasts,
                    Box::new(move |sim: &mut turmoil::Sim| {
                        for m in MEMBERS {
                            sim.bounce(host(m));
                        }
                    }),
                ));
            }
            _ => {
                // Two members crash together: no majority until one is back.
                let second = MEMBERS[(MEMBERS.iter().position(|m| *m == victim).unwrap() + 1) % 3];
                log.push(format!(
                    "{now:?} crash m{victim} and m{second} for {lasts:?}"
                ));
                crash(sim, victim);
                crash(sim, second);
                heal_at = Some((
                    now + lasts,
                    Box::new(move |sim: &mut turmoil::Sim| {
                        sim.bounce(host(victim));
                        sim.bounce(host(second));
                    }),
                ));
            }
        }
    }
    if let Some((_, heal)) = heal_at.take() {
        heal(sim);
    }

    // Quiet: proposals go on for a while, then stop, and the members must converge.
    let quiet_until = sim.elapsed() + Duration::from_secs(10);
    while sim.elapsed() < quiet_until {
        sim.step()
            .map_err(|e| format!("the simulation failed: {e}"))?;
    }
    proposing.store(false, Ordering::Relaxed);
    let settle_until = sim.elapsed() + Duration::from_secs(60);
    let acked_while_proposing = observed.lock().acked.len();
    loop {
        sim.step()
            .map_err(|e| format!("the simulation failed: {e}"))?;
        let o = observed.lock();
        let states: Vec<(i64, i64)> = MEMBERS
            .iter()
            .map(|m| {
                let t = o.trees[m].lock();
                (t.last_zxid(), t.digest())
            })
            .collect();
        let newest_ack = o.acked.iter().map(|a| a.0).max().unwrap_or(0);
        if states.iter().all(|s| *s == states[0]) && states[0].0 >= newest_ack {
            break;
        }
        if sim.elapsed() > settle_until {
            let states: Vec<String> = states
                .iter()
                .map(|s| format!("0x{:x} digest {:x}", s.0, s.1))
                .collect();
            return Err(format!(
                "the members did not converge within 60 s after the faults: trees at {states:?}\nfaults:\n{}",
                log.join("\n")
            ));
        }
    }
    let o = observed.lock();
    check(&o).map_err(|e| format!("{e}\nfaults:\n{}", log.join("\n")))?;
    if o.acked.len() < 200 {
        return Err(format!(
            "only {} proposals were acknowledged: the run proves little\nfaults:\n{}",
            o.acked.len(),
            log.join("\n")
        ));
    }
    let lives: usize = o.applied.values().map(Vec::len).sum();
    let nodes = o.trees[&1].lock().node_count();
    let summary = format!(
        "{} faults, {} acknowledged ({} when proposals stopped), {} member lives, {} snapshots \
         written, {} installed, final tree {} znodes",
        log.len(),
        o.acked.len(),
        acked_while_proposing,
        lives,
        o.snapshots,
        o.installs,
        nodes
    );
    let mut h = std::collections::hash_map::DefaultHasher::new();
    {
        use std::hash::{Hash, Hasher};
        o.acked.hash(&mut h);
        for m in MEMBERS {
            o.applied[&m].hash(&mut h);
            let t = o.trees[&m].lock();
            (t.last_zxid(), t.digest()).hash(&mut h);
        }
        (o.snapshots, o.installs, sim.elapsed()).hash(&mut h);
        let fingerprint = h.finish();
        Ok(Outcome {
            summary,
            fingerprint,
        })
    }
}

/// Crashes a member: its tasks stop (the log writer too: in the simulation it is one of them),
/// and its disk keeps only what was fsynced, with torn blocks of the rest.
fn crash(sim: &mut turmoil::Sim, id: u64) {
    sim.crash(host(id));
}

fn check(o: &Observed) -> Result<(), String> {
    let mut by_zxid: BTreeMap<i64, (&Bytes, u64)> = BTreeMap::new();
    for m in MEMBERS {
        for (life, applied) in o.applied[&m].iter().enumerate() {
            for pair in applied.windows(2) {
                if pair[1].0 <= pair[0].0 {
                    return Err(format!(
                        "member {m} (life {life}) applied 0x{:x} after 0x{:x}",
                        pair[1].0, pair[0].0
                    ));
                }
            }
            for (zxid, p) in applied {
                match by_zxid.get(zxid) {
                    Some((q, other)) if *q != p => {
                        return Err(format!(
                            "members {other} and {m} (life {life}) applied different txns at 0x{zxid:x}"
                        ))
                    }
                    Some(_) => {}
                    None => {
                        by_zxid.insert(*zxid, (p, m));
                    }
                }
            }
        }
    }
    let tree = o.trees[&1].lock();
    for (zxid, value) in &o.acked {
        match tree.get_data(&node_path(*value)) {
            Some((data, stat))
                if data.as_ref() == Some(&node_data(*value)) && stat.czxid == *zxid => {}
            Some((_, stat)) => {
                return Err(format!(
                    "the acknowledged create of {} at 0x{zxid:x} is in the tree as made at 0x{:x}",
                    node_path(*value),
                    stat.czxid
                ))
            }
            None => {
                return Err(format!(
                    "the acknowledged create of {} at 0x{zxid:x} was lost",
                    node_path(*value)
                ))
            }
        }
    }
    Ok(())
}

fn seeds() -> Vec<u64> {
    if let Ok(s) = std::env::var("SIM_SEED") {
        return s
            .split(',')
            .map(|x| {
                x.trim()
                    .parse()
                    .expect("SIM_SEED is a number or a comma list")
            })
            .collect();
    }
    let n: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .map(|s| s.parse().expect("SIM_SEEDS is a number"))
        .unwrap_or(3);
    let first: u64 = std::env::var("SIM_FIRST_SEED")
        .ok()
        .map(|s| s.parse().expect("SIM_FIRST_SEED is a number"))
        .unwrap_or(1);
    (first..first + n).collect()
}

/// Runs the seeds one after another. The sweep repeats exactly when run again; a seed run alone
/// in a fresh process repeats exactly too, but within one process a run can depend on the runs
/// before it (process-wide state of the runtimes), so a failing seed prints both replays. The
/// first seed is run again in a process of its own, which must give the same fingerprint.
#[test]
fn acknowledged_writes_survive_crashes_partitions_and_lost_unsynced_writes() {
    let seconds: u64 = std::env::var("SIM_SECONDS")
        .ok()
        .map(|s| s.parse().expect("SIM_SECONDS is a number"))
        .unwrap_or(30);
    let seeds = seeds();
    let mut failed = Vec::new();
    let mut first = None;
    for (i, seed) in seeds.iter().copied().enumerate() {
        let started = std::time::Instant::now();
        match run(seed, seconds) {
            Ok(outcome) => {
                eprintln!(
                    "seed {seed}: ok in {:.1} s: {} (fingerprint {:016x})",
                    started.elapsed().as_secs_f64(),
                    outcome.summary,
                    outcome.fingerprint
                );
                if i == 0 {
                    first = Some((seed, outcome.fingerprint));
                }
            }
            Err(e) => {
                let sweep: Vec<String> = seeds[..=i].iter().map(u64::to_string).collect();
                eprintln!(
                    "seed {seed}: FAILED: {e}\nreplay alone: SIM_SEED={seed} SIM_SECONDS={seconds} cargo test --release -p ensemble-consensus --features sim --test sim\nreplay the sweep up to it: SIM_SEED={} SIM_SECONDS={seconds} ...",
                    sweep.join(",")
                );
                failed.push(seed);
            }
        }
    }
    assert!(failed.is_empty(), "failing seeds: {failed:?}");
    if std::env::var_os("SIM_NO_REPLAY").is_some() {
        return;
    }
    if let Some((seed, fingerprint)) = first {
        let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "acknowledged_writes_survive_crashes_partitions_and_lost_unsynced_writes",
            ])
            .args(["--nocapture", "--test-threads", "1"])
            .env("SIM_SEED", seed.to_string())
            .env("SIM_SECONDS", seconds.to_string())
            .env("SIM_NO_REPLAY", "1")
            .output()
            .expect("run the replay");
        let text = String::from_utf8_lossy(&out.stderr);
        let want = format!("(fingerprint {fingerprint:016x})");
        assert!(
            out.status.success() && text.contains(&want),
            "seed {seed} did not replay exactly in a process of its own: wanted {want}, got:\n{}",
            text.lines()
                .filter(|l| l.starts_with("seed"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        eprintln!("seed {seed}: replayed in a process of its own, the same fingerprint");
    }
}
