//! The one error type of the storage crate: every variant names the file (and
//! where it matters the byte offset) so an operator reads one clear line.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

    #[error("{}: corrupt at byte offset {offset}: {reason}", file.display())]
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },

    #[error("{}: missing transactions: expected zxid 0x{expected:x} at byte offset {offset}, found 0x{found:x}", file.display())]
    Gap {
        file: PathBuf,
        offset: u64,
        expected: i64,
        found: i64,
    },

    #[error("missing transaction log: {0}")]
    MissingLog(String),

    #[error("{}: invalid snapshot: {reason}", file.display())]
    BadSnapshot { file: PathBuf, reason: String },

    #[error("no valid snapshot in {}: {reason}", dir.display())]
    NoValidSnapshot { dir: PathBuf, reason: String },

    #[error("{0}")]
    Invalid(String),
}

impl StorageError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> StorageError {
        StorageError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Attaches a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T, StorageError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T, StorageError> {
        self.map_err(|e| StorageError::io(path, e))
    }
}
