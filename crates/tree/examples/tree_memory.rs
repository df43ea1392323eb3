//! The data tree's own memory: builds a tree of N znodes of 100 bytes under one parent (as a
//! snapshot load does) and prints the process's resident memory before and after. The names
//! are as long as those of `ensemble bench --workload populate` (`p<16 hex digits>-<n>`), and
//! the allocator is the server's.
//!
//! ```text
//! cargo run --release -p ensemble-tree --example tree_memory [N]
//! ```

use bytes::Bytes;
use ensemble_proto::{Acl, StatPersisted};
use ensemble_tree::DataTree;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rss_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N is a number"))
        .unwrap_or(1_000_000);
    let before = rss_kib("VmRSS:");
    let mut nodes = vec![
        ("/".to_string(), None, -1i64, StatPersisted::default()),
        ("/bench".to_string(), None, -1, StatPersisted::default()),
    ];
    for i in 0..n {
        let data = Some(Bytes::from(vec![7u8; 100]));
        nodes.push((
            format!("/bench/p18ee8052a583cd22-{i}"),
            data,
            -1,
            StatPersisted::default(),
        ));
    }
    let tree = DataTree::from_snapshot(Vec::<(i64, Vec<Acl>)>::new(), nodes, 5).expect("tree");
    let after = rss_kib("VmRSS:");
    println!(
        "{} znodes: RSS {} KiB before, {} KiB after, {:.0} bytes per znode (peak {} KiB)",
        tree.node_count(),
        before,
        after,
        (after - before) as f64 * 1024.0 / n as f64,
        rss_kib("VmHWM:")
    );
}
