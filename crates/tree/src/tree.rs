//! The data tree: znodes by path, their persisted Stat, ACL ids into the ACL
//! cache, and the indexes ZooKeeper keeps beside them (ephemerals by session,
//! containers, TTL nodes). Reads live here; writes come only through
//! [`DataTree::apply`](crate::apply).

use crate::acl::{read_acl_unsafe, AclCache, OPEN_UNSAFE_ACL_ID};
use crate::digest;
use crate::path::{self, java_len};
use crate::quota::QuotaPrefixes;
use arcstr::ArcStr;
use bytes::Bytes;
use ensemble_proto::{Acl, Id, Stat, StatPersisted};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// `EphemeralType.CONTAINER_EPHEMERAL_OWNER`.
pub const CONTAINER_EPHEMERAL_OWNER: i64 = i64::MIN;
const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;
const RESERVED_BITS_MASK: i64 = 0x00ff_ff00_0000_0000;
const EXTENDED_BIT_TTL: i64 = 0;
/// The largest TTL ZooKeeper accepts (`EphemeralType.TTL.maxValue()`).
pub const MAX_TTL: i64 = !(EXTENDED_MASK | RESERVED_BITS_MASK);

/// What a node's ephemeralOwner says about it (`EphemeralType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EphemeralType {
    /// Persistent (owner 0).
    Void,
    /// Owned by a session.
    Normal,
    Container,
    Ttl,
}

impl EphemeralType {
    /// Classifies an owner with ZooKeeper's extended types enabled. With them
    /// disabled ZooKeeper would call a TTL owner `Normal`, but TTL owners only
    /// exist when they are enabled, and the 0xff top byte never starts a
    /// session id of a server whose myid is at most 254.
    pub fn of(owner: i64) -> EphemeralType {
        if owner & EXTENDED_MASK == EXTENDED_MASK {
            // Any other extended feature bit is invalid in ZooKeeper (it throws);
            // treat it as a session so it is at least cleaned up on close.
            if (owner & RESERVED_BITS_MASK) >> 40 == EXTENDED_BIT_TTL {
                return EphemeralType::Ttl;
            }
            return EphemeralType::Normal;
        }
        if owner == CONTAINER_EPHEMERAL_OWNER {
            EphemeralType::Container
        } else if owner == 0 {
            EphemeralType::Void
        } else {
            EphemeralType::Normal
        }
    }
}

/// `EphemeralType.TTL.toEphemeralOwner`; `None` when the ttl is out of range.
pub fn ttl_to_ephemeral_owner(ttl: i64) -> Option<i64> {
    (ttl > 0 && ttl <= MAX_TTL).then_some(EXTENDED_MASK | (EXTENDED_BIT_TTL << 40) | ttl)
}

/// The ttl stored in a TTL node's ephemeralOwner.
pub fn ttl_of_ephemeral_owner(owner: i64) -> Option<i64> {
    (EphemeralType::of(owner) == EphemeralType::Ttl).then_some(owner & MAX_TTL)
}

/// A znode's path as the tree keeps it: one reference-counted allocation,
/// shared by the node map's key and the parent's set of children.
pub(crate) type PathKey = ArcStr;

/// One znode (`DataNode`).
#[derive(Debug, Clone)]
pub struct Node {
    pub data: Option<Bytes>,
    /// Key into the tree's [`AclCache`].
    pub acl: i64,
    pub stat: StatPersisted,
    /// The children's full paths. Siblings share their parent's path and the
    /// slash after it, so the paths sort as the names do. Boxed, and absent
    /// while there are none: most znodes are leaves.
    children: Option<Box<Children>>,
}

/// How many children a plain set holds before the persistent one takes over.
const MANY_CHILDREN: usize = 1024;

/// A parent's children. A snapshot's copy shares every node with the tree,
/// and the first change of a parent after it was copied copies that parent:
/// a plain set is copied whole (a million children took tens of
/// milliseconds, under the tree's lock, at every snapshot), a persistent one
/// in O(1), paying on its changes a copy of the path to the child instead.
/// Small sets stay plain: a persistent set's first node is larger than most.
#[derive(Debug, Clone)]
enum Children {
    Few(BTreeSet<PathKey>),
    Many(imbl::OrdSet<PathKey>),
}

