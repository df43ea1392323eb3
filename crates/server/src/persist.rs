//! The server's side of durability: recovery at startup (newest valid
//! snapshot plus the txn logs after it, via `ensemble_storage`), a snapshot
//! every `snapCount` txns (ZooKeeper's randomised point) written in the
//! background from a copy of the tree, and autopurge. The txn log itself is
//! written by the consensus log store, before any txn is applied or answered.

use crate::stats::BufferStats;
use crate::Shared;
use ensemble_config::Config;
use ensemble_storage::{
    purge, recover_up_to, write_snapshot, Compression, Recovered, SnapshotTrigger, StorageError,
};
use ensemble_tree::{CaptureLost, DataTree, TreeCapture};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tracing::{error, info, warn};

/// Loads the data directory. A fresh one gets `snapshot.0`, as ZooKeeper
/// writes on its first start.
pub fn load(config: &Config) -> Result<Recovered, StorageError> {
    let started = Instant::now();
    let data_dir = config.data_dir.clone();
    let log_dir = config.txn_log_dir().to_path_buf();
    let recovered = recover_up_to(&data_dir, &log_dir, replay_limit(config))?;
    if recovered.fresh {
        write_snapshot(&data_dir, &recovered.tree, &[], 0, compression(config))?;
    } else {
        info!(
            "loaded {} znodes and {} sessions up to zxid 0x{:x} from {} (snapshot {}, {} txns replayed{}) in {} ms",
            recovered.tree.node_count(),
            recovered.sessions.len(),
            recovered.last_zxid,
            data_dir.display(),
            recovered
                .snapshot
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "none".into()),
            recovered.txns_replayed,
            if recovered.torn_tail_truncated {
                ", a torn last record truncated"
            } else {
                ""
            },
            started.elapsed().as_millis()
        );
    }
    Ok(recovered)
}

/// How far recovery replays the txn log. In standalone mode every record is
/// committed. In quorum mode the last records may not be (Raft may still
/// replace them): replay up to the commit hint, and let the consensus log
/// apply the rest once committed. A directory without Raft state (written by
/// ZooKeeper) is replayed whole.
fn replay_limit(config: &Config) -> Option<i64> {
    if !config.is_quorum() {
        return None;
    }
    let side =
        ensemble_storage::version_dir(&config.data_dir).join(ensemble_consensus::SIDE_FILE_NAME);
    if !side.exists() {
        return None;
    }
    Some(ensemble_consensus::committed_zxid_hint(&config.data_dir).unwrap_or(0))
}

pub fn compression(config: &Config) -> Compression {
    Compression::from_config(&config.snapshot_compression_method)
}

/// Counts applied txns and asks for a snapshot at ZooKeeper's randomised
/// point, or later for a tree larger than `snapCount`
/// ([`SnapshotTrigger::snapshot_due`]); at most one snapshot is written at a
/// time.
pub struct Snapshotter {
    trigger: Mutex<SnapshotTrigger>,
    wake: Notify,
    busy: AtomicBool,
    /// The sizes of applied txns: on the leader, the sizes of its proposals
    /// (`srvr`'s `Proposal sizes`).
    txn_sizes: Arc<BufferStats>,
}

impl Snapshotter {
    pub fn new(config: &Config, txn_sizes: Arc<BufferStats>) -> Snapshotter {
        Snapshotter {
            trigger: Mutex::new(SnapshotTrigger::new(
                config.snap_count,
                config.snap_size_limit,
            )),
            wake: Notify::new(),
            busy: AtomicBool::new(false),
            txn_sizes,
        }
    }

    /// Called by apply for every txn, with the size of its log record and
    /// the number of znodes in the tree it is applied to.
    pub fn applied(&self, bytes: u64, tree_nodes: u64) {
        self.txn_sizes.record(bytes as i64);
        let mut t = self.trigger.lock();
        t.record_append(bytes);
        if t.snapshot_due(tree_nodes) {
            t.reset();
            if self.busy.load(Ordering::Acquire) {
                warn!("too busy to snapshot, skipping");
            } else {
                self.wake.notify_one();
            }
        }
    }
}

