//! How long writing a snapshot of a large tree takes (the CPU a snapshot costs beside the
//! request path). The tree is shaped as the bench's `create` workload leaves it: 100-byte
//! values, all children of one parent.
//! `cargo run --release -p ensemble-storage --example snapshot_cost -- 1000000`
use bytes::Bytes;
use ensemble_proto::StatPersisted;
use ensemble_storage::snapshot::{write_snapshot_with, SnapshotOptions};
use ensemble_tree::{open_acl_unsafe, DataTree};
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    // Built as a snapshot is loaded: parents first, every node with ACL list 1.
    let stat = |zxid: i64| StatPersisted {
        czxid: zxid,
        mzxid: zxid,
        pzxid: zxid,
        ..StatPersisted::default()
    };
    let parents = [
        ("".to_string(), None, stat(0)),
        ("/bench".into(), None, stat(1)),
    ];
    let children = (0..n).map(|i| {
        let data = Some(Bytes::from(vec![7u8; 100]));
        (format!("/bench/c-{i:010}"), data, stat(2 + i as i64))
    });
    let nodes = parents
        .into_iter()
        .chain(children)
        .map(|(path, data, stat)| (path, data, 1, stat));
    let tree = DataTree::from_snapshot([(1, open_acl_unsafe())], nodes, 1 + n as i64)
        .expect("a valid tree");
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