/// The children's paths in order, from either kind of set.
enum ChildPaths<'a> {
    Few(std::collections::btree_set::Iter<'a, PathKey>),
    Many(imbl::ordset::Iter<'a, PathKey, imbl::shared_ptr::DefaultSharedPtr>),
}

impl<'a> Iterator for ChildPaths<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        match self {
            ChildPaths::Few(i) => i.next().map(|p| p.as_str()),
            ChildPaths::Many(i) => i.next().map(|p| p.as_str()),
        }
    }
}

impl DoubleEndedIterator for ChildPaths<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            ChildPaths::Few(i) => i.next_back().map(|p| p.as_str()),
            ChildPaths::Many(i) => i.next_back().map(|p| p.as_str()),
        }
    }
}

impl Node {
    pub(crate) fn new(data: Option<Bytes>, acl: i64, stat: StatPersisted) -> Node {
        Node {
            data,
            acl,
            stat,
            children: None,
        }
    }

    pub fn child_count(&self) -> usize {
        match self.children.as_deref() {
            None => 0,
            Some(Children::Few(c)) => c.len(),
            Some(Children::Many(c)) => c.len(),
        }
    }

    pub fn has_children(&self) -> bool {
        self.children.is_some()
    }

    /// The children's full paths, sorted by name.
    pub fn child_paths(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.children.iter().flat_map(|c| match &**c {
            Children::Few(c) => ChildPaths::Few(c.iter()),
            Children::Many(c) => ChildPaths::Many(c.iter()),
        })
    }

    /// The children's names, sorted.
    pub fn child_names(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.child_paths().map(path::child_name)
    }

    pub(crate) fn add_child(&mut self, child: PathKey) {
        let set = self
            .children
            .get_or_insert_with(|| Box::new(Children::Few(BTreeSet::new())));
        match &mut **set {
            Children::Few(c) => {
                c.insert(child);
                if c.len() > MANY_CHILDREN {
                    let c = std::mem::take(c);
                    **set = Children::Many(c.into_iter().collect());
                }
            }
            Children::Many(c) => {
                c.insert(child);
            }
        }
    }

    /// Removes the child at the full path `child`, if there is one. A set
    /// that became persistent stays so until it is empty.
    pub(crate) fn remove_child(&mut self, child: &str) {
        let empty = match self.children.as_deref_mut() {
            None => return,
            Some(Children::Few(c)) => {
                c.remove(child);
                c.is_empty()
            }
            Some(Children::Many(c)) => {
                c.remove(child);
                c.is_empty()
            }
        };
        if empty {
            self.children = None;
        }
    }

    /// The Stat a client sees (`DataNode.copyStat`). The persisted cversion
    /// counts creates only; clients see creates plus deletes, which is
    /// `2 * cversion - numChildren`. Container and TTL owners show as 0.
    pub fn client_stat(&self) -> Stat {
        let s = &self.stat;
        let num_children = self.child_count() as i32;
        let owner = if EphemeralType::of(s.ephemeral_owner) == EphemeralType::Normal {
            s.ephemeral_owner
        } else {
            0
        };
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: s.aversion,
            ephemeral_owner: owner,
            data_length: self.data.as_ref().map_or(0, |d| d.len() as i32),
            num_children,
            pzxid: s.pzxid,
        }
    }
}

/// `DataTree.createStat`.
pub(crate) fn new_stat(zxid: i64, time: i64, ephemeral_owner: i64) -> StatPersisted {
    StatPersisted {
        czxid: zxid,
        mzxid: zxid,
        ctime: time,
        mtime: time,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner,
        pzxid: zxid,
    }
}

pub(crate) use crate::nodemap::NodeMap;
use crate::nodemap::{Capture, CaptureLost};

