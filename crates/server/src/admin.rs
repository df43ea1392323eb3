//! ZooKeeper's AdminServer: HTTP on `admin.serverAddress:admin.serverPort`
//! (default 0.0.0.0:8080), `admin.enableServer=false` to turn it off.
//! `GET <admin.commandURL>` lists the commands as links; `GET
//! <commandURL>/<name>` runs one, by its name or any alias, and answers JSON
//! with ZooKeeper 3.8's keys, always including `command` (the primary name)
//! and `error` (null, or what went wrong). Query parameters are the
//! command's arguments (`set_trace_mask?traceMask=N`).
//!
//! A port already taken stops a standalone server from starting, as it stops
//! ZooKeeper's (which exits with code 4); a quorum member logs one warning
//! and runs without its AdminServer, as a ZooKeeper quorum member does.

use crate::introspect::{self, Connection};
use crate::json::{Json, Object};
use crate::{fourlw, mntr, ServerError, Shared};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ensemble_config::Config;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::net::TcpListener;
use tracing::{info, warn};

/// What a command answers while the server does not serve (no quorum).
const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

type Args = HashMap<String, String>;

/// One command: its names (the primary one first), whether it needs a
/// serving server, and what it adds to the answer.
struct Command {
    names: &'static [&'static str],
    server_required: bool,
    run: fn(&Shared, &Args, &mut Object),
}

/// ZooKeeper 3.8's commands (`org.apache.zookeeper.server.admin.Commands`).
const COMMANDS: &[Command] = &[
    cmd(&["connection_stat_reset", "crst"], true, |s, _, _| {
        fourlw::reset_connections(s)
    }),
    cmd(&["configuration", "conf", "config"], true, configuration),
    cmd(&["connections", "cons"], true, |s, _, out| {
        let conns = introspect::connections(s);
        out.put(
            "connections",
            conns.iter().map(connection).collect::<Vec<_>>(),
        );
        out.put("secure_connections", Vec::<Json>::new());
    }),
    cmd(&["hash"], true, |s, _, out| {
        let digests: Vec<Json> = s
            .stats
            .digests
            .list()
            .into_iter()
            .map(|(zxid, digest)| {
                Object::new()
                    .with("zxid", zxid)
                    .with("digest", digest)
                    .with("digest_version", i64::from(ensemble_tree::DIGEST_VERSION))
                    .into()
            })
            .collect();
        out.put("digests", digests);
    }),
    cmd(&["dirs"], true, |s, _, out| {
        let (data, log) = introspect::dir_sizes(s);
        out.put("datadir_size", data);
        out.put("logdir_size", log);
    }),
    cmd(&["dump"], true, dump),
    cmd(&["environment", "env", "envi"], false, |_, _, out| {
        for (k, v) in introspect::environment() {
            out.put(k, v);
        }
    }),
    cmd(&["get_trace_mask", "gtmk"], false, |s, _, out| {
        out.put("tracemask", s.stats.trace_mask.load(Relaxed));
    }),
    cmd(&["initial_configuration", "icfg"], true, |s, _, out| {
        out.put("initial_configuration", s.config.initial_config.clone());
    }),
    cmd(&["is_read_only", "isro"], true, |s, _, out| {
        out.put("read_only", s.mode() == Some("read-only"));
    }),
    cmd(&["last_snapshot", "lsnp"], true, |s, _, out| {
        let (zxid, time) = introspect::last_snapshot(s).unwrap_or((-1, -1));
        out.put("zxid", format!("{:x}", zxid));
        out.put("timestamp", time);
    }),
    cmd(&["leader", "lead"], true, leader),
    cmd(&["monitor", "mntr"], false, monitor),
    cmd(
        &["observer_connection_stat_reset", "orst"],
        true,
        |_, _, _| {},
    ),
    cmd(&["ruok"], true, |_, _, _| {}),
    cmd(&["set_trace_mask", "stmk"], false, set_trace_mask),
    cmd(&["server_stats", "srvr"], true, |s, _, out| {
        server_stats(s, out)
    }),
    cmd(&["stats", "stat"], true, |s, _, out| {
        server_stats(s, out);
        let conns = introspect::connections(s);
        out.put(
            "connections",
            conns.iter().map(brief_connection).collect::<Vec<_>>(),
        );
        out.put("secure_connections", Vec::<Json>::new());
    }),
    cmd(&["stat_reset", "srst"], true, |s, _, _| {
        fourlw::reset_server_stats(s)
    }),
    cmd(&["observers", "obsr"], true, observers),
    cmd(&["system_properties", "sysp"], false, system_properties),
    cmd(&["voting_view"], true, voting_view),
    cmd(&["watches", "wchc"], true, |s, _, out| {
        let mut by_session = Object::new();
        for (session, paths) in introspect::watches_by_session(s) {
            by_session.put(session.to_string(), paths);
        }
        out.put("session_id_to_watched_paths", by_session);
    }),
    cmd(&["watches_by_path", "wchp"], true, |s, _, out| {
        let mut by_path = Object::new();
        for (path, sessions) in introspect::watches_by_path(s) {
            by_path.put(path, sessions);
        }
        out.put("path_to_session_ids", by_path);
    }),
    cmd(&["watch_summary", "wchs"], true, |s, _, out| {
        let (conns, paths, total) = s.watches.lock().data_watch_summary();
        out.put("num_connections", conns);
        out.put("num_paths", paths);
        out.put("num_total_watches", total);
    }),
    cmd(&["zabstate"], false, zabstate),
];