/// Writes a snapshot whenever `Snapshotter` asks for one. The tree is captured
/// at one zxid (see [`begin_capture`]), copied out a part at a time, and the
/// file is written from the copy without holding any lock.
pub async fn snapshot_task(shared: Arc<Shared>) {
    let snapper = &shared.snapshotter;
    loop {
        snapper.wake.notified().await;
        snapper.busy.store(true, Ordering::Release);
        let (capture, sessions) = begin_capture(&shared);
        let zxid = capture.last_zxid();
        let dir = shared.config.data_dir.clone();
        let comp = compression(&shared.config);
        let started = Instant::now();
        let (done, result) = tokio::sync::oneshot::channel();
        let source = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                // The copy at the server's priority: it holds the tree's read
                // lock a moment at a time, which a thread that the scheduler
                // puts off would stretch. The file is written below it.
                let tree = match copy_capture(&source, capture) {
                    Ok(tree) => tree,
                    Err(e) => {
                        let _ = done.send(Err(StorageError::Invalid(e.to_string())));
                        return;
                    }
                };
                drop(source);
                lower_priority();
                let _ = done.send(write_snapshot(&dir, &tree, &sessions, zxid, comp));
                // The copy's own parts (those the tree changed since) are freed here too.
            });
        let result = match spawned {
            Ok(_) => result
                .await
                .unwrap_or_else(|_| Err(StorageError::Invalid("snapshot thread stopped".into()))),
            Err(e) => Err(StorageError::Invalid(format!("no snapshot thread: {e}"))),
        };
        match result {
            Ok(path) => {
                let ms = started.elapsed().as_millis();
                shared.stats.snapshot_time.add(ms as u64);
                info!("wrote snapshot {} in {ms} ms", path.display())
            }
            Err(e) => error!("snapshot at zxid 0x{zxid:x} failed: {e}"),
        }
        snapper.busy.store(false, Ordering::Release);
    }
}

/// Begins a capture of the tree and the list of sessions as they are now,
/// between two applied txns: a moment's hold of the tree for writing.
pub fn begin_capture(shared: &Shared) -> (TreeCapture, Vec<(i64, i32)>) {
    let mut tree = shared.tree.write();
    let sessions = shared.sessions.lock().list();
    (tree.begin_capture(), sessions)
}

/// Copies the rest of a capture out of the live tree, a part at a time, each
/// under the tree's read lock (a fraction of a millisecond on a tree of a
/// million znodes), and returns the tree as it was when the capture began.
pub fn copy_capture(shared: &Shared, mut capture: TreeCapture) -> Result<DataTree, CaptureLost> {
    while !shared.tree.read().capture_step(&mut capture)? {}
    Ok(capture.finish())
}

/// The nice value of the snapshot thread. A snapshot only shortens the log a
/// restart replays; every txn is in the fsync'd log before it is answered. So
/// while the CPUs are short it yields to the threads that serve requests, and
/// the snapshots due meanwhile are skipped (`too busy to snapshot`), instead
/// of taking a core from them back to back once the tree is large.
const SNAPSHOT_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`SNAPSHOT_NICE`]
/// (Linux keeps a nice value per thread); where that is refused the snapshot
/// runs at the server's priority.
fn lower_priority() {
    // SAFETY: plain system calls on the calling thread, no memory is passed.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
    // A server already started below normal priority keeps its own value.
    let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) };
    if current >= SNAPSHOT_NICE {
        return;
    }
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, SNAPSHOT_NICE) } != 0 {
        warn!(
            "snapshot thread keeps its priority: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// `autopurge.purgeInterval` hours apart, keeps `autopurge.snapRetainCount`
/// snapshots and the logs they need, as ZooKeeper's DatadirCleanupManager.
pub async fn purge_task(shared: Arc<Shared>) {
    let hours = shared.config.autopurge_purge_interval;
    if hours == 0 {
        return;
    }
    let every = Duration::from_secs(u64::from(hours) * 3600);
    loop {
        tokio::time::sleep(every).await;
        let data_dir = shared.config.data_dir.clone();
        let log_dir = shared.config.txn_log_dir().to_path_buf();
        let retain = shared.config.autopurge_snap_retain_count as usize;
        match tokio::task::spawn_blocking(move || purge(&data_dir, &log_dir, retain)).await {
            Ok(Ok(r)) => info!(
                "purged {} snapshots and {} logs",
                r.removed_snapshots.len(),
                r.removed_logs.len()
            ),
            Ok(Err(e)) => warn!("purge failed: {e}"),
            Err(e) => warn!("purge failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_nice() -> i32 {
        // SAFETY: plain system calls on the calling thread.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
        unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) }
    }

    #[test]
    fn snapshot_thread_alone_runs_below_normal_priority() {
        let before = own_nice();
        let lowered = std::thread::spawn(|| {
            lower_priority();
            own_nice()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, before.max(SNAPSHOT_NICE));
        assert_eq!(own_nice(), before);
    }
}
