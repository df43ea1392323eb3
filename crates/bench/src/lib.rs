//! `ensemble bench`: a load generator for any ZooKeeper-compatible server, in
//! the spirit of ClickHouse's keeper-bench. It speaks ZooKeeper's client
//! protocol as any client does, so it measures Ensemble and Apache ZooKeeper
//! alike: the setup (the keys a workload reads or deletes) goes through the
//! independent `zookeeper-client` crate, the measured requests through the
//! generator's own lean encoding of them (`pipe`).
//!
//! `--sessions` sessions each keep `--inflight` requests outstanding on one
//! connection, pipelined: a session sends what it may in one write and tops
//! up as answers come.
//!
//! `watch` and `connect` measure sessions rather than requests (many idle
//! sessions, one watch each) and live in `sessions`; `ensemble bench plot`
//! draws a comparison's results (`plot`).

mod pipe;
mod plot;
mod report;
mod sessions;
mod wire;
mod workload;

use clap::{Args, Subcommand, ValueEnum};
use report::{CpuTime, Details, Summary, WorkerStats};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::Plan;
use zookeeper_client as zk;

/// Extra attempts at establishing each session before giving up.
const CONNECT_TRIES: u32 = 4;

/// Options of `ensemble bench`.
#[derive(Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// Servers to connect to, `host:port[,host:port...]`.
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub hosts: String,
    /// What each request does.
    #[arg(long, value_enum, default_value_t = Workload::Read)]
    pub workload: Workload,
    /// Client sessions (one TCP connection each); for watch, the watchers.
    #[arg(long, default_value_t = 16)]
    pub sessions: usize,
    /// Requests kept outstanding per session (pipelined); for watch and
    /// connect, session handshakes under way at once.
    #[arg(long, default_value_t = 1)]
    pub inflight: usize,
    /// Seconds to run; ignored when `--ops` is given. For connect, how long
    /// the sessions are held once established.
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
    /// setData operations in each multi (after one version check).
    #[arg(long, default_value_t = 4)]
    pub multi_ops: usize,
    /// Watch rounds: arm a watch in every session, one setData, wait for
    /// every notification.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
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
    /// a multi of one version check and `--multi-ops` setData on existing keys.
    Multi,
    /// every session watches one znode; one setData; time to the notifications.
    Watch,
    /// open `--sessions` idle sessions and hold them for `--duration`.
    Connect,
}

/// Tools beside the load generator.
#[derive(Subcommand, Debug, Clone)]
pub enum BenchCommand {
    /// Draw throughput and p99 per workload and server as an SVG.
    Plot(plot::PlotArgs),
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
            Workload::Multi => "multi",
            Workload::Watch => "watch",
            Workload::Connect => "connect",
        }
    }
}

/// Runs a benchmark and prints its summary; exit code 1 on a setup failure.
pub fn run(args: BenchArgs) -> ExitCode {
    if let Some(BenchCommand::Plot(plot)) = &args.command {
        return plot::run(plot);
    }
    raise_fd_limit();
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
        Workload::Read | Workload::Write | Workload::Mixed | Workload::Delete | Workload::Multi
    ) && args.keys == 0
    {
        return Err("--keys must be at least 1".into());
    }
    if args.workload == Workload::Multi && args.multi_ops == 0 {
        return Err("--multi-ops must be at least 1".into());
    }
    if args.workload == Workload::Watch && args.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    // One descriptor per session, the watch workload's writer, and some slack
    // for the runtime.
    let needed = args.sessions as u64 + 64;
    if let Some(limit) = fd_limit() {
        if needed > limit {
            return Err(format!(
                "--sessions {} needs about {needed} open files, but the limit is {limit} \
                 (raise the hard limit: ulimit -Hn)",
                args.sessions
            ));
        }
    }
    Ok(())
}

/// The soft limit of open files, if it can be read.
fn fd_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the pointer it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    // rlim_t is u64 on 64-bit Linux but not everywhere.
    #[allow(clippy::unnecessary_cast)]
    let soft = limit.rlim_cur as u64;
    ok.then_some(soft)
}

/// Many sessions need many sockets: the soft limit of open files (often 1024)
/// is raised to the hard one, which any process may do.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read or write one `rlimit` through the
    // pointer; a failure leaves the limit as it was, which validate() reports.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

async fn connect(args: &BenchArgs) -> Result<Vec<zk::Client>, String> {
    let mut clients = Vec::with_capacity(args.sessions);
    for _ in 0..args.sessions {
        clients.push(connect_one(args).await?);
    }
    Ok(clients)
}

/// The session settings every bench session uses.
fn connector(args: &BenchArgs) -> zk::Connector {
    zk::Client::connector()
        .with_session_timeout(Duration::from_millis(args.session_timeout_ms))
        .with_connection_timeout(Duration::from_secs(10))
        // Say soon that no server answers, rather than retry for a
        // whole session timeout.
        .with_fail_eagerly()
}

