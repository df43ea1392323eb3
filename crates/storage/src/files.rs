//! File naming shared by logs and snapshots (`persistence.Util`): a prefix, a
//! dot, the zxid in lower-case hex without padding (`Long.toHexString`), and
//! for snapshots an optional compression suffix. Files sort by that zxid, not
//! by name.

use crate::error::{IoContext, StorageError};
use std::path::{Path, PathBuf};

/// The subdirectory of `dataDir` and `dataLogDir` holding format version 2.
pub const VERSION_DIR: &str = "version-2";
pub const LOG_PREFIX: &str = "log";
pub const SNAPSHOT_PREFIX: &str = "snapshot";

/// `dir/version-2`.
pub fn version_dir(dir: &Path) -> PathBuf {
    dir.join(VERSION_DIR)
}

/// `log.<hex zxid>` (`Util.makeLogName`).
pub fn log_file_name(zxid: i64) -> String {
    format!("{LOG_PREFIX}.{:x}", zxid)
}

/// `snapshot.<hex zxid><suffix>` (`Util.makeSnapshotName`); `suffix` is "",
/// ".gz" or ".snappy".
pub fn snapshot_file_name(zxid: i64, suffix: &str) -> String {
    format!("{SNAPSHOT_PREFIX}.{:x}{suffix}", zxid)
}

/// `Util.getZxidFromName`: the hex after `prefix.`, up to the next dot.
/// Java parses it as a signed long, so a name with a leading '-' parses too;
/// sixteen hex digits above 0x7fff... do not.
pub fn zxid_from_name(name: &str, prefix: &str) -> Option<i64> {
    let mut parts = name.split('.');
    if parts.next()? != prefix {
        return None;
    }
    let hex = parts.next()?;
    if hex.is_empty() {
        return None;
    }
    i64::from_str_radix(hex, 16).ok()
}

/// Files of `dir` named `prefix.<hex>...`, sorted by zxid ascending. A
/// missing directory lists as empty.
pub fn list_files(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf)>, StorageError> {
    let rd = match crate::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StorageError::io(dir, e)),
    };
    let mut v = Vec::new();
    for entry in rd {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(z) = zxid_from_name(name, prefix) {
            if entry.file_type().at(&entry.path())?.is_file() {
                v.push((z, entry.path()));
            }
        }
    }
    // Equal zxids (snapshot.5 and snapshot.5.gz) keep a stable order by name.
    v.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    Ok(v)
}

/// `FileTxnLog.getLogFiles`: the log files that may hold txns after
/// `zxid`: the last one starting at or before `zxid`, and all later ones.
pub fn logs_covering(files: &[(i64, PathBuf)], zxid: i64) -> Vec<(i64, PathBuf)> {
    let mut start = 0;
    for (f, _) in files {
        if *f > zxid {
            break;
        }
        if *f > start {
            start = *f;
        }
    }
    files.iter().filter(|(f, _)| *f >= start).cloned().collect()
}

/// fsyncs a directory so that a rename or a new file in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    crate::fs::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unpadded_lower_hex() {
        assert_eq!(log_file_name(0x1_0000_00ab), "log.1000000ab");
        assert_eq!(snapshot_file_name(0, ".gz"), "snapshot.0.gz");
        assert_eq!(zxid_from_name("snapshot.1f.snappy", "snapshot"), Some(0x1f));
        assert_eq!(zxid_from_name("log.zz", "log"), None);
        assert_eq!(zxid_from_name("tmp.snapshot.1", "snapshot"), None);
    }

    #[test]
    fn logs_covering_starts_at_the_last_file_before_the_zxid() {
        let f = |z: i64| (z, PathBuf::from(format!("log.{z:x}")));
        let files = vec![f(1), f(10), f(20), f(30)];
        let zs = |v: Vec<(i64, PathBuf)>| v.into_iter().map(|x| x.0).collect::<Vec<_>>();
        assert_eq!(zs(logs_covering(&files, 15)), vec![10, 20, 30]);
        assert_eq!(zs(logs_covering(&files, 20)), vec![20, 30]);
        assert_eq!(zs(logs_covering(&files, 0)), vec![1, 10, 20, 30]);
    }
}
