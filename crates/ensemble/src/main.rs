//! The `ensemble` binary: `ensemble server [--config zoo.cfg]` runs a server in
//! the foreground, `ensemble cli` is ZooKeeper's shell. Other tools become
//! subcommands of this one binary.

mod logging;
mod notify;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

// glibc's allocator showed up at 10-15% of a member's CPU under write load (malloc,
// free, consolidation of the many short-lived request buffers); mimalloc's thread-local
// free lists cost a fraction of that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    /// mimalloc's `mi_option_set`, linked in by the mimalloc crate.
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_arena_eager_commit` in the option enum of mimalloc 3
/// (libmimalloc-sys 0.1.49, pinned through the mimalloc crate in Cargo.lock).
const MI_OPTION_ARENA_EAGER_COMMIT: std::ffi::c_int = 4;

/// Commit arena memory as it is used rather than all at once: with the default
/// (eager on Linux) an idle server held about 25 MB more resident memory for
/// nothing, and every idle connection cost more. It must run before the first
/// allocation, which Rust's runtime makes before `main`: it is a constructor,
/// run after mimalloc's own (priority 101) and before the runtime's start.
#[cfg(target_os = "linux")]
extern "C" fn lazy_arena_commit() {
    // SAFETY: a plain setter of a mimalloc option, called while the process
    // has one thread; an option mimalloc does not know is ignored.
    unsafe { mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) }
}

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static LAZY_ARENA_COMMIT: extern "C" fn() = lazy_arena_commit;

#[derive(Parser)]
#[command(
    name = "ensemble",
    version,
    about = "A ZooKeeper-compatible coordination service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a server in the foreground.
    Server {
        /// A ZooKeeper zoo.cfg; without it the embedded default is used
        /// (clientPort 2181, dataDir ./data).
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
        /// Also accept the config file as a positional argument, as zkServer.sh passes it.
        #[arg(conflicts_with = "config")]
        config_file: Option<PathBuf>,
        /// Log to a file rotated daily in this directory instead of stderr
        /// (default: $ZOO_LOG_DIR when set). The name is $ZOO_LOG_FILE or ensemble.log.
        #[arg(long)]
        log_dir: Option<PathBuf>,
        /// A tracing filter such as `info` or `debug,openraft=info` (default:
        /// $ENSEMBLE_LOG, else $RUST_LOG, else `info`).
        #[arg(long)]
        log_level: Option<String>,
    },
    /// ZooKeeper's shell, as zkCli.sh: `ensemble cli [-server host:port[,host:port]]
    /// [-timeout ms] [-r] [cmd args...]`.
    #[command(disable_help_flag = true)]
    Cli {
        /// zkCli.sh's own single-dash options, then an optional command.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Load generator: measure a ZooKeeper-protocol server (Ensemble or ZooKeeper).
    Bench(ensemble_bench::BenchArgs),
    /// Transaction log tools (ZooKeeper's TxnLogToolkit).
    Log {
        #[command(subcommand)]
        action: LogAction,
    },
    /// Snapshot tools (ZooKeeper's SnapshotFormatter).
    Snapshot {
        #[command(subcommand)]
        action: SnapshotAction,
    },
    /// Delete old snapshots and logs, keeping the newest COUNT snapshots and the
    /// logs they need (ZooKeeper's zkCleanup.sh / PurgeTxnLog).
    Purge {
        /// The zoo.cfg naming dataDir and dataLogDir.
        #[arg(long, short = 'c')]
        config: Option<PathBuf>,
        /// Snapshots to keep (at least 3).
        #[arg(short = 'n', long = "count", default_value_t = 3)]
        count: usize,
    },
}

