//! `ensemble bench` against the real server: every request workload does the
//! requests it says it did, seen afterwards through an independent client.

mod common;

use common::ServerProc;
use zookeeper_client as zk;

/// Runs the bench at 4 sessions x 8 in flight (over 50 keys unless `--keys`
/// is given) and returns its JSON summary.
fn bench(server: &ServerProc, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--sessions", "4", "--inflight", "8"];
    if !args.contains(&"--keys") {
        all.extend(["--keys", "50"]);
    }
    all.extend(args);
    common::bench_json(server, &all)
}

fn assert_clean(summary: &serde_json::Value, ops: u64) {
    assert_eq!(summary["ops"], ops, "{summary}");
    assert_eq!(summary["errors"], serde_json::json!({}), "{summary}");
}

/// The data versions of the bench's keys, added up: one per setData.
async fn versions(client: &zk::Client) -> i64 {
    let mut total = 0;
    for i in 0..50 {
        let (_, stat) = client
            .get_data(&format!("/bench/k{i}"))
            .await
            .expect("a key");
        total += i64::from(stat.version);
    }
    total
}

async fn children(client: &zk::Client, letter: char) -> usize {
    client
        .list_children("/bench")
        .await
        .expect("children")
        .iter()
        .filter(|c| c.starts_with(letter))
        .count()
}

#[tokio::test]
async fn every_request_workload_does_what_it_counts() {
    let server = ServerProc::start();
    assert_clean(
        &bench(&server, &["--workload", "read", "--ops", "3000"]),
        3000,
    );
    let client = zk::Client::connect(&server.cluster())
        .await
        .expect("connect");
    assert_eq!(versions(&client).await, 0, "reads wrote nothing");

    assert_clean(
        &bench(&server, &["--workload", "write", "--ops", "3000"]),
        3000,
    );
    assert_eq!(versions(&client).await, 3000);

    // A multi is one version check and --multi-ops setData, all applied.
    let summary = bench(
        &server,
        &["--workload", "multi", "--ops", "500", "--multi-ops", "3"],
    );
    assert_clean(&summary, 500);
    assert_eq!(versions(&client).await, 3000 + 1500);

    let summary = bench(
        &server,
        &[
            "--workload",
            "mixed",
            "--ops",
            "4000",
            "--read-ratio",
            "0.5",
        ],
    );
    assert_clean(&summary, 4000);
    let writes = versions(&client).await - 4500;
    assert!(
        (1000..3000).contains(&writes),
        "{writes} of 4000 were writes"
    );

    assert_clean(
        &bench(&server, &["--workload", "create", "--ops", "2500"]),
        2500,
    );
    assert_eq!(children(&client, 'c').await, 2500);

    // delete prepares --keys znodes and deletes every one of them.
    assert_clean(
        &bench(&server, &["--workload", "delete", "--keys", "1200"]),
        1200,
    );
    assert_eq!(children(&client, 'd').await, 0);
}
