//! Retention, as ZooKeeper's `PurgeTxnLog` (autopurge and `zkCleanup.sh`):
//! keep the newest `retain` valid snapshots (at least 3) and every log file
//! that may hold txns after the oldest kept snapshot (the last log starting
//! at or before its zxid, and all later ones); remove older snapshots and
//! logs. Files whose names do not parse are left alone, except our own
//! leftover `snapshot.tmp.*` files, which are removed.

use crate::error::{IoContext, StorageError};
use crate::files::{self, LOG_PREFIX, SNAPSHOT_PREFIX};
use crate::snapshot::find_valid_snapshots;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub removed_snapshots: Vec<PathBuf>,
    pub removed_logs: Vec<PathBuf>,
    /// The zxid of the oldest snapshot kept, when there was one to keep.
    pub oldest_kept_zxid: Option<i64>,
}

/// Purges `data_dir/version-2` and `data_log_dir/version-2`.
pub fn purge(
    data_dir: &Path,
    data_log_dir: &Path,
    retain: usize,
) -> Result<PurgeReport, StorageError> {
    if retain < 3 {
        return Err(StorageError::Invalid(
            "snapRetainCount must be at least 3".into(),
        ));
    }
    let mut report = PurgeReport::default();
    let snap_dir = files::version_dir(data_dir);
    let log_dir = files::version_dir(data_log_dir);
    remove_temp_snapshots(&snap_dir, &mut report)?;
    let valid = find_valid_snapshots(data_dir)?;
    if valid.is_empty() {
        return Ok(report);
    }
    let oldest_kept = &valid[valid.len().min(retain) - 1];
    let name = oldest_kept
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let Some(least) = files::zxid_from_name(name, SNAPSHOT_PREFIX) else {
        return Ok(report);
    };
    report.oldest_kept_zxid = Some(least);
    let logs = files::list_files(&log_dir, LOG_PREFIX)?;
    let kept_logs = files::logs_covering(&logs, least);
    for (z, p) in &logs {
        if *z < least && !kept_logs.iter().any(|k| &k.1 == p) {
            tracing::info!("Removing file: {}", p.display());
            crate::fs::remove_file(p).at(p)?;
            report.removed_logs.push(p.clone());
        }
    }
    for (z, p) in files::list_files(&snap_dir, SNAPSHOT_PREFIX)? {
        if z < least {
            tracing::info!("Removing file: {}", p.display());
            crate::fs::remove_file(&p).at(&p)?;
            report.removed_snapshots.push(p);
        }
    }
    Ok(report)
}

fn remove_temp_snapshots(dir: &Path, report: &mut PurgeReport) -> Result<(), StorageError> {
    let Ok(rd) = crate::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in rd {
        let entry = entry.at(dir)?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("snapshot.tmp."))
        {
            let p = entry.path();
            crate::fs::remove_file(&p).at(&p)?;
            report.removed_snapshots.push(p);
        }
    }
    Ok(())
}
