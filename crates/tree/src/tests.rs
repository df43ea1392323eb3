//! Whole-path tests: requests through prep, txns through apply, checked
//! against what ZooKeeper 3.8 answered to the same sequence (kazoo).

use crate::*;
use bytes::Bytes;
use ensemble_proto::{
    event_type, op, perms, Acl, CheckVersionRequest, CreateRequest, CreateTtlRequest,
    DeleteRequest, ErrorCode, Id, Jute, MultiHeader, SetAclRequest, SetDataRequest, Stat,
    TxnHeader, Writer,
};

const SESSION: i64 = 0x100_0000_0000_0001;
const OTHER: i64 = 0x100_0000_0000_0002;

fn world() -> Vec<Acl> {
    open_acl_unsafe()
}

fn ip_auth() -> Vec<Id> {
    vec![Id {
        scheme: "ip".into(),
        id: "127.0.0.1".into(),
    }]
}

/// A server in miniature: prep, then apply with the next zxid.
struct Zk {
    tree: DataTree,
    prep: Prep,
    zxid: i64,
    auth: Vec<Id>,
}

impl Zk {
    fn new() -> Zk {
        Zk {
            tree: DataTree::new(),
            prep: Prep::new(PrepOptions {
                extended_types_enabled: true,
                ..PrepOptions::default()
            }),
            zxid: 0,
            auth: ip_auth(),
        }
    }

    fn prepare(&mut self, session: i64, opcode: i32, body: &[u8]) -> PreparedTxn {
        let auth = self.auth.clone();
        self.prep
            .prep(&self.tree, session, opcode, body, &auth, 1000 + self.zxid)
    }

    fn commit(&mut self, session: i64, p: &PreparedTxn) -> ApplyOutcome {
        self.zxid += 1;
        let hdr = TxnHeader {
            client_id: session,
            cxid: 1,
            zxid: self.zxid,
            time: 1000 + self.zxid,
            r#type: p.txn_type,
        };
        let out = self.tree.apply(&hdr, &p.body);
        self.prep.applied(p.seq);
        out
    }

    fn run_as(&mut self, session: i64, opcode: i32, body: &[u8]) -> ApplyOutcome {
        let p = self.prepare(session, opcode, body);
        self.commit(session, &p)
    }

    fn run(&mut self, opcode: i32, body: &[u8]) -> ApplyOutcome {
        self.run_as(SESSION, opcode, body)
    }

    fn create(&mut self, path: &str, flags: i32) -> ApplyOutcome {
        self.run(op::CREATE2, &create_req(path, b"x", flags))
    }

    fn stat(&self, path: &str) -> Stat {
        self.tree
            .stat(path)
            .unwrap_or_else(|| panic!("{path} missing"))
    }
}

fn create_req(path: &str, data: &[u8], flags: i32) -> Bytes {
    CreateRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        acl: world(),
        flags,
    }
    .to_bytes()
}

fn delete_req(path: &str, version: i32) -> Bytes {
    DeleteRequest {
        path: path.into(),
        version,
    }
    .to_bytes()
}

fn set_data_req(path: &str, data: &[u8], version: i32) -> Bytes {
    SetDataRequest {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        version,
    }
    .to_bytes()
}

fn multi_req(ops: &[(i32, Bytes)]) -> Bytes {
    let mut w = Writer::new();
    for (t, b) in ops {
        MultiHeader {
            r#type: *t,
            done: false,
            err: -1,
        }
        .write(&mut w);
        w.write_raw(b);
    }
    MultiHeader {
        r#type: -1,
        done: true,
        err: -1,
    }
    .write(&mut w);
    w.into_bytes()
}

fn err(e: ErrorCode) -> i32 {
    e.code()
}

#[test]
fn tree_and_prep_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<DataTree>();
    assert_send_sync::<Prep>();
    assert_send_sync::<TxnBody>();
}

// ---- create / delete / setData / setACL stats ----

#[test]
fn create_sets_every_stat_field_from_the_txn_header() {
    let mut zk = Zk::new();
    let out = zk.create("/a", 0);
    assert_eq!(out.err, 0);
    assert_eq!(out.path, "/a");
    assert_eq!(out.op_type, op::CREATE2);
    let s = out.stat.unwrap_or_default();
    assert_eq!(
        s,
        Stat {
            czxid: 1,
            mzxid: 1,
            ctime: 1001,
            mtime: 1001,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            data_length: 1,
            num_children: 0,
            pzxid: 1,
        }
    );
    assert_eq!(zk.stat("/a"), s);
    let root = zk.stat("/");
    // Two children now, one create: 2 * 1 - 2.
    assert_eq!((root.cversion, root.num_children, root.pzxid), (0, 2, 1));
    assert_eq!(
        out.events,
        vec![
            (event_type::NODE_CREATED, "/a".into()),
            (event_type::NODE_CHILDREN_CHANGED, "/".into())
        ]
    );
    assert_eq!(zk.tree.last_zxid(), 1);
    assert_eq!(zk.tree.node_count(), 6);
}

#[test]
fn plain_create_reports_no_stat() {
    let mut zk = Zk::new();
    let out = zk.run(op::CREATE, &create_req("/a", b"", 0));
    assert_eq!((out.err, out.stat, out.op_type), (0, None, op::CREATE));
}

#[test]
fn ephemeral_create_records_the_owner_and_refuses_children() {
    let mut zk = Zk::new();
    let s = zk.create("/e", 1).stat.unwrap_or_default();
    assert_eq!(s.ephemeral_owner, SESSION);
    assert_eq!(zk.tree.ephemerals(SESSION), vec!["/e".to_string()]);
    let out = zk.create("/e/x", 0);
    assert_eq!(out.err, err(ErrorCode::NoChildrenForEphemerals));
    assert_eq!(out.op_type, op::ERROR);
}

#[test]
fn container_and_ttl_nodes_show_owner_zero() {
    let mut zk = Zk::new();
    let out = zk.run(op::CREATE_CONTAINER, &create_req("/c", b"", 4));
    assert_eq!(out.err, 0);
    assert_eq!(out.stat.unwrap_or_default().ephemeral_owner, 0);
    assert_eq!(zk.tree.containers(), vec!["/c".to_string()]);
    let ttl = CreateTtlRequest {
        path: "/t".into(),
        data: None,
        acl: world(),
        flags: 5,
        ttl: 5000,
    }
    .to_bytes();
    let out = zk.run(op::CREATE_TTL, &ttl);
    assert_eq!(out.err, 0);
    assert_eq!(out.stat.unwrap_or_default().ephemeral_owner, 0);
    assert_eq!(zk.tree.ttls(), vec!["/t".to_string()]);
    let n = zk.tree.node("/t").map(|n| n.stat.ephemeral_owner);
    assert_eq!(n.and_then(ttl_of_ephemeral_owner), Some(5000));
    // Containers may have children; nothing is a session's ephemeral.
    assert_eq!(zk.create("/c/x", 0).err, 0);
    assert!(zk.tree.all_ephemerals().is_empty());
}

