//! What the copy of a large tree for a snapshot costs the writes: a capture
//! begins under the tree's write lock and copies a part of the node map per
//! hold of its read lock, so the longest of those holds is the longest a write
//! waits for it. A plain copy of the whole tree is shown beside it.
//! `cargo run --release -p ensemble-tree --example clone_cost -- 1000000`
use bytes::Bytes;
use ensemble_proto::{CreateTxn, TxnHeader};
use ensemble_tree::{open_acl_unsafe, DataTree, TxnBody};
use std::time::{Duration, Instant};

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
        let mut capture = tree.begin_capture();
        let begin = t.elapsed();
        let (mut steps, mut longest) = (0, Duration::ZERO);
        loop {
            let step = Instant::now();
            let done = tree.capture_step(&mut capture).expect("the same tree");
            longest = longest.max(step.elapsed());
            steps += 1;
            if done {
                break;
            }
        }
        let copy = capture.finish();
        let captured = t.elapsed();
        let t = Instant::now();
        let plain = tree.clone();
        let cloned = t.elapsed();
        println!(
            "{} nodes: capture {} ms in all, begun in {} us, {steps} steps of at most {} us; a plain copy {} ms",
            copy.node_count(),
            captured.as_millis(),
            begin.as_micros(),
            longest.as_micros(),
            cloned.as_millis(),
        );
        drop(plain);
    }
}
