//! Quota bookkeeping as ZooKeeper's `DataTree` does it: a path gets a quota
//! when `/zookeeper/quota<path>/zookeeper_limits` is created, and every create,
//! delete and setData below it rewrites the data of
//! `/zookeeper/quota<path>/zookeeper_stats` ("count=N,bytes=M", `StatsTrack`)
//! in place, without a txn of its own and without touching that node's Stat.
//! Quotas are not enforced here (ZooKeeper's `enforceQuota` is off by default).

use crate::acl::java_split;
use crate::path;
use crate::tree::DataTree;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub const LIMIT_NODE: &str = "zookeeper_limits";
pub const STAT_NODE: &str = "zookeeper_stats";

pub fn stat_path(path: &str) -> String {
    format!("{}{path}/{STAT_NODE}", path::QUOTA)
}

/// `StatsTrack`: "count=N,bytes=M" then, when other keys exist, "=" and
/// ";key=value" sorted by key. Entries ZooKeeper could not parse (it would
/// throw while applying) are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    values: BTreeMap<String, i64>,
}

impl StatsTrack {
    pub fn parse(data: &[u8]) -> StatsTrack {
        let text = String::from_utf8_lossy(data);
        let mut values = BTreeMap::new();
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let kv = java_split(pair, '=');
            if kv.len() < 2 {
                continue;
            }
            let v = if kv[1].is_empty() {
                Some(-1)
            } else {
                kv[1].parse::<i64>().ok()
            };
            if let Some(v) = v {
                values.insert(kv[0].to_owned(), v);
            }
        }
        StatsTrack { values }
    }

    pub fn get(&self, k: &str) -> i64 {
        self.values.get(k).copied().unwrap_or(-1)
    }

    pub fn count(&self) -> i64 {
        self.get("count")
    }

    pub fn bytes(&self) -> i64 {
        self.get("bytes")
    }

    pub fn set_count(&mut self, v: i64) {
        self.values.insert("count".into(), v);
    }

    pub fn set_bytes(&mut self, v: i64) {
        self.values.insert("bytes".into(), v);
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut s = format!("count={},bytes={}", self.count(), self.bytes());
        let extra: Vec<_> = self
            .values
            .iter()
            .filter(|(k, _)| *k != "count" && *k != "bytes")
            .collect();
        if !extra.is_empty() {
            s.push('=');
            for (k, v) in extra {
                s.push_str(&format!(";{k}={v}"));
            }
        }
        Bytes::from(s)
    }
}

/// Paths with a quota (`pTrie`), matched component by component.
#[derive(Debug, Clone, Default)]
pub(crate) struct QuotaPrefixes {
    paths: BTreeSet<Vec<String>>,
}

fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

impl QuotaPrefixes {
    pub(crate) fn add(&mut self, path: &str) {
        let c = components(path);
        if !c.is_empty() {
            self.paths.insert(c);
        }
    }

    pub(crate) fn remove(&mut self, path: &str) {
        self.paths.remove(&components(path));
    }

    /// `getMaxPrefixWithQuota`: the deepest quota path at or above `path`.
    pub(crate) fn max_prefix(&self, path: &str) -> Option<String> {
        if self.paths.is_empty() {
            return None;
        }
        let c = components(path);
        (1..=c.len())
            .rev()
            .find(|n| self.paths.contains(&c[..*n]))
            .map(|n| format!("/{}", c[..n].join("/")))
    }
}

/// The quota path a node under `/zookeeper/quota` describes (`trimQuotaPath`).
fn trim_quota_path(parent: &str) -> Option<&str> {
    parent.strip_prefix(path::QUOTA)
}

impl DataTree {
    /// After a node was created: register limits, initialise stats, count it.
    pub(crate) fn quota_on_create(&mut self, parent: &str, child: &str, path: &str, bytes: i64) {
        if parent.starts_with(path::QUOTA) {
            if let Some(target) = trim_quota_path(parent) {
                if child == LIMIT_NODE {
                    self.quotas.add(target);
                }
                if child == STAT_NODE {
                    self.update_quota_for_path(target.to_owned().as_str());
                }
            }
        }
        if let Some(prefix) = self.quotas.max_prefix(path) {
            self.update_quota_stat(&prefix, bytes, 1);
        }
    }

    pub(crate) fn quota_on_delete(&mut self, parent: &str, child: &str, path: &str, bytes: i64) {
        if parent.starts_with(path::PROC) && child == LIMIT_NODE {
            if let Some(target) = trim_quota_path(parent) {
                self.quotas.remove(target);
            }
        }
        if let Some(prefix) = self.quotas.max_prefix(path) {
            self.update_quota_stat(&prefix, -bytes, -1);
        }
    }

    pub(crate) fn quota_on_set_data(&mut self, path: &str, bytes_diff: i64) {
        if let Some(prefix) = self.quotas.max_prefix(path) {
            self.update_quota_stat(&prefix, bytes_diff, 0);
        }
    }

    fn set_stats_data(&mut self, stat_path: &str, data: Bytes) {
        if let Some(n) = self.nodes.get_mut(stat_path).map(Arc::make_mut) {
            let old = n.data.as_ref().map_or(0, |d| d.len() as u64);
            self.data_size = (self.data_size + data.len() as u64).saturating_sub(old);
            n.data = Some(data);
        }
    }

