//! Startup recovery, as ZooKeeper's `FileTxnSnapLog.restore`: load the newest
//! snapshot that reads back whole (falling back to older ones), then replay
//! every logged txn after its zxid through [`DataTree::apply`], tracking
//! sessions as `ZKDatabase.sessionsWithTimeouts` does (createSession adds
//! with its timeout, closeSession removes).
//!
//! Rules:
//! - A torn last record of the newest log file is cut off (the txn was never
//!   acknowledged: its commit had not returned).
//! - A checksum error anywhere else, or a missing zxid after the snapshot
//!   (the log that should hold snapshot zxid + 1 is gone), stops recovery
//!   with an error naming the file and byte offset.
//! - Txns that fail against the tree (a fuzzy snapshot already holds them)
//!   are ignored, as ZooKeeper ignores them.
//! - The digests logged with each txn (and the snapshot's) are compared with
//!   the tree's; a mismatch is logged and counted, not fatal (ZooKeeper only
//!   reports it).
//! - No snapshot and no log: a fresh tree at zxid 0 ([`Recovered::fresh`]);
//!   the caller writes `snapshot.0` as ZooKeeper does. No snapshot but logs:
//!   an error unless [`RecoverOptions::trust_empty_snapshot`]
//!   (`zookeeper.snapshot.trust.empty`).
//! - [`recover_up_to`] replays only the txns up to a zxid (in quorum mode, the
//!   last one known to be committed: later records may still be replaced by
//!   the consensus log). The newest valid snapshot is loaded even when it is
//!   past that zxid, since a snapshot only holds applied, hence committed,
//!   txns. Records past the limit are left as they are, a torn one included.

use crate::error::StorageError;
use crate::snapshot::{self, SnapshotData, ZxidDigest};
use crate::txnlog::{last_logged_zxid, TxnLogReader};
use ensemble_proto::op;
use ensemble_tree::{DataTree, TxnBody, DIGEST_VERSION};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What recovery found.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub tree: DataTree,
    /// Live sessions and their timeouts (ms).
    pub sessions: BTreeMap<i64, i32>,
    /// The zxid of the last txn applied (the snapshot's when none was).
    pub last_zxid: i64,
    /// The snapshot loaded, if any.
    pub snapshot: Option<PathBuf>,
    pub snapshot_zxid: Option<i64>,
    pub txns_replayed: u64,
    /// A torn record was cut off the newest log file.
    pub torn_tail_truncated: bool,
    /// Logged or snapshot digests that differ from the tree's.
    pub digest_mismatches: u64,
    /// Neither snapshot nor log existed: an empty database.
    pub fresh: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RecoverOptions {
    /// Accept logs without any snapshot (replaying them onto an empty tree).
    pub trust_empty_snapshot: bool,
    /// Do not cut a torn tail (report it through the error instead); for
    /// read-only inspection.
    pub read_only: bool,
    /// Replay only txns with zxid <= this (`None`: every txn logged).
    pub max_zxid: Option<i64>,
}

/// [`recover_with`] with default options.
pub fn recover(data_dir: &Path, data_log_dir: &Path) -> Result<Recovered, StorageError> {
    recover_with(data_dir, data_log_dir, &RecoverOptions::default())
}

/// [`recover`], replaying only the txns with zxid <= `max_zxid` (`None`:
/// all of them). See the module docs.
pub fn recover_up_to(
    data_dir: &Path,
    data_log_dir: &Path,
    max_zxid: Option<i64>,
) -> Result<Recovered, StorageError> {
    let opts = RecoverOptions {
        max_zxid,
        ..RecoverOptions::default()
    };
    recover_with(data_dir, data_log_dir, &opts)
}

