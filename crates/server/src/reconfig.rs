//! Dynamic reconfiguration (`reconfig`, with `reconfigEnabled=true` in quorum
//! mode), as ZooKeeper's PrepRequestProcessor and QuorumPeerConfig do it:
//! the leader checks the caller may write `/zookeeper/config`, checks
//! `fromConfig`, builds the new membership (incremental add/remove, or a new
//! member list), changes the Raft membership (joint consensus; new members
//! are caught up first), then logs a reconfig txn (a SetDataTxn of
//! `/zookeeper/config` holding the new config, `version=` the zxid of the
//! membership change). Every member applying that txn writes
//! `zoo.cfg.dynamic.<version>` beside its zoo.cfg and points zoo.cfg at it.

use crate::pipeline::WriteReq;
use crate::Shared;
use ensemble_config::{parse_server_spec, ServerSpec};
use ensemble_consensus::Member;
use ensemble_proto::{perms, ErrorCode, ErrorTxn, Jute, ReconfigRequest, SetDataTxn};
use ensemble_tree::TxnBody;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::{info, warn};

/// The membership every member believes in, and its version.
#[derive(Clone, Debug)]
pub struct Membership {
    pub servers: BTreeMap<u64, ServerSpec>,
    pub version: i64,
}

impl Membership {
    /// `/zookeeper/config`'s text: `QuorumMaj.toString`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (id, spec) in &self.servers {
            out.push_str(&format!("server.{id}={}\n", spec_text(spec)));
        }
        out.push_str(&format!("version={:x}", self.version));
        out
    }

    /// Reads `/zookeeper/config`'s text back.
    pub fn parse(text: &str) -> Option<Membership> {
        let mut servers = BTreeMap::new();
        let mut version = 0;
        for line in text.lines() {
            let (key, value) = line.split_once('=')?;
            if key == "version" {
                version = i64::from_str_radix(value.trim(), 16).ok()?;
            } else if let Some(id) = key.strip_prefix("server.") {
                let id: u64 = id.parse().ok()?;
                servers.insert(id, parse_server_spec(id, value).ok()?);
            }
        }
        Some(Membership { servers, version })
    }

    pub fn members(&self) -> Vec<Member> {
        self.servers
            .iter()
            .map(|(id, spec)| Member {
                id: *id,
                peer_addr: crate::peer_addr(&spec.host, spec.peer_port),
                voter: !spec.observer,
            })
            .collect()
    }
}

fn host(h: &str) -> String {
    if h.contains(':') {
        format!("[{h}]")
    } else {
        h.to_string()
    }
}

/// One `server.N` value as `QuorumServer.toString` writes it.
pub fn spec_text(spec: &ServerSpec) -> String {
    let mut out = format!(
        "{}:{}:{}:{}",
        host(&spec.host),
        spec.peer_port,
        spec.election_port,
        if spec.observer {
            "observer"
        } else {
            "participant"
        }
    );
    if let Some((client_host, port)) = &spec.client_addr {
        out.push_str(&format!(";{}:{port}", host(client_host)));
    }
    out
}

/// Parses `server.N=spec[,server.M=spec...]` (commas or newlines).
fn parse_servers(list: &str) -> Result<Vec<(u64, ServerSpec)>, String> {
    list.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("'{item}' is not server.N=..."))?;
            let id: u64 = key
                .trim()
                .strip_prefix("server.")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("'{key}' is not server.N"))?;
            Ok((id, parse_server_spec(id, value.trim())?))
        })
        .collect()
}

/// Runs a reconfig request on the leader and logs its outcome: the reconfig
/// txn, or an error txn that answers the client.
pub async fn run(shared: Arc<Shared>, mut req: WriteReq) {
    let txn = match change(&shared, &req).await {
        Err(ErrorCode::ConnectionLoss) => {
            // This member no longer leads (a change removed it and it is handing over): the
            // client's connection closes and it retries through the next leader.
            match req.done.take() {
                Some(done) => {
                    let _ = done.send(Err("this server is not the leader".to_string()));
                }
                None => {
                    if let Some((conn, _, _)) = shared.replies.lock().take(req.session_id, req.cxid)
                    {
                        conn.close();
                    }
                }
            }
            return;
        }
        Ok(text) => TxnBody::Reconfig(SetDataTxn {
            path: ensemble_tree::path::CONFIG.to_string(),
            data: Some(bytes::Bytes::from(text)),
            version: -1,
        }),
        Err(code) => TxnBody::Error(ErrorTxn { err: code.code() }),
    };
    req.txn = Some(txn);
    req.reply = None;
    shared.submit_write(req);
}

