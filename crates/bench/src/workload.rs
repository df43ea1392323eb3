//! What a session sends: the names of the znodes each workload touches and
//! the setup phase that creates the keys a workload needs (through the
//! client library; the measured requests go through crate::pipe).

use crate::{BenchArgs, Workload};
use std::fmt::Write;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use zookeeper_client as zk;

/// Requests kept outstanding per session while creating keys in setup.
const SETUP_PIPELINE: usize = 16;

/// The shared, read-mostly description of one run.
pub struct Plan {
    pub workload: Workload,
    pub prefix: String,
    pub data: Vec<u8>,
    pub keys: u64,
    pub read_ratio: f64,
    /// setData operations in each multi.
    pub multi_ops: usize,
    /// The prefix znode's data version, read in setup: the version check of
    /// every multi (nobody writes the prefix, so the check always passes).
    prefix_version: AtomicI32,
    /// For `--ops` runs and for delete: how many requests may be issued.
    pub limit: Option<u64>,
    /// Requests issued so far, and the index of the next unique name.
    issued: AtomicU64,
    /// Distinguishes the names this run creates from those of earlier runs.
    pub tag: String,
}

impl Plan {
    pub fn new(args: &BenchArgs) -> Plan {
        let limit = match args.workload {
            Workload::Delete => Some(args.ops.unwrap_or(args.keys)),
            _ => args.ops,
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Plan {
            workload: args.workload,
            prefix: args.prefix.clone(),
            data: vec![b'x'; args.value_size],
            keys: args.keys,
            read_ratio: args.read_ratio,
            multi_ops: args.multi_ops,
            prefix_version: AtomicI32::new(0),
            limit,
            issued: AtomicU64::new(0),
            tag: format!("{:x}", (nanos as u64) ^ u64::from(std::process::id())),
        }
    }

    /// A key of the read/write/mixed key space.
    pub fn key(&self, i: u64) -> String {
        let mut s = String::new();
        self.write_key(&mut s, i);
        s
    }

    /// Appends the key `i` to `out`, without allocating once `out` is grown.
    pub fn write_key(&self, out: &mut String, i: u64) {
        let _ = write!(out, "{}/k{i}", self.prefix);
    }

    /// The n-th unique name of this run (create, populate, delete).
    pub fn unique(&self, n: u64) -> String {
        let mut s = String::new();
        self.write_unique(&mut s, n);
        s
    }

    /// Appends the n-th unique name to `out`.
    pub fn write_unique(&self, out: &mut String, n: u64) {
        let letter = match self.workload {
            Workload::Populate => 'p',
            Workload::Delete => 'd',
            _ => 'c',
        };
        let _ = write!(out, "{}/{letter}{}-{n}", self.prefix, self.tag);
    }

    /// The prefix's data version, the version check of every multi.
    pub fn prefix_version(&self) -> i32 {
        self.prefix_version.load(Ordering::Relaxed)
    }

    /// Claims the next request; `None` once `limit` requests were issued.
    pub fn claim(&self) -> Option<u64> {
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        match self.limit {
            Some(limit) if n >= limit => None,
            _ => Some(n),
        }
    }
}

pub(crate) fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

/// Creates the prefix, and the keys (read, write, mixed) or the znodes to
/// delete (delete) that the measured phase needs. Existing keys are kept.
pub async fn setup(clients: &[zk::Client], plan: &Arc<Plan>, quiet: bool) -> Result<(), String> {
    let first = clients.first().ok_or("no sessions")?;
    first
        .mkdir(&plan.prefix, &persistent())
        .await
        .map_err(|e| format!("cannot create {}: {e}", plan.prefix))?;
    if plan.workload == Workload::Multi {
        let stat = first
            .check_stat(&plan.prefix)
            .await
            .map_err(|e| format!("cannot read {}: {e}", plan.prefix))?
            .ok_or_else(|| format!("{} vanished during setup", plan.prefix))?;
        plan.prefix_version.store(stat.version, Ordering::Relaxed);
    }
    let (count, name): (u64, fn(&Plan, u64) -> String) = match plan.workload {
        Workload::Read | Workload::Write | Workload::Mixed | Workload::Multi => {
            (plan.keys, Plan::key)
        }
        Workload::Delete => (plan.limit.unwrap_or(plan.keys), Plan::unique),
        // Nothing to prepare; watch and connect prepare their own.
        Workload::Create | Workload::Populate | Workload::Watch | Workload::Connect => {
            return Ok(())
        }
    };
    if !quiet {
        eprintln!("setup: creating {count} znodes under {}", plan.prefix);
    }
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for client in clients {
        for _ in 0..SETUP_PIPELINE {
            let (client, plan, next) = (client.clone(), plan.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let options = persistent();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return Ok(());
                    }
                    let path = name(&plan, i);
                    match client.create(&path, &plan.data, &options).await {
                        Ok(_) | Err(zk::Error::NodeExists) => {}
                        Err(e) => return Err(format!("setup: cannot create {path}: {e}")),
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await
            .map_err(|e| format!("setup task failed: {e}"))??;
    }
    Ok(())
}

/// A small, fast generator for key choice; quality beyond uniformity is not needed.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xorshift_keys_stay_in_range_and_vary() {
        let mut rng = XorShift::new(3);
        let picks: Vec<u64> = (0..1000).map(|_| rng.below(10)).collect();
        assert!(picks.iter().all(|&k| k < 10));
        assert!((0..10).all(|k| picks.contains(&k)));
    }

    #[test]
    fn delete_runs_are_limited_to_the_prepared_znodes() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        let cli = Cli::parse_from(["bench", "--workload", "delete", "--keys", "3"]);
        let plan = Plan::new(&cli.bench);
        let claimed: Vec<u64> = std::iter::from_fn(|| plan.claim()).collect();
        assert_eq!(claimed, vec![0, 1, 2]);
        assert!(plan.unique(1).starts_with("/bench/d"));
    }
}