#[test]
fn ttl_needs_extended_types_and_a_valid_ttl() {
    let mut zk = Zk::new();
    let ttl = |t: i64, flags: i32| {
        CreateTtlRequest {
            path: "/t".into(),
            data: None,
            acl: world(),
            flags,
            ttl: t,
        }
        .to_bytes()
    };
    assert_eq!(
        zk.run(op::CREATE_TTL, &ttl(0, 5)).err,
        err(ErrorCode::BadArguments)
    );
    assert_eq!(
        zk.run(op::CREATE_TTL, &ttl(MAX_TTL + 1, 5)).err,
        err(ErrorCode::BadArguments)
    );
    assert_eq!(
        zk.run(op::CREATE_TTL, &ttl(10, 0)).err,
        err(ErrorCode::BadArguments)
    );
    zk.prep = Prep::new(PrepOptions::default());
    assert_eq!(
        zk.run(op::CREATE_TTL, &ttl(10, 5)).err,
        err(ErrorCode::Unimplemented)
    );
}

#[test]
fn set_data_bumps_version_mzxid_mtime_only() {
    let mut zk = Zk::new();
    zk.create("/a", 0);
    let out = zk.run(op::SET_DATA, &set_data_req("/a", b"hello", 0));
    assert_eq!(out.err, 0);
    let s = out.stat.unwrap_or_default();
    assert_eq!(
        (s.version, s.mzxid, s.mtime, s.czxid, s.ctime),
        (1, 2, 1002, 1, 1001)
    );
    assert_eq!(s.data_length, 5);
    assert_eq!(
        out.events,
        vec![(event_type::NODE_DATA_CHANGED, "/a".into())]
    );
    let out = zk.run(op::SET_DATA, &set_data_req("/a", b"x", 0));
    assert_eq!(out.err, err(ErrorCode::BadVersion));
    assert_eq!(zk.run(op::SET_DATA, &set_data_req("/a", b"x", -1)).err, 0);
    assert_eq!(zk.stat("/a").version, 2);
    assert_eq!(
        zk.run(op::SET_DATA, &set_data_req("/nope", b"x", -1)).err,
        err(ErrorCode::NoNode)
    );
    assert_eq!(
        zk.run(op::SET_DATA, &set_data_req("/a/", b"x", -1)).err,
        err(ErrorCode::BadArguments)
    );
}

#[test]
fn set_acl_bumps_aversion_and_fires_nothing() {
    let mut zk = Zk::new();
    zk.create("/a", 0);
    let req = SetAclRequest {
        path: "/a".into(),
        acl: read_acl_unsafe(),
        version: 0,
    };
    let out = zk.run(op::SET_ACL, &req.to_bytes());
    assert_eq!(out.err, 0);
    let s = out.stat.unwrap_or_default();
    assert_eq!((s.aversion, s.version, s.mzxid), (1, 0, 1));
    assert!(out.events.is_empty());
    assert_eq!(zk.tree.acl("/a").map(|a| a.0), Some(read_acl_unsafe()));
    // Now only READ: writes are refused, and so is a second setACL (no ADMIN).
    assert_eq!(
        zk.run(op::SET_DATA, &set_data_req("/a", b"x", -1)).err,
        err(ErrorCode::NoAuth)
    );
    assert_eq!(
        zk.run(op::SET_ACL, &req.to_bytes()).err,
        err(ErrorCode::NoAuth)
    );
}

#[test]
fn set_acl_validates_the_list_before_the_node() {
    let mut zk = Zk::new();
    let req = SetAclRequest {
        path: "/nope".into(),
        acl: vec![],
        version: -1,
    };
    assert_eq!(
        zk.run(op::SET_ACL, &req.to_bytes()).err,
        err(ErrorCode::InvalidAcl)
    );
}

#[test]
fn delete_moves_parent_pzxid_but_not_its_persisted_cversion() {
    // ZooKeeper 3.8: the client's cversion still grows (2 * creates - children).
    let mut zk = Zk::new();
    zk.create("/a", 0);
    zk.create("/a/b", 0);
    assert_eq!(zk.stat("/a").cversion, 1);
    let out = zk.run(op::DELETE, &delete_req("/a/b", 0));
    assert_eq!(out.err, 0);
    assert_eq!(out.stat, None);
    assert_eq!(
        out.events,
        vec![
            (event_type::NODE_DELETED, "/a/b".into()),
            (event_type::NODE_CHILDREN_CHANGED, "/a".into())
        ]
    );
    let a = zk.stat("/a");
    assert_eq!((a.cversion, a.num_children, a.pzxid, a.mzxid), (2, 0, 3, 1));
    assert_eq!(zk.tree.node("/a").map(|n| n.stat.cversion), Some(1));
}

#[test]
fn children_are_listed_by_name_in_order_and_leave_no_set_behind() {
    // The tree keeps each child as its full path; the names come back sorted,
    // whatever the order of the creates, and a parent whose last child went
    // has no set left.
    let mut zk = Zk::new();
    zk.create("/p", 0);
    for name in ["b", "a10", "a", "a9", "B", "a-"] {
        zk.create(&format!("/p/{name}"), 0);
    }
    zk.create("/p/a/deeper", 0);
    let (names, stat) = zk.tree.children("/p").unwrap();
    assert_eq!(names, ["B", "a", "a-", "a10", "a9", "b"]);
    assert_eq!(stat.num_children, 6);
    let root = zk.tree.children("/").unwrap().0;
    assert_eq!(root, ["p", "zookeeper"]);
    let mut visited = Vec::new();
    zk.tree.visit_preorder(|p, _| visited.push(p.to_owned()));
    let expected = [
        "",
        "/p",
        "/p/B",
        "/p/a",
        "/p/a/deeper",
        "/p/a-",
        "/p/a10",
        "/p/a9",
        "/p/b",
        "/zookeeper",
        "/zookeeper/config",
        "/zookeeper/quota",
    ];
    assert_eq!(visited, expected);
    // A snapshot's order: the same nodes, each after its parent.
    let mut parents_first = Vec::new();
    zk.tree
        .visit_parents_first(|p, _| parents_first.push(p.to_owned()));
    for (i, p) in parents_first.iter().enumerate().skip(1) {
        let parent = p.rsplit_once('/').map_or("", |(parent, _)| parent);
        let at = parents_first.iter().position(|q| q == parent);
        assert!(
            at.is_some_and(|at| at < i),
            "{p} before its parent: {parents_first:?}"
        );
    }
    assert_eq!(parents_first[0], "");
    parents_first.sort();
    let mut all = expected.to_vec();
    all.sort();
    assert_eq!(parents_first, all);
    for name in ["b", "a10", "a9", "B", "a-"] {
        assert_eq!(
            zk.run(op::DELETE, &delete_req(&format!("/p/{name}"), -1))
                .err,
            0
        );
    }
    assert_eq!(zk.tree.node("/p").unwrap().child_count(), 1);
    assert_eq!(zk.run(op::DELETE, &delete_req("/p/a/deeper", -1)).err, 0);
    assert_eq!(zk.run(op::DELETE, &delete_req("/p/a", -1)).err, 0);
    let p = zk.tree.node("/p").unwrap();
    assert!(!p.has_children());
    assert_eq!(p.child_names().count(), 0);
    assert_eq!(zk.stat("/p").num_children, 0);
}

