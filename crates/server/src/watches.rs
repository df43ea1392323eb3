//! Watches, kept per connection as ZooKeeper's WatchManager keeps them per
//! ServerCnxn: a data table (data and exists watches, persistent and
//! recursive watches) and a child table (child watches, persistent watches).
//! A (connection, path) pair holds a set of modes, as ZooKeeper's WatchStats:
//! a trigger drops the one-shot mode and keeps the persistent ones.

use crate::conn::ConnHandle;
use crate::stats::PercentileSummary;
use bytes::Bytes;
use ensemble_proto::Jute;
use ensemble_proto::{
    event_type, keeper_state, watcher_type, xid, ReplyHeader, WatcherEvent, Writer,
};
use smallvec::SmallVec;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// A map keyed by connection id. The ids are the server's own counters,
/// not a client's choice, so one multiplication spreads them well enough;
/// SipHash cost more than the rest of a lookup when one setData fires
/// thousands of watches.
type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: the high bits, which pick the control byte,
        // and the low bits, which pick the bucket, both depend on every bit.
        self.0 = (self.0.rotate_left(26) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Watch modes, as bits of a set.
pub const STANDARD: u8 = 1;
pub const PERSISTENT: u8 = 2;
pub const PERSISTENT_RECURSIVE: u8 = 4;

/// The frame of a watch notification. As ZooKeeper 3.9, an event fired by a
/// txn carries that txn's zxid; events made up by SetWatches carry -1.
pub fn notification(event: i32, path: &str, zxid: i64) -> Bytes {
    let mut w = Writer::new_frame();
    ReplyHeader {
        xid: xid::NOTIFICATION,
        zxid,
        err: 0,
    }
    .write(&mut w);
    WatcherEvent {
        r#type: event,
        state: keeper_state::SYNC_CONNECTED,
        path: path.to_string(),
    }
    .write(&mut w);
    w.finish_frame()
}

/// The connections watching one path with their modes: almost always one,
/// held inline. Past [`MANY`] they move to a map, so one connection among
/// thousands (arming, removing, closing) is found without a scan.
enum Watchers {
    Few(SmallVec<[(u64, u8); 1]>),
    /// Boxed so the common one-watcher path pays 8 bytes for it, not 48.
    #[allow(clippy::box_collection)]
    Many(Box<IdMap<u8>>),
}

/// Watchers of one path kept in a list before they move to a map.
const MANY: usize = 16;

impl Default for Watchers {
    fn default() -> Self {
        Watchers::Few(SmallVec::new())
    }
}

impl Watchers {
    fn get(&self, id: u64) -> Option<u8> {
        match self {
            Watchers::Few(v) => v.iter().find(|(i, _)| *i == id).map(|e| e.1),
            Watchers::Many(m) => m.get(&id).copied(),
        }
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut u8> {
        match self {
            Watchers::Few(v) => v.iter_mut().find(|(i, _)| *i == id).map(|(_, m)| m),
            Watchers::Many(m) => m.get_mut(&id),
        }
    }

    /// Adds a connection that does not watch the path yet.
    fn insert(&mut self, id: u64, modes: u8) {
        match self {
            Watchers::Few(v) if v.len() < MANY => v.push((id, modes)),
            Watchers::Few(v) => {
                let mut m: IdMap<u8> = v.drain(..).collect();
                m.insert(id, modes);
                *self = Watchers::Many(Box::new(m));
            }
            Watchers::Many(m) => {
                m.insert(id, modes);
            }
        }
    }

    fn remove(&mut self, id: u64) -> Option<u8> {
        match self {
            Watchers::Few(v) => {
                let i = v.iter().position(|(i, _)| *i == id)?;
                Some(v.swap_remove(i).1)
            }
            Watchers::Many(m) => m.remove(&id),
        }
    }

    fn len(&self) -> usize {
        match self {
            Watchers::Few(v) => v.len(),
            Watchers::Many(m) => m.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn for_each(&self, mut f: impl FnMut(u64, u8)) {
        match self {
            Watchers::Few(v) => v.iter().for_each(|(i, m)| f(*i, *m)),
            Watchers::Many(m) => m.iter().for_each(|(i, m)| f(*i, *m)),
        }
    }

    /// Keeps the watchers for which `f` (which may change their modes) says so.
    fn retain(&mut self, mut f: impl FnMut(u64, &mut u8) -> bool) {
        match self {
            Watchers::Few(v) => v.retain(|(i, m)| f(*i, m)),
            Watchers::Many(m) => m.retain(|i, md| f(*i, md)),
        }
    }
}

/// One table's watches. A path is stored once (an `Arc<str>` shared by both
/// indexes) and a connection's handle once, so a watch costs about 100 bytes.
#[derive(Default)]
struct Table {
    by_path: HashMap<Arc<str>, Watchers>,
    /// Connection -> its handle and the paths it watches in this table.
    by_conn: IdMap<ConnWatches>,
    /// Recursive watches present: when zero, parents need not be visited.
    recursive: usize,
    /// (connection, path) pairs in all.
    count: usize,
}

/// The connections one trigger notifies.
#[derive(Default)]
struct Fired {
    conns: Vec<ConnHandle>,
    /// Whether a connection may be there more than once.
    repeats: bool,
}

struct ConnWatches {
    conn: ConnHandle,
    paths: HashSet<Arc<str>>,
}

impl Table {
    fn add(&mut self, path: &str, conn: &ConnHandle, mode: u8) {
        let key = match self.by_path.get_key_value(path) {
            Some((k, _)) => k.clone(),
            None => Arc::from(path),
        };
        // The connection's own set says whether it watches the path already,
        // so adding one watcher to thousands is not a scan of them all.
        let present = self
            .by_conn
            .get(&conn.id)
            .is_some_and(|c| c.paths.contains(path));
        let watchers = self.by_path.entry(key.clone()).or_default();
        let existing = if present {
            watchers.get_mut(conn.id)
        } else {
            None
        };
        let old = match existing {
            Some(e) => {
                let old = *e;
                *e |= mode;
                old
            }
            None => {
                watchers.insert(conn.id, mode);
                self.by_conn
                    .entry(conn.id)
                    .or_insert_with(|| ConnWatches {
                        conn: conn.clone(),
                        paths: HashSet::new(),
                    })
                    .paths
                    .insert(key);
                self.count += 1;
                0
            }
        };
        if mode == PERSISTENT_RECURSIVE && old & PERSISTENT_RECURSIVE == 0 {
            self.recursive += 1;
        }
    }

    fn modes(&self, path: &str, conn_id: u64) -> u8 {
        self.by_path
            .get(path)
            .and_then(|w| w.get(conn_id))
            .unwrap_or(0)
    }

    fn forget(&mut self, path: &str, conn_id: u64) {
        if let Some(w) = self.by_path.get_mut(path) {
            if let Some(modes) = w.remove(conn_id) {
                if modes & PERSISTENT_RECURSIVE != 0 {
                    self.recursive -= 1;
                }
                self.count -= 1;
            }
            if w.is_empty() {
                self.by_path.remove(path);
            }
        }
        if let Some(c) = self.by_conn.get_mut(&conn_id) {
            c.paths.remove(path);
            if c.paths.is_empty() {
                self.by_conn.remove(&conn_id);
            }
        }
    }

    /// Removes `mode` (or every mode when None); true when something was removed.
    fn remove(&mut self, path: &str, conn_id: u64, mode: Option<u8>) -> bool {
        let old = self.modes(path, conn_id);
        if old == 0 {
            return false;
        }
        let new = match mode {
            Some(m) => old & !m,
            None => 0,
        };
        if new == old {
            return false;
        }
        if new == 0 {
            self.forget(path, conn_id);
        } else {
            if old & PERSISTENT_RECURSIVE != 0 && new & PERSISTENT_RECURSIVE == 0 {
                self.recursive -= 1;
            }
            if let Some(e) = self.by_path.get_mut(path).and_then(|w| w.get_mut(conn_id)) {
                *e = new;
            }
        }
        true
    }

    fn handle(&self, conn_id: u64) -> Option<ConnHandle> {
        self.by_conn.get(&conn_id).map(|c| c.conn.clone())
    }

    /// The connections an event on `path` notifies: any mode on the path
    /// itself (one-shot modes are consumed), recursive modes on its parents.
    /// A connection is there twice only if a recursive watch on a parent
    /// added it: [`Fired::repeats`] says whether one did.
    fn trigger(&mut self, path: &str) -> Fired {
        let mut out = Vec::new();
        // Connections whose last mode on the path was the one-shot one.
        let mut consumed = Vec::new();
        let Table {
            by_path, by_conn, ..
        } = self;
        if let Some(w) = by_path.get_mut(path) {
            out.reserve(w.len());
            // One pass over the watchers, however many there are.
            w.retain(|id, modes| {
                out.extend(by_conn.get(&id).map(|c| c.conn.clone()));
                if *modes & STANDARD != 0 {
                    *modes &= !STANDARD;
                    if *modes == 0 {
                        consumed.push(id);
                        return false;
                    }
                }
                true
            });
            if w.is_empty() {
                by_path.remove(path);
            }
        }
        self.count -= consumed.len();
        for id in consumed {
            if let Some(c) = self.by_conn.get_mut(&id) {
                c.paths.remove(path);
                if c.paths.is_empty() {
                    self.by_conn.remove(&id);
                }
            }
        }
        let own = out.len();
        if self.recursive > 0 {
            let mut p = path;
            while let Some(i) = p.rfind('/') {
                p = if i == 0 { "/" } else { &p[..i] };
                if let Some(w) = self.by_path.get(p) {
                    w.for_each(|id, modes| {
                        if modes & PERSISTENT_RECURSIVE != 0 {
                            out.extend(self.handle(id));
                        }
                    });
                }
                if p == "/" {
                    break;
                }
            }
        }
        let repeats = out.len() > own && out.len() > 1;
        Fired {
            conns: out,
            repeats,
        }
    }

    fn remove_conn(&mut self, conn_id: u64) {
        let Some(c) = self.by_conn.remove(&conn_id) else {
            return;
        };
        for p in c.paths {
            if let Some(w) = self.by_path.get_mut(&p) {
                if let Some(modes) = w.remove(conn_id) {
                    if modes & PERSISTENT_RECURSIVE != 0 {
                        self.recursive -= 1;
                    }
                    self.count -= 1;
                }
                if w.is_empty() {
                    self.by_path.remove(&p);
                }
            }
        }
        // A table that held millions of watches gives its memory back.
        if self.by_path.capacity() > 4096 && self.by_path.len() < self.by_path.capacity() / 4 {
            self.by_path.shrink_to_fit();
        }
    }

    fn count(&self) -> usize {
        self.count
    }
}

#[derive(Default)]
pub struct WatchManager {
    data: Table,
    child: Table,
    /// How many watches each trigger fired, by event type.
    pub fired: FiredStats,
}

/// ZooKeeper's `node_{created,deleted,changed,children}_watch_count`
/// summaries: for each trigger of one watch table that fired at least one
/// watch, the number of connections it notified.
#[derive(Default)]
pub struct FiredStats {
    pub created: PercentileSummary,
    pub deleted: PercentileSummary,
    pub changed: PercentileSummary,
    pub children: PercentileSummary,
}

impl FiredStats {
    /// Back to empty (`srst`).
    pub fn reset(&self) {
        for s in [&self.created, &self.deleted, &self.changed, &self.children] {
            s.reset();
        }
    }

    fn record(&self, event: i32, fired: &Fired) {
        let targets = &fired.conns;
        if targets.is_empty() {
            return;
        }
        let distinct = if fired.repeats {
            targets.iter().map(|c| c.id).collect::<HashSet<_>>().len()
        } else {
            targets.len()
        } as u64;
        let summary = match event {
            event_type::NODE_CREATED => &self.created,
            event_type::NODE_DELETED => &self.deleted,
            event_type::NODE_DATA_CHANGED => &self.changed,
            event_type::NODE_CHILDREN_CHANGED => &self.children,
            _ => return,
        };
        summary.add(distinct);
    }
}

impl WatchManager {
    /// getData/exists with watch=true.
    pub fn add_data_watch(&mut self, path: &str, conn: &ConnHandle) {
        self.data.add(path, conn, STANDARD);
    }

    /// getChildren with watch=true.
    pub fn add_child_watch(&mut self, path: &str, conn: &ConnHandle) {
        self.child.add(path, conn, STANDARD);
    }

    /// addWatch: mode 0 is persistent (both tables), 1 persistent recursive
    /// (the data table only, as ZooKeeper's DataTree.addWatch).
    pub fn add_persistent(&mut self, path: &str, conn: &ConnHandle, recursive: bool) {
        if recursive {
            self.data.add(path, conn, PERSISTENT_RECURSIVE);
        } else {
            self.data.add(path, conn, PERSISTENT);
            self.child.add(path, conn, PERSISTENT);
        }
    }

    /// checkWatches: whether the connection holds a watch of this type.
    pub fn contains(&self, path: &str, conn_id: u64, wtype: i32) -> bool {
        match wtype {
            watcher_type::CHILDREN => self.child.modes(path, conn_id) & STANDARD != 0,
            watcher_type::DATA => self.data.modes(path, conn_id) & STANDARD != 0,
            watcher_type::PERSISTENT => self.data.modes(path, conn_id) & PERSISTENT != 0,
            watcher_type::PERSISTENT_RECURSIVE => {
                self.data.modes(path, conn_id) & PERSISTENT_RECURSIVE != 0
            }
            watcher_type::ANY => {
                self.child.modes(path, conn_id) != 0 || self.data.modes(path, conn_id) != 0
            }
            _ => false,
        }
    }

    /// removeWatches: true when a watch of this type was removed.
    pub fn remove(&mut self, path: &str, conn_id: u64, wtype: i32) -> bool {
        match wtype {
            watcher_type::CHILDREN => self.child.remove(path, conn_id, Some(STANDARD)),
            watcher_type::DATA => self.data.remove(path, conn_id, Some(STANDARD)),
            watcher_type::PERSISTENT => {
                let a = self.child.remove(path, conn_id, Some(PERSISTENT));
                let b = self.data.remove(path, conn_id, Some(PERSISTENT));
                a || b
            }
            watcher_type::PERSISTENT_RECURSIVE => {
                self.data.remove(path, conn_id, Some(PERSISTENT_RECURSIVE))
            }
            watcher_type::ANY => {
                let a = self.child.remove(path, conn_id, None);
                let b = self.data.remove(path, conn_id, None);
                a || b
            }
            _ => false,
        }
    }

    /// Fires the watches an event on `path` triggers, as ZooKeeper's DataTree
    /// does: created and data-changed go to the data table, children-changed
    /// to the child table, deleted to both (once per connection).
    /// The notification is queued on each connection; the caller delivers
    /// them ([`ConnHandle::deliver`]) once it lets go of the tree, to the
    /// connections it gets back in `notified`.
    pub fn trigger(&mut self, event: i32, path: &str, zxid: i64, notified: &mut Vec<ConnHandle>) {
        let mut targets = match event {
            event_type::NODE_CREATED | event_type::NODE_DATA_CHANGED => self.data.trigger(path),
            event_type::NODE_CHILDREN_CHANGED => self.child.trigger(path),
            event_type::NODE_DELETED => {
                let mut fired = self.data.trigger(path);
                // ZooKeeper triggers its two tables one after the other.
                self.fired.record(event, &fired);
                let from_child = self.child.trigger(path);
                self.fired.record(event, &from_child);
                fired.repeats |=
                    from_child.repeats || !(fired.conns.is_empty() || from_child.conns.is_empty());
                fired.conns.extend(from_child.conns);
                fired
            }
            _ => Fired::default(),
        };
        if event != event_type::NODE_DELETED {
            self.fired.record(event, &targets);
        }
        if targets.conns.is_empty() {
            return;
        }
        if targets.repeats {
            let mut seen = HashSet::new();
            targets.conns.retain(|c| seen.insert(c.id));
        }
        let targets = targets.conns;
        let frame = notification(event, path, zxid);
        for c in targets {
            c.queue(frame.clone());
            notified.push(c);
        }
    }

    /// Drops every watch of a connection that went away.
    pub fn remove_conn(&mut self, conn_id: u64) {
        self.data.remove_conn(conn_id);
        self.child.remove_conn(conn_id);
    }

    pub fn watch_count(&self) -> usize {
        self.data.count() + self.child.count()
    }

    /// The data table by connection: each watching connection with its
    /// paths, sorted (`wchc`; ZooKeeper lists its data watch table only).
    pub fn data_watches_by_conn(&self) -> Vec<(u64, Vec<String>)> {
        let mut out: Vec<(u64, Vec<String>)> = self
            .data
            .by_conn
            .iter()
            .map(|(id, c)| {
                let mut paths: Vec<String> = c.paths.iter().map(|p| p.to_string()).collect();
                paths.sort_unstable();
                (*id, paths)
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// The data table by path: each watched path with its connections,
    /// sorted (`wchp`).
    pub fn data_watches_by_path(&self) -> Vec<(String, Vec<u64>)> {
        let mut out: Vec<(String, Vec<u64>)> = self
            .data
            .by_path
            .iter()
            .map(|(path, w)| {
                let mut ids: Vec<u64> = Vec::with_capacity(w.len());
                w.for_each(|id, _| ids.push(id));
                ids.sort_unstable();
                (path.to_string(), ids)
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// (connections, paths, watches) of the data table (`wchs`).
    pub fn data_watch_summary(&self) -> (usize, usize, usize) {
        (
            self.data.by_conn.len(),
            self.data.by_path.len(),
            self.data.count(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ServerStats;

    fn handles(n: u64) -> Vec<ConnHandle> {
        let stats = Arc::new(ServerStats::new());
        (1..=n)
            .map(|id| {
                let guard = stats.open_conn(id, "127.0.0.1:1".parse().expect("address"));
                ConnHandle::new(id, stats.clone(), guard.conn.clone())
            })
            .collect()
    }

    #[test]
    fn a_path_many_connections_watch_keeps_each_one_apart() {
        let conns = handles(100);
        let mut w = WatchManager::default();
        for c in &conns {
            w.add_data_watch("/p", c);
        }
        // Arming again changes nothing.
        w.add_data_watch("/p", &conns[0]);
        w.add_persistent("/p", &conns[4], false);
        assert_eq!(w.data_watch_summary(), (100, 1, 100));
        assert!(w.remove("/p", 50, watcher_type::DATA));
        assert!(!w.contains("/p", 50, watcher_type::DATA));
        assert!(w.contains("/p", 51, watcher_type::DATA));
        assert_eq!(w.data_watch_summary(), (99, 1, 99));

        let mut notified = Vec::new();
        w.trigger(event_type::NODE_DATA_CHANGED, "/p", 7, &mut notified);
        let mut ids: Vec<u64> = notified.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        let expected: Vec<u64> = (1..=100).filter(|id| *id != 50).collect();
        assert_eq!(ids, expected);
        // The one-shot watches are spent; the persistent one stays, in both tables.
        assert_eq!(w.data_watch_summary(), (1, 1, 1));
        assert_eq!(w.data_watches_by_path(), vec![("/p".to_string(), vec![5])]);
        assert_eq!(w.watch_count(), 2);
        w.remove_conn(5);
        assert_eq!(w.watch_count(), 0);
        assert_eq!(w.data_watch_summary(), (0, 0, 0));
    }

    #[test]
    fn a_connection_reached_by_two_watches_is_notified_once() {
        let conns = handles(3);
        let mut w = WatchManager::default();
        // Connection 1: a data watch on the node and recursive ones on two
        // of its parents; 2: the data watch only; 3: a recursive watch only.
        w.add_data_watch("/a/b/c", &conns[0]);
        w.add_persistent("/a", &conns[0], true);
        w.add_persistent("/a/b", &conns[0], true);
        w.add_data_watch("/a/b/c", &conns[1]);
        w.add_persistent("/a/b", &conns[2], true);
        let mut notified = Vec::new();
        w.trigger(event_type::NODE_DATA_CHANGED, "/a/b/c", 9, &mut notified);
        let mut ids: Vec<u64> = notified.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 2, 3]);
        // ZooKeeper's watch-count summary counts connections, not watches.
        assert_eq!(w.fired.changed.values().max, 3);

        // A deleted node fires both tables; a connection in both hears it once.
        w.add_data_watch("/d", &conns[1]);
        w.add_child_watch("/d", &conns[1]);
        w.add_child_watch("/d", &conns[2]);
        let mut notified = Vec::new();
        w.trigger(event_type::NODE_DELETED, "/d", 10, &mut notified);
        let mut ids: Vec<u64> = notified.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![2, 3]);
        // One summary entry per table: one connection in the data table, two
        // in the child table.
        let deleted = w.fired.deleted.values();
        assert_eq!((deleted.count, deleted.min, deleted.max), (2, 1, 2));
    }
}
