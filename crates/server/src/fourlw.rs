//! Four-letter words sent instead of a connect request, with ZooKeeper
//! 3.8's answers: `ruok`, `isro`, `srvr`, `stat` (ZooKeeper's StatCommand,
//! with and without the client list), `mntr` (see `mntr`), `conf`, `cons`,
//! `crst`, `srst`, `envi`, `dirs`, `dump`, `wchs`, `wchc`, `wchp`, `hash`,
//! `gtmk` and `stmk`, with ZooKeeper's whitelist rule and its answer while a
//! member has no quorum. ZooKeeper 3.8 knows no `reqs` or `kill`: their bytes
//! are read as a frame length, too large, and the connection is closed.

use crate::introspect;
use crate::stats::java_double;
use crate::Shared;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

const WORDS: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "srst", "envi", "dirs", "dump", "wchs",
    "wchc", "wchp", "isro", "hash", "gtmk", "stmk",
];

/// The four-letter word these first four bytes spell, if any.
pub fn word(first: &[u8; 4]) -> Option<&'static str> {
    let s = std::str::from_utf8(first).ok()?;
    WORDS.iter().copied().find(|w| *w == s)
}

/// ZooKeeper's answer to most words while a member has no quorum.
const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

/// The answer to `word`, reading from the connection what the word takes
/// with it: `stmk` is followed by the new trace mask, 8 bytes big-endian.
/// ZooKeeper reads them with the word; when they are missing it closes the
/// connection without an answer, and so does this (an empty answer).
pub async fn answer_reading<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    word: &str,
    rd: &mut R,
) -> String {
    if word != "stmk" || !shared.config.four_letter_word_allowed(word) {
        return answer(shared, word);
    }
    let mut mask = [0u8; 8];
    match tokio::time::timeout(Duration::from_secs(1), rd.read_exact(&mut mask)).await {
        Ok(Ok(_)) => {
            let mask = i64::from_be_bytes(mask);
            shared.stats.trace_mask.store(mask, Relaxed);
            mask.to_string()
        }
        _ => String::new(),
    }
}

pub fn answer(shared: &Arc<Shared>, word: &str) -> String {
    if !shared.config.four_letter_word_allowed(word) {
        return format!("{word} is not executed because it is not in the whitelist.\n");
    }
    let mode = shared.mode();
    match word {
        "ruok" => "imok".to_string(),
        "isro" => match mode {
            None => "null",
            Some("read-only") => "ro",
            Some(_) => "rw",
        }
        .to_string(),
        "envi" => envi(),
        "gtmk" => shared.stats.trace_mask.load(Relaxed).to_string(),
        "stmk" => String::new(),
        _ => match (word, mode) {
            (_, None) if word == "hash" => NOT_SERVING.trim_end().to_string(),
            (_, None) => NOT_SERVING.to_string(),
            ("srvr" | "stat", Some(mode)) => stat(shared, mode, word == "stat"),
            ("mntr", Some(mode)) => crate::mntr::answer(shared, mode),
            ("conf", Some(_)) => conf(shared),
            ("cons", Some(_)) => cons(shared),
            ("crst", Some(_)) => {
                reset_connections(shared);
                "Connection stats reset.\n".to_string()
            }
            ("srst", Some(mode)) => {
                reset_server_stats(shared);
                if mode == "leader" {
                    shared.stats.proposal_sizes.reset();
                }
                "Server stats reset.\n".to_string()
            }
            ("dirs", Some(_)) => {
                let (data, log) = introspect::dir_sizes(shared);
                format!("datadir_size: {data}\nlogdir_size: {log}\n")
            }
            ("dump", Some(mode)) => dump(shared, mode),
            ("wchs", Some(_)) => {
                let (conns, paths, total) = shared.watches.lock().data_watch_summary();
                format!("{conns} connections watching {paths} paths\nTotal watches:{total}\n")
            }
            ("wchc", Some(_)) => wchc(shared),
            ("wchp", Some(_)) => wchp(shared),
            ("hash", Some(_)) => hash(shared),
            _ => String::new(),
        },
    }
}

/// `crst`: ZooKeeper's `resetAllConnectionStats`.
pub fn reset_connections(shared: &Shared) {
    for c in shared.stats.connections() {
        c.reset();
    }
}

/// `srst`: ZooKeeper's `ServerStats.reset`, which also resets every counter
/// and summary of its metrics.
pub fn reset_server_stats(shared: &Shared) {
    shared.stats.reset();
    shared.watches.lock().fired.reset();
}