async fn change(shared: &Arc<Shared>, req: &WriteReq) -> Result<String, ErrorCode> {
    if !shared.config.reconfig_enabled {
        return Err(ErrorCode::ReconfigDisabled);
    }
    let allowed = shared
        .tree
        .read()
        .permits(ensemble_tree::path::CONFIG, perms::WRITE, &req.auth)
        .unwrap_or(false);
    if !allowed {
        return Err(ErrorCode::NoAuth);
    }
    let r = ReconfigRequest::read(&mut ensemble_proto::Reader::new(req.body.clone()))
        .map_err(|_| ErrorCode::MarshallingError)?;
    let current = shared.membership.lock().clone();
    if r.cur_config_id != -1 && r.cur_config_id != current.version {
        return Err(ErrorCode::BadVersion);
    }
    let mut servers = current.servers.clone();
    match (&r.joining_servers, &r.leaving_servers, &r.new_members) {
        (_, _, Some(list)) if r.joining_servers.is_none() && r.leaving_servers.is_none() => {
            servers = parse_servers(list)
                .map_err(|_| ErrorCode::BadArguments)?
                .into_iter()
                .collect();
        }
        (joining, leaving, None) if joining.is_some() || leaving.is_some() => {
            if let Some(leaving) = leaving {
                for id in leaving.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let id: u64 = id.parse().map_err(|_| ErrorCode::BadArguments)?;
                    servers.remove(&id);
                }
            }
            if let Some(joining) = joining {
                for (id, spec) in parse_servers(joining).map_err(|_| ErrorCode::BadArguments)? {
                    servers.insert(id, spec);
                }
            }
        }
        _ => return Err(ErrorCode::BadArguments),
    }
    if servers.values().all(|s| s.observer) {
        return Err(ErrorCode::BadArguments);
    }
    let next = Membership {
        servers,
        version: 0,
    };
    let version = shared
        .consensus()
        .change_members(&next.members())
        .await
        .map_err(|e| match e {
            ensemble_consensus::ConsensusError::NotLeader => ErrorCode::ConnectionLoss,
            e => {
                warn!("reconfig failed: {e}");
                ErrorCode::NewConfigNoQuorum
            }
        })?;
    let next = Membership { version, ..next };
    info!(
        "reconfigured to version {version:x}: {:?}",
        next.servers.keys()
    );
    Ok(next.text())
}

/// Called on every member when a reconfig txn is applied: remembers the new
/// membership and writes it beside zoo.cfg. Returns the new version.
pub fn applied(shared: &Shared, text: &str) -> Option<i64> {
    let Some(next) = Membership::parse(text) else {
        warn!("applied a reconfig txn whose config cannot be read: {text:?}");
        return None;
    };
    *shared.membership.lock() = next.clone();
    let file = PathBuf::from(&shared.config.config_file);
    if file.is_file() {
        if let Err(e) = write_dynamic_file(&file, &next) {
            warn!(
                "cannot record the new configuration beside {}: {e}",
                file.display()
            );
        }
    }
    Some(next.version)
}

/// Writes `<zoo.cfg>.dynamic.<version>` (server lines only; the version is in
/// the name) and makes zoo.cfg name it in `dynamicConfigFile`, without its own
/// `server.N` lines, as ZooKeeper's `QuorumPeerConfig.editStaticConfig`.
fn write_dynamic_file(cfg: &Path, next: &Membership) -> std::io::Result<()> {
    let name = format!(
        "{}.dynamic.{:x}",
        cfg.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("zoo.cfg"),
        next.version
    );
    let dynamic = cfg.with_file_name(name);
    let body: String = next
        .servers
        .iter()
        .map(|(id, spec)| format!("server.{id}={}\n", spec_text(spec)))
        .collect();
    atomic_write(&dynamic, body.as_bytes())?;
    let old = std::fs::read_to_string(cfg)?;
    let mut text: String = old
        .lines()
        .filter(|l| {
            let key = l.split('=').next().unwrap_or("").trim();
            !key.starts_with("server.") && key != "dynamicConfigFile"
        })
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(&format!("dynamicConfigFile={}\n", dynamic.display()));
    atomic_write(cfg, text.as_bytes())
}

fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
