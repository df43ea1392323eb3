//! The `ensemble` binary: `ensemble server [--config zoo.cfg]` runs a server in
//! the foreground. Other tools become subcommands of this one binary.

use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

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
    }
}

fn run_server(path: Option<PathBuf>) -> ExitCode {
    let config = match &path {
        Some(p) => match ensemble_config::Config::from_file(p) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        },
        None => ensemble_config::Config::embedded_default(),
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