/// ZooKeeper's data tree. Plain data: `Send + Sync`, no interior mutability.
#[derive(Debug, Clone)]
pub struct DataTree {
    /// Flat hash tables (a clone copies them whole; a snapshot is taken with
    /// [`DataTree::begin_capture`] instead), sharing every node with any copy
    /// until one of the two changes it.
    pub(crate) nodes: NodeMap,
    pub(crate) acls: AclCache,
    pub(crate) ephemerals: HashMap<i64, HashSet<PathKey>>,
    pub(crate) containers: HashSet<PathKey>,
    pub(crate) ttls: HashSet<PathKey>,
    pub(crate) last_zxid: i64,
    /// Running `approximateDataSize`, kept as ZooKeeper's `nodeDataSize`.
    pub(crate) data_size: u64,
    pub(crate) quotas: QuotaPrefixes,
    /// Running tree digest (`NodeHashMapImpl`'s `AdHash`).
    pub(crate) digest: u64,
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

impl DataTree {
    /// A fresh tree as ZooKeeper's `DataTree()`: `/`, `/zookeeper` and
    /// `/zookeeper/quota` with all-zero Stats, empty data and the open ACL
    /// (id -1), and `/zookeeper/config` readable by anyone (its ACL set with
    /// version -1, so its aversion is -1, as `stat /zookeeper/config` shows).
    pub fn new() -> DataTree {
        let mut t = DataTree {
            nodes: NodeMap::default(),
            acls: AclCache::default(),
            ephemerals: HashMap::new(),
            containers: HashSet::new(),
            ttls: HashSet::new(),
            last_zxid: 0,
            data_size: 0,
            quotas: QuotaPrefixes::default(),
            digest: 0,
        };
        let empty = || Some(Bytes::new());
        let zero = StatPersisted::default();
        for p in [path::ROOT, path::PROC, path::QUOTA] {
            t.nodes.insert(
                PathKey::from(p),
                Arc::new(Node::new(empty(), OPEN_UNSAFE_ACL_ID, zero.clone())),
            );
        }
        let config_acl = t.acls.convert_acls(&read_acl_unsafe());
        let mut config = Node::new(empty(), config_acl, zero);
        config.stat.aversion = -1;
        t.nodes
            .insert(PathKey::from(path::CONFIG), Arc::new(config));
        t.link_child(path::ROOT, path::PROC);
        t.link_child(path::PROC, path::QUOTA);
        t.link_child(path::PROC, path::CONFIG);
        t.data_size = t.compute_data_size();
        t.digest = t.compute_digest() as u64;
        t
    }

    fn link_child(&mut self, parent: &str, child: &str) {
        let key = self.nodes.get_key_value(child).map(|(k, _)| k.clone());
        if let (Some(n), Some(key)) = (self.nodes.get_mut(parent).map(Arc::make_mut), key) {
            n.add_child(key);
        }
    }

    /// zxid of the last applied txn (`lastProcessedZxid`).
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Sets the last applied zxid, for a tree loaded from a snapshot.
    pub fn set_last_zxid(&mut self, zxid: i64) {
        self.last_zxid = zxid;
    }

    /// ZooKeeper's `getNodeCount`, which counts the root twice because its
    /// node map holds it under both "" and "/" (a fresh server reports 5).
    pub fn node_count(&self) -> usize {
        self.nodes.len() + 1
    }

    /// `approximateDataSize`: path length (UTF-16 units) plus data length of
    /// every entry of ZooKeeper's node map, which holds the root twice.
    pub fn approximate_data_size(&self) -> u64 {
        self.data_size
    }

    pub(crate) fn compute_data_size(&self) -> u64 {
        let root_alias = self
            .nodes
            .get(path::ROOT)
            .map_or(0, |n| n.data.as_ref().map_or(0, |d| d.len() as u64));
        root_alias
            + self
                .nodes
                .iter()
                .map(|(p, n)| node_size(p, n.data.as_ref()))
                .sum::<u64>()
    }

    /// The tree digest ZooKeeper logs in `TxnDigest.treeDigest` (version
    /// [`DIGEST_VERSION`](crate::digest::DIGEST_VERSION)) after each txn.
    pub fn digest(&self) -> i64 {
        self.digest as i64
    }

    /// The digest recomputed from every node, to check the running one.
    pub fn compute_digest(&self) -> i64 {
        self.nodes
            .iter()
            .fold(0u64, |acc, (p, n)| acc.wrapping_add(digest::of_node(p, n))) as i64
    }

