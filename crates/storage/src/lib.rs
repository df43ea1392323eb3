//! ZooKeeper's on-disk formats, byte for byte, so that a data directory moves
//! between Apache ZooKeeper and Ensemble in both directions. Plain std I/O, no
//! networking, no async.
//!
//! - [`txnlog`]: `dataLogDir/version-2/log.<zxid>` writer and reader (`FileTxnLog`).
//! - [`snapshot`]: `dataDir/version-2/snapshot.<zxid>[.gz|.snappy]` (`FileSnap`, `SnapStream`).
//! - [`recovery`]: newest valid snapshot plus log replay (`FileTxnSnapLog.restore`).
//! - [`purge`]: retention of old snapshots and logs (`PurgeTxnLog`).
//! - [`dump`]: the text of `TxnLogToolkit` and `SnapshotFormatter`.
//!
//! Every function taking a directory takes the directory the user configured
//! (`dataDir` or `dataLogDir`); the files live in its `version-2`
//! subdirectory, as in ZooKeeper.
//!
//! The intended call sequence for a server:
//!
//! 1. Startup: [`recover`] gives the tree, the sessions and the last zxid;
//!    when [`Recovered::fresh`] is set, write `snapshot.0` with
//!    [`write_snapshot`] as ZooKeeper does for an empty database.
//! 2. Per batch of committed txns: [`TxnLogWriter::append`] each, then one
//!    [`TxnLogWriter::commit`] (group commit), then acknowledge.
//! 3. After each append, [`SnapshotTrigger::record_append`]; when
//!    [`SnapshotTrigger::should_snapshot`] says so: [`TxnLogWriter::roll`],
//!    [`SnapshotTrigger::reset`], and write a snapshot of a copy of the tree
//!    (`DataTree::begin_capture`) on a background thread ([`write_snapshot`]
//!    only needs `&DataTree`).
//! 4. Periodically (autopurge), [`purge`] with the retain count.

pub mod dump;
pub mod error;
pub mod files;
pub mod fs;
pub mod purge;
pub mod recovery;
mod snappy;
pub mod snapshot;
pub mod txnlog;

pub use error::StorageError;
pub use files::{log_file_name, snapshot_file_name, version_dir, VERSION_DIR};
pub use purge::{purge, PurgeReport};
pub use recovery::{recover, recover_up_to, recover_with, RecoverOptions, Recovered};
pub use snapshot::{
    find_valid_snapshots, read_snapshot, write_snapshot, write_snapshot_with, Compression,
    SnapshotData, SnapshotOptions, ZxidDigest,
};
pub use txnlog::{LogEntry, SnapshotTrigger, TornTail, TxnLogOptions, TxnLogReader, TxnLogWriter};