#[test]
fn delete_checks_version_children_and_existence() {
    let mut zk = Zk::new();
    zk.create("/a", 0);
    zk.create("/a/b", 0);
    assert_eq!(
        zk.run(op::DELETE, &delete_req("/a", -1)).err,
        err(ErrorCode::NotEmpty)
    );
    assert_eq!(
        zk.run(op::DELETE, &delete_req("/a/b", 3)).err,
        err(ErrorCode::BadVersion)
    );
    assert_eq!(
        zk.run(op::DELETE, &delete_req("/a/c", -1)).err,
        err(ErrorCode::NoNode)
    );
    assert_eq!(
        zk.run(op::DELETE, &delete_req("/x/c", -1)).err,
        err(ErrorCode::NoNode)
    );
    assert_eq!(
        zk.run(op::DELETE, &delete_req("a", -1)).err,
        err(ErrorCode::BadArguments)
    );
}

#[test]
fn zookeeper_own_nodes_cannot_be_deleted() {
    // ZooKeeper 3.8 answers BadArguments for all four.
    let mut zk = Zk::new();
    for p in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        assert_eq!(
            zk.run(op::DELETE, &delete_req(p, -1)).err,
            err(ErrorCode::BadArguments),
            "{p}"
        );
    }
    // But /zookeeper can get children and data, and config is read-only.
    assert_eq!(zk.create("/zookeeper/foo", 0).err, 0);
    assert_eq!(
        zk.run(op::SET_DATA, &set_data_req("/zookeeper", b"x", -1))
            .err,
        0
    );
    assert_eq!(
        zk.run(op::SET_DATA, &set_data_req("/zookeeper/config", b"x", -1))
            .err,
        err(ErrorCode::NoAuth)
    );
}

#[test]
fn create_errors_follow_zookeeper_order() {
    let mut zk = Zk::new();
    zk.create("/a", 0);
    assert_eq!(zk.create("/a", 0).err, err(ErrorCode::NodeExists));
    assert_eq!(zk.create("/x/y", 0).err, err(ErrorCode::NoNode));
    assert_eq!(zk.create("a", 0).err, err(ErrorCode::BadArguments));
    assert_eq!(zk.create("/a/", 0).err, err(ErrorCode::BadArguments));
    assert_eq!(zk.create("/a", 9).err, err(ErrorCode::BadArguments));
    let mut bad_acl = CreateRequest::from_bytes(&create_req("/b", b"", 0)).unwrap_or_default();
    bad_acl.acl = vec![];
    assert_eq!(
        zk.run(op::CREATE, &bad_acl.to_bytes()).err,
        err(ErrorCode::InvalidAcl)
    );
}

#[test]
fn undecodable_bodies_are_marshalling_errors() {
    let mut zk = Zk::new();
    for opcode in [
        op::CREATE,
        op::DELETE,
        op::SET_DATA,
        op::SET_ACL,
        op::CHECK,
        op::MULTI,
        op::CREATE_SESSION,
    ] {
        let p = zk.prepare(SESSION, opcode, &[0, 0, 0]);
        assert_eq!(p.txn_type, op::ERROR);
        assert_eq!(
            p.body,
            TxnBody::error(err(ErrorCode::MarshallingError)),
            "{opcode}"
        );
    }
}

// ---- sequential nodes ----

#[test]
fn sequential_suffix_is_the_parent_cversion_across_deletes() {
    // Same sequence as on ZooKeeper 3.8: s-0, b, delete b, s- -> s-0000000002.
    let mut zk = Zk::new();
    zk.create("/a", 0);
    assert_eq!(zk.create("/a/s-", 2).path, "/a/s-0000000000");
    zk.create("/a/b", 0);
    zk.run(op::DELETE, &delete_req("/a/b", -1));
    let out = zk.create("/a/s-", 2);
    assert_eq!(out.path, "/a/s-0000000002");
    let a = zk.stat("/a");
    assert_eq!((a.cversion, a.num_children, a.pzxid), (4, 2, 5));
    zk.run(op::DELETE, &delete_req("/a/s-0000000000", -1));
    let a = zk.stat("/a");
    assert_eq!((a.cversion, a.num_children, a.pzxid), (5, 1, 6));
    // A trailing slash is fine for a sequential create.
    assert_eq!(zk.create("/a/", 3).path, "/a/0000000003");
}

#[test]
fn sequential_numbers_advance_before_apply() {
    let mut zk = Zk::new();
    let p1 = zk.prepare(SESSION, op::CREATE, &create_req("/q-", b"", 2));
    let p2 = zk.prepare(SESSION, op::CREATE, &create_req("/q-", b"", 2));
    let path = |p: &PreparedTxn| match &p.body {
        TxnBody::Create(t) => t.path.clone(),
        other => format!("{other:?}"),
    };
    assert_eq!(path(&p1), "/q-0000000000");
    assert_eq!(path(&p2), "/q-0000000001");
    assert_eq!(zk.commit(SESSION, &p1).err, 0);
    assert_eq!(zk.commit(SESSION, &p2).err, 0);
    assert_eq!(zk.prep.pending_len(), 0);
}

// ---- pending changes ----

#[test]
fn second_create_of_the_same_path_before_apply_is_node_exists() {
    let mut zk = Zk::new();
    let p1 = zk.prepare(SESSION, op::CREATE, &create_req("/a", b"", 0));
    let p2 = zk.prepare(SESSION, op::CREATE, &create_req("/a", b"", 0));
    assert!(matches!(p1.body, TxnBody::Create(_)));
    assert_eq!(p2.body, TxnBody::error(err(ErrorCode::NodeExists)));
    // A child of the pending node is accepted, a delete of it too.
    let p3 = zk.prepare(SESSION, op::CREATE, &create_req("/a/b", b"", 0));
    assert!(matches!(p3.body, TxnBody::Create(_)));
    let p4 = zk.prepare(SESSION, op::DELETE, &delete_req("/a", -1));
    assert_eq!(p4.body, TxnBody::error(err(ErrorCode::NotEmpty)));
    for p in [&p1, &p2, &p3, &p4] {
        zk.commit(SESSION, p);
    }
    assert!(zk.tree.stat("/a/b").is_some());
    assert_eq!(zk.prep.pending_len(), 0);
}