const fn cmd(
    names: &'static [&'static str],
    server_required: bool,
    run: fn(&Shared, &Args, &mut Object),
) -> Command {
    Command {
        names,
        server_required,
        run,
    }
}

fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.names.contains(&name))
}

/// Runs the command called `name` (ZooKeeper's `Commands.runCommand`).
pub fn run(shared: &Shared, name: &str, args: &Args) -> Object {
    let Some(command) = find(name) else {
        return Object::new()
            .with("command", name)
            .with("error", format!("Unknown command: {name}"));
    };
    if command.server_required && shared.mode().is_none() {
        return Object::new()
            .with("command", name)
            .with("error", NOT_SERVING);
    }
    let mut out = Object::new();
    (command.run)(shared, args, &mut out);
    out.put("command", command.names[0]);
    if !out.contains("error") {
        out.put("error", Json::Null);
    }
    out
}

/// The primary names, sorted, as ZooKeeper's command listing shows them.
pub fn primary_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.names[0]).collect();
    names.sort_unstable();
    names
}

fn configuration(shared: &Shared, _: &Args, out: &mut Object) {
    let c = introspect::server_conf(shared);
    out.put("client_port", c.client_port);
    out.put("data_dir", c.data_dir);
    out.put("data_log_dir", c.data_log_dir);
    out.put("tick_time", c.tick_time);
    out.put("max_client_cnxns", c.max_client_cnxns);
    out.put("min_session_timeout", c.min_session_timeout);
    out.put("max_session_timeout", c.max_session_timeout);
    out.put("server_id", c.server_id);
    out.put("client_port_listen_backlog", c.client_port_listen_backlog);
}

/// How Jackson writes an `InetSocketAddress`: `127.0.0.1:2181`.
fn socket_addr(addr: &std::net::SocketAddr) -> String {
    crate::stats::java_socket_addr(addr)
        .trim_start_matches('/')
        .to_string()
}

/// `ServerCnxn.getConnectionInfo(true)`.
fn brief_connection(c: &Connection) -> Json {
    let i = &c.info;
    Object::new()
        .with("remote_socket_address", socket_addr(&i.peer))
        .with("interest_ops", i.interest_ops)
        .with("outstanding_requests", i.queued)
        .with("packets_received", i.received)
        .with("packets_sent", i.sent)
        .into()
}

/// `ServerCnxn.getConnectionInfo(false)`.
fn connection(c: &Connection) -> Json {
    let i = &c.info;
    let (session, timeout) = c.session.unwrap_or((0, 0));
    let Json::Object(brief) = brief_connection(c) else {
        return Json::Null;
    };
    brief
        .with("session_id", session)
        .with("last_operation", i.last_op)
        .with("established", i.established_ms)
        .with("session_timeout", timeout)
        .with("last_cxid", i.last_cxid)
        .with("last_zxid", i.last_zxid)
        .with("last_response_time", i.last_response)
        .with("last_latency", i.last_latency)
        .with("min_latency", i.min_latency)
        .with("avg_latency", i.avg_latency)
        .with("max_latency", i.max_latency)
        .into()
}