pub fn recover_with(
    data_dir: &Path,
    data_log_dir: &Path,
    opts: &RecoverOptions,
) -> Result<Recovered, StorageError> {
    let started = Instant::now();
    let candidates = snapshot::find_valid_snapshots(data_dir)?;
    let mut loaded: Option<SnapshotData> = None;
    let mut failures = Vec::new();
    for path in candidates.iter().take(100) {
        tracing::info!("Reading snapshot {}", path.display());
        match snapshot::read_snapshot(path) {
            Ok(s) => {
                loaded = Some(s);
                break;
            }
            Err(e) => {
                tracing::warn!("problem reading snap file {}: {e}", path.display());
                failures.push(e.to_string());
            }
        }
    }
    if loaded.is_none() && !candidates.is_empty() {
        return Err(StorageError::NoValidSnapshot {
            dir: crate::files::version_dir(data_dir),
            reason: failures.join("; "),
        });
    }
    let (mut tree, mut sessions, snap_path, snap_zxid, mut pending_digest) = match loaded {
        Some(s) => {
            tracing::info!(
                "loaded snapshot {} ({} sessions) in {} ms",
                s.path.display(),
                s.sessions.len(),
                started.elapsed().as_millis()
            );
            let digest = s.digest.filter(|d| d.zxid > 0 && d.zxid >= s.zxid);
            (
                s.tree,
                s.sessions.into_iter().collect::<BTreeMap<_, _>>(),
                Some(s.path),
                Some(s.zxid),
                digest,
            )
        }
        None => {
            if let Some(z) = last_logged_zxid(data_log_dir)? {
                if !opts.trust_empty_snapshot {
                    return Err(StorageError::MissingLog(format!(
                        "no snapshot found in {} but transaction logs up to zxid 0x{z:x} \
                         exist in {}; something is broken (set trust_empty_snapshot only \
                         when upgrading from ZooKeeper before 3.5.3)",
                        crate::files::version_dir(data_dir).display(),
                        crate::files::version_dir(data_log_dir).display()
                    )));
                }
            } else {
                return Ok(Recovered {
                    tree: DataTree::new(),
                    sessions: BTreeMap::new(),
                    last_zxid: 0,
                    snapshot: None,
                    snapshot_zxid: None,
                    txns_replayed: 0,
                    torn_tail_truncated: false,
                    digest_mismatches: 0,
                    fresh: true,
                });
            }
            (DataTree::new(), BTreeMap::new(), None, None, None)
        }
    };
    let mut mismatches = 0u64;
    let base = snap_zxid.unwrap_or(0);
    let check_snapshot_digest = |tree: &DataTree, zxid: i64, pending: &mut Option<ZxidDigest>| {
        if let Some(d) = *pending {
            if d.zxid == zxid {
                if d.digest_version == DIGEST_VERSION && d.digest != tree.digest() {
                    tracing::error!(
                        "digest mismatch at zxid 0x{zxid:x}: snapshot says {}, tree has {}",
                        d.digest,
                        tree.digest()
                    );
                    return true;
                }
                *pending = None;
            }
        }
        false
    };
    if check_snapshot_digest(&tree, base, &mut pending_digest) {
        mismatches += 1;
        pending_digest = None;
    }

    let mut reader = TxnLogReader::open(data_log_dir, base + 1)?;
    let mut last_zxid = base;
    let mut replayed = 0u64;
    let replay_started = Instant::now();
    let mut last_progress = Instant::now();
    let mut reached_limit = false;
    for entry in reader.by_ref() {
        let e = entry?;
        let hdr = &e.header;
        if opts.max_zxid.is_some_and(|max| hdr.zxid > max) {
            reached_limit = true;
            break;
        }
        match &e.body {
            TxnBody::CreateSession(t) if hdr.r#type == op::CREATE_SESSION => {
                sessions.insert(hdr.client_id, t.time_out);
            }
            TxnBody::CloseSession(_) => {
                sessions.remove(&hdr.client_id);
            }
            _ => {}
        }
        let out = tree.apply(hdr, &e.body);
        if out.err != 0 {
            tracing::debug!(
                "Ignoring processTxn failure hdr: {}, error: {}, path: {}",
                hdr.r#type,
                out.err,
                out.path
            );
        }
        if let Some(d) = &e.digest {
            if d.version == DIGEST_VERSION && d.tree_digest != tree.digest() {
                mismatches += 1;
                tracing::error!(
                    "digest mismatch at zxid 0x{:x} ({}:{}): logged {}, tree has {}",
                    hdr.zxid,
                    e.file.display(),
                    e.offset,
                    d.tree_digest,
                    tree.digest()
                );
            }
        }
        if check_snapshot_digest(&tree, hdr.zxid, &mut pending_digest) {
            mismatches += 1;
            pending_digest = None;
        }
        if hdr.zxid > last_zxid {
            last_zxid = hdr.zxid;
        }
        replayed += 1;
        if replayed.is_multiple_of(4096) && last_progress.elapsed().as_secs() >= 5 {
            last_progress = Instant::now();
            tracing::info!(
                "replayed {replayed} txns up to zxid 0x{last_zxid:x} in {} s",
                replay_started.elapsed().as_secs()
            );
        }
    }
    if reached_limit {
        tracing::info!(
            "stopped replaying at zxid 0x{last_zxid:x}: later records are not known to be \
             committed"
        );
    }
    if let Some(d) = pending_digest.filter(|_| !reached_limit) {
        tracing::warn!(
            "Highest txn zxid 0x{last_zxid:x} is not covering the snapshot digest zxid 0x{:x}, \
             which might lead to inconsistent state",
            d.zxid
        );
    }
    let mut torn_tail_truncated = false;
    if let Some(t) = reader.torn_tail().cloned() {
        if opts.read_only {
            tracing::warn!(
                "torn record in {} at byte offset {} left in place (read-only)",
                t.file.display(),
                t.offset
            );
        } else {
            torn_tail_truncated = reader.truncate_torn_tail()?;
        }
    }
    tree.set_last_zxid(last_zxid);
    tracing::info!(
        "{replayed} txns loaded in {} ms; last zxid 0x{last_zxid:x}, {} sessions, {} nodes",
        replay_started.elapsed().as_millis(),
        sessions.len(),
        tree.node_count()
    );
    Ok(Recovered {
        tree,
        sessions,
        last_zxid,
        snapshot: snap_path,
        snapshot_zxid: snap_zxid,
        txns_replayed: replayed,
        torn_tail_truncated,
        digest_mismatches: mismatches,
        fresh: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{write_snapshot, Compression};
    use crate::txnlog::{TxnLogOptions, TxnLogWriter};
    use ensemble_proto::{CreateTxn, Jute, TxnHeader};

    /// Writes creates of `/n<zxid>` at `zxids`, rolling to a new file before each in `rolls`.
    fn write_log(dir: &Path, zxids: &[i64], rolls: &[i64]) {
        let opts = TxnLogOptions {
            pre_alloc_size: 4096,
            force_sync: false,
            ..TxnLogOptions::default()
        };
        let mut log = TxnLogWriter::open(dir, opts).expect("open");
        for &zxid in zxids {
            if rolls.contains(&zxid) {
                log.roll().expect("roll");
            }
            let hdr = TxnHeader {
                client_id: 1,
                cxid: 1,
                zxid,
                time: 0,
                r#type: op::CREATE,
            };
            let txn = CreateTxn {
                path: format!("/n{zxid:x}"),
                data: None,
                acl: Vec::new(),
                ephemeral: false,
                parent_c_version: 0,
            };
            log.append(&hdr, &txn.to_bytes(), None).expect("append");
        }
        log.close().expect("close");
    }

    fn snapshot_at(dir: &Path, zxid: i64) {
        write_snapshot(dir, &DataTree::new(), &[], zxid, Compression::None).expect("snapshot");
    }

    #[test]
    fn recovery_up_to_a_zxid_leaves_later_records_unapplied() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        snapshot_at(dir, 0);
        write_log(dir, &[1, 2, 3, 4, 5], &[4]);
        let r = recover_up_to(dir, dir, Some(3)).expect("recover");
        assert_eq!(r.last_zxid, 3);
        assert_eq!(r.txns_replayed, 3);
        assert_eq!(r.tree.node_count(), DataTree::new().node_count() + 3);
        assert_eq!(recover_up_to(dir, dir, None).expect("all").last_zxid, 5);
        assert_eq!(recover_up_to(dir, dir, Some(0)).expect("none").last_zxid, 0);
    }

    #[test]
    fn a_snapshot_past_the_limit_is_still_loaded() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        snapshot_at(dir, 0);
        write_log(dir, &[1, 2, 3, 4, 5], &[]);
        snapshot_at(dir, 4);
        let r = recover_up_to(dir, dir, Some(2)).expect("recover");
        assert_eq!(r.snapshot_zxid, Some(4));
        assert_eq!(r.last_zxid, 4);
        assert_eq!(r.txns_replayed, 0);
    }

    #[test]
    fn a_jump_in_the_log_that_the_snapshot_covers_is_no_gap() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        snapshot_at(dir, 0);
        // A follower's log: three records, then the records after a snapshot installed from
        // its leader at 0x100000020, in a new file, and a new term.
        let mut zxids = vec![0x1_0000_0001, 0x1_0000_0002, 0x1_0000_0003];
        zxids.extend([0x1_0000_0021, 0x1_0000_0022, 0x2_0000_0001]);
        write_log(dir, &zxids, &[0x1_0000_0021]);
        snapshot_at(dir, 0x1_0000_0020);
        let r = recover(dir, dir).expect("recover");
        assert_eq!(r.snapshot_zxid, Some(0x1_0000_0020));
        assert_eq!(r.last_zxid, 0x2_0000_0001);
        assert_eq!(r.txns_replayed, 3);
        assert_eq!(
            recover_up_to(dir, dir, Some(0x1_0000_0021))
                .expect("recover")
                .last_zxid,
            0x1_0000_0021
        );
        assert_eq!(
            crate::txnlog::last_logged_zxid(dir).expect("last"),
            Some(0x2_0000_0001)
        );

        // Without the snapshot the records are missing: a gap.
        let snapshot = crate::files::version_dir(dir)
            .join(crate::files::snapshot_file_name(0x1_0000_0020, ""));
        std::fs::remove_file(snapshot).expect("rm");
        assert!(matches!(
            recover(dir, dir),
            Err(StorageError::Gap {
                expected: 0x1_0000_0004,
                found: 0x1_0000_0021,
                ..
            })
        ));
    }
}