#[test]
fn pending_set_data_versions_chain() {
    let mut zk = Zk::new();
    zk.create("/a", 0);
    let p1 = zk.prepare(SESSION, op::SET_DATA, &set_data_req("/a", b"1", 0));
    let p2 = zk.prepare(SESSION, op::SET_DATA, &set_data_req("/a", b"2", 1));
    let p3 = zk.prepare(SESSION, op::SET_DATA, &set_data_req("/a", b"3", 1));
    assert!(matches!(p2.body, TxnBody::SetData(ref t) if t.version == 2));
    assert_eq!(p3.body, TxnBody::error(err(ErrorCode::BadVersion)));
    zk.commit(SESSION, &p1);
    zk.commit(SESSION, &p2);
    assert_eq!(zk.stat("/a").version, 2);
}

#[test]
fn pending_delete_hides_the_node() {
    let mut zk = Zk::new();
    zk.create("/a", 0);
    let p1 = zk.prepare(SESSION, op::DELETE, &delete_req("/a", -1));
    let p2 = zk.prepare(SESSION, op::SET_DATA, &set_data_req("/a", b"", -1));
    assert_eq!(p2.body, TxnBody::error(err(ErrorCode::NoNode)));
    let p3 = zk.prepare(SESSION, op::CREATE, &create_req("/a", b"", 0));
    assert!(matches!(p3.body, TxnBody::Create(_)));
    zk.commit(SESSION, &p1);
    zk.commit(SESSION, &p2);
    assert_eq!(zk.commit(SESSION, &p3).err, 0);
}

// ---- multi ----

fn multi_codes(out: &ApplyOutcome) -> Vec<i32> {
    out.multi.iter().map(|r| r.err).collect()
}

#[test]
fn multi_applies_all_ops_with_one_zxid() {
    let mut zk = Zk::new();
    let req = multi_req(&[
        (op::CREATE, create_req("/m", b"", 0)),
        (op::CREATE2, create_req("/m/s-", b"", 2)),
        (op::SET_DATA, set_data_req("/m", b"v", 0)),
        (
            op::CHECK,
            CheckVersionRequest {
                path: "/m".into(),
                version: 1,
            }
            .to_bytes(),
        ),
    ]);
    let out = zk.run(op::MULTI, &req);
    assert_eq!(out.err, 0);
    assert_eq!(out.op_type, op::MULTI);
    assert_eq!(multi_codes(&out), vec![0, 0, 0, 0]);
    let types: Vec<i32> = out.multi.iter().map(|r| r.op_type).collect();
    assert_eq!(
        types,
        vec![op::CREATE, op::CREATE2, op::SET_DATA, op::CHECK]
    );
    assert_eq!(out.multi[1].path, "/m/s-0000000000");
    assert!(out.multi[0].stat.is_none() && out.multi[1].stat.is_some());
    let m = zk.stat("/m");
    assert_eq!((m.czxid, m.mzxid, m.pzxid, m.version), (1, 1, 1, 1));
    assert_eq!(out.events.len(), 5);
}

fn failing_multi_at(pos: usize) -> (Zk, ApplyOutcome) {
    let mut zk = Zk::new();
    let mut ops = vec![
        (op::CREATE, create_req("/m1", b"", 0)),
        (op::CREATE, create_req("/m2", b"", 0)),
        (op::CREATE, create_req("/m3", b"", 0)),
    ];
    ops[pos] = (op::CREATE, create_req("/nope/x", b"", 0));
    let out = zk.run(op::MULTI, &multi_req(&ops));
    (zk, out)
}

#[test]
fn multi_failing_first_gives_no_node_then_runtime_inconsistency() {
    let (zk, out) = failing_multi_at(0);
    let no_node = err(ErrorCode::NoNode);
    let ri = err(ErrorCode::RuntimeInconsistency);
    assert_eq!(multi_codes(&out), vec![no_node, ri, ri]);
    assert_eq!(out.err, no_node);
    assert!(out
        .multi
        .iter()
        .all(|r| r.op_type == op::ERROR && r.path.is_empty()));
    assert!(out.events.is_empty());
    assert!(zk.tree.stat("/m2").is_none());
}

#[test]
fn multi_failing_in_the_middle_rolls_back_the_ops_before() {
    // ZooKeeper 3.8 answers [RolledBack(0), RolledBack(0), NoNode, RuntimeInconsistency].
    let (zk, out) = failing_multi_at(1);
    let ri = err(ErrorCode::RuntimeInconsistency);
    assert_eq!(multi_codes(&out), vec![0, err(ErrorCode::NoNode), ri]);
    assert!(zk.tree.stat("/m1").is_none());
    assert_eq!(zk.stat("/").cversion, -1);
    assert_eq!(zk.tree.last_zxid(), 1);
}

#[test]
fn multi_failing_last() {
    let (zk, out) = failing_multi_at(2);
    assert_eq!(multi_codes(&out), vec![0, 0, err(ErrorCode::NoNode)]);
    assert!(zk.tree.stat("/m1").is_none() && zk.tree.stat("/m2").is_none());
}

#[test]
fn failed_multi_logs_prepared_ops_and_drops_their_pending_records() {
    let mut zk = Zk::new();
    let req = multi_req(&[
        (op::CREATE, create_req("/m1", b"", 0)),
        (
            op::CHECK,
            CheckVersionRequest {
                path: "/m1".into(),
                version: 5,
            }
            .to_bytes(),
        ),
        (op::CREATE, create_req("/m2", b"", 0)),
    ]);
    let p = zk.prepare(SESSION, op::MULTI, &req);
    match &p.body {
        TxnBody::Multi(subs) => {
            assert!(matches!(subs[0], TxnBody::Create(_)));
            assert_eq!(subs[1], TxnBody::error(err(ErrorCode::BadVersion)));
            assert_eq!(
                subs[2],
                TxnBody::error(err(ErrorCode::RuntimeInconsistency))
            );
        }
        other => panic!("not a multi: {other:?}"),
    }
    assert_eq!(zk.prep.pending_len(), 0);
    // /m1 was never created, so a plain create of it is fine before apply.
    let p2 = zk.prepare(SESSION, op::CREATE, &create_req("/m1", b"", 0));
    assert!(matches!(p2.body, TxnBody::Create(ref t) if t.parent_c_version == 1));
}

#[test]
fn failed_multi_restores_earlier_pending_records() {
    let mut zk = Zk::new();
    let p1 = zk.prepare(SESSION, op::CREATE, &create_req("/a", b"", 0));
    let req = multi_req(&[
        (op::SET_DATA, set_data_req("/a", b"x", 0)),
        (op::DELETE, delete_req("/nope", -1)),
    ]);
    let p2 = zk.prepare(SESSION, op::MULTI, &req);
    assert!(matches!(p2.body, TxnBody::Multi(_)));
    // The pending create of /a is still seen; its version is still 0.
    let p3 = zk.prepare(SESSION, op::SET_DATA, &set_data_req("/a", b"y", 0));
    assert!(matches!(p3.body, TxnBody::SetData(ref t) if t.version == 1));
    for p in [&p1, &p2, &p3] {
        zk.commit(SESSION, p);
    }
    assert_eq!(zk.stat("/a").version, 1);
}

