//! Four-letter words sent instead of a connect request: `ruok`, `isro`,
//! `srvr`, `stat` (ZooKeeper's StatCommand, with and without the client
//! list) and `mntr` (see `mntr`), with ZooKeeper's whitelist rule and its
//! answer while a member has no quorum.

use crate::stats::java_double;
use crate::Shared;
use std::fmt::Write;
use std::sync::Arc;

const WORDS: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "srst", "envi", "dirs", "dump", "wchs",
    "wchc", "wchp", "isro", "hash", "gtmk", "stmk", "reqs", "kill",
];

/// The four-letter word these first four bytes spell, if any.
pub fn word(first: &[u8; 4]) -> Option<&'static str> {
    let s = std::str::from_utf8(first).ok()?;
    WORDS.iter().copied().find(|w| *w == s)
}

/// ZooKeeper's answer to most words while a member has no quorum.
const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

pub fn answer(shared: &Arc<Shared>, word: &str) -> String {
    if !shared.config.four_letter_word_allowed(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    match word {
        "ruok" => "imok".to_string(),
        "isro" => match shared.mode() {
            None => "null",
            Some("read-only") => "ro",
            Some(_) => "rw",
        }
        .to_string(),
        "srvr" | "stat" => match shared.mode() {
            Some(mode) => stat(shared, mode, word == "stat"),
            None => NOT_SERVING.to_string(),
        },
        "mntr" => match shared.mode() {
            Some(mode) => crate::mntr::answer(shared, mode),
            None => NOT_SERVING.to_string(),
        },
        other => format!("{other} is not supported by this server yet.\n"),
    }
}

/// `srvr`, and with `clients` `stat`, in ZooKeeper's line order: version,
/// read-only notice, client list, `ServerStats`, node count, and on the
/// leader the proposal sizes.
fn stat(shared: &Shared, mode: &str, clients: bool) -> String {
    let stats = &shared.stats;
    let mut out = format!("Zookeeper version: {}\n", crate::VERSION_STRING);
    if mode == "read-only" {
        out.push_str("READ-ONLY mode; serving only read-only clients\n");
    }
    if clients {
        out.push_str("Clients:\n");
        for c in stats.connections() {
            out.push_str(&c.brief());
            out.push('\n');
        }
        out.push('\n');
    }
    let latency = stats.request_latency();
    let (zxid, nodes) = {
        let tree = shared.tree.read();
        (tree.last_zxid(), tree.node_count())
    };
    let _ = write!(
        out,
        "Latency min/avg/max: {}/{}/{}\nReceived: {}\nSent: {}\nConnections: {}\nOutstanding: {}\nZxid: 0x{:x}\nMode: {mode}\nNode count: {nodes}\n",
        latency.min,
        java_double(latency.avg()),
        latency.max,
        stats.packets_received(),
        stats.packets_sent(),
        shared.connection_count(),
        stats.outstanding(),
        zxid,
    );
    if mode == "leader" {
        let (last, min, max) = stats.proposal_sizes.values();
        let _ = writeln!(out, "Proposal sizes last/min/max: {last}/{min}/{max}");
    }
    out
}