    /// `updateQuotaStat`.
    fn update_quota_stat(&mut self, prefix: &str, bytes_diff: i64, count_diff: i64) {
        let sp = stat_path(prefix);
        let Some(n) = self.nodes.get(sp.as_str()) else {
            return;
        };
        let mut st = StatsTrack::parse(n.data.as_deref().unwrap_or_default());
        st.set_count(st.count() + count_diff);
        st.set_bytes(st.bytes() + bytes_diff);
        self.set_stats_data(&sp, st.to_bytes());
        // Passing a soft limit is only logged, as ZooKeeper's DataTree does.
        let limit_path = format!("{}{prefix}/{LIMIT_NODE}", path::QUOTA);
        if let Some(limit) = self.nodes.get(limit_path.as_str()) {
            let limit = StatsTrack::parse(limit.data.as_deref().unwrap_or_default());
            if limit.count() > -1 && st.count() > limit.count() {
                tracing::warn!(
                    "Quota exceeded: {prefix} count={} limit={}",
                    st.count(),
                    limit.count()
                );
            }
            if limit.bytes() > -1 && st.bytes() > limit.bytes() {
                tracing::warn!(
                    "Quota exceeded: {prefix} bytes={} limit={}",
                    st.bytes(),
                    limit.bytes()
                );
            }
        }
    }

    /// `updateQuotaForPath`: recount a whole subtree (node itself included).
    fn update_quota_for_path(&mut self, target: &str) {
        let (mut count, mut bytes) = (0i64, 0i64);
        // The children's paths are borrowed from the tree: nothing is copied.
        let mut stack: Vec<&str> = vec![if target.is_empty() { "/" } else { target }];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.nodes.get(p) {
                count += 1;
                bytes += n.data.as_ref().map_or(0, |d| d.len() as i64);
                stack.extend(n.child_paths());
            }
        }
        let mut st = StatsTrack::default();
        st.set_bytes(bytes);
        st.set_count(count);
        self.set_stats_data(&stat_path(target), st.to_bytes());
    }

    /// `setupQuota`, for a tree loaded from a snapshot: every leaf limits
    /// node registers its path, whose stats node is recounted.
    pub(crate) fn rebuild_quotas(&mut self) {
        let prefix = format!("{}/", path::QUOTA);
        let suffix = format!("/{LIMIT_NODE}");
        let mut found: Vec<String> = self
            .nodes
            .iter()
            .filter(|(p, n)| p.starts_with(&prefix) && p.ends_with(&suffix) && !n.has_children())
            .map(|(p, _)| p[path::QUOTA.len()..p.len() - suffix.len()].to_owned())
            .collect();
        found.sort();
        for p in found {
            self.update_quota_for_path(&p);
            self.quotas.add(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_track_round_trips_zookeeper_text() {
        let s = StatsTrack::parse(b"count=3,bytes=10");
        assert_eq!((s.count(), s.bytes()), (3, 10));
        assert_eq!(&s.to_bytes()[..], b"count=3,bytes=10");
        let s = StatsTrack::parse(b"count=1,bytes=-1=;byteHardLimit=5;countHardLimit=2");
        assert_eq!(
            &s.to_bytes()[..],
            b"count=1,bytes=-1=;byteHardLimit=5;countHardLimit=2"
        );
        assert_eq!(StatsTrack::parse(b"count==7,bytes=4").count(), -1);
        assert_eq!(StatsTrack::parse(b"count=,bytes=4").count(), -1);
    }

    #[test]
    fn max_prefix_is_component_wise() {
        let mut q = QuotaPrefixes::default();
        q.add("/a");
        q.add("/a/b/c");
        assert_eq!(q.max_prefix("/a/b"), Some("/a".into()));
        assert_eq!(q.max_prefix("/a/b/c/d"), Some("/a/b/c".into()));
        assert_eq!(q.max_prefix("/ab"), None);
        assert_eq!(q.max_prefix("/"), None);
    }
}

/// Why a write was refused by a hard quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub prefix: String,
}

impl DataTree {
    /// `ZooKeeperServer.checkQuota` with `enforceQuota` on: a create (one
    /// node, `new_len` bytes) or setData (`new_len - last_len` bytes) below a
    /// quota path that would pass a hard limit is refused; passing a soft
    /// limit is only logged by the caller, as in ZooKeeper.
    pub fn check_quota(
        &self,
        path: &str,
        last_len: i64,
        new_len: i64,
        is_create: bool,
    ) -> Result<(), QuotaExceeded> {
        let Some(prefix) = self.quotas.max_prefix(path) else {
            return Ok(());
        };
        let limit_path = format!("{}{prefix}/{LIMIT_NODE}", path::QUOTA);
        let Some(limits) = self.node(&limit_path) else {
            return Ok(());
        };
        let limits = StatsTrack::parse(limits.data.as_deref().unwrap_or(&[]));
        let (count_diff, bytes_diff) = if is_create {
            (1, new_len)
        } else {
            (0, new_len - last_len)
        };
        let count_hard = limits.get("countHardLimit");
        let byte_hard = limits.get("byteHardLimit");
        let check_count = count_diff != 0 && (limits.count() > -1 || count_hard > -1);
        let check_bytes = bytes_diff != 0 && (limits.bytes() > -1 || byte_hard > -1);
        if !check_count && !check_bytes {
            return Ok(());
        }
        let Some(stats) = self.node(&stat_path(&prefix)) else {
            return Ok(());
        };
        let current = StatsTrack::parse(stats.data.as_deref().unwrap_or(&[]));
        let exceeded = QuotaExceeded {
            prefix: prefix.clone(),
        };
        if check_count && count_hard > -1 && current.count() + count_diff > count_hard {
            return Err(exceeded);
        }
        if check_bytes && byte_hard > -1 && current.bytes() + bytes_diff > byte_hard {
            return Err(exceeded);
        }
        Ok(())
    }
}