fn dump(shared: &Shared, _: &Args, out: &mut Object) {
    // ZooKeeper's learners keep no expiry queue and report an empty map.
    let mut expiry = Object::new();
    if matches!(shared.mode(), Some("standalone" | "leader")) {
        for (at, ids) in introspect::session_expiry_sets(shared) {
            expiry.put(at.to_string(), ids);
        }
    }
    out.put("expiry_time_to_session_ids", expiry);
    let mut ephemerals = Object::new();
    for (id, paths) in introspect::ephemerals(shared) {
        ephemerals.put(id.to_string(), paths);
    }
    out.put("session_id_to_ephemeral_paths", ephemerals);
}

fn leader(shared: &Shared, _: &Args, out: &mut Object) {
    if !shared.quorum {
        out.put("error", "server is not initialized");
        return;
    }
    let consensus = shared.consensus();
    let leader_id = consensus.leader_id();
    out.put("is_leader", shared.mode() == Some("leader"));
    out.put("leader_id", leader_id.map_or(-1, |id| id as i64));
    let host = leader_id
        .and_then(|id| shared.membership.lock().servers.get(&id).cloned())
        .map(|spec| spec.host)
        .unwrap_or_default();
    out.put("leader_ip", host);
}

fn monitor(shared: &Shared, _: &Args, out: &mut Object) {
    let Some(mode) = shared.mode() else {
        out.put("error", NOT_SERVING);
        return;
    };
    let report = mntr::report(shared, mode);
    for (k, v) in report.monitor {
        out.put(k, v);
    }
    for m in &report.metrics {
        for (k, v) in m.dump() {
            out.put(
                k,
                match v {
                    mntr::Number::Int(i) => Json::Int(i),
                    mntr::Number::Float(f) => Json::Float(f),
                },
            );
        }
    }
}

fn set_trace_mask(shared: &Shared, args: &Args, out: &mut Object) {
    let Some(value) = args.get("traceMask") else {
        out.put("error", "setTraceMask requires long traceMask argument");
        return;
    };
    match value.parse::<i64>() {
        Ok(mask) => {
            shared.stats.trace_mask.store(mask, Relaxed);
            out.put("tracemask", mask);
        }
        Err(_) => out.put(
            "error",
            format!("setTraceMask requires long traceMask argument, got {value}"),
        ),
    }
}

fn buffer_stats((last, min, max): (i64, i64, i64)) -> Object {
    Object::new()
        .with("last_buffer_size", last)
        .with("min_buffer_size", min)
        .with("max_buffer_size", max)
}

/// `server_stats` (`srvr`): the version, ServerStats as Jackson writes
/// its getters, the response sizes, on a leader the proposal sizes, and
/// the node count.
fn server_stats(shared: &Shared, out: &mut Object) {
    let stats = &shared.stats;
    let latency = stats.request_latency();
    let (data_size, log_size) = introspect::dir_sizes(shared);
    let mode = shared.mode().unwrap_or("standalone");
    let (zxid, nodes) = {
        let tree = shared.tree.read();
        (tree.last_zxid(), tree.node_count())
    };
    let response = buffer_stats(stats.client_response_size.values());
    let server = Object::new()
        .with("packets_sent", stats.packets_sent())
        .with("packets_received", stats.packets_received())
        .with("fsync_threshold_exceed_count", 0)
        .with("client_response_stats", response.clone())
        .with("data_dir_size", data_size)
        .with("log_dir_size", log_size)
        .with("provider_null", false)
        .with("server_state", mode)
        .with("last_processed_zxid", zxid)
        .with("outstanding_requests", stats.outstanding())
        .with("avg_latency", latency.avg())
        .with("max_latency", latency.max)
        .with("min_latency", latency.min)
        .with("num_alive_client_connections", shared.connection_count())
        .with("uptime", stats.uptime_ms())
        .with("auth_failed_count", stats.auth_failed.load(Relaxed))
        .with("non_mtlsremote_conn_count", 0)
        .with("non_mtlslocal_conn_count", 0);
    out.put("version", crate::VERSION_STRING);
    out.put("read_only", mode == "read-only");
    out.put("server_stats", server);
    out.put("client_response", response);
    if mode == "leader" {
        out.put(
            "proposal_stats",
            buffer_stats(stats.proposal_sizes.values()),
        );
    }
    out.put("node_count", nodes);
}