/// `conf`: `ZooKeeperServer.dumpConf`, and on a quorum member
/// `QuorumZooKeeperServer.dumpConf`'s lines after it.
fn conf(shared: &Shared) -> String {
    let c = introspect::server_conf(shared);
    let (data_size, log_size) = introspect::dir_sizes(shared);
    let mut out = String::new();
    let _ = write!(
        out,
        "clientPort={}\nsecureClientPort={}\ndataDir={}\ndataDirSize={data_size}\n\
         dataLogDir={}\ndataLogSize={log_size}\ntickTime={}\nmaxClientCnxns={}\n\
         minSessionTimeout={}\nmaxSessionTimeout={}\nclientPortListenBacklog={}\nserverId={}\n",
        c.client_port,
        c.secure_client_port,
        c.data_dir,
        c.data_log_dir,
        c.tick_time,
        c.max_client_cnxns,
        c.min_session_timeout,
        c.max_session_timeout,
        c.client_port_listen_backlog,
        c.server_id,
    );
    if shared.quorum {
        let config = &shared.config;
        let me = config.my_id.and_then(|id| config.servers.get(&id));
        let membership = shared.membership.lock().clone();
        let _ = write!(
            out,
            "initLimit={}\nsyncLimit={}\nelectionAlg=3\nelectionPort={}\nquorumPort={}\n\
             peerType={}\nmembership: \n{}",
            config.init_limit,
            config.sync_limit,
            me.map_or(0, |s| s.election_port),
            me.map_or(0, |s| s.peer_port),
            u8::from(config.peer_type == ensemble_config::PeerType::Observer),
            membership.text(),
        );
    }
    out
}

/// `cons`: every connection in full, one a line, then a blank line.
fn cons(shared: &Shared) -> String {
    let mut out = String::new();
    for c in introspect::connections(shared) {
        out.push_str(&c.info.full(c.session));
        out.push('\n');
    }
    out.push('\n');
    out
}

/// `dump`: the session expiry sets (on a leader and in standalone mode;
/// a follower lists its sessions with their timeouts, as ZooKeeper's
/// learners do), the ephemerals by session, and the connection expiry sets.
fn dump(shared: &Shared, mode: &str) -> String {
    let mut out = String::from("SessionTracker dump:\n");
    if matches!(mode, "standalone" | "leader") {
        let sets = introspect::session_expiry_sets(shared);
        let total: usize = sets.values().map(Vec::len).sum();
        let _ = writeln!(out, "Session Sets ({})/({total}):", sets.len());
        for (at, ids) in &sets {
            let when = introspect::java_date(introspect::clock_to_wall_ms(shared, *at));
            let _ = writeln!(out, "{} expire at {when}:", ids.len());
            for id in ids {
                let _ = writeln!(out, "\t0x{id:x}");
            }
        }
    } else {
        let sessions = introspect::session_timeouts(shared);
        let _ = writeln!(out, "Global Sessions({}):", sessions.len());
        for (id, timeout) in sessions {
            let _ = writeln!(out, "0x{id:x}\t{timeout}ms");
        }
    }
    out.push_str("ephemeral nodes dump:\n");
    let ephemerals = introspect::ephemerals(shared);
    let _ = writeln!(out, "Sessions with Ephemerals ({}):", ephemerals.len());
    for (id, paths) in &ephemerals {
        let _ = writeln!(out, "0x{id:x}:");
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
    out.push_str("Connections dump:\n");
    let sets = introspect::connection_expiry_sets(shared);
    let total: usize = sets.values().map(Vec::len).sum();
    let _ = writeln!(out, "Connections Sets ({})/({total}):", sets.len());
    for (at, conns) in &sets {
        let when = introspect::java_date(introspect::clock_to_wall_ms(shared, *at));
        let _ = writeln!(out, "{} expire at {when}:", conns.len());
        for (addr, session) in conns {
            let _ = writeln!(out, "\tip: {addr} sessionId: 0x{session:x}");
        }
    }
    out
}

/// `wchc`: each watching session and its paths, then a blank line.
fn wchc(shared: &Shared) -> String {
    let mut out = String::new();
    for (session, paths) in introspect::watches_by_session(shared) {
        let _ = writeln!(out, "0x{session:x}");
        for p in paths {
            let _ = writeln!(out, "\t{p}");
        }
    }
    out.push('\n');
    out
}

/// `wchp`: each watched path and its sessions, then a blank line.
fn wchp(shared: &Shared) -> String {
    let mut out = String::new();
    for (path, sessions) in introspect::watches_by_path(shared) {
        let _ = writeln!(out, "{path}");
        for s in sessions {
            let _ = writeln!(out, "\t0x{s:x}");
        }
    }
    out.push('\n');
    out
}

/// `hash`: `<zxid in hex>: <digest>` for each logged digest.
fn hash(shared: &Shared) -> String {
    let mut out = String::new();
    for (zxid, digest) in shared.stats.digests.list() {
        let _ = writeln!(out, "{zxid:x}: {digest}");
    }
    out
}

/// `envi`: `Environment:` then `key=value` lines (see `introspect::environment`).
fn envi() -> String {
    let mut out = String::from("Environment:\n");
    for (k, v) in introspect::environment() {
        let _ = writeln!(out, "{k}={v}");
    }
    out
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
