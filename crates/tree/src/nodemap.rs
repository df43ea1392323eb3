//! The node map: every znode by its path, in flat hash tables.
//!
//! A path is hashed once (foldhash, seeded per map, so crafted paths cannot be
//! aimed at one bucket); bits in the middle of the hash pick one of
//! [`SHARDS`] tables and the table uses the rest. Splitting the map keeps each
//! table small, so that growing one rehashes a few thousand entries rather than
//! the whole tree while the tree's lock is held.
use crate::tree::{Node, PathKey};
use hashbrown::HashTable;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// How many tables the map is split into (a power of two).
const SHARDS: usize = 1024;
/// Where the table's index starts in the hash: clear of the low bits a table
/// indexes its buckets with and of the top seven it keeps as a tag per bucket.
const SHARD_SHIFT: u32 = 40;

type Entry = (PathKey, Arc<Node>);
/// One of the map's tables.
type Shard = HashTable<Entry>;

pub(crate) struct NodeMap {
    hasher: foldhash::fast::RandomState,
    shards: Box<[Shard]>,
    len: usize,
    /// Snapshots being copied out of the map, table by table; see [`Capture`].
    captures: Vec<Arc<CaptureState>>,
}

impl Default for NodeMap {
    fn default() -> Self {
        NodeMap {
            hasher: foldhash::fast::RandomState::default(),
            shards: (0..SHARDS).map(|_| HashTable::new()).collect(),
            len: 0,
            captures: Vec::new(),
        }
    }
}

/// A copy holds the same entries; the snapshots being taken stay with the original.
impl Clone for NodeMap {
    fn clone(&self) -> Self {
        NodeMap {
            hasher: self.hasher.clone(),
            shards: self.shards.clone(),
            len: self.len,
            captures: Vec::new(),
        }
    }
}

impl std::fmt::Debug for NodeMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeMap").field("len", &self.len).finish()
    }
}

#[inline]
fn shard_of(hash: u64) -> usize {
    (hash >> SHARD_SHIFT) as usize & (SHARDS - 1)
}