#[derive(Subcommand)]
enum LogAction {
    /// Print every txn of a log file, as TxnLogToolkit does.
    Dump {
        file: PathBuf,
        /// Only verify the checksums and report.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Subcommand)]
enum SnapshotAction {
    /// Print a snapshot, as SnapshotFormatter does.
    Dump {
        file: PathBuf,
        /// Also print each node's data.
        #[arg(long, short = 'd')]
        data: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        // The shell prints what zkCli.sh prints and no log lines.
        Command::Cli { args } => return ensemble_cli::run(args),
        Command::Server {
            config,
            config_file,
            log_dir,
            log_level,
        } => {
            let log = logging::LogOptions::resolve(log_dir, log_level);
            return run_server(config.or(config_file), &log);
        }
        other => other,
    };
    // `bench --quiet` prints its result alone: the client library's
    // connection lines are info.
    let level = match &command {
        Command::Bench(args) if args.quiet => Some("warn".to_string()),
        _ => None,
    };
    if let Err(e) = logging::init(&logging::LogOptions { dir: None, level }) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    match command {
        Command::Server { .. } | Command::Cli { .. } => unreachable!("handled above"),
        Command::Log {
            action: LogAction::Dump { file, check },
        } => log_dump(&file, check),
        Command::Snapshot {
            action: SnapshotAction::Dump { file, data },
        } => snapshot_dump(&file, data),
        Command::Purge { config, count } => purge(config, count),
        Command::Bench(args) => ensemble_bench::run(args),
    }
}

/// The zoo.cfg at `path`, or the embedded default. A bad config is one line on
/// stderr and exit code 2.
fn load_config(path: Option<&std::path::Path>) -> Result<ensemble_config::Config, ExitCode> {
    match path {
        Some(p) => ensemble_config::Config::from_file(p).map_err(|e| {
            eprintln!("{e}");
            ExitCode::from(2)
        }),
        None => Ok(ensemble_config::Config::embedded_default()),
    }
}

/// How long a clean stop waits for the log's entries to be applied and answered.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// A clean stop that takes longer than this gives up and exits 1.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(6);

fn run_server(path: Option<PathBuf>, log: &logging::LogOptions) -> ExitCode {
    let config = match load_config(path.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Kept until the end of this function: dropping it flushes the log file.
    let _log_guard = match logging::init(log) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = rt.block_on(async move {
        // Listening before the start: a signal during recovery is a clean stop too.
        let mut signals = match Signals::new() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cannot listen for signals: {e}");
                return ExitCode::from(1);
            }
        };
        let server = tokio::select! {
            started = ensemble_server::Server::start(config) => match started {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(e.exit_code());
                }
            },
            signo = signals.next() => {
                tracing::info!("signal {signo} during start-up: exiting");
                return ExitCode::SUCCESS;
            }
        };
        tracing::info!("ensemble is ready on {}", server.local_addr());
        notify::notify("READY=1");
        let signo = tokio::select! {
            signo = signals.next() => signo,
            why = server.failure() => {
                tracing::error!("cannot go on, exiting: {why}");
                notify::notify("STOPPING=1");
                return ExitCode::from(1);
            }
        };
        tracing::info!("signal {signo}: shutting down (a second signal exits at once)");
        notify::notify("STOPPING=1");
        tokio::spawn(async move {
            let again = signals.next().await;
            tracing::warn!("signal {again} again: exiting at once");
            std::process::exit(128 + again);
        });
        match tokio::time::timeout(SHUTDOWN_LIMIT, server.shutdown(SHUTDOWN_GRACE)).await {
            Ok(()) => {
                tracing::info!("shut down cleanly");
                ExitCode::SUCCESS
            }
            Err(_) => {
                tracing::error!(
                    "shutdown did not finish within {} s",
                    SHUTDOWN_LIMIT.as_secs()
                );
                ExitCode::from(1)
            }
        }
    });
    // Tasks still blocked in a read or a write are not waited for.
    rt.shutdown_timeout(Duration::from_millis(500));
    code
}

/// SIGTERM and SIGINT, as their numbers.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.term.recv() => 15,
            _ = self.int.recv() => 2,
        }
    }
}

fn log_dump(file: &std::path::Path, check: bool) -> ExitCode {
    let result = if check {
        ensemble_storage::dump::verify_txn_log(file)
    } else {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        ensemble_storage::dump::dump_txn_log(file, &mut out)
    };
    match result {
        Ok(s) => {
            if check {
                println!(
                    "{}: {} txns, {} checksum errors{}",
                    file.display(),
                    s.txns,
                    s.crc_errors,
                    s.partial_tail
                        .map(|o| format!(", a partial record at offset {o}"))
                        .unwrap_or_default()
                );
            }
            if s.crc_errors > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn snapshot_dump(file: &std::path::Path, data: bool) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match ensemble_storage::dump::dump_snapshot(file, data, &mut out) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn purge(config: Option<PathBuf>, count: usize) -> ExitCode {
    let config = match load_config(config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if count < 3 {
        eprintln!("purge: count must be at least 3, got {count}");
        return ExitCode::from(2);
    }
    match ensemble_storage::purge(&config.data_dir, config.txn_log_dir(), count) {
        Ok(r) => {
            for p in r.removed_snapshots.iter().chain(r.removed_logs.iter()) {
                println!("removed {}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
