//! `ensemble cli`: ZooKeeper's shell (zkCli.sh, `ZooKeeperMain`) over the project's
//! own protocol records. Interactive with line editing, history and completion of
//! commands and znode paths when standard input is a terminal; line by line without a
//! prompt otherwise; or one command given on the command line. Texts and exit codes are
//! zkCli.sh 3.8's.

mod client;
mod commands;
mod format;
mod interactive;
mod opts;
mod shell;

pub use client::{parse_connect_string, State, WatchedEvent};

use std::process::ExitCode;

/// Runs the shell with zkCli.sh's arguments:
/// `[-server host:port[,host:port...]] [-timeout ms] [-r] [cmd args...]`.
pub fn run(args: Vec<String>) -> ExitCode {
    let options = match shell::Options::parse(&args) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let code = shell::run(options);
    ExitCode::from(code.clamp(0, 255) as u8)
}
