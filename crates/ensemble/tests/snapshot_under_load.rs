//! Snapshots written while writes keep coming hold the tree exactly as it was at
//! their zxid: the server copies the tree out a part at a time, between writes,
//! and each file's nodes must add up to the digest the tree had at that zxid,
//! which the file records. A node changed during the copy and written as it was
//! after the change would not.

mod common;

use common::ServerProc;

fn bench(server: &ServerProc, args: &[&str]) {
    let mut all = vec![
        "--sessions",
        "16",
        "--inflight",
        "16",
        "--value-size",
        "100",
    ];
    all.extend(args);
    let summary = common::bench_json(server, &all);
    assert_eq!(summary["errors"], serde_json::json!({}), "{summary}");
}

#[test]
fn snapshots_taken_under_load_hold_exactly_their_zxid() {
    // A snapshot after every 1 MB of log or so, whatever the tree's size.
    let server = ServerProc::start_with("snapSizeLimitInKb=2048\nsnapCount=1000000000\n");
    bench(&server, &["--workload", "populate", "--ops", "150000"]);
    bench(
        &server,
        &["--workload", "write", "--keys", "5000", "--duration", "2"],
    );
    bench(&server, &["--workload", "delete", "--keys", "60000"]);
    let dir = server.data_dir().join("version-2");
    let mut checked = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("version-2")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snapshot.") && !n.contains(".tmp"))
        })
        .collect();
    names.sort();
    for path in names {
        let snap = ensemble_storage::read_snapshot(&path).expect("a snapshot that reads back");
        let Some(digest) = snap.digest.filter(|d| d.zxid > 0) else {
            continue;
        };
        assert_eq!(digest.zxid, snap.zxid, "{}", path.display());
        assert_eq!(
            digest.digest,
            snap.tree.digest(),
            "{}: the nodes add up to another digest than the tree had at its zxid",
            path.display()
        );
        assert_eq!(snap.tree.compute_digest(), snap.tree.digest());
        checked.push(snap.tree.node_count());
    }
    // Several, and at least one of a tree large enough that its copy spans
    // many writes.
    assert!(checked.len() >= 3, "snapshots of {checked:?} nodes");
    assert!(
        checked.iter().any(|n| *n > 100_000),
        "snapshots of {checked:?} nodes"
    );
}