#[test]
fn multi_ops_see_each_other() {
    let mut zk = Zk::new();
    let req = multi_req(&[
        (op::CREATE, create_req("/a", b"", 0)),
        (op::CREATE, create_req("/a/b", b"", 0)),
        (op::DELETE, delete_req("/a/b", 0)),
        (op::DELETE, delete_req("/a", 0)),
    ]);
    let out = zk.run(op::MULTI, &req);
    assert_eq!(multi_codes(&out), vec![0, 0, 0, 0]);
    assert!(zk.tree.stat("/a").is_none());
    assert_eq!(zk.tree.node("/").map(|n| n.stat.cversion), Some(1));
}

#[test]
fn multi_with_read_ops_or_bad_flags_is_a_marshalling_error() {
    let mut zk = Zk::new();
    let get = ensemble_proto::GetDataRequest {
        path: "/".into(),
        watch: false,
    }
    .to_bytes();
    let p = zk.prepare(SESSION, op::MULTI, &multi_req(&[(op::GET_DATA, get)]));
    assert_eq!(p.body, TxnBody::error(err(ErrorCode::MarshallingError)));
    let p = zk.prepare(
        SESSION,
        op::MULTI,
        &multi_req(&[(op::CREATE, create_req("/a", b"", 9))]),
    );
    assert_eq!(p.body, TxnBody::error(err(ErrorCode::MarshallingError)));
    let p = zk.prepare(SESSION, op::MULTI, &multi_req(&[]));
    assert_eq!(p.body, TxnBody::Multi(vec![]));
}

// ---- sessions ----

#[test]
fn close_session_deletes_ephemerals_including_pending_ones() {
    let mut zk = Zk::new();
    zk.create("/p", 0);
    zk.create("/p/e1", 1);
    zk.create("/e2", 1);
    zk.run_as(OTHER, op::CREATE, &create_req("/other", b"", 1));
    let pending = zk.prepare(SESSION, op::CREATE, &create_req("/e3", b"", 1));
    let pending_del = zk.prepare(SESSION, op::DELETE, &delete_req("/e2", -1));
    let close = zk.prepare(SESSION, op::CLOSE_SESSION, &[]);
    assert_eq!(
        close.body,
        TxnBody::CloseSession(ensemble_proto::CloseSessionTxn {
            paths2_delete: vec!["/e3".into(), "/p/e1".into()]
        })
    );
    zk.commit(SESSION, &pending);
    zk.commit(SESSION, &pending_del);
    let out = zk.commit(SESSION, &close);
    assert_eq!(out.err, 0);
    assert!(zk.tree.ephemerals(SESSION).is_empty());
    assert_eq!(
        zk.tree.all_ephemerals(),
        vec![(OTHER, vec!["/other".to_string()])]
    );
    assert!(out
        .events
        .contains(&(event_type::NODE_DELETED, "/p/e1".into())));
    assert_eq!(zk.stat("/p").pzxid, zk.tree.last_zxid());
}

#[test]
fn close_session_with_empty_list_still_removes_local_ephemerals() {
    let mut zk = Zk::new();
    zk.create("/e", 1);
    let hdr = TxnHeader {
        client_id: SESSION,
        cxid: 0,
        zxid: 9,
        time: 9,
        r#type: op::CLOSE_SESSION,
    };
    let body = TxnBody::decode(op::CLOSE_SESSION, &[]).unwrap_or(TxnBody::error(0));
    let out = zk.tree.apply(&hdr, &body);
    assert_eq!(out.err, 0);
    assert!(zk.tree.stat("/e").is_none());
}

#[test]
fn create_session_body_is_logged_as_is() {
    let mut zk = Zk::new();
    let t = ensemble_proto::CreateSessionTxn { time_out: 4000 };
    let p = zk.prepare(SESSION, op::CREATE_SESSION, &t.to_bytes());
    assert_eq!(
        (p.txn_type, p.body.clone()),
        (op::CREATE_SESSION, TxnBody::CreateSession(t))
    );
    assert_eq!(zk.commit(SESSION, &p).err, 0);
}

// ---- ACLs through prep ----

#[test]
fn digest_acl_guards_writes_and_super_passes() {
    let mut zk = Zk::new();
    let bob = digest_auth_ids(b"bob:pw", None).unwrap_or_default();
    zk.auth.extend(bob.clone());
    let req = CreateRequest {
        path: "/secret".into(),
        data: None,
        acl: vec![Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "auth".into(),
                id: String::new(),
            },
        }],
        flags: 0,
    };
    assert_eq!(zk.run(op::CREATE, &req.to_bytes()).err, 0);
    let (acl, _) = zk.tree.acl("/secret").unwrap_or_default();
    assert_eq!(acl[0].id, bob[0]);
    zk.auth = ip_auth();
    assert_eq!(
        zk.run(op::SET_DATA, &set_data_req("/secret", b"", -1)).err,
        err(ErrorCode::NoAuth)
    );
    assert_eq!(zk.create("/secret/x", 0).err, err(ErrorCode::NoAuth));
    let sup = digest_auth_ids(b"super:test", Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="))
        .unwrap_or_default();
    zk.auth.extend(sup);
    assert_eq!(
        zk.run(op::SET_DATA, &set_data_req("/secret", b"", -1)).err,
        0
    );
}

#[test]
fn auth_scheme_without_credentials_is_invalid_acl() {
    let mut zk = Zk::new();
    let req = CreateRequest {
        path: "/x".into(),
        data: None,
        acl: vec![Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "auth".into(),
                id: String::new(),
            },
        }],
        flags: 0,
    };
    assert_eq!(
        zk.run(op::CREATE, &req.to_bytes()).err,
        err(ErrorCode::InvalidAcl)
    );
}

#[test]
fn ip_acl_with_mask_guards_delete_on_the_parent() {
    let mut zk = Zk::new();
    let req = CreateRequest {
        path: "/net".into(),
        data: None,
        acl: vec![
            Acl {
                perms: perms::ALL,
                id: Id {
                    scheme: "ip".into(),
                    id: "10.0.0.0/8".into(),
                },
            },
            Acl {
                perms: perms::CREATE,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            },
        ],
        flags: 0,
    };
    assert_eq!(zk.run(op::CREATE, &req.to_bytes()).err, 0);
    assert_eq!(zk.create("/net/c", 0).err, 0);
    assert_eq!(
        zk.run(op::DELETE, &delete_req("/net/c", -1)).err,
        err(ErrorCode::NoAuth)
    );
    zk.auth = vec![Id {
        scheme: "ip".into(),
        id: "10.9.8.7".into(),
    }];
    assert_eq!(zk.run(op::DELETE, &delete_req("/net/c", -1)).err, 0);
}