/// A server that has just started may accept a connection before it takes
/// sessions (ZooKeeper does), so a refused session is tried a few times.
async fn connect_one(args: &BenchArgs) -> Result<zk::Client, String> {
    let mut tries = 0;
    loop {
        match connector(args).connect(&args.hosts).await {
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
    match args.workload {
        Workload::Watch => return sessions::watch(&args).await,
        Workload::Connect => return sessions::connect(&args).await,
        _ => {}
    }
    let clients = connect(&args).await?;
    let plan = Arc::new(Plan::new(&args));
    let setup_started = Instant::now();
    workload::setup(&clients, &plan, args.quiet).await?;
    close(clients).await;
    let hosts: Vec<String> = args.hosts.split(',').map(str::to_string).collect();
    let sessions = open_sessions(&hosts, &args).await?;
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

    let counters = pipe::Counters {
        stop: stop.clone(),
        done: done.clone(),
        failed: failed.clone(),
    };
    let run = Arc::new(pipe::Run {
        plan: plan.clone(),
        hosts,
        inflight: args.inflight,
        timeout_ms: args.session_timeout_ms,
    });
    let tasks: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(s, session)| tokio::spawn(session.run(run.clone(), counters.clone(), s as u64)))
        .collect();
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
    let mut lasted = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok((s, session)) => {
                stats.merge(s);
                lasted.extend(session);
            }
            Err(e) => return Err(format!("a session's task failed: {e}")),
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in [progress, timer].into_iter().flatten() {
        task.abort();
    }
    let cpu = CpuTime::now().since(&cpu_before);
    // Closed once measured: a closeSession is a txn on the server.
    close_all(lasted.into_iter().map(|s| s.close())).await;
    let details = match args.workload {
        Workload::Multi => Details::Multi {
            set_data_ops: args.multi_ops,
        },
        _ => Details::None,
    };
    Ok(Summary::new(
        &args,
        stats,
        started_unix,
        elapsed,
        setup_secs,
        cpu,
        details,
    ))
}

/// Opens the sessions of the measured phase, spread over the hosts, all at
/// once.
async fn open_sessions(hosts: &[String], args: &BenchArgs) -> Result<Vec<pipe::Session>, String> {
    let hosts: Arc<[String]> = hosts.into();
    let opening: Vec<_> = (0..args.sessions)
        .map(|i| {
            let (hosts, timeout) = (hosts.clone(), args.session_timeout_ms);
            tokio::spawn(async move { pipe::Session::connect(&hosts, i, timeout).await })
        })
        .collect();
    let mut sessions = Vec::with_capacity(args.sessions);
    for task in opening {
        let session = task
            .await
            .map_err(|e| format!("a connect task failed: {e}"))?
            .map_err(|e| format!("cannot connect to {}: {e}", args.hosts))?;
        sessions.push(session);
    }
    Ok(sessions)
}

/// Runs the closes of the generator's own sessions all at once and waits for them.
async fn close_all<F>(closes: impl Iterator<Item = F>)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let closing: Vec<_> = closes.map(tokio::spawn).collect();
    for c in closing {
        let _ = c.await;
    }
}

/// Closes the sessions and waits (briefly) until the server has them closed,
/// so that a bench run leaves no sessions behind for the server to expire.
async fn close(clients: Vec<zk::Client>) {
    // Each close is a txn on the server: allow a moment per thousand sessions.
    let patience = Duration::from_secs(3 + clients.len() as u64 / 1000);
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
    let _ = tokio::time::timeout(patience, closed).await;
}

/// The options as `ensemble bench ARGS...` parses them.
#[cfg(test)]
pub(crate) fn parse_args(args: &[&str]) -> BenchArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }
    Cli::parse_from(std::iter::once("bench").chain(args.iter().copied())).bench
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    #[test]
    fn plot_is_a_subcommand_of_bench() {
        let cli = Cli::try_parse_from(["bench", "plot", "--input", "r.json", "--output", "r.svg"])
            .expect("plot parses");
        match cli.bench.command {
            Some(BenchCommand::Plot(plot)) => {
                assert_eq!(plot.input, std::path::PathBuf::from("r.json"));
                assert_eq!(plot.output, std::path::PathBuf::from("r.svg"));
            }
            None => panic!("no plot command"),
        }
    }

    #[test]
    fn the_new_workloads_parse_with_their_options() {
        let cli = Cli::parse_from(["bench", "--workload", "watch", "--rounds", "5"]);
        assert_eq!(cli.bench.workload, Workload::Watch);
        assert_eq!(cli.bench.rounds, 5);
        let cli = Cli::parse_from(["bench", "--workload", "multi", "--multi-ops", "2"]);
        assert_eq!(cli.bench.multi_ops, 2);
        let cli = Cli::parse_from(["bench", "--workload", "connect"]);
        assert_eq!(cli.bench.workload.name(), "connect");
        assert!(validate(&cli.bench).is_ok());
    }

    #[test]
    fn sessions_beyond_the_open_files_limit_are_refused_up_front() {
        let cli = Cli::parse_from(["bench", "--workload", "connect", "--sessions", "4000000000"]);
        let err = validate(&cli.bench).unwrap_err();
        assert!(err.contains("open files"), "{err}");
    }
}
