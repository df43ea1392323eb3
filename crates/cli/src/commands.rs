//! zkCli.sh's commands (`org.apache.zookeeper.cli`): each parses its options as
//! commons-cli does, runs its requests, and prints what zkCli.sh prints: results on
//! stdout, `Created ...` and errors on stderr, with zkCli.sh's exit codes.

use crate::client::{Client, KeeperError, WatchReg, WatchedEvent};
use crate::format;
use crate::opts::{self, flag, value, OptSpec, Parsed};
use crate::shell::Shell;
use bytes::Bytes;
use ensemble_proto::*;

/// A failed command: the line zkCli.sh prints on stderr and its exit code.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: i32,
}

impl CliError {
    pub fn new(message: String) -> CliError {
        CliError { message, code: 1 }
    }
}

type Res = Result<(), CliError>;

/// `CliWrapperException` around a KeeperException about `path`.
fn wrap(e: KeeperError, path: &str) -> CliError {
    CliError::new(format::wrapper_message(e, Some(path)))
}

/// The commands and their option strings, as zkCli.sh's usage lists them.
const COMMANDS: &[(&str, &str)] = &[
    ("addWatch", "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE"),
    ("addauth", "scheme auth"),
    ("close", ""),
    ("config", "[-c] [-w] [-s]"),
    ("connect", "host:port"),
    ("create", "[-s] [-e] [-c] [-t ttl] path [data] [acl]"),
    ("delete", "[-v version] path"),
    ("deleteall", "path [-b batch size]"),
    ("delquota", "[-n|-b|-N|-B] path"),
    ("get", "[-s] [-w] path"),
    ("getAcl", "[-s] path"),
    ("getAllChildrenNumber", "path"),
    ("getEphemerals", "path"),
    ("history", ""),
    ("listquota", "path"),
    ("ls", "[-s] [-w] [-R] path"),
    ("printwatches", "on|off"),
    ("quit", ""),
    ("reconfig", "[-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]"),
    ("redo", "cmdno"),
    ("removewatches", "path [-c|-d|-a] [-l]"),
    ("set", "[-s] [-v version] path data"),
    ("setAcl", "[-s] [-v version] [-R] path acl"),
    ("setquota", "-n|-b|-N|-B val path"),
    ("stat", "[-w] path"),
    ("sync", "path"),
    ("version", ""),
    ("whoami", ""),
];

pub fn is_command(name: &str) -> bool {
    COMMANDS.iter().any(|(n, _)| *n == name)
}

pub fn command_names() -> impl Iterator<Item = &'static str> {
    COMMANDS.iter().map(|(n, _)| *n)
}

fn usage_of(name: &str) -> String {
    let opts = COMMANDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, o)| *o)
        .unwrap_or("");
    format!("{name} {opts}")
}

/// `ZooKeeperMain.usage`, on stderr.
pub fn usage() {
    eprintln!("ZooKeeper -server host:port -client-configuration properties-file cmd args");
    for (name, opts) in COMMANDS {
        eprintln!("\t{name} {opts}");
    }
}

fn parse(specs: &[OptSpec], args: &[String]) -> Result<Parsed, CliError> {
    opts::parse(specs, args).map_err(CliError::new)
}

/// Fails with the command's usage (a `CliParseException` or `MalformedCommandException`).
fn need(p: &Parsed, n: usize, cmd: &str) -> Res {
    if p.args.len() < n {
        return Err(CliError::new(usage_of(cmd)));
    }
    Ok(())
}

fn valid(path: &str) -> Res {
    format::validate_path(path).map_err(CliError::new)
}

fn java_int(s: &str) -> Result<i32, CliError> {
    s.parse().map_err(|_| {
        CliError::new(format!(
            "java.lang.NumberFormatException: For input string: \"{s}\""
        ))
    })
}