#[test]
fn skip_acl_turns_checks_off() {
    let mut zk = Zk::new();
    zk.prep = Prep::new(PrepOptions {
        skip_acl: true,
        ..PrepOptions::default()
    });
    assert_eq!(
        zk.run(op::SET_DATA, &set_data_req("/zookeeper/config", b"x", -1))
            .err,
        0
    );
}

// ---- sizes and ACL cache ----

#[test]
fn approximate_data_size_tracks_paths_and_data() {
    let mut zk = Zk::new();
    let base = zk.tree.approximate_data_size();
    zk.create("/ab", 0); // "/ab" + "x"
    assert_eq!(zk.tree.approximate_data_size(), base + 4);
    zk.run(op::SET_DATA, &set_data_req("/ab", b"hello", -1));
    assert_eq!(zk.tree.approximate_data_size(), base + 8);
    zk.run(op::SET_DATA, &set_data_req("/", b"rr", -1));
    // The root's data counts twice ("" and "/" in ZooKeeper's map).
    assert_eq!(zk.tree.approximate_data_size(), base + 12);
    zk.run(op::DELETE, &delete_req("/ab", -1));
    assert_eq!(zk.tree.approximate_data_size(), base + 4);
    assert_eq!(zk.tree.approximate_data_size(), zk.tree.compute_data_size());
}

#[test]
fn acl_cache_counts_nodes_sharing_a_list() {
    let mut zk = Zk::new();
    assert_eq!(zk.tree.acl_cache().len(), 1); // /zookeeper/config
    zk.create("/a", 0);
    zk.create("/b", 0);
    assert_eq!(zk.tree.acl_cache().len(), 2);
    zk.run(op::DELETE, &delete_req("/a", -1));
    assert_eq!(zk.tree.acl_cache().len(), 2);
    zk.run(op::DELETE, &delete_req("/b", -1));
    assert_eq!(zk.tree.acl_cache().len(), 1);
}

#[test]
fn apply_is_deterministic_for_a_replayed_log() {
    let mut zk = Zk::new();
    let mut log = Vec::new();
    for (opcode, body) in [
        (op::CREATE, create_req("/a", b"1", 0)),
        (op::CREATE, create_req("/a/s", b"", 2)),
        (op::SET_DATA, set_data_req("/a", b"2", -1)),
        (op::DELETE, delete_req("/a/s0000000000", -1)),
    ] {
        let p = zk.prepare(SESSION, opcode, &body);
        zk.commit(SESSION, &p);
        log.push((zk.zxid, p.txn_type, p.body.encode()));
    }
    let mut replica = DataTree::new();
    for (zxid, t, bytes) in log {
        let body = TxnBody::decode(t, &bytes).unwrap_or(TxnBody::error(0));
        let hdr = TxnHeader {
            client_id: SESSION,
            cxid: 1,
            zxid,
            time: 1000 + zxid,
            r#type: t,
        };
        replica.apply(&hdr, &body);
    }
    for p in ["/", "/a"] {
        assert_eq!(replica.stat(p), zk.tree.stat(p));
    }
    assert_eq!(
        replica.approximate_data_size(),
        zk.tree.approximate_data_size()
    );
}

#[test]
fn check_txn_carries_the_next_version() {
    let mut zk = Zk::new();
    zk.create("/a", 0);
    let p = zk.prepare(
        SESSION,
        op::CHECK,
        &CheckVersionRequest {
            path: "/a".into(),
            version: 0,
        }
        .to_bytes(),
    );
    assert_eq!(
        p.body,
        TxnBody::Check(ensemble_proto::CheckVersionTxn {
            path: "/a".into(),
            version: 1
        })
    );
}

#[test]
fn version_increments_wrap_like_zookeeper_3_9() {
    let mut zk = Zk::new();
    zk.create("/a", 0);
    let hdr = TxnHeader {
        client_id: SESSION,
        cxid: 0,
        zxid: 50,
        time: 0,
        r#type: op::SET_DATA,
    };
    let body = TxnBody::SetData(ensemble_proto::SetDataTxn {
        path: "/a".into(),
        data: None,
        version: -2,
    });
    zk.tree.apply(&hdr, &body);
    let p = zk.prepare(SESSION, op::SET_DATA, &set_data_req("/a", b"", -2));
    assert!(matches!(p.body, TxnBody::SetData(ref t) if t.version == -1));
}

#[test]
fn replayed_create_of_an_existing_node_moves_parent_cversion() {
    let mut zk = Zk::new();
    zk.create("/a", 0);
    let hdr = TxnHeader {
        client_id: SESSION,
        cxid: 0,
        zxid: 7,
        time: 0,
        r#type: op::CREATE,
    };
    let body = TxnBody::Create(ensemble_proto::CreateTxn {
        path: "/a".into(),
        data: None,
        acl: world(),
        ephemeral: false,
        parent_c_version: 5,
    });
    let out = zk.tree.apply(&hdr, &body);
    assert_eq!(out.err, err(ErrorCode::NodeExists));
    let root = zk.tree.node("/").map(|n| (n.stat.cversion, n.stat.pzxid));
    assert_eq!(root, Some((5, 7)));
}

// ---- quotas ----

#[test]
fn quota_stats_follow_writes_below_the_quota_path() {
    // What `setquota -n 10 /app` leaves behind: limits and stats nodes.
    let mut zk = Zk::new();
    zk.create("/app", 0); // data "x"
    zk.create("/zookeeper/quota/app", 0);
    zk.run(
        op::CREATE,
        &create_req(
            "/zookeeper/quota/app/zookeeper_limits",
            b"count=10,bytes=-1",
            0,
        ),
    );
    zk.run(
        op::CREATE,
        &create_req(
            "/zookeeper/quota/app/zookeeper_stats",
            b"count=0,bytes=0",
            0,
        ),
    );
    let stats = |zk: &Zk| {
        zk.tree
            .get_data("/zookeeper/quota/app/zookeeper_stats")
            .and_then(|d| d.0)
            .unwrap_or_default()
    };
    assert_eq!(&stats(&zk)[..], b"count=1,bytes=1");
    zk.run(op::CREATE, &create_req("/app/c", b"abc", 0));
    assert_eq!(&stats(&zk)[..], b"count=2,bytes=4");
    zk.run(op::SET_DATA, &set_data_req("/app/c", b"a", -1));
    assert_eq!(&stats(&zk)[..], b"count=2,bytes=2");
    zk.run(op::DELETE, &delete_req("/app/c", -1));
    assert_eq!(&stats(&zk)[..], b"count=1,bytes=1");
    // The stats node's own Stat is untouched by these rewrites.
    let s = zk.stat("/zookeeper/quota/app/zookeeper_stats");
    assert_eq!(s.version, 0);
    assert_eq!(zk.tree.approximate_data_size(), zk.tree.compute_data_size());
    // Dropping the limits node ends the bookkeeping.
    zk.run(
        op::DELETE,
        &delete_req("/zookeeper/quota/app/zookeeper_limits", -1),
    );
    zk.create("/app/d", 0);
    assert_eq!(&stats(&zk)[..], b"count=1,bytes=1");
}

