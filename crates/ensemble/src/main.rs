//! The `ensemble` binary: `ensemble server [--config zoo.cfg]` runs a server in
//! the foreground. Other tools become subcommands of this one binary.

use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

// glibc's allocator showed up at 10-15% of a member's CPU under write load (malloc,
// free, consolidation of the many short-lived request buffers); mimalloc's thread-local
// free lists cost a fraction of that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ENSEMBLE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match cli.command {
        Command::Server {
            config,
            config_file,
        } => run_server(config.or(config_file)),
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

fn run_server(path: Option<PathBuf>) -> ExitCode {
    let config = match load_config(path.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
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
    rt.block_on(async move {
        let server = match ensemble_server::Server::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        };
        tracing::info!("ensemble is ready on {}", server.local_addr());
        wait_for_shutdown().await;
        tracing::info!("shutting down");
        ExitCode::SUCCESS
    })
}

async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
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
