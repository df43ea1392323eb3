//! Property: any tree survives writing and reading a snapshot, in every
//! compression, with its sessions, ACLs, Stats and digest.

use bytes::Bytes;
use ensemble_proto::{Acl, CreateTxn, Id, TxnHeader};
use ensemble_storage::{read_snapshot, write_snapshot, Compression};
use ensemble_tree::{DataTree, TxnBody};
use proptest::prelude::*;

fn acl_choice(i: u8) -> Vec<Acl> {
    let id = |scheme: &str, id: &str| Id {
        scheme: scheme.into(),
        id: id.into(),
    };
    match i % 3 {
        0 => vec![Acl {
            perms: 31,
            id: id("world", "anyone"),
        }],
        1 => vec![Acl {
            perms: 1,
            id: id("world", "anyone"),
        }],
        _ => vec![
            Acl {
                perms: 31,
                id: id("digest", "u:abc="),
            },
            Acl {
                perms: 3,
                id: id("ip", "10.0.0.0/8"),
            },
        ],
    }
}

type Snapshot = Vec<(
    String,
    Option<Bytes>,
    Vec<Acl>,
    ensemble_proto::StatPersisted,
)>;

fn contents(t: &DataTree) -> Snapshot {
    let mut v = Vec::new();
    t.visit_preorder(|p, n| {
        v.push((
            p.to_owned(),
            n.data.clone(),
            t.acl_cache().convert_long(n.acl),
            n.stat.clone(),
        ))
    });
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_trees_survive_a_snapshot(
        ops in proptest::collection::vec(
            (any::<u16>(), "[a-z0-9]{1,6}", proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)), any::<u8>(), 0i64..4),
            0..60),
        sessions in proptest::collection::btree_map(1i64..1000, 4000i32..40000, 0..5),
        compression in prop_oneof![Just(Compression::None), Just(Compression::Gzip), Just(Compression::Snappy)],
    ) {
        let mut tree = DataTree::new();
        let mut paths = vec![String::new()];
        let mut zxid = 0i64;
        for (parent, name, data, acl, owner) in ops {
            let parent = paths[parent as usize % paths.len()].clone();
            let path = format!("{parent}/{name}");
            zxid += 1;
            let hdr = TxnHeader { client_id: owner, cxid: 1, zxid, time: 1_700_000_000_000 + zxid, r#type: 1 };
            let body = TxnBody::Create(CreateTxn {
                path: path.clone(),
                data: data.map(Bytes::from),
                acl: acl_choice(acl),
                ephemeral: owner != 0,
                parent_c_version: -1,
            });
            if tree.apply(&hdr, &body).err == 0 && owner == 0 {
                paths.push(path);
            }
        }
        let sessions: Vec<(i64, i32)> = sessions.into_iter().collect();
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = write_snapshot(dir.path(), &tree, &sessions, tree.last_zxid(), compression)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = read_snapshot(&path).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.zxid, tree.last_zxid());
        prop_assert_eq!(&back.sessions, &sessions);
        prop_assert_eq!(contents(&back.tree), contents(&tree));
        prop_assert_eq!(back.tree.digest(), tree.digest());
        prop_assert_eq!(back.tree.all_ephemerals(), tree.all_ephemerals());
    }
}