/// Runs one of the commands that need the session.
pub fn run(shell: &mut Shell, args: &[String]) -> Res {
    let client = shell.client.clone();
    let name = args[0].as_str();
    let c = &client;
    shell.rt.block_on(async move {
        match name {
            "ls" => ls(c, args).await,
            "create" => create(c, args).await,
            "get" => get(c, args).await,
            "set" => set(c, args).await,
            "delete" => delete(c, args).await,
            "deleteall" => deleteall(c, args).await,
            "stat" => stat(c, args).await,
            "getAcl" => get_acl(c, args).await,
            "setAcl" => set_acl(c, args).await,
            "addauth" => addauth(c, args),
            "sync" => sync(c, args).await,
            "addWatch" => add_watch(c, args).await,
            "removewatches" => remove_watches(c, args).await,
            "getEphemerals" => get_ephemerals(c, args).await,
            "getAllChildrenNumber" => all_children_number(c, args).await,
            "whoami" => whoami(c).await,
            "setquota" => crate::commands::quota::setquota(c, args).await,
            "listquota" => crate::commands::quota::listquota(c, args).await,
            "delquota" => crate::commands::quota::delquota(c, args).await,
            "config" => config(c, args).await,
            "reconfig" => reconfig(c, args).await,
            "close" => {
                c.close().await;
                Ok(())
            }
            "version" => version(args),
            _ => Ok(()),
        }
    })
}

// ---- requests, as the Java client's methods (the chroot applied) ----

pub(crate) async fn get_children(
    c: &Client,
    path: &str,
    watch: bool,
) -> Result<Vec<String>, KeeperError> {
    let reg = if watch {
        WatchReg::Child(path.to_string())
    } else {
        WatchReg::None
    };
    let body = c
        .call(
            op::GET_CHILDREN,
            &GetChildrenRequest {
                path: c.server_path(path),
                watch,
            },
            reg,
        )
        .await?;
    Ok(decode::<GetChildrenResponse>(body)?.children)
}

async fn get_children2(
    c: &Client,
    path: &str,
    watch: bool,
) -> Result<(Vec<String>, Stat), KeeperError> {
    let reg = if watch {
        WatchReg::Child(path.to_string())
    } else {
        WatchReg::None
    };
    let body = c
        .call(
            op::GET_CHILDREN2,
            &GetChildren2Request {
                path: c.server_path(path),
                watch,
            },
            reg,
        )
        .await?;
    let r = decode::<GetChildren2Response>(body)?;
    Ok((r.children, r.stat))
}

pub(crate) async fn get_data(
    c: &Client,
    path: &str,
    watch: bool,
) -> Result<(Option<Bytes>, Stat), KeeperError> {
    let reg = if watch {
        WatchReg::Data(path.to_string())
    } else {
        WatchReg::None
    };
    let body = c
        .call(
            op::GET_DATA,
            &GetDataRequest {
                path: c.server_path(path),
                watch,
            },
            reg,
        )
        .await?;
    let r = decode::<GetDataResponse>(body)?;
    Ok((r.data, r.stat))
}

