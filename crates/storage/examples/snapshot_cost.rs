//! How long writing a snapshot of a large tree takes (the CPU a snapshot costs beside the
//! request path). The tree is shaped as the bench's `create` workload leaves it: 100-byte
//! values, all children of one parent.
//! `cargo run --release -p ensemble-storage --example snapshot_cost -- 1000000`
use bytes::Bytes;
use ensemble_proto::{op, CreateTxn, TxnHeader};
use ensemble_storage::snapshot::{write_snapshot_with, SnapshotOptions};
use ensemble_tree::{open_acl_unsafe, DataTree, TxnBody};
use std::time::Instant;

/// The txn that creates `path` at `zxid`, as prep makes it for a client's create.
fn create(path: String, data: Option<Bytes>, zxid: i64) -> (TxnHeader, TxnBody) {
    let txn = CreateTxn {
        path,
        data,
        acl: open_acl_unsafe(),
        ephemeral: false,
        parent_c_version: -1,
    };
    let header = TxnHeader {
        client_id: 1,
        cxid: zxid as i32,
        zxid,
        time: 1,
        r#type: op::CREATE,
    };
    (header, TxnBody::Create(txn))
}

fn main() {
    let arg = std::env::args().nth(1);
    let n: usize = arg
        .map_or(Ok(1_000_000), |a| a.parse())
        .expect("a count of znodes");
    // Built by applying creates, as a running server's tree is (a tree loaded from a
    // snapshot lies in memory in the file's order, and walks faster).
    let mut tree = DataTree::new();
    let txns = std::iter::once(create("/bench".into(), None, 1)).chain((0..n).map(|i| {
        let data = Some(Bytes::from(vec![7u8; 100]));
        create(format!("/bench/c-{i:010}"), data, 2 + i as i64)
    }));
    for (header, txn) in txns {
        tree.apply(&header, &txn);
    }
    let dir = std::env::temp_dir().join(format!("snapshot-cost-{}", std::process::id()));
    let opts = SnapshotOptions {
        fsync: false,
        ..SnapshotOptions::default()
    };
    for _ in 0..3 {
        let t = Instant::now();
        let mut sum = 0usize;
        tree.visit_parents_first(|p, n| {
            sum += p.len()
                + n.data
                    .as_ref()
                    .map_or(0, |d| d.first().copied().unwrap_or(0) as usize)
        });
        println!(
            "walk of the tree alone: {} ms ({sum} bytes of paths and first data bytes)",
            t.elapsed().as_millis()
        );
        let t = Instant::now();
        let path = write_snapshot_with(&dir, &tree, &[], tree.last_zxid(), &opts)
            .expect("snapshot written");
        let took = t.elapsed();
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!(
            "{} nodes: snapshot of {} MB written in {} ms ({} ns a node)",
            tree.node_count(),
            bytes >> 20,
            took.as_millis(),
            took.as_nanos() / tree.node_count().max(1) as u128
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