impl NodeMap {
    #[inline]
    fn hash(&self, path: &str) -> u64 {
        self.hasher.hash_one(path)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Empties the map; the snapshots being taken of it are dropped (their
    /// copying fails).
    pub(crate) fn clear(&mut self) {
        for s in self.shards.iter_mut() {
            *s = HashTable::new();
        }
        self.len = 0;
        self.captures.clear();
    }

    #[inline]
    pub(crate) fn get_key_value(&self, path: &str) -> Option<(&PathKey, &Arc<Node>)> {
        let h = self.hash(path);
        self.shards[shard_of(h)]
            .find(h, |(k, _)| k.as_str() == path)
            .map(|(k, v)| (k, v))
    }

    #[inline]
    pub(crate) fn get(&self, path: &str) -> Option<&Arc<Node>> {
        self.get_key_value(path).map(|(_, v)| v)
    }

    #[inline]
    pub(crate) fn contains_key(&self, path: &str) -> bool {
        self.get_key_value(path).is_some()
    }

    /// The node at `path`, to be changed (through `Arc::make_mut`, which
    /// leaves a snapshot's copy as it was).
    #[inline]
    pub(crate) fn get_mut(&mut self, path: &str) -> Option<&mut Arc<Node>> {
        let h = self.hash(path);
        let s = shard_of(h);
        let (k, v) = self.shards[s].find_mut(h, |(k, _)| k.as_str() == path)?;
        if !self.captures.is_empty() {
            record_before(&mut self.captures, s, k, Some(&*v));
        }
        Some(v)
    }

    /// Puts `node` under `key`; the node it replaces, if any.
    pub(crate) fn insert(&mut self, key: PathKey, node: Arc<Node>) -> Option<Arc<Node>> {
        let h = self.hash(&key);
        let s = shard_of(h);
        let hasher = &self.hasher;
        let shard = &mut self.shards[s];
        if let Some((k, v)) = shard.find_mut(h, |(k, _)| *k == key) {
            if !self.captures.is_empty() {
                record_before(&mut self.captures, s, k, Some(&*v));
            }
            return Some(std::mem::replace(v, node));
        }
        if !self.captures.is_empty() {
            record_before(&mut self.captures, s, &key, None);
        }
        shard.insert_unique(h, (key, node), |(k, _)| hasher.hash_one(k.as_str()));
        self.len += 1;
        None
    }

    pub(crate) fn remove(&mut self, path: &str) -> Option<Arc<Node>> {
        let h = self.hash(path);
        let s = shard_of(h);
        let ((k, v), _) = self.shards[s]
            .find_entry(h, |(k, _)| k.as_str() == path)
            .ok()?
            .remove();
        if !self.captures.is_empty() {
            record_before(&mut self.captures, s, &k, Some(&v));
        }
        self.len -= 1;
        Some(v)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&PathKey, &Arc<Node>)> {
        self.shards
            .iter()
            .flat_map(|s| s.iter().map(|(k, v)| (k, v)))
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &PathKey> {
        self.iter().map(|(k, _)| k)
    }

    /// Starts a snapshot of the map as it is now; see [`Capture`].
    pub(crate) fn begin_capture(&mut self) -> Capture {
        self.captures.retain(|c| !c.finished());
        let state = Arc::new(CaptureState {
            copied: (0..SHARDS).map(|_| AtomicBool::new(false)).collect(),
            before: Mutex::new(HashMap::default()),
        });
        self.captures.push(state.clone());
        Capture {
            state,
            hasher: self.hasher.clone(),
            copies: Vec::with_capacity(SHARDS),
        }
    }

    /// Copies the next table into `capture`; whether every table is copied.
    /// Fails when `capture` was not begun on this map (the tree was replaced
    /// or emptied since).
    pub(crate) fn capture_step(&self, capture: &mut Capture) -> Result<bool, CaptureLost> {
        if !self.captures.iter().any(|c| Arc::ptr_eq(c, &capture.state)) {
            return Err(CaptureLost);
        }
        let s = capture.copies.len();
        if s < SHARDS {
            capture.copies.push(self.shards[s].clone());
            // Under the tree's read lock: no change can come between the
            // copy and the flag, and every later change sees the flag.
            capture.state.copied[s].store(true, Ordering::Release);
        }
        Ok(capture.copies.len() == SHARDS)
    }
}

/// Keeps, for every snapshot still copying table `s`, the entry of `key` as it
/// was when the snapshot began: the first change since is the one recorded.
fn record_before(
    captures: &mut Vec<Arc<CaptureState>>,
    s: usize,
    key: &PathKey,
    node: Option<&Arc<Node>>,
) {
    captures.retain(|c| !c.finished());
    for c in captures.iter() {
        if !c.copied[s].load(Ordering::Acquire) {
            let mut before = c.before.lock().unwrap_or_else(|e| e.into_inner());
            before.entry(key.clone()).or_insert_with(|| node.cloned());
        }
    }
}

/// What a snapshot being copied shares with the map it is copied from.
pub(crate) struct CaptureState {
    /// Which tables are copied already; a change to one of the others first
    /// records the entry as it was.
    copied: Box<[AtomicBool]>,
    /// The entries changed since the snapshot began, as they were then (None:
    /// there was none), for tables not yet copied when they changed.
    before: Mutex<HashMap<PathKey, Option<Arc<Node>>, foldhash::fast::RandomState>>,
}

impl CaptureState {
    /// Copied to the end, or given up by its taker: the map keeps it no longer.
    fn finished(self: &Arc<Self>) -> bool {
        Arc::strong_count(self) == 1
            || self
                .copied
                .last()
                .is_some_and(|c| c.load(Ordering::Acquire))
    }
}

/// A snapshot of the node map at one moment, copied a table at a time under
/// the tree's read lock so that no copy of the whole map ever stops the
/// writes. The changes made meanwhile to tables not yet copied record the
/// entries as they were; those replace what the later copies saw, so the
/// result is the map exactly as it was when the capture began.
pub(crate) struct Capture {
    state: Arc<CaptureState>,
    hasher: foldhash::fast::RandomState,
    copies: Vec<Shard>,
}

impl Capture {
    /// The map as it was when the capture began; every table must be copied.
    pub(crate) fn finish(self) -> NodeMap {
        assert_eq!(
            self.copies.len(),
            SHARDS,
            "a capture finished before its copy"
        );
        let before =
            std::mem::take(&mut *self.state.before.lock().unwrap_or_else(|e| e.into_inner()));
        let mut map = NodeMap {
            hasher: self.hasher,
            shards: self.copies.into_boxed_slice(),
            len: 0,
            captures: Vec::new(),
        };
        for (key, node) in before {
            let h = map.hash(&key);
            let shard = &mut map.shards[shard_of(h)];
            if let Ok(e) = shard.find_entry(h, |(k, _)| *k == key) {
                e.remove();
            }
            if let Some(node) = node {
                let hasher = &map.hasher;
                shard.insert_unique(h, (key, node), |(k, _)| hasher.hash_one(k.as_str()));
            }
        }
        map.len = map.shards.iter().map(|s| s.len()).sum();
        map
    }
}

/// A capture's map was replaced or emptied before its copy was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureLost;

impl std::fmt::Display for CaptureLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the tree was replaced while a snapshot was being copied from it")
    }
}

impl std::error::Error for CaptureLost {}