// ---- snapshots ----

#[test]
fn snapshot_visit_and_load_rebuild_the_same_tree() {
    let mut zk = Zk::new();
    zk.create("/a", 0);
    zk.create("/a/b", 1);
    zk.run(op::CREATE_CONTAINER, &create_req("/c", b"", 4));
    let mut records = Vec::new();
    zk.tree.visit_preorder(|p, n| {
        records.push((p.to_owned(), n.data.clone(), n.acl, n.stat.clone()));
    });
    let paths: Vec<&str> = records.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "",
            "/a",
            "/a/b",
            "/c",
            "/zookeeper",
            "/zookeeper/config",
            "/zookeeper/quota"
        ]
    );
    let loaded =
        DataTree::from_snapshot(zk.tree.acl_cache().entries(), records, zk.tree.last_zxid());
    let loaded = loaded.unwrap_or_default();
    for p in ["/", "/a", "/a/b", "/c", "/zookeeper", "/zookeeper/config"] {
        assert_eq!(loaded.stat(p), zk.tree.stat(p), "{p}");
        assert_eq!(loaded.acl(p), zk.tree.acl(p), "{p}");
    }
    assert_eq!(loaded.ephemerals(SESSION), vec!["/a/b".to_string()]);
    assert_eq!(loaded.containers(), vec!["/c".to_string()]);
    assert_eq!(
        loaded.approximate_data_size(),
        zk.tree.approximate_data_size()
    );
    assert_eq!(loaded.node_count(), zk.tree.node_count());
    assert_eq!(loaded.last_zxid(), zk.tree.last_zxid());
}

#[test]
fn snapshot_with_an_orphan_is_refused() {
    let stat = ensemble_proto::StatPersisted::default();
    let nodes = vec![
        (String::new(), None, -1, stat.clone()),
        ("/x/y".to_string(), None, -1, stat),
    ];
    assert!(DataTree::from_snapshot(vec![], nodes, 0).is_err());
}

// ---- golden: a real ZooKeeper 3.8 txn log ----

/// Records of a `log.1` written by ZooKeeper 3.8 (TxnHeader, txn, TxnDigest)
/// for: create /a, sequential creates across a delete, setData, setACL with
/// digest auth, ephemerals, a successful and a failed multi, setData on /, a
/// NodeExists create, a create under /zookeeper, and two closeSessions.
/// Every txn must re-encode to the same bytes and leave the same tree digest.
const ZK38_LOG: &str = include_str!("../testdata/zk38_txnlog_records.hex");

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

#[test]
fn replaying_a_zookeeper_log_gives_its_digests_and_bytes() {
    let mut tree = DataTree::new();
    let mut applied = 0;
    for line in ZK38_LOG.lines().filter(|l| !l.is_empty()) {
        let rec = unhex(line);
        let mut r = ensemble_proto::Reader::from_slice(&rec);
        let hdr = TxnHeader::read(&mut r).unwrap_or_default();
        let rest = r.rest();
        let body = TxnBody::decode(hdr.r#type, &rest);
        let body = body.unwrap_or_else(|e| panic!("zxid {}: {e}", hdr.zxid));
        let enc = body.encode();
        assert_eq!(
            &rest[..enc.len()],
            &enc[..],
            "re-encoding zxid {}",
            hdr.zxid
        );
        tree.apply(&hdr, &body);
        // ZooKeeper logs no digest after a failed single op (an error txn).
        if rest.len() > enc.len() {
            let digest =
                ensemble_proto::TxnDigest::from_bytes(&rest[enc.len()..]).unwrap_or_default();
            assert_eq!(
                digest.version, DIGEST_VERSION,
                "digest version at zxid {}",
                hdr.zxid
            );
            assert_eq!(
                tree.digest(),
                digest.tree_digest,
                "digest after zxid {}",
                hdr.zxid
            );
        } else {
            assert!(
                matches!(body, TxnBody::Error(_)),
                "zxid {} has no digest",
                hdr.zxid
            );
        }
        assert_eq!(tree.digest(), tree.compute_digest());
        applied += 1;
    }
    assert_eq!(applied, 20);
    assert_eq!(tree.last_zxid(), 20);
    // What kazoo read back from that server.
    assert_eq!(
        tree.children("/a").map(|c| c.0),
        Some(vec!["s-0000000000".into(), "s-0000000002".into()])
    );
    assert!(tree.all_ephemerals().is_empty());
    // Both multis failed (BadVersion in the middle, NoNode in the middle).
    assert!(tree.stat("/m").is_none() && tree.stat("/m2").is_none());
    assert!(tree.stat("/p").is_some() && tree.stat("/zookeeper/x").is_some());
    assert_eq!(
        tree.get_data("/").and_then(|d| d.0),
        Some(Bytes::from_static(b"root"))
    );
}

/// The client requests behind `ZK38_LOG`, in zxid order (None: a session txn
/// whose body the server made up).
fn zk38_requests() -> Vec<Option<(i32, Bytes)>> {
    let create = |p: &str, d: Option<&[u8]>, flags: i32| {
        CreateRequest {
            path: p.into(),
            data: d.map(Bytes::copy_from_slice),
            acl: world(),
            flags,
        }
        .to_bytes()
    };
    let bob = Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "digest".into(),
            id: generate_digest("bob:pw"),
        },
    };
    let set_acl = SetAclRequest {
        path: "/a".into(),
        acl: vec![bob, read_acl_unsafe()[0].clone()],
        version: -1,
    };
    vec![
        None,
        Some((op::CREATE, create("/a", Some(b"hello"), 0))),
        Some((op::CREATE, create("/a/s-", Some(b"1"), 2))),
        Some((op::CREATE, create("/a/b", Some(b""), 0))),
        Some((op::DELETE, delete_req("/a/b", -1))),
        Some((op::CREATE, create("/a/s-", Some(b"22"), 2))),
        Some((op::SET_DATA, set_data_req("/a", b"world", -1))),
        Some((op::SET_ACL, set_acl.to_bytes())),
        Some((op::CREATE, create("/e", Some(b"eph"), 1))),
        Some((op::CREATE, create("/e2", Some(b""), 3))),
        Some((
            op::MULTI,
            multi_req(&[
                (op::CREATE, create("/m", Some(b"m"), 0)),
                (op::SET_DATA, set_data_req("/m", b"mm", -1)),
                (
                    op::CHECK,
                    CheckVersionRequest {
                        path: "/a".into(),
                        version: 0,
                    }
                    .to_bytes(),
                ),
                (op::DELETE, delete_req("/a/s-0000000000", -1)),
            ]),
        )),
        Some((
            op::MULTI,
            multi_req(&[
                (op::CREATE, create("/m2", Some(b""), 0)),
                (op::CREATE, create("/nope/x", Some(b""), 0)),
                (op::CREATE, create("/m3", Some(b""), 0)),
            ]),
        )),
        Some((op::SET_DATA, set_data_req("/", b"root", -1))),
        Some((op::CREATE, create("/a", Some(b""), 0))),
        Some((op::CREATE, create("/zookeeper/x", Some(b"q"), 0))),
        Some((op::CREATE, create("/p", None, 0))),
        Some((op::CLOSE_SESSION, Bytes::new())),
        None,
        Some((op::CREATE, create("/last", Some(b""), 0))),
        Some((op::CLOSE_SESSION, Bytes::new())),
    ]
}

