//! How long a copy of a large tree takes: the write stall of a snapshot.
//! `cargo run --release -p ensemble-tree --example clone_cost -- 1000000`
use bytes::Bytes;
use ensemble_proto::{CreateTxn, TxnHeader};
use ensemble_tree::{open_acl_unsafe, DataTree, TxnBody};
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut tree = DataTree::new();
    let parents = 1000;
    let mut zxid = 1;
    let mut create = |tree: &mut DataTree, path: String, data: Option<Bytes>| {
        let hdr = TxnHeader {
            client_id: 1,
            cxid: 0,
            zxid,
            time: 1,
            r#type: 1,
        };
        zxid += 1;
        let txn = CreateTxn {
            path,
            data,
            acl: open_acl_unsafe(),
            ephemeral: false,
            parent_c_version: -1,
        };
        tree.apply(&hdr, &TxnBody::Create(txn));
    };
    for p in 0..parents {
        create(&mut tree, format!("/p{p}"), None);
    }
    for i in 0..n {
        let data = Some(Bytes::from(vec![7u8; 100]));
        create(&mut tree, format!("/p{}/n{i}", i % parents), data);
    }
    for _ in 0..3 {
        let t = Instant::now();
        let copy = tree.clone();
        let took = t.elapsed();
        println!(
            "{} nodes: clone took {} ms",
            copy.node_count(),
            took.as_millis()
        );
    }
}
