//! `ensemble bench` as a standalone program, for running the load generator
//! before (or without) the main binary: `cargo run --release -p ensemble-bench
//! --example bench -- --workload write --sessions 64`.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "ensemble-bench",
    about = "A load generator for ZooKeeper-compatible servers"
)]
struct Cli {
    #[command(flatten)]
    bench: ensemble_bench::BenchArgs,
}

fn main() -> std::process::ExitCode {
    ensemble_bench::run(Cli::parse().bench)
}