/// `observers`: on a leader the observers that follow it. Ensemble's
/// replication keeps no per-learner packet counters: they are 0.
fn observers(shared: &Shared, _: &Args, out: &mut Object) {
    let mut list = Vec::new();
    if shared.mode() == Some("leader") {
        let servers = shared.membership.lock().servers.clone();
        let learners = shared.consensus().learners().unwrap_or_default();
        for l in learners.iter().filter(|l| !l.voter && l.in_term) {
            let addr = servers
                .get(&l.id)
                .map(|s| crate::peer_addr(&s.host, s.peer_port))
                .unwrap_or_default();
            list.push(Json::from(
                Object::new()
                    .with("remote_socket_address", addr)
                    .with("sid", l.id)
                    .with("established", Json::Null)
                    .with("queued_packets", 0)
                    .with("queued_packets_size", 0)
                    .with("packets_received", 0)
                    .with("packets_sent", 0)
                    .with("requests", 0)
                    .with("last_zxid", -1),
            ));
        }
    }
    out.put("synced_observers", list.len());
    out.put("observers", list);
}

/// `system_properties`: what of the JVM's properties has a meaning here
/// (the operating system, the user, the separators), and the
/// `zookeeper.<key>` properties ZooKeeper sets from zoo.cfg; sorted by key.
fn system_properties(shared: &Shared, _: &Args, out: &mut Object) {
    let env: HashMap<&str, String> = introspect::environment().into_iter().collect();
    let mut props: std::collections::BTreeMap<String, String> = shared
        .config
        .system_properties
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for key in [
        "java.io.tmpdir",
        "os.arch",
        "os.name",
        "os.version",
        "user.dir",
        "user.home",
        "user.name",
    ] {
        if let Some(v) = env.get(key) {
            props.insert(key.to_string(), v.clone());
        }
    }
    props.insert("file.separator".into(), "/".into());
    props.insert("line.separator".into(), "\n".into());
    props.insert("path.separator".into(), ":".into());
    for (k, v) in props {
        out.put(k, v);
    }
}

fn host_port(host: &str, port: u16) -> String {
    crate::peer_addr(host, port)
}

/// `voting_view`: the voting members with their addresses.
fn voting_view(shared: &Shared, _: &Args, out: &mut Object) {
    let mut view = Object::new();
    if shared.quorum {
        let servers = shared.membership.lock().servers.clone();
        for (id, spec) in servers.iter().filter(|(_, s)| !s.observer) {
            let client = spec
                .client_addr
                .as_ref()
                .map(|(h, p)| host_port(h, *p))
                .unwrap_or_default();
            view.put(
                id.to_string(),
                Object::new()
                    .with(
                        "server_addresses",
                        vec![host_port(&spec.host, spec.peer_port)],
                    )
                    .with(
                        "election_addresses",
                        vec![host_port(&spec.host, spec.election_port)],
                    )
                    .with("client_address", client)
                    .with("learner_type", "participant"),
            );
        }
    }
    out.put("current_config", view);
}

/// ZooKeeper's `MultipleAddresses` as Jackson writes it (its getters), for
/// the one address Ensemble uses per server.
fn multiple_addresses(host: &str, port: u16) -> Json {
    let addr = host_port(host, port);
    Object::new()
        .with("empty", false)
        .with("all_addresses", vec![addr.clone()])
        .with("all_reachable_addresses", vec![addr.clone()])
        .with("one", addr.clone())
        .with("reachable_address", addr.clone())
        .with("wildcard_addresses", vec![format!("0.0.0.0:{port}")])
        .with("all_ports", vec![port])
        .with("all_host_strings", vec![host.to_string()])
        .with("all_reachable_addresses_or_all", vec![addr.clone()])
        .with("reachable_or_one", addr)
        .into()
}

