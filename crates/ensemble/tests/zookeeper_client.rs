//! The independent zookeeper-client crate against the real `ensemble` binary
//! over TCP: an implementation of the protocol that shares no code with ours.

mod common;

use common::ServerProc;
use std::time::Duration;
use zookeeper_client as zk;

#[tokio::test]
async fn crud_watches_and_multi_work_through_an_independent_client() {
    let server = ServerProc::start();
    let client = zk::Client::connect(&server.cluster())
        .await
        .expect("connect");
    let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());

    let (_, exists_watch) = client.check_and_watch_stat("/abc").await.expect("exists");
    let (stat, _) = client.create("/abc", b"data", &open).await.expect("create");
    assert_eq!(stat.version, 0);
    assert_eq!(stat.czxid, stat.mzxid);
    let event = exists_watch.changed().await;
    assert_eq!(event.event_type, zk::EventType::NodeCreated);
    assert_eq!(event.path, "/abc");

    let (data, got) = client.get_data("/abc").await.expect("get");
    assert_eq!((data.as_slice(), got), (&b"data"[..], stat));

    let (_, _, child_watch) = client
        .get_and_watch_children("/abc")
        .await
        .expect("children");
    let seq = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
    let (_, n) = client
        .create("/abc/e-", b"", &seq)
        .await
        .expect("create seq");
    assert_eq!(n.into_i64(), 0);
    let event = child_watch.changed().await;
    assert_eq!(event.event_type, zk::EventType::NodeChildrenChanged);

    let stat2 = client.set_data("/abc", b"new", Some(0)).await.expect("set");
    assert_eq!(stat2.version, 1);
    assert!(matches!(
        client.set_data("/abc", b"x", Some(0)).await,
        Err(zk::Error::BadVersion)
    ));
    assert!(matches!(
        client.delete("/abc", None).await,
        Err(zk::Error::NotEmpty)
    ));
    assert!(matches!(
        client.create("/abc/e-0000000000/x", b"", &open).await,
        Err(zk::Error::NoChildrenForEphemerals)
    ));

    let mut w = client.new_multi_writer();
    w.add_create("/m", b"", &open).expect("op");
    w.add_set_data("/m", b"1", Some(0)).expect("op");
    w.add_check_version("/m", 1).expect("op");
    let results = w.commit().await.expect("multi");
    assert_eq!(results.len(), 3);

    let mut w = client.new_multi_writer();
    w.add_create("/m2", b"", &open).expect("op");
    w.add_check_version("/m", 7).expect("op");
    assert!(w.commit().await.is_err());
    assert_eq!(client.check_stat("/m2").await.expect("exists"), None);

    client.sync("/").await.expect("sync");
    let mut children = client.list_children("/").await.expect("ls");
    children.sort();
    assert_eq!(children, vec!["abc", "m", "zookeeper"]);
}

#[tokio::test]
async fn ephemerals_vanish_when_the_session_closes() {
    let server = ServerProc::start();
    let a = zk::Client::connect(&server.cluster())
        .await
        .expect("connect");
    let b = zk::Client::connect(&server.cluster())
        .await
        .expect("connect");
    let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
    a.create("/session-node", b"", &eph).await.expect("create");
    let (_, watch) = b
        .check_and_watch_stat("/session-node")
        .await
        .expect("exists");
    drop(a);
    let event = tokio::time::timeout(Duration::from_secs(10), watch.changed())
        .await
        .expect("deleted event within the timeout");
    assert_eq!(event.event_type, zk::EventType::NodeDeleted);
    assert_eq!(b.check_stat("/session-node").await.expect("exists"), None);
}
