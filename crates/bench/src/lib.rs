//! `ensemble bench`: a load generator for any ZooKeeper-compatible server, in
//! the spirit of ClickHouse's keeper-bench. It speaks through the independent
//! `zookeeper-client` crate, so it measures Ensemble and Apache ZooKeeper alike.
//!
//! `--sessions` sessions each keep `--inflight` requests outstanding: every
//! session runs that many workers on clones of one `Client`, and because the
//! client orders a request when its future is created, K workers mean K
//! pipelined requests on one connection.

mod report;
mod workload;

use clap::{Args, ValueEnum};
use report::{CpuTime, Summary, WorkerStats};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::{Plan, Worker};
use zookeeper_client as zk;

/// Extra attempts at establishing each session before giving up.
const CONNECT_TRIES: u32 = 4;

/// Options of `ensemble bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Servers to connect to, `host:port[,host:port...]`.
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub hosts: String,
    /// What each request does.
    #[arg(long, value_enum, default_value_t = Workload::Read)]
    pub workload: Workload,
    /// Client sessions (one TCP connection each).
    #[arg(long, default_value_t = 16)]
    pub sessions: usize,
    /// Requests kept outstanding per session (pipelined).
    #[arg(long, default_value_t = 1)]
    pub inflight: usize,
    /// Seconds to run; ignored when `--ops` is given.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Stop after exactly this many requests instead of after `--duration`.
    #[arg(long)]
    pub ops: Option<u64>,
    /// Bytes of data in every created or written znode.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Size of the key space for read, write and mixed (created in a setup
    /// phase), and the number of znodes prepared for delete.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Fraction of reads in the mixed workload.
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Parent znode of everything the bench creates (created if missing).
    #[arg(long, default_value = "/bench")]
    pub prefix: String,
    /// Session timeout in milliseconds asked of the server.
    #[arg(long, default_value_t = 30_000)]
    pub session_timeout_ms: u64,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// The request mix.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// getData on existing keys.
    Read,
    /// setData on existing keys.
    Write,
    /// create of unique, non-sequential names.
    Create,
    /// delete of znodes created in the setup phase.
    Delete,
    /// getData and setData on existing keys, `--read-ratio` of them reads.
    Mixed,
    /// create exactly `--ops` znodes under the prefix, as fast as possible.
    Populate,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Read => "read",
            Workload::Write => "write",
            Workload::Create => "create",
            Workload::Delete => "delete",
            Workload::Mixed => "mixed",
            Workload::Populate => "populate",
        }
    }
}

/// Runs a benchmark and prints its summary; exit code 1 on a setup failure.
pub fn run(args: BenchArgs) -> ExitCode {
    if let Err(e) = validate(&args) {
        eprintln!("ensemble bench: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ensemble bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench(args)) {
        Ok(summary) => {
            summary.print();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ensemble bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn validate(args: &BenchArgs) -> Result<(), String> {
    if args.sessions == 0 || args.inflight == 0 {
        return Err("--sessions and --inflight must be at least 1".into());
    }
    if !(0.0..=1.0).contains(&args.read_ratio) {
        return Err("--read-ratio must be between 0 and 1".into());
    }
    if !args.prefix.starts_with('/') || args.prefix.len() < 2 || args.prefix.ends_with('/') {
        return Err(format!(
            "--prefix {:?} must be an absolute path other than /",
            args.prefix
        ));
    }
    if args.workload == Workload::Populate && args.ops.is_none() {
        return Err("--workload populate needs --ops N".into());
    }
    if matches!(
        args.workload,
        Workload::Read | Workload::Write | Workload::Mixed | Workload::Delete
    ) && args.keys == 0
    {
        return Err("--keys must be at least 1".into());
    }
    Ok(())
}

async fn connect(args: &BenchArgs) -> Result<Vec<zk::Client>, String> {
    let mut clients = Vec::with_capacity(args.sessions);
    for _ in 0..args.sessions {
        clients.push(connect_one(args).await?);
    }
    Ok(clients)
}

/// A server that has just started may accept a connection before it takes
/// sessions (ZooKeeper does), so a refused session is tried a few times.
async fn connect_one(args: &BenchArgs) -> Result<zk::Client, String> {
    let mut tries = 0;
    loop {
        let attempt = zk::Client::connector()
            .with_session_timeout(Duration::from_millis(args.session_timeout_ms))
            .with_connection_timeout(Duration::from_secs(10))
            // Say soon that no server answers, rather than retry for a
            // whole session timeout.
            .with_fail_eagerly()
            .connect(&args.hosts)
            .await;
        match attempt {
            Ok(client) => return Ok(client),
            Err(e) if tries >= CONNECT_TRIES => {
                return Err(format!("cannot connect to {}: {e}", args.hosts))
            }
            Err(_) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

async fn bench(args: BenchArgs) -> Result<Summary, String> {
    let clients = connect(&args).await?;
    let plan = Arc::new(Plan::new(&args));
    let setup_started = Instant::now();
    workload::setup(&clients, &plan, args.quiet).await?;
    let setup_secs = setup_started.elapsed().as_secs_f64();

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let cpu_before = CpuTime::now();
    let started = Instant::now();
    let started_unix = std::time::SystemTime::now();
    let deadline = args
        .ops
        .is_none()
        .then(|| started + Duration::from_secs(args.duration));

    let mut tasks = Vec::with_capacity(args.sessions * args.inflight);
    for (s, client) in clients.iter().enumerate() {
        for i in 0..args.inflight {
            let worker = Worker {
                client: client.clone(),
                plan: plan.clone(),
                stop: stop.clone(),
                done: done.clone(),
                failed: failed.clone(),
                seed: (s * args.inflight + i) as u64,
            };
            tasks.push(tokio::spawn(worker.run()));
        }
    }
    let progress = (!args.quiet).then(|| {
        tokio::spawn(report::progress(
            started,
            done.clone(),
            failed.clone(),
            stop.clone(),
        ))
    });
    // The timer only raises `stop`; runs bounded by a count (`--ops`, delete)
    // end when their workers run out of requests, possibly before it fires.
    let timer = deadline.map(|deadline| {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline.into()).await;
            stop.store(true, Ordering::Relaxed);
        })
    });
    let mut stats = WorkerStats::new();
    for task in tasks {
        match task.await {
            Ok(s) => stats.merge(s),
            Err(e) => return Err(format!("a worker failed: {e}")),
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in [progress, timer].into_iter().flatten() {
        task.abort();
    }
    let cpu = CpuTime::now().since(&cpu_before);
    close(clients).await;
    Ok(Summary::new(
        &args,
        stats,
        started_unix,
        elapsed,
        setup_secs,
        cpu,
    ))
}

/// Closes the sessions and waits (briefly) until the server has them closed,
/// so that a bench run leaves no sessions behind for the server to expire.
async fn close(clients: Vec<zk::Client>) {
    let mut watchers: Vec<zk::StateWatcher> = clients.iter().map(|c| c.state_watcher()).collect();
    drop(clients);
    let closed = async {
        for w in &mut watchers {
            let mut state = w.state();
            while !matches!(
                state,
                zk::SessionState::Closed | zk::SessionState::Expired | zk::SessionState::AuthFailed
            ) {
                state = w.changed().await;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), closed).await;
}
