//! The snapshot reader (and the dump tool and recovery above it) over one
//! snapshot file of arbitrary bytes, plain, gzip or snappy-java. Every
//! outcome must be a value or a `StorageError`: no panic, no allocation
//! out of proportion to the file.
//!
//! Byte 0 picks the file: 0 the rest as `snapshot.<zxid>`; 1 and 2 the rest
//! as `.gz` and `.snappy` files as they are; 3 and 4 the rest compressed by
//! the harness into `.gz` and `.snappy` (so that mutations of the stream
//! reach the parser behind the compression); 5 the rest as the stream up to
//! its first seal, which the harness appends with the right checksum (so
//! that mutated nodes reach the tree and recovery).
#![no_main]

use ensemble_storage::{dump, find_valid_snapshots, recover, snapshot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = ensemble_fuzz::scratch_dir();
    let data_dir = dir.join("data");
    let log_dir = dir.join("log");
    let version = ensemble_fuzz::fresh_version_dir(&data_dir);
    ensemble_fuzz::fresh_version_dir(&log_dir);
    let (suffix, file) = match mode % 6 {
        0 => ("", rest.to_vec()),
        5 => ("", ensemble_fuzz::sealed(rest)),
        1 => (".gz", rest.to_vec()),
        2 => (".snappy", rest.to_vec()),
        3 => (".gz", ensemble_fuzz::gzip(rest)),
        _ => (".snappy", ensemble_fuzz::snappy_java(rest)),
    };
    let path = version.join(format!("snapshot.100000002{suffix}"));
    std::fs::write(&path, &file).expect("write the snapshot file");

    let _ = snapshot::is_valid_snapshot(&path);
    let _ = find_valid_snapshots(&data_dir);
    if dump::dump_snapshot(&path, true, &mut std::io::sink()).is_ok() {
        // A snapshot that reads also loads through recovery.
        let _ = recover(&data_dir, &log_dir);
    }
});
