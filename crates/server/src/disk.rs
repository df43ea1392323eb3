//! The data directories' room to write. A txn log that cannot be written stops the
//! member (a Raft log write that fails is fatal), so the server refuses client writes
//! before that happens: while dataDir or dataLogDir has less free space than
//! `ensemble.minFreeDiskSpaceMb`, or sits on a read-only file system, client writes are
//! answered NotReadOnly without reaching the log and reads are still served. When space
//! returns (or the file system is writable again) writes are accepted again. Sessions
//! still open, close and expire meanwhile: their txns are small and the margin is for
//! them and for snapshots.
//!
//! ZooKeeper has no such check: its log writer fails on a full disk and the server exits.

use crate::Shared;
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// How often the directories are looked at.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// Whether client writes are refused now, and why.
#[derive(Default)]
pub struct DiskGuard {
    refusing: AtomicBool,
    why: Mutex<Option<String>>,
}

impl DiskGuard {
    /// True while client writes are refused.
    pub fn refusing(&self) -> bool {
        self.refusing.load(Ordering::Acquire)
    }

    /// Why writes are refused, if they are.
    pub fn reason(&self) -> Option<String> {
        self.why.lock().clone()
    }

    /// Records the latest look; logs each change once.
    fn update(&self, verdict: Option<String>) {
        let mut why = self.why.lock();
        if *why == verdict {
            return;
        }
        match (&*why, &verdict) {
            (_, Some(now)) => warn!("refusing client writes: {now}"),
            (Some(_), None) => {
                info!("accepting client writes again: the data directories have room")
            }
            (None, None) => {}
        }
        self.refusing.store(verdict.is_some(), Ordering::Release);
        *why = verdict;
    }
}

/// The directories to watch, each once, with the key that names it.
fn watched(shared: &Shared) -> Vec<(&'static str, PathBuf)> {
    let data = shared.config.data_dir.clone();
    let log = shared.config.txn_log_dir().to_path_buf();
    let mut dirs = vec![("dataDir", data.clone())];
    if log != data {
        dirs.push(("dataLogDir", log));
    }
    dirs
}

/// Looks at the directories once and records the verdict.
pub fn look(shared: &Shared) {
    let min = shared.config.min_free_disk_space;
    let verdict = watched(shared)
        .iter()
        .find_map(|(key, dir)| check(key, dir, min));
    shared.disk.update(verdict);
}

/// Looks at the directories every [`CHECK_INTERVAL`] for as long as the server runs.
pub async fn disk_task(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(CHECK_INTERVAL).await;
        let shared = shared.clone();
        let _ = tokio::task::spawn_blocking(move || look(&shared)).await;
    }
}

/// Why `dir` cannot take writes now, or None when it can.
pub fn check(key: &str, dir: &Path, min_free: u64) -> Option<String> {
    let fs = match space(dir) {
        Ok(fs) => fs,
        Err(e) => return Some(format!("{key} {}: {e}", dir.display())),
    };
    if fs.read_only {
        return Some(format!(
            "{key} {} is on a read-only file system",
            dir.display()
        ));
    }
    if min_free > 0 && fs.free < min_free {
        return Some(format!(
            "{key} {} has {} free, less than ensemble.minFreeDiskSpaceMb ({})",
            dir.display(),
            megabytes(fs.free),
            megabytes(min_free)
        ));
    }
    None
}

/// Why a process cannot write in `dir` (a read-only file system, no permission), or
/// None when it can.
pub fn unwritable(dir: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: access reads a valid C string.
    if unsafe { libc::access(path.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        return Some(std::io::Error::last_os_error().to_string());
    }
    None
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

struct Space {
    /// Bytes an unprivileged process may still write.
    free: u64,
    read_only: bool,
}

fn space(dir: &Path) -> std::io::Result<Space> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path holds a NUL byte"))?;
    // SAFETY: statvfs writes into the zeroed struct it is given and reads a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Space {
        free: (st.f_bavail as u64).saturating_mul(st.f_frsize as u64),
        read_only: st.f_flag & libc::ST_RDONLY != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_directory_with_room_passes_and_a_huge_minimum_does_not() {
        let dir = std::env::temp_dir();
        assert_eq!(check("dataDir", &dir, 1), None);
        let why = check("dataDir", &dir, u64::MAX).expect("refused");
        assert!(why.starts_with("dataDir "), "{why}");
        assert!(
            why.contains("less than ensemble.minFreeDiskSpaceMb"),
            "{why}"
        );
    }

    #[test]
    fn a_missing_directory_is_reported_with_its_key() {
        let why = check(
            "dataLogDir",
            Path::new("/nonexistent/ensemble-disk-test"),
            0,
        )
        .expect("refused");
        assert!(
            why.starts_with("dataLogDir /nonexistent/ensemble-disk-test: "),
            "{why}"
        );
    }

    #[test]
    fn the_guard_refuses_until_the_reason_goes() {
        let guard = DiskGuard::default();
        assert!(!guard.refusing());
        guard.update(Some("full".into()));
        assert!(guard.refusing());
        assert_eq!(guard.reason().as_deref(), Some("full"));
        guard.update(None);
        assert!(!guard.refusing());
        assert_eq!(guard.reason(), None);
    }
}