/// `zabstate`: where this member is in the protocol. Raft has no Zab
/// phases: a member that serves is in `broadcast`, one that does not in
/// `election`.
fn zabstate(shared: &Shared, _: &Args, out: &mut Object) {
    if !shared.quorum {
        out.put("voting", false);
        out.put("zabstate", "");
        return;
    }
    let config = &shared.config;
    let id = config.my_id.unwrap_or(0);
    let spec = shared.membership.lock().servers.get(&id).cloned();
    let zxid = shared.tree.read().last_zxid();
    let client = config.client_addr();
    out.put("myid", id);
    out.put("is_leader", shared.mode() == Some("leader"));
    out.put(
        "quorum_address",
        spec.as_ref()
            .map_or(Json::Null, |s| multiple_addresses(&s.host, s.peer_port)),
    );
    out.put(
        "election_address",
        spec.as_ref()
            .map_or(Json::Null, |s| multiple_addresses(&s.host, s.election_port)),
    );
    out.put("client_address", socket_addr(&client));
    out.put("voting", spec.as_ref().is_some_and(|s| !s.observer));
    out.put("last_zxid", format!("0x{zxid:x}"));
    out.put("zab_epoch", zxid >> 32);
    out.put("zab_counter", zxid & 0xffff_ffff);
    out.put(
        "zabstate",
        if matches!(shared.mode(), Some("leader" | "follower" | "observer")) {
            "broadcast"
        } else {
            "election"
        },
    );
}

/// Binds the AdminServer's port, if it is enabled. A standalone server
/// that cannot bind it does not start; a quorum member warns and runs
/// without it (see the module docs).
pub async fn bind(config: &Config) -> Result<Option<TcpListener>, ServerError> {
    if !config.admin_enable_server {
        return Ok(None);
    }
    let addr = format!(
        "{}:{}",
        bracket(&config.admin_server_address),
        config.admin_server_port
    );
    match TcpListener::bind(&addr).await {
        Ok(l) => Ok(Some(l)),
        Err(source) if config.is_quorum() => {
            warn!(
                "AdminServer not started: cannot listen on {addr}: {source} \
                 (set admin.serverPort, or admin.enableServer=false)"
            );
            Ok(None)
        }
        Err(source) => Err(ServerError::Http {
            what: "AdminServer",
            addr,
            source,
        }),
    }
}

/// An IPv6 literal in brackets, as a socket address needs it.
pub(crate) fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Serves the AdminServer on `listener` until the runtime stops.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let url = shared.config.admin_command_url.clone();
    if let Ok(addr) = listener.local_addr() {
        info!("AdminServer on http://{addr}{url}");
    }
    let router = Router::new()
        .route(&url, get(list))
        .route(&format!("{url}/"), get(list))
        .route(&format!("{url}/{{name}}"), get(command))
        .with_state(shared);
    if let Err(e) = axum::serve(listener, router).await {
        warn!("AdminServer stopped: {e}");
    }
}

/// The command list: one link per primary name, each followed by `<br/>`.
async fn list(State(shared): State<Arc<Shared>>) -> Response {
    let url = &shared.config.admin_command_url;
    let mut body = String::new();
    for name in primary_names() {
        body.push_str(&format!("<a href=\"{url}/{name}\">{name}</a>\n<br/>\n"));
    }
    ([(header::CONTENT_TYPE, "text/html")], body).into_response()
}

async fn command(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(args): Query<Args>,
) -> Response {
    // Some commands read files or walk the tree: off the async threads.
    let answer = tokio::task::spawn_blocking(move || run(&shared, &name, &args).into()).await;
    match answer {
        Ok(json) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            Json::pretty(&json),
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_belongs_to_one_command() {
        let mut names: Vec<&str> = COMMANDS
            .iter()
            .flat_map(|c| c.names.iter().copied())
            .collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn the_list_is_zookeeper_38s() {
        assert_eq!(
            primary_names(),
            [
                "configuration",
                "connection_stat_reset",
                "connections",
                "dirs",
                "dump",
                "environment",
                "get_trace_mask",
                "hash",
                "initial_configuration",
                "is_read_only",
                "last_snapshot",
                "leader",
                "monitor",
                "observer_connection_stat_reset",
                "observers",
                "ruok",
                "server_stats",
                "set_trace_mask",
                "stat_reset",
                "stats",
                "system_properties",
                "voting_view",
                "watch_summary",
                "watches",
                "watches_by_path",
                "zabstate"
            ]
        );
    }
}