pub(crate) async fn exists(
    c: &Client,
    path: &str,
    watch: bool,
) -> Result<Option<Stat>, KeeperError> {
    let reg = if watch {
        WatchReg::Exist(path.to_string())
    } else {
        WatchReg::None
    };
    let r = c
        .call(
            op::EXISTS,
            &ExistsRequest {
                path: c.server_path(path),
                watch,
            },
            reg,
        )
        .await;
    match r {
        Ok(body) => Ok(Some(decode::<ExistsResponse>(body)?.stat)),
        Err(e) if e.is(ErrorCode::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) async fn create_node(
    c: &Client,
    path: &str,
    data: Option<Bytes>,
    acl: Vec<Acl>,
    mode: CreateMode,
    ttl: i64,
) -> Result<String, KeeperError> {
    let server_path = c.server_path(path);
    let created = if mode.is_ttl() {
        let body = c
            .call(
                op::CREATE_TTL,
                &CreateTtlRequest {
                    path: server_path,
                    data,
                    acl,
                    flags: mode.flags(),
                    ttl,
                },
                WatchReg::None,
            )
            .await?;
        decode::<Create2Response>(body)?.path
    } else if mode.is_container() {
        let body = c
            .call(
                op::CREATE_CONTAINER,
                &CreateRequest {
                    path: server_path,
                    data,
                    acl,
                    flags: mode.flags(),
                },
                WatchReg::None,
            )
            .await?;
        decode::<Create2Response>(body)?.path
    } else {
        let body = c
            .call(
                op::CREATE,
                &CreateRequest {
                    path: server_path,
                    data,
                    acl,
                    flags: mode.flags(),
                },
                WatchReg::None,
            )
            .await?;
        decode::<CreateResponse>(body)?.path
    };
    Ok(c.client_path(&created))
}

pub(crate) async fn set_data(
    c: &Client,
    path: &str,
    data: Option<Bytes>,
    version: i32,
) -> Result<Stat, KeeperError> {
    let body = c
        .call(
            op::SET_DATA,
            &SetDataRequest {
                path: c.server_path(path),
                data,
                version,
            },
            WatchReg::None,
        )
        .await?;
    Ok(decode::<SetDataResponse>(body)?.stat)
}

pub(crate) async fn delete_node(c: &Client, path: &str, version: i32) -> Result<(), KeeperError> {
    // As the Java client: "/" is never chrooted, so it cannot be deleted by mistake.
    let server_path = if path == "/" {
        path.to_string()
    } else {
        c.server_path(path)
    };
    c.call(
        op::DELETE,
        &DeleteRequest {
            path: server_path,
            version,
        },
        WatchReg::None,
    )
    .await?;
    Ok(())
}

async fn set_acl_req(
    c: &Client,
    path: &str,
    acl: Vec<Acl>,
    version: i32,
) -> Result<Stat, KeeperError> {
    let body = c
        .call(
            op::SET_ACL,
            &SetAclRequest {
                path: c.server_path(path),
                acl,
                version,
            },
            WatchReg::None,
        )
        .await?;
    Ok(decode::<SetAclResponse>(body)?.stat)
}

fn decode<T: Jute>(body: Bytes) -> Result<T, KeeperError> {
    T::read(&mut Reader::new(body)).map_err(|_| KeeperError(ErrorCode::MarshallingError.code()))
}

/// `ZKUtil.visitSubTreeDFS`: the node, then each level's children before their subtrees.
async fn visit_subtree(
    c: &Client,
    path: &str,
    watch: bool,
    visit: &mut (dyn FnMut(&str) + Send),
) -> Result<(), KeeperError> {
    get_data(c, path, watch).await?;
    visit(path);
    let mut stack = vec![path.to_string()];
    // Depth first, each node's children printed together: an explicit stack of the
    // nodes whose children are still to be listed, in the order Java recurses.
    let mut order: Vec<String> = Vec::new();
    while let Some(node) = stack.pop() {
        order.push(node.clone());
        let mut children = match get_children(c, &node, watch).await {
            Ok(ch) => ch,
            Err(e) if e.is(ErrorCode::NoNode) => continue,
            Err(e) => return Err(e),
        };
        children.sort();
        let full: Vec<String> = children
            .iter()
            .map(|ch| {
                if node == "/" {
                    format!("/{ch}")
                } else {
                    format!("{node}/{ch}")
                }
            })
            .collect();
        for p in &full {
            visit(p);
        }
        for p in full.into_iter().rev() {
            stack.push(p);
        }
    }
    Ok(())
}

// ---- the commands ----

async fn ls(c: &Client, args: &[String]) -> Res {
    let specs = [
        flag("?", "help"),
        flag("s", "stat"),
        flag("w", "watch"),
        flag("R", "recurse"),
    ];
    let mut args = args.to_vec();
    let mut p = parse(&specs, &args)?;
    if p.has("?") {
        println!("usage: ls [options] path\n -?   help\n -R   recurse\n -s   stat\n -w   watch");
    }
    if p.args.len() > 2 {
        args[2] = "-w".into();
        eprintln!("'ls path [watch]' has been deprecated. Please use 'ls [-w] path' instead.");
        p = parse(&specs, &args)?;
    }
    if p.args.len() < 2 {
        return Err(CliError::new(usage_of("ls")));
    }
    let path = p.args[1].clone();
    valid(&path)?;
    let watch = p.has("w");
    if p.has("R") {
        let mut visit = |x: &str| println!("{x}");
        return visit_subtree(c, &path, watch, &mut visit)
            .await
            .map_err(|e| wrap(e, &path));
    }
    let (mut children, stat) = if p.has("s") {
        let (ch, st) = get_children2(c, &path, watch)
            .await
            .map_err(|e| wrap(e, &path))?;
        (ch, Some(st))
    } else {
        let ch = get_children(c, &path, watch)
            .await
            .map_err(|e| wrap(e, &path))?;
        (ch, None)
    };
    children.sort();
    let mut out = format!("[{}]\n", children.join(", "));
    if let Some(st) = stat {
        out.push_str(&format::stat_lines(&st));
    }
    print!("{out}");
    Ok(())
}

/// `EphemeralType.TTL`'s largest value.
const MAX_TTL: i64 = (1 << 40) - 1;

async fn create(c: &Client, args: &[String]) -> Res {
    let specs = [
        flag("e", "ephemeral"),
        flag("s", "sequential"),
        flag("c", "container"),
        value("t", "ttl"),
    ];
    let p = parse(&specs, args)?;
    need(&p, 2, "create")?;
    let (e, s, cont, t) = (p.has("e"), p.has("s"), p.has("c"), p.has("t"));
    if cont && (e || s) {
        return Err(CliError::new(
            "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential."
                .into(),
        ));
    }
    let ttl: i64 = match p.value("t") {
        Some(v) if t => v
            .parse()
            .map_err(|_| CliError::new("-t argument must be a long value".into()))?,
        _ => 0,
    };
    if t && e {
        return Err(CliError::new(
            "TTLs cannot be used with Ephemeral znodes".into(),
        ));
    }
    if t && cont {
        return Err(CliError::new(
            "TTLs cannot be used with Container znodes".into(),
        ));
    }
    let mode = match (e, s, cont, t) {
        (true, true, _, _) => CreateMode::EphemeralSequential,
        (true, false, _, _) => CreateMode::Ephemeral,
        (false, true, _, true) => CreateMode::PersistentSequentialWithTtl,
        (false, true, _, false) => CreateMode::PersistentSequential,
        (false, false, true, _) => CreateMode::Container,
        (false, false, false, true) => CreateMode::PersistentWithTtl,
        (false, false, false, false) => CreateMode::Persistent,
    };
    if t && (ttl > MAX_TTL || ttl <= 0) {
        return Err(CliError::new(format!(
            "ttl must be positive and cannot be larger than: {MAX_TTL}"
        )));
    }
    let path = p.args[1].clone();
    let data = p.args.get(2).map(|d| Bytes::from(d.clone().into_bytes()));
    let acl = match p.args.get(3) {
        Some(a) => format::parse_acl(a),
        None => format::open_acl(),
    };
    if mode.is_sequential() {
        valid(&format!("{path}1"))?;
    } else {
        valid(&path)?;
    }
    if acl.is_empty() {
        eprintln!("KeeperErrorCode = InvalidACL");
        return Err(CliError::new("Acl is not valid : null".into()));
    }
    match create_node(c, &path, data, acl, mode, ttl).await {
        Ok(created) => {
            eprintln!("Created {created}");
            Ok(())
        }
        Err(e) => {
            if e.is(ErrorCode::EphemeralOnLocalSession) {
                eprintln!("Unable to create ephemeral node on a local session");
            } else if e.is(ErrorCode::InvalidAcl) {
                eprintln!("{}", format::keeper_message(e, Some(&path)));
            }
            Err(wrap(e, &path))
        }
    }
}

fn data_text(data: Option<&Bytes>) -> String {
    match data {
        Some(d) => String::from_utf8_lossy(d).into_owned(),
        None => "null".into(),
    }
}

async fn get(c: &Client, args: &[String]) -> Res {
    let specs = [flag("s", "stats"), flag("w", "watch")];
    let mut args = args.to_vec();
    let mut p = parse(&specs, &args)?;
    need(&p, 2, "get")?;
    if p.args.len() > 2 {
        args[2] = "-w".into();
        eprintln!(
            "'get path [watch]' has been deprecated. Please use 'get [-s] [-w] path' instead."
        );
        p = parse(&specs, &args)?;
    }
    let path = p.args[1].clone();
    valid(&path)?;
    let (data, stat) = get_data(c, &path, p.has("w"))
        .await
        .map_err(|e| wrap(e, &path))?;
    let mut out = data_text(data.as_ref());
    out.push('\n');
    if p.has("s") {
        out.push_str(&format::stat_lines(&stat));
    }
    print!("{out}");
    Ok(())
}

async fn set(c: &Client, args: &[String]) -> Res {
    let specs = [flag("s", "stats"), value("v", "version")];
    let p = parse(&specs, args)?;
    need(&p, 3, "set")?;
    let path = p.args[1].clone();
    let data = Bytes::from(p.args[2].clone().into_bytes());
    let version = match p.value("v") {
        Some(v) => java_int(v)?,
        None => -1,
    };
    valid(&path)?;
    let stat = set_data(c, &path, Some(data), version)
        .await
        .map_err(|e| wrap(e, &path))?;
    if p.has("s") {
        print!("{}", format::stat_lines(&stat));
    }
    Ok(())
}

async fn delete(c: &Client, args: &[String]) -> Res {
    let specs = [value("v", "version")];
    let p = parse(&specs, args)?;
    need(&p, 2, "delete")?;
    if p.args.len() > 2 {
        eprintln!(
            "'delete path [version]' has been deprecated. Please use 'delete [-v version] path' instead."
        );
    }
    let path = p.args[1].clone();
    let version = match p.value("v") {
        Some(v) => java_int(v)?,
        None => -1,
    };
    valid(&path)?;
    delete_node(c, &path, version)
        .await
        .map_err(|e| wrap(e, &path))
}

async fn deleteall(c: &Client, args: &[String]) -> Res {
    let specs = [value("b", "batch size")];
    let p = parse(&specs, args)?;
    need(&p, 2, "deleteall")?;
    let batch: usize = match p.value("b") {
        Some(v) => v
            .parse::<i32>()
            .map_err(|_| CliError::new("-b argument must be an int value".into()))?
            .max(1) as usize,
        None => 1000,
    };
    let path = p.args[1].clone();
    valid(&path)?;
    // ZKUtil.listSubTreeBFS, then deletes from the leaves up in multis of `batch`.
    let mut tree = vec![path.clone()];
    let mut i = 0;
    while i < tree.len() {
        let node = tree[i].clone();
        let children = get_children(c, &node, false)
            .await
            .map_err(|e| wrap(e, &path))?;
        for ch in children {
            tree.push(if node == "/" {
                format!("/{ch}")
            } else {
                format!("{node}/{ch}")
            });
        }
        i += 1;
    }
    let mut ok = true;
    for chunk in tree.iter().rev().collect::<Vec<_>>().chunks(batch) {
        let ops = chunk
            .iter()
            .map(|p| {
                MultiOp::Delete(DeleteRequest {
                    path: c.server_path(p),
                    version: -1,
                })
            })
            .collect();
        let mut w = Writer::new();
        MultiRequest { ops }.write(&mut w);
        match c.call_raw(op::MULTI, w.into_bytes(), WatchReg::None).await {
            Ok(body) => {
                let results = ensemble_proto::multi::read_multi_response(&mut Reader::new(body))
                    .unwrap_or_default();
                if results.iter().any(|r| r.err() != 0) {
                    ok = false;
                }
            }
            Err(_) => ok = false,
        }
        if !ok {
            break;
        }
    }
    if !ok {
        eprintln!("Failed to delete some node(s) in the subtree!");
    }
    Ok(())
}

async fn stat(c: &Client, args: &[String]) -> Res {
    let specs = [flag("w", "watch")];
    let mut args = args.to_vec();
    let mut p = parse(&specs, &args)?;
    need(&p, 2, "stat")?;
    if p.args.len() > 2 {
        args[2] = "-w".into();
        eprintln!("'stat path [watch]' has been deprecated. Please use 'stat [-w] path' instead.");
        p = parse(&specs, &args)?;
    }
    let path = p.args[1].clone();
    valid(&path)?;
    match exists(c, &path, p.has("w"))
        .await
        .map_err(|e| wrap(e, &path))?
    {
        Some(st) => {
            print!("{}", format::stat_lines(&st));
            Ok(())
        }
        None => Err(CliError::new(format!("Node does not exist: {path}"))),
    }
}

async fn get_acl(c: &Client, args: &[String]) -> Res {
    let specs = [flag("s", "stats")];
    let p = parse(&specs, args)?;
    need(&p, 2, "getAcl")?;
    let path = p.args[1].clone();
    valid(&path)?;
    let body = c
        .call(
            op::GET_ACL,
            &GetAclRequest {
                path: c.server_path(&path),
            },
            WatchReg::None,
        )
        .await
        .map_err(|e| wrap(e, &path))?;
    let r = decode::<GetAclResponse>(body).map_err(|e| wrap(e, &path))?;
    let mut out = String::new();
    for a in &r.acl {
        out.push_str(&format::acl_line(a));
        out.push('\n');
    }
    if p.has("s") {
        out.push_str(&format::stat_lines(&r.stat));
    }
    print!("{out}");
    Ok(())
}

async fn set_acl(c: &Client, args: &[String]) -> Res {
    let specs = [
        flag("s", "stats"),
        value("v", "version"),
        flag("R", "recursive"),
    ];
    let p = parse(&specs, args)?;
    need(&p, 3, "setAcl")?;
    let path = p.args[1].clone();
    let acl = format::parse_acl(&p.args[2]);
    let version = match p.value("v") {
        Some(v) => java_int(v)?,
        None => -1,
    };
    valid(&path)?;
    if p.has("R") {
        let mut nodes = Vec::new();
        let mut visit = |x: &str| nodes.push(x.to_string());
        visit_subtree(c, &path, false, &mut visit)
            .await
            .map_err(|e| wrap(e, &path))?;
        for n in nodes {
            if acl.is_empty() {
                print!("KeeperErrorCode = InvalidACL for {n}");
                continue;
            }
            if let Err(e) = set_acl_req(c, &n, acl.clone(), version).await {
                print!("{}", format::keeper_message(e, Some(&n)));
            }
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        return Ok(());
    }
    if acl.is_empty() {
        return Err(CliError::new("Acl is not valid : null".into()));
    }
    let stat = set_acl_req(c, &path, acl, version)
        .await
        .map_err(|e| wrap(e, &path))?;
    if p.has("s") {
        print!("{}", format::stat_lines(&stat));
    }
    Ok(())
}

fn addauth(c: &Client, args: &[String]) -> Res {
    let p = parse(&[], args)?;
    need(&p, 2, "addauth")?;
    let auth = p.args.get(2).map(|a| Bytes::from(a.clone().into_bytes()));
    c.add_auth(&p.args[1], auth);
    Ok(())
}

async fn sync(c: &Client, args: &[String]) -> Res {
    let p = parse(&[], args)?;
    need(&p, 2, "sync")?;
    let path = p.args[1].clone();
    valid(&path)?;
    let req = SyncRequest {
        path: c.server_path(&path),
    };
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        c.call(op::SYNC, &req, WatchReg::None),
    )
    .await;
    match r {
        Ok(Ok(_)) => println!("Sync is OK"),
        Ok(Err(e)) => println!("Sync has failed. rc={}", e.0),
        Err(_) => {
            return Err(CliError::new(
                "java.util.concurrent.TimeoutException".into(),
            ))
        }
    }
    Ok(())
}

async fn add_watch(c: &Client, args: &[String]) -> Res {
    let specs = [value("m", "")];
    let p = parse(&specs, args)?;
    if p.args.len() != 2 {
        return Err(CliError::new(usage_of("addWatch")));
    }
    let mode = match p.value("m").map(|m| m.to_uppercase()) {
        None => add_watch_mode::PERSISTENT_RECURSIVE,
        Some(m) if m == "PERSISTENT_RECURSIVE" => add_watch_mode::PERSISTENT_RECURSIVE,
        Some(m) if m == "PERSISTENT" => add_watch_mode::PERSISTENT,
        Some(_) => return Err(CliError::new(usage_of("addWatch"))),
    };
    let path = p.args[1].clone();
    valid(&path)?;
    let reg = if mode == add_watch_mode::PERSISTENT {
        WatchReg::Persistent(path.clone())
    } else {
        WatchReg::PersistentRecursive(path.clone())
    };
    c.call(
        op::ADD_WATCH,
        &AddWatchRequest {
            path: c.server_path(&path),
            mode,
        },
        reg,
    )
    .await
    .map_err(|e| wrap(e, &path))?;
    Ok(())
}

async fn remove_watches(c: &Client, args: &[String]) -> Res {
    let specs = [
        flag("c", "child watcher type"),
        flag("d", "data watcher type"),
        flag("a", "any watcher type"),
        flag("l", "remove locally when there is no server connection"),
    ];
    let p = parse(&specs, args)?;
    need(&p, 2, "removewatches")?;
    let path = p.args[1].clone();
    let kind = if p.has("c") {
        watcher_type::CHILDREN
    } else if p.has("d") {
        watcher_type::DATA
    } else {
        watcher_type::ANY
    };
    let local = p.has("l");
    valid(&path)?;
    let no_watcher = || wrap(KeeperError(ErrorCode::NoWatcher.code()), &path);
    if !c.with_watches(|w| w.contains(&path, kind)) {
        return Err(no_watcher());
    }
    let r = c
        .call(
            op::REMOVE_WATCHES,
            &RemoveWatchesRequest {
                path: c.server_path(&path),
                r#type: kind,
            },
            WatchReg::None,
        )
        .await;
    if let Err(e) = r {
        if !local {
            return Err(wrap(e, &path));
        }
    }
    match c.with_watches(|w| w.remove(&path, kind)) {
        Some(events) => {
            for kind in events {
                c.deliver(WatchedEvent {
                    state: keeper_state::SYNC_CONNECTED,
                    kind,
                    path: Some(path.clone()),
                });
            }
            Ok(())
        }
        None => Err(no_watcher()),
    }
}

async fn get_ephemerals(c: &Client, args: &[String]) -> Res {
    let p = parse(&[], args)?;
    let path = p.args.get(1).cloned().unwrap_or_else(|| "/".into());
    valid(&path)?;
    let body = c
        .call(
            op::GET_EPHEMERALS,
            &GetEphemeralsRequest {
                prefix_path: c.server_path(&path),
            },
            WatchReg::None,
        )
        .await
        .map_err(|e| wrap(e, &path))?;
    let r = decode::<GetEphemeralsResponse>(body).map_err(|e| wrap(e, &path))?;
    println!("[{}]", r.ephemerals.join(", "));
    Ok(())
}

async fn all_children_number(c: &Client, args: &[String]) -> Res {
    let p = parse(&[], args)?;
    need(&p, 2, "getAllChildrenNumber")?;
    let path = p.args[1].clone();
    valid(&path)?;
    let body = c
        .call(
            op::GET_ALL_CHILDREN_NUMBER,
            &GetAllChildrenNumberRequest {
                path: c.server_path(&path),
            },
            WatchReg::None,
        )
        .await
        .map_err(|e| wrap(e, &path))?;
    let r = decode::<GetAllChildrenNumberResponse>(body).map_err(|e| wrap(e, &path))?;
    println!("{}", r.total_number);
    Ok(())
}

async fn whoami(c: &Client) -> Res {
    let body = c
        .call_raw(op::WHO_AM_I, Bytes::new(), WatchReg::None)
        .await
        .map_err(|e| CliError::new(format::keeper_message(e, None)))?;
    let r = decode::<WhoAmIResponse>(body)
        .map_err(|e| CliError::new(format::keeper_message(e, None)))?;
    let mut out = String::from("Auth scheme: User\n");
    for ci in r.client_info {
        out.push_str(&format!("{}: {}\n", ci.auth_scheme, ci.user));
    }
    print!("{out}");
    Ok(())
}

/// `ConfigUtils.getClientConfigStr`: the version and each member's client address.
fn client_config(text: &str) -> String {
    let mut version = String::new();
    let mut addrs = Vec::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k == "version" {
            version = v.to_string();
        }
        if !k.starts_with("server.") {
            continue;
        }
        if let Some((_, client)) = v.split_once(';') {
            let client = client.trim();
            let addr = match client.rsplit_once(':') {
                Some((h, port)) => format!("{h}:{port}"),
                None => format!("0.0.0.0:{client}"),
            };
            addrs.push(addr);
        }
    }
    format!("{version} {}", addrs.join(","))
}

async fn config(c: &Client, args: &[String]) -> Res {
    let specs = [
        flag("s", "stats"),
        flag("w", "watch"),
        flag("c", "client connection string"),
    ];
    let p = parse(&specs, args)?;
    let watch = p.has("w");
    // The config node is read without the chroot.
    let reg = if watch {
        WatchReg::Data("/zookeeper/config".into())
    } else {
        WatchReg::None
    };
    let body = c
        .call(
            op::GET_DATA,
            &GetDataRequest {
                path: "/zookeeper/config".into(),
                watch,
            },
            reg,
        )
        .await
        .map_err(|e| CliError::new(format::wrapper_message(e, Some("/zookeeper/config"))))?;
    let r = decode::<GetDataResponse>(body)
        .map_err(|e| CliError::new(format::keeper_message(e, None)))?;
    let text = data_text(r.data.as_ref());
    let mut out = if p.has("c") {
        client_config(&text)
    } else {
        text
    };
    out.push('\n');
    if p.has("s") {
        out.push_str(&format::stat_lines(&r.stat));
    }
    print!("{out}");
    Ok(())
}

async fn reconfig(c: &Client, args: &[String]) -> Res {
    let specs = [
        flag("s", "stats"),
        value("v", "required current config version"),
        value("file", "path of config file to parse for membership"),
        value(
            "members",
            "comma-separated list of config strings for non-incremental reconfig",
        ),
        value(
            "add",
            "comma-separated list of config strings for new servers",
        ),
        value("remove", "comma-separated list of server IDs to remove"),
    ];
    let p = parse(&specs, args)?;
    let (file, members, add, remove) = (
        p.has("file"),
        p.has("members"),
        p.has("add"),
        p.has("remove"),
    );
    if !(file || members || add || remove) {
        return Err(CliError::new(usage_of("reconfig")));
    }
    let version = match p.value("v") {
        Some(v) => i64::from_str_radix(v, 16).map_err(|_| {
            CliError::new("-v must be followed by a long (configuration version)".into())
        })?,
        None => -1,
    };
    if (file || members) && (add || remove) {
        return Err(CliError::new(
            "Can't use -file or -members together with -add or -remove (mixing incremental and non-incremental modes is not allowed)".into(),
        ));
    }
    if file && members {
        return Err(CliError::new(
            "Can't use -file and -members together (conflicting non-incremental modes)".into(),
        ));
    }
    let joining = p.value("add").map(str::to_lowercase);
    let leaving = p.value("remove").map(str::to_lowercase);
    let mut new_members = p.value("members").map(str::to_lowercase);
    if let Some(f) = p.value("file") {
        let text = std::fs::read_to_string(f)
            .map_err(|e| CliError::new(format!("Error processing {f}{e}")))?;
        let servers: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("server."))
            .map(|l| l.replace(' ', ""))
            .collect();
        new_members = Some(servers.join(","));
    }
    let body = c
        .call(
            op::RECONFIG,
            &ReconfigRequest {
                joining_servers: joining,
                leaving_servers: leaving,
                new_members,
                cur_config_id: version,
            },
            WatchReg::None,
        )
        .await
        .map_err(|e| CliError::new(format::wrapper_message(e, None)))?;
    let r = decode::<GetDataResponse>(body)
        .map_err(|e| CliError::new(format::keeper_message(e, None)))?;
    let mut out = format!(
        "Committed new configuration:\n{}\n",
        data_text(r.data.as_ref())
    );
    if p.has("s") {
        out.push_str(&format::stat_lines(&r.stat));
    }
    print!("{out}");
    Ok(())
}

/// What `version` prints: the client's version in ZooKeeper's `Version` form.
pub const CLI_VERSION: &str = concat!(
    "3.9.0-ensemble-",
    env!("CARGO_PKG_VERSION"),
    ", built on 1970-01-01 00:00 UTC"
);

fn version(args: &[String]) -> Res {
    let p = parse(&[], args)?;
    if p.args.len() > 1 {
        return Err(CliError::new(usage_of("version")));
    }
    println!("ZooKeeper CLI version: {CLI_VERSION}");
    Ok(())
}

pub mod quota;

pub use crate::interactive::interactive;