#[test]
fn prep_produces_the_txns_zookeeper_logged() {
    let mut tree = DataTree::new();
    let mut prep = Prep::new(PrepOptions::default());
    let requests = zk38_requests();
    let lines: Vec<&str> = ZK38_LOG.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), requests.len());
    for (line, req) in lines.iter().zip(requests) {
        let rec = unhex(line);
        let mut r = ensemble_proto::Reader::from_slice(&rec);
        let hdr = TxnHeader::read(&mut r).unwrap_or_default();
        let logged = TxnBody::decode(hdr.r#type, &r.rest()).unwrap_or(TxnBody::error(0));
        let mut auth = ip_auth();
        auth.extend(digest_auth_ids(b"bob:pw", None).unwrap_or_default());
        if let Some((opcode, body)) = req {
            let p = prep.prep(&tree, hdr.client_id, opcode, &body, &auth, hdr.time);
            assert_eq!(
                (p.txn_type, &p.body),
                (hdr.r#type, &logged),
                "zxid {}",
                hdr.zxid
            );
            tree.apply(&hdr, &p.body);
            prep.applied(p.seq);
        } else {
            tree.apply(&hdr, &logged);
        }
    }
}

// ---- snapshots captured from the live tree ----

/// Everything a snapshot holds of a tree (nodes, ACLs, ephemerals, zxid,
/// digest, data size, node count), as text to compare.
fn contents(t: &DataTree) -> Vec<String> {
    let mut nodes = Vec::new();
    t.visit_preorder(|p, n| {
        let children: Vec<&str> = n.child_names().collect();
        nodes.push(format!(
            "{p} {:?} {} {:?} {children:?}",
            n.data, n.acl, n.stat
        ));
    });
    nodes.push(format!(
        "{:?} {:?} {} {} {} {}",
        t.acl_cache().entries(),
        t.all_ephemerals(),
        t.last_zxid(),
        t.digest(),
        t.approximate_data_size(),
        t.node_count()
    ));
    nodes
}

/// A xorshift generator, so that a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Creates, deletes, setData and setACL on random nodes of `/p` (whose
/// children outnumber the plain set's limit) and `/q`, and ephemerals.
fn random_change(zk: &mut Zk, rng: &mut Rng, next: &mut usize) {
    let parent = if rng.below(2) == 0 { "/p" } else { "/q" };
    let victim = format!("{parent}/n{}", rng.below(*next));
    let out = match rng.below(5) {
        0 => {
            *next += 1;
            let flags = if rng.below(4) == 0 { 1 } else { 0 };
            zk.run(
                op::CREATE2,
                &create_req(&format!("{parent}/n{next}"), b"new", flags),
            )
        }
        1 => zk.run(op::DELETE, &delete_req(&victim, -1)),
        2 => zk.run(op::SET_DATA, &set_data_req(&victim, b"changed", -1)),
        3 => {
            let req = SetAclRequest {
                path: victim.clone(),
                acl: if rng.below(2) == 0 {
                    read_acl_unsafe()
                } else {
                    world()
                },
                version: -1,
            };
            zk.run(op::SET_ACL, &req.to_bytes())
        }
        _ => zk.run(op::SET_DATA, &set_data_req(parent, b"parent", -1)),
    };
    // NoNode and NoAuth (a node made read-only) are expected on random picks.
    assert!(
        [0, err(ErrorCode::NoNode), err(ErrorCode::NoAuth)].contains(&out.err),
        "{out:?}"
    );
}

#[test]
fn a_capture_is_the_tree_as_it_was_when_it_began_whatever_changed_meanwhile() {
    let mut zk = Zk::new();
    zk.create("/p", 0);
    zk.create("/q", 0);
    let mut next = 3000;
    for i in 0..next {
        let parent = if i % 3 == 0 { "/q" } else { "/p" };
        let flags = if i % 7 == 0 { 1 } else { 0 };
        zk.create(&format!("{parent}/n{i}"), flags);
    }
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for round in 0..4 {
        let before = contents(&zk.tree);
        let mut first = zk.tree.begin_capture();
        assert_eq!(first.last_zxid(), zk.tree.last_zxid());
        // A second capture begun halfway through the first, on a tree
        // changed since: each must come out as it was at its own start.
        let mut second = None;
        let mut steps = 0;
        loop {
            for _ in 0..round * 3 {
                random_change(&mut zk, &mut rng, &mut next);
            }
            steps += 1;
            if steps == 500 {
                second = Some((contents(&zk.tree), zk.tree.begin_capture()));
            }
            if zk.tree.capture_step(&mut first).expect("same tree") {
                break;
            }
        }
        let (second_before, mut second) = second.expect("begun");
        while !zk.tree.capture_step(&mut second).expect("same tree") {
            random_change(&mut zk, &mut rng, &mut next);
        }
        for _ in 0..50 {
            random_change(&mut zk, &mut rng, &mut next);
        }
        let first = first.finish();
        assert_eq!(contents(&first), before, "round {round}");
        assert_eq!(first.compute_digest(), first.digest());
        let second = second.finish();
        assert_eq!(contents(&second), second_before, "round {round}");
        assert_eq!(second.compute_digest(), second.digest());
        // The live tree is whole, and changed unless nothing was changed.
        assert_eq!(zk.tree.compute_digest(), zk.tree.digest());
        if round > 0 {
            assert_ne!(contents(&zk.tree), before);
        }
    }
}

#[test]
fn a_capture_of_a_tree_that_was_replaced_fails() {
    let mut zk = Zk::new();
    zk.create("/a", 0);
    let mut capture = zk.tree.begin_capture();
    assert_eq!(zk.tree.capture_step(&mut capture), Ok(false));
    zk.tree = DataTree::new();
    assert_eq!(zk.tree.capture_step(&mut capture), Err(CaptureLost));
    // A copy of a tree is another tree too.
    let mut zk = Zk::new();
    let mut capture = zk.tree.begin_capture();
    let copy = zk.tree.clone();
    assert_eq!(copy.capture_step(&mut capture), Err(CaptureLost));
    assert_eq!(zk.tree.capture_step(&mut capture), Ok(false));
}