    /// Changes the node at `path` in place and keeps the digest (ZooKeeper's
    /// `preChange`/`postChange` around the change) with one lookup in the node
    /// map. None when there is no such node.
    pub(crate) fn change_node<R>(
        &mut self,
        path: &str,
        change: impl FnOnce(&mut Node) -> R,
    ) -> Option<R> {
        let n = Arc::make_mut(self.nodes.get_mut(path)?);
        let before = digest::of_node(path, n);
        let r = change(n);
        self.digest = self
            .digest
            .wrapping_sub(before)
            .wrapping_add(digest::of_node(path, n));
        Some(r)
    }

    pub fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path).map(|n| &**n)
    }

    /// Puts the quorum's membership into `/zookeeper/config`, as a ZooKeeper
    /// member does at startup (`ZKDatabase.initConfigInZKDatabase`): outside
    /// the log, version -1, mzxid the config's version. The node is outside
    /// the digest.
    pub fn set_config(&mut self, data: Bytes, config_version: i64, time: i64) {
        if let Some(n) = self.nodes.get_mut(path::CONFIG).map(Arc::make_mut) {
            n.data = Some(data);
            n.stat.version = -1;
            n.stat.mzxid = config_version;
            n.stat.mtime = time;
        }
    }

    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.nodes.get(path).map(|n| n.client_stat())
    }

    pub fn get_data(&self, path: &str) -> Option<(Option<Bytes>, Stat)> {
        self.nodes
            .get(path)
            .map(|n| (n.data.clone(), n.client_stat()))
    }

    /// Whether `auth` holds `perm` on the node at `path`; None when there is
    /// no such node.
    pub fn permits(&self, path: &str, perm: i32, auth: &[Id]) -> Option<bool> {
        let n = self.nodes.get(path)?;
        Some(self.acls.permits(n.acl, perm, auth))
    }

    /// Child names, sorted (ZooKeeper returns them in hash order).
    pub fn children(&self, path: &str) -> Option<(Vec<String>, Stat)> {
        self.nodes.get(path).map(|n| {
            (
                n.child_names().map(str::to_owned).collect(),
                n.client_stat(),
            )
        })
    }

    /// `getAllChildrenNumber`: every node strictly below `path` (for the
    /// root, every node but the root, `/zookeeper` and its children included).
    pub fn all_children_number(&self, path: &str) -> usize {
        if path == path::ROOT {
            return self.nodes.len().saturating_sub(1);
        }
        let prefix = format!("{path}/");
        self.nodes.keys().filter(|p| p.starts_with(&prefix)).count()
    }

    pub fn acl(&self, path: &str) -> Option<(Vec<Acl>, Stat)> {
        self.nodes
            .get(path)
            .map(|n| (self.acls.convert_long(n.acl), n.client_stat()))
    }

    /// The ACL list of a node without its Stat, for permission checks.
    pub fn node_acl(&self, path: &str) -> Option<Vec<Acl>> {
        self.nodes.get(path).map(|n| self.acls.convert_long(n.acl))
    }

    pub fn acl_cache(&self) -> &AclCache {
        &self.acls
    }

    /// ZooKeeper's `getEphemeralsCount`: the ephemerals of every session.
    pub fn ephemerals_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    /// Paths of the ephemerals `session_id` owns, sorted.
    pub fn ephemerals(&self, session_id: i64) -> Vec<String> {
        let mut v: Vec<String> = self
            .ephemerals
            .get(&session_id)
            .map(|s| s.iter().map(|p| p.to_string()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Every session that owns ephemerals, with its sorted paths.
    pub fn all_ephemerals(&self) -> Vec<(i64, Vec<String>)> {
        let mut v: Vec<(i64, Vec<String>)> = self
            .ephemerals
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(k, s)| {
                let mut paths: Vec<String> = s.iter().map(|p| p.to_string()).collect();
                paths.sort();
                (*k, paths)
            })
            .collect();
        v.sort_by_key(|e| e.0);
        v
    }

    /// Paths of container nodes, sorted (for the container manager).
    pub fn containers(&self) -> Vec<String> {
        let mut v: Vec<String> = self.containers.iter().map(|p| p.to_string()).collect();
        v.sort();
        v
    }

    /// Paths of TTL nodes, sorted.
    pub fn ttls(&self) -> Vec<String> {
        let mut v: Vec<String> = self.ttls.iter().map(|p| p.to_string()).collect();
        v.sort();
        v
    }
}

/// A snapshot of the tree at one moment, taken from the live tree without
/// stopping its writes for a copy of the whole node map: [`DataTree::begin_capture`]
/// (with the tree held for writing, for a moment), then
/// [`DataTree::capture_step`] until it says done (each step with the tree held
/// for reading, a few thousand nodes' worth), then [`TreeCapture::finish`].
pub struct TreeCapture {
    nodes: Capture,
    /// The tree as it was, but its node map.
    rest: DataTree,
}

impl TreeCapture {
    /// zxid of the last txn in the capture.
    pub fn last_zxid(&self) -> i64 {
        self.rest.last_zxid
    }

    /// The tree as it was when the capture began. Panics unless
    /// [`DataTree::capture_step`] has said it is done.
    pub fn finish(self) -> DataTree {
        let mut t = self.rest;
        t.nodes = self.nodes.finish();
        t
    }
}

impl DataTree {
    /// Begins a [`TreeCapture`] of the tree as it is now. Everything but the
    /// node map is copied here (the ACL cache and the indexes of ephemerals,
    /// containers and TTL nodes: small beside the map).
    pub fn begin_capture(&mut self) -> TreeCapture {
        let nodes = self.nodes.begin_capture();
        let rest = DataTree {
            nodes: NodeMap::default(),
            acls: self.acls.clone(),
            ephemerals: self.ephemerals.clone(),
            containers: self.containers.clone(),
            ttls: self.ttls.clone(),
            last_zxid: self.last_zxid,
            data_size: self.data_size,
            quotas: self.quotas.clone(),
            digest: self.digest,
        };
        TreeCapture { nodes, rest }
    }

    /// Copies the next part of the node map into `capture`: one of its
    /// tables, about a thousandth of it. True once all of it is copied; an
    /// error when the tree is not the one the capture began on (a snapshot
    /// received from the leader replaced it).
    pub fn capture_step(&self, capture: &mut TreeCapture) -> Result<bool, CaptureLost> {
        self.nodes.capture_step(&mut capture.nodes)
    }
}

/// Snapshots: ZooKeeper writes the ACL cache, then every node in pre-order
/// as (path, data, acl id, StatPersisted) with the root's path as "", ending
/// with the path "/". These helpers give and take exactly that; the file
/// format itself belongs to the storage crate.
impl DataTree {
    /// Visits every node in pre-order (children sorted), with ZooKeeper's
    /// snapshot paths: "" for the root, "/a", "/a/b"...
    pub fn visit_preorder(&self, mut f: impl FnMut(&str, &Node)) {
        let mut stack: Vec<&str> = vec![path::ROOT];
        while let Some(p) = stack.pop() {
            let Some(n) = self.nodes.get(p) else {
                continue;
            };
            f(if p == path::ROOT { "" } else { p }, n);
            // Reverse so that the smallest child is visited first.
            stack.extend(n.child_paths().rev());
        }
    }

    /// Visits every node after its parent, with the paths of
    /// [`visit_preorder`](Self::visit_preorder): by depth, and within a depth
    /// in the node map's own order. ZooKeeper's snapshot reader asks no more
    /// of a snapshot's order than a parent before its children, and walking
    /// the map instead of the tree looks no node up by its path: the walk
    /// took half of a snapshot's time, a lookup (a cache miss or more) for
    /// every node. What is left is bound by cache misses too: the passes ask
    /// for the paths, nodes and data some entries ahead of their use, which
    /// took a quarter off the walk of a million znodes.
    pub fn visit_parents_first(&self, mut f: impl FnMut(&str, &Node)) {
        // The map's entries first: its own memory only, not the paths' or
        // the nodes' (each a cache miss of its own on a large tree). The
        // passes after that fetch what they read some entries ahead.
        let entries: Vec<(&PathKey, &Node)> = self.nodes.iter().map(|(p, n)| (p, &**n)).collect();
        let mut depths: Vec<u32> = Vec::with_capacity(entries.len());
        let mut per_depth: Vec<u32> = Vec::new();
        for (i, (p, _)) in entries.iter().enumerate() {
            if let Some((ahead, _)) = entries.get(i + PREFETCH_AHEAD) {
                prefetch(path_text_addr(ahead));
            }
            let depth = if &***p == path::ROOT {
                0
            } else {
                p.bytes().filter(|b| *b == b'/').count()
            };
            if per_depth.len() <= depth {
                per_depth.resize(depth + 1, 0);
            }
            per_depth[depth] += 1;
            depths.push(depth as u32);
        }
        // A counting sort by depth keeps the map's order within a depth.
        let mut next: Vec<u32> = per_depth
            .iter()
            .scan(0, |start, n| {
                let at = *start;
                *start += n;
                Some(at)
            })
            .collect();
        let mut order = vec![0u32; entries.len()];
        for (i, d) in depths.iter().enumerate() {
            let slot = &mut next[*d as usize];
            order[*slot as usize] = i as u32;
            *slot += 1;
        }
        drop(depths);
        for (j, i) in order.iter().enumerate() {
            if let Some(&ahead) = order.get(j + PREFETCH_AHEAD) {
                let (p, n) = entries[ahead as usize];
                prefetch(path_text_addr(p));
                prefetch((n as *const Node).cast());
            }
            if let Some(&ahead) = order.get(j + PREFETCH_AHEAD / 2) {
                if let Some(d) = &entries[ahead as usize].1.data {
                    prefetch(d.as_ptr());
                }
            }
            let (p, n) = entries[*i as usize];
            f(if p == path::ROOT { "" } else { p }, n);
        }
    }

    /// Builds a tree from a snapshot's ACL cache and node records, as
    /// `DataTree.deserialize`: parents must come before children, indexes
    /// and ACL reference counts are rebuilt, quota stats recounted and unused
    /// ACL entries dropped. The root may be given as "" or "/".
    pub fn from_snapshot(
        acls: impl IntoIterator<Item = (i64, Vec<Acl>)>,
        nodes: impl IntoIterator<Item = (String, Option<Bytes>, i64, StatPersisted)>,
        last_zxid: i64,
    ) -> Result<DataTree, String> {
        let mut t = DataTree::new();
        t.nodes.clear();
        t.acls = AclCache::default();
        for (id, list) in acls {
            t.acls.insert_loaded(id, list);
        }
        for (p, data, acl, stat) in nodes {
            let key = PathKey::from(if p.is_empty() { path::ROOT } else { &p });
            t.acls.add_usage(acl);
            if key != path::ROOT {
                let parent = path::parent_of(&key)
                    .ok_or_else(|| format!("invalid path {key:?} in snapshot"))?;
                let pn = t.nodes.get_mut(parent).map(Arc::make_mut).ok_or_else(|| {
                    format!("Invalid Datatree, unable to find parent {parent} of path {key}")
                })?;
                pn.add_child(key.clone());
                let owner = stat.ephemeral_owner;
                match EphemeralType::of(owner) {
                    EphemeralType::Container => {
                        t.containers.insert(key.clone());
                    }
                    EphemeralType::Ttl => {
                        t.ttls.insert(key.clone());
                    }
                    EphemeralType::Normal => {
                        t.ephemerals.entry(owner).or_default().insert(key.clone());
                    }
                    EphemeralType::Void => {}
                }
            }
            t.nodes.insert(key, Arc::new(Node::new(data, acl, stat)));
        }
        if !t.nodes.contains_key(path::ROOT) {
            return Err("snapshot has no root node".into());
        }
        t.data_size = t.compute_data_size();
        t.rebuild_quotas();
        t.digest = t.compute_digest() as u64;
        t.acls.purge_unused();
        t.last_zxid = last_zxid;
        Ok(t)
    }
}

pub(crate) fn node_size(path: &str, data: Option<&Bytes>) -> u64 {
    java_len(path) + data.map_or(0, |d| d.len() as u64)
}

/// How many entries ahead the snapshot walk asks for the memory it will read.
const PREFETCH_AHEAD: usize = 16;

/// Asks the CPU to bring the cache line at `addr` in; a hint only, which
/// never faults whatever the address.
#[inline(always)]
fn prefetch(addr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing and faults on no address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// Where a path's text lives, read without touching it: `ArcStr` is a
/// `repr(transparent)` pointer to its one allocation (length, then text).
/// Only ever given to [`prefetch`], so a wrong guess costs time, not safety.
#[inline(always)]
fn path_text_addr(p: &PathKey) -> *const u8 {
    const _: () = assert!(std::mem::size_of::<PathKey>() == std::mem::size_of::<*const u8>());
    // SAFETY: the key is one pointer-sized, initialised value; its bits are
    // copied out, not dereferenced.
    unsafe { std::mem::transmute_copy::<PathKey, *const u8>(p) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ensemble_proto::perms;

    #[test]
    fn a_parent_of_many_children_keeps_them_in_order_and_apart_from_its_copies() {
        let mut n = Node::new(None, OPEN_UNSAFE_ACL_ID, StatPersisted::default());
        let total = 3 * MANY_CHILDREN;
        // Added out of order; the set keeps them sorted.
        for i in (0..total).rev() {
            n.add_child(PathKey::from(format!("/p/c{i:05}")));
        }
        assert!(matches!(n.children.as_deref(), Some(Children::Many(_))));
        assert_eq!(n.child_count(), total);
        let names: Vec<&str> = n.child_names().collect();
        assert_eq!(names.len(), total);
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        let last = format!("/p/c{:05}", total - 1);
        assert_eq!(n.child_paths().next_back(), Some(last.as_str()));

        // A copy (as a snapshot holds) does not see later changes, nor they it.
        let copy = n.clone();
        n.remove_child("/p/c00000");
        n.add_child(PathKey::from("/p/d"));
        assert_eq!(copy.child_count(), total);
        assert_eq!(copy.child_paths().next(), Some("/p/c00000"));
        assert_eq!(copy.child_paths().next_back(), Some(last.as_str()));
        assert_eq!(n.child_paths().next(), Some("/p/c00001"));
        assert_eq!(n.child_paths().next_back(), Some("/p/d"));

        // Emptied, the node is a leaf again.
        let all: Vec<String> = n.child_paths().map(str::to_owned).collect();
        for p in &all {
            n.remove_child(p);
        }
        assert!(!n.has_children());
        assert_eq!(n.child_count(), 0);
        assert_eq!(copy.child_count(), total);
    }

    #[test]
    fn fresh_tree_matches_zookeeper_3_8() {
        // Observed on ZooKeeper 3.8 with kazoo: / has cversion -1 (0*2 - 1
        // child), /zookeeper -2, /zookeeper/config aversion -1.
        let t = DataTree::new();
        let root = t.stat("/").unwrap_or_default();
        assert_eq!((root.cversion, root.num_children, root.pzxid), (-1, 1, 0));
        let zk = t.stat("/zookeeper").unwrap_or_default();
        assert_eq!((zk.cversion, zk.num_children), (-2, 2));
        let quota = t.stat("/zookeeper/quota").unwrap_or_default();
        assert_eq!(quota, Stat::default());
        let config = t.stat("/zookeeper/config").unwrap_or_default();
        assert_eq!((config.aversion, config.version), (-1, 0));
        let (acl, _) = t.acl("/zookeeper/config").unwrap_or_default();
        assert_eq!(acl.len(), 1);
        assert_eq!(acl[0].perms, perms::READ);
        let (acl, _) = t.acl("/").unwrap_or_default();
        assert_eq!(acl[0].perms, perms::ALL);
        assert_eq!(acl[0].id.scheme, "world");
        assert_eq!(t.node_count(), 5);
        // "" + "/" + "/zookeeper" + "/zookeeper/quota" + "/zookeeper/config"
        assert_eq!(t.approximate_data_size(), 1 + 10 + 16 + 17);
        assert_eq!(t.last_zxid(), 0);
    }

    #[test]
    fn ttl_owner_encoding_round_trips() {
        let owner = ttl_to_ephemeral_owner(5000).unwrap_or_default();
        assert_eq!(owner as u64, 0xff00_0000_0000_1388);
        assert_eq!(EphemeralType::of(owner), EphemeralType::Ttl);
        assert_eq!(ttl_of_ephemeral_owner(owner), Some(5000));
        assert_eq!(ttl_to_ephemeral_owner(0), None);
        assert_eq!(ttl_to_ephemeral_owner(MAX_TTL + 1), None);
        assert_eq!(EphemeralType::of(i64::MIN), EphemeralType::Container);
        assert_eq!(EphemeralType::of(0), EphemeralType::Void);
        assert_eq!(
            EphemeralType::of(0x0100_0000_0000_0001),
            EphemeralType::Normal
        );
    }
}
