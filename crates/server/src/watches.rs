//! One-shot data and child watches, kept per connection as ZooKeeper's
//! WatchManager keeps them per ServerCnxn. Exists watches live in the data
//! table. A trigger removes the watches it fires.

use crate::conn::ConnHandle;
use bytes::Bytes;
use ensemble_proto::Jute;
use ensemble_proto::{event_type, keeper_state, xid, ReplyHeader, WatcherEvent, Writer};
use std::collections::{HashMap, HashSet};

#[derive(Default)]
pub struct WatchManager {
    data: HashMap<String, HashMap<u64, ConnHandle>>,
    child: HashMap<String, HashMap<u64, ConnHandle>>,
    /// For each connection, the paths it watches: (is_child_watch, path).
    by_conn: HashMap<u64, HashSet<(bool, String)>>,
}

/// The frame of a watch notification.
/// ZooKeeper 3.8 sends notifications with zxid -1.
pub fn notification(event: i32, path: &str) -> Bytes {
    let mut w = Writer::new_frame();
    ReplyHeader {
        xid: xid::NOTIFICATION,
        zxid: -1,
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

impl WatchManager {
    pub fn add_data_watch(&mut self, path: &str, conn: &ConnHandle) {
        self.data
            .entry(path.to_string())
            .or_default()
            .insert(conn.id, conn.clone());
        self.by_conn
            .entry(conn.id)
            .or_default()
            .insert((false, path.to_string()));
    }

    pub fn add_child_watch(&mut self, path: &str, conn: &ConnHandle) {
        self.child
            .entry(path.to_string())
            .or_default()
            .insert(conn.id, conn.clone());
        self.by_conn
            .entry(conn.id)
            .or_default()
            .insert((true, path.to_string()));
    }

    fn take(&mut self, is_child: bool, path: &str) -> Vec<ConnHandle> {
        let table = if is_child {
            &mut self.child
        } else {
            &mut self.data
        };
        let Some(conns) = table.remove(path) else {
            return Vec::new();
        };
        let key = (is_child, path.to_string());
        for id in conns.keys() {
            if let Some(set) = self.by_conn.get_mut(id) {
                set.remove(&key);
                if set.is_empty() {
                    self.by_conn.remove(id);
                }
            }
        }
        conns.into_values().collect()
    }

    /// Fires the watches an event on `path` triggers, as ZooKeeper's DataTree
    /// does: created and data-changed fire data watches, children-changed
    /// fires child watches, deleted fires both (once per connection).
    pub fn trigger(&mut self, event: i32, path: &str) {
        let mut targets = match event {
            event_type::NODE_CREATED | event_type::NODE_DATA_CHANGED => self.take(false, path),
            event_type::NODE_CHILDREN_CHANGED => self.take(true, path),
            event_type::NODE_DELETED => {
                let mut v = self.take(false, path);
                v.extend(self.take(true, path));
                v
            }
            _ => Vec::new(),
        };
        if targets.is_empty() {
            return;
        }
        let mut seen = HashSet::new();
        targets.retain(|c| seen.insert(c.id));
        let frame = notification(event, path);
        for c in targets {
            c.send(frame.clone());
        }
    }

    /// Drops every watch of a connection that went away.
    pub fn remove_conn(&mut self, conn_id: u64) {
        let Some(set) = self.by_conn.remove(&conn_id) else {
            return;
        };
        for (is_child, path) in set {
            let table = if is_child {
                &mut self.child
            } else {
                &mut self.data
            };
            if let Some(conns) = table.get_mut(&path) {
                conns.remove(&conn_id);
                if conns.is_empty() {
                    table.remove(&path);
                }
            }
        }
    }

    pub fn watch_count(&self) -> usize {
        self.by_conn.values().map(|s| s.len()).sum()
    }
}
