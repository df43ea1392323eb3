//! The txn log reader and recovery over log files of arbitrary bytes.
//! Every outcome must be a value or a `StorageError`: no panic, no
//! allocation larger than the file.
//!
//! Byte 0 is a set of flags:
//! - bit 0 set: each file is the bytes as they are; clear: the bytes are a
//!   list of `u16 length | entry` that the harness writes as records with
//!   valid checksums after a valid header (so that mutations reach the txn
//!   decoders and the replay into the tree);
//! - bit 1: the first file is `log.100000001` instead of `log.1`;
//! - bit 2: two files: bytes 1-2 (big-endian) say where the rest is split,
//!   byte 3 names the second file `log.<1 + byte 3>` in the first file's
//!   epoch (so it may start before, inside or after the first file's txns);
//! - bit 3: recovery starts from an empty snapshot at zxid byte 4 of that
//!   epoch instead of from no snapshot.
#![no_main]

use ensemble_storage::txnlog::last_logged_zxid;
use ensemble_storage::{
    dump, recover_with, write_snapshot_with, RecoverOptions, SnapshotOptions, TxnLogReader,
};
use ensemble_tree::DataTree;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let two_files = mode & 4 != 0;
    let with_snapshot = mode & 8 != 0;
    let mut params = [0u8; 4];
    if two_files || with_snapshot {
        if rest.len() < 4 {
            return;
        }
        params.copy_from_slice(&rest[..4]);
        rest = &rest[4..];
    }
    let epoch: i64 = if mode & 2 == 0 { 0 } else { 1 << 32 };
    let build = |bytes: &[u8]| {
        if mode & 1 == 1 {
            bytes.to_vec()
        } else {
            ensemble_fuzz::log_file_from_entries(bytes)
        }
    };

    let dir = ensemble_fuzz::scratch_dir();
    let data_dir = dir.join("data");
    let log_dir = dir.join("log");
    ensemble_fuzz::fresh_version_dir(&data_dir);
    let version = ensemble_fuzz::fresh_version_dir(&log_dir);
    let mut files = Vec::new();
    if two_files {
        let split = (u16::from_be_bytes([params[0], params[1]]) as usize).min(rest.len());
        let second = epoch + 1 + params[2] as i64;
        files.push((epoch + 1, build(&rest[..split])));
        files.push((second, build(&rest[split..])));
    } else {
        files.push((epoch + 1, build(rest)));
    }
    for (zxid, bytes) in &files {
        let path = version.join(ensemble_storage::log_file_name(*zxid));
        std::fs::write(&path, bytes).expect("write a log file");
    }
    if with_snapshot {
        let zxid = epoch + params[3] as i64;
        let opts = SnapshotOptions {
            fsync: false,
            ..SnapshotOptions::default()
        };
        write_snapshot_with(&data_dir, &DataTree::new(), &[], zxid, &opts)
            .expect("write a snapshot");
    }

    // The reader as the dump tool and startup use it.
    for (zxid, _) in &files {
        let path = version.join(ensemble_storage::log_file_name(*zxid));
        let _ = dump::verify_txn_log(&path);
        let _ = dump::dump_txn_log(&path, &mut std::io::sink());
    }
    if let Ok(reader) = TxnLogReader::open(&log_dir, 0) {
        for entry in reader {
            match entry {
                Ok(e) => assert_eq!(e.body.txn_type(), e.header.r#type),
                Err(_) => break,
            }
        }
    }
    let _ = last_logged_zxid(&log_dir);

    // Recovery replays the txns into the tree; it may cut a torn tail off
    // the newest file, so it runs last.
    let opts = RecoverOptions {
        trust_empty_snapshot: true,
        ..RecoverOptions::default()
    };
    let _ = recover_with(&data_dir, &log_dir, &opts);
});
