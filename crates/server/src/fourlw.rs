//! Four-letter words sent instead of a connect request. Only the basics live
//! here for now: `ruok`, `srvr`, `isro`, with ZooKeeper's whitelist rule.

use crate::Shared;
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
        "isro" => if shared.read_only_mode() { "ro" } else { "rw" }.to_string(),
        "srvr" => {
            let Some(mode) = shared.mode() else {
                return NOT_SERVING.to_string();
            };
            let tree = shared.tree.read();
            format!(
                "Zookeeper version: {}\nLatency min/avg/max: 0/0.0/0\nReceived: 0\nSent: 0\nConnections: {}\nOutstanding: 0\nZxid: 0x{:x}\nMode: {mode}\nNode count: {}\n",
                crate::VERSION_STRING,
                shared.connection_count(),
                tree.last_zxid(),
                tree.node_count()
            )
        }
        other => format!("{other} is not supported by this server yet.\n"),
    }
}
