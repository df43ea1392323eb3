//! The txn log reader and recovery over one log file of arbitrary bytes.
//! Every outcome must be a value or a `StorageError`: no panic, no
//! allocation larger than the file.
//!
//! Byte 0: bit 0 set means the rest is the whole file as is; clear means the
//! rest is a list of `u16 length | entry` that the harness writes as records
//! with valid checksums after a valid header (so that mutations reach the
//! txn decoders and the replay into the tree); bit 1 names the file
//! `log.100000001` instead of `log.1`.
#![no_main]

use ensemble_storage::txnlog::last_logged_zxid;
use ensemble_storage::{dump, recover_with, RecoverOptions, TxnLogReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let dir = ensemble_fuzz::scratch_dir();
    let data_dir = dir.join("data");
    let log_dir = dir.join("log");
    ensemble_fuzz::fresh_version_dir(&data_dir);
    let version = ensemble_fuzz::fresh_version_dir(&log_dir);
    let file = if mode & 1 == 1 {
        rest.to_vec()
    } else {
        ensemble_fuzz::log_file_from_entries(rest)
    };
    let name = if mode & 2 == 0 {
        "log.1"
    } else {
        "log.100000001"
    };
    let path = version.join(name);
    std::fs::write(&path, &file).expect("write the log file");

    // The reader as the dump tool and startup use it.
    let _ = dump::verify_txn_log(&path);
    let _ = dump::dump_txn_log(&path, &mut std::io::sink());
    if let Ok(reader) = TxnLogReader::open(&log_dir, 0) {
        for entry in reader {
            match entry {
                Ok(e) => assert_eq!(e.body.txn_type(), e.header.r#type),
                Err(_) => break,
            }
        }
    }
    let _ = last_logged_zxid(&log_dir);

    // Recovery without a snapshot replays the txns onto an empty tree; it may
    // cut a torn tail off the file, so it runs last.
    let opts = RecoverOptions {
        trust_empty_snapshot: true,
        ..RecoverOptions::default()
    };
    let _ = recover_with(&data_dir, &log_dir, &opts);
});
