//! Removal of empty containers and expired TTL nodes, as ZooKeeper's
//! ContainerManager does: every check interval, each candidate becomes a
//! deleteContainer request through the write path, paced so that no more
//! than `maxPerMinute` go out per minute.

use crate::pipeline::WriteReq;
use crate::Shared;
use ensemble_proto::{op, Writer};
use ensemble_tree::{ttl_of_ephemeral_owner, DataTree};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::debug;

/// Paths to delete now: containers that had children and have none left,
/// never-used containers past their allowance, TTL nodes unchanged for longer
/// than their TTL and without children.
pub fn candidates(tree: &DataTree, now_ms: i64, max_never_used_ms: u64) -> Vec<String> {
    let mut out = Vec::new();
    for path in tree.containers() {
        let Some(node) = tree.node(&path) else {
            continue;
        };
        if node.has_children() {
            continue;
        }
        let elapsed = now_ms - node.stat.mtime;
        if node.stat.cversion > 0 || (max_never_used_ms != 0 && elapsed > max_never_used_ms as i64)
        {
            out.push(path);
        }
    }
    for path in tree.ttls() {
        let Some(node) = tree.node(&path) else {
            continue;
        };
        if node.has_children() {
            continue;
        }
        let ttl = ttl_of_ephemeral_owner(node.stat.ephemeral_owner).unwrap_or(0);
        if ttl != 0 && now_ms - node.stat.mtime > ttl {
            out.push(path);
        }
    }
    out
}

pub async fn container_task(shared: Arc<Shared>) {
    let interval = Duration::from_millis(shared.config.container_check_interval_ms.max(1));
    let spacing = Duration::from_millis(60_000 / shared.config.container_max_per_minute.max(1));
    loop {
        tokio::time::sleep(interval).await;
        // In quorum mode only the leader removes containers, as in ZooKeeper.
        if shared.quorum && !shared.consensus().leader_ready() {
            continue;
        }
        let now = shared.wall_clock_ms();
        let paths = {
            let tree = shared.tree.read();
            candidates(
                &tree,
                now,
                shared.config.container_max_never_used_interval_ms,
            )
        };
        for path in paths {
            let started = Instant::now();
            debug!("removing container or expired TTL node {path}");
            let mut w = Writer::new();
            w.write_string(&path);
            shared.submit_write(WriteReq {
                session_id: 0,
                cxid: 0,
                opcode: op::DELETE_CONTAINER,
                body: w.into_bytes(),
                auth: Arc::new(Vec::new()),
                reply: None,
                done: None,
                from: None,
                txn: None,
            });
            if let Some(rest) = spacing.checked_sub(started.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
    }
}
