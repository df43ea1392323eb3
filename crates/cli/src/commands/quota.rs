//! setquota, listquota and delquota: quotas live under `/zookeeper/quota<path>` as a
//! `zookeeper_limits` node (the limits) and a `zookeeper_stats` node (what the server
//! counts), written here as zkCli.sh's `SetQuotaCommand` and `DelQuotaCommand` do.

use super::{
    create_node, delete_node, exists, get_children, get_data, set_data, wrap, CliError, Res,
};
use crate::client::{Client, KeeperError};
use crate::format::{self, StatsTrack, BYTES, BYTES_HARD, COUNT, COUNT_HARD};
use crate::opts::{self, flag, value, OptSpec};
use bytes::Bytes;
use ensemble_proto::{CreateMode, ErrorCode};

const QUOTA_ROOT: &str = "/zookeeper/quota";
const LIMIT_NODE: &str = "zookeeper_limits";
const STAT_NODE: &str = "zookeeper_stats";

fn quota_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}")
}

fn limit_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{LIMIT_NODE}")
}

fn stat_path(path: &str) -> String {
    format!("{QUOTA_ROOT}{path}/{STAT_NODE}")
}

/// The four quota options form one commons-cli `OptionGroup`: at most one of them.
fn check_group(specs: &[OptSpec], args: &[String], required: bool) -> Result<(), CliError> {
    let mut chosen: Option<&str> = None;
    for a in args {
        let name = a.trim_start_matches('-');
        if a.starts_with('-') && specs.iter().any(|s| s.name == name) {
            if let Some(first) = chosen {
                if first != name {
                    return Err(CliError::new(format!(
                        "org.apache.commons.cli.AlreadySelectedException: The option '{name}' was specified but an option from this group has already been selected: '{first}'"
                    )));
                }
            }
            chosen = Some(
                specs
                    .iter()
                    .find(|s| s.name == name)
                    .map(|s| s.name)
                    .unwrap_or(""),
            );
        }
    }
    if required && chosen.is_none() {
        let list: Vec<String> = specs
            .iter()
            .map(|s| format!("-{} {}", s.name, s.description))
            .collect();
        return Err(CliError::new(format!(
            "org.apache.commons.cli.MissingOptionException: Missing required option: [{}]",
            list.join(", ")
        )));
    }
    Ok(())
}

pub async fn setquota(c: &Client, args: &[String]) -> Res {
    let specs = [
        value("n", "num soft quota"),
        value("b", "bytes soft quota"),
        value("N", "num hard quota"),
        value("B", "bytes hard quota"),
    ];
    let p = opts::parse(&specs, args).map_err(CliError::new)?;
    check_group(&specs, args, true)?;
    if p.args.len() < 2 {
        return Err(CliError::new(super::usage_of("setquota")));
    }
    let path = p.args[1].clone();
    if path.starts_with(QUOTA_ROOT) {
        eprintln!("cannot set a quota under the path: {QUOTA_ROOT}");
        return Ok(());
    }
    let mut quota = StatsTrack::default();
    for k in [COUNT, BYTES, COUNT_HARD, BYTES_HARD] {
        quota.set(k, -1);
    }
    for (opt, key, is_count) in [
        ("n", COUNT, true),
        ("b", BYTES, false),
        ("N", COUNT_HARD, true),
        ("B", BYTES_HARD, false),
    ] {
        let Some(v) = p.value(opt) else { continue };
        let parsed = if is_count {
            v.parse::<i32>().map(i64::from).ok()
        } else {
            v.parse::<i64>().ok()
        };
        let Some(n) = parsed else {
            eprintln!("NumberFormatException happens when parsing the option value");
            return Ok(());
        };
        if is_count && n <= 0 {
            eprintln!("the num quota must be greater than zero");
            return Ok(());
        }
        if !is_count && n < 0 {
            eprintln!("the bytes quota must be greater than or equal to zero");
            return Ok(());
        }
        quota.set(key, n);
    }
    create_quota(c, &path, quota).await
}

/// `SetQuotaCommand.createQuota`.
async fn create_quota(c: &Client, path: &str, quota: StatsTrack) -> Res {
    format::validate_path(path).map_err(CliError::new)?;
    let w = |e: KeeperError| wrap(e, path);
    if exists(c, path, false).await.map_err(w)?.is_none() {
        return Err(CliError::new(format!("{path} does not exist.")));
    }
    check_no_child_quota(c, path).await?;
    check_no_parent_quota(c, path).await?;
    let open = format::open_acl;
    if exists(c, QUOTA_ROOT, false).await.map_err(w)?.is_none() {
        for p in ["/zookeeper", QUOTA_ROOT] {
            match create_node(c, p, None, open(), CreateMode::Persistent, 0).await {
                Ok(_) => {}
                Err(e) if e.is(ErrorCode::NodeExists) => {}
                Err(e) => return Err(wrap(e, p)),
            }
        }
    }
    let mut qpath = QUOTA_ROOT.to_string();
    for part in path.split('/').skip(1) {
        qpath.push('/');
        qpath.push_str(part);
        if exists(c, &qpath, false)
            .await
            .map_err(|e| wrap(e, &qpath))?
            .is_none()
        {
            match create_node(c, &qpath, None, open(), CreateMode::Persistent, 0).await {
                Ok(_) => {}
                Err(e) if e.is(ErrorCode::NodeExists) => {}
                Err(e) => return Err(wrap(e, &qpath)),
            }
        }
    }
    let stat_node = format!("{qpath}/{STAT_NODE}");
    let limit_node = format!("{qpath}/{LIMIT_NODE}");
    let text = |t: &StatsTrack| Some(Bytes::from(t.text().into_bytes()));
    if exists(c, &limit_node, false)
        .await
        .map_err(|e| wrap(e, &limit_node))?
        .is_none()
    {
        create_node(
            c,
            &limit_node,
            text(&quota),
            open(),
            CreateMode::Persistent,
            0,
        )
        .await
        .map_err(|e| wrap(e, &limit_node))?;
        let mut stats = StatsTrack::default();
        stats.set(COUNT, 0);
        stats.set(BYTES, 0);
        create_node(
            c,
            &stat_node,
            text(&stats),
            open(),
            CreateMode::Persistent,
            0,
        )
        .await
        .map_err(|e| wrap(e, &stat_node))?;
        let limits = read_track(c, &limit_node).await?;
        let stats = read_track(c, &stat_node).await?;
        warn_below_usage(&limits, &stats);
    } else {
        let mut limits = read_track(c, &limit_node).await?;
        for k in [COUNT, BYTES, COUNT_HARD, BYTES_HARD] {
            if quota.get(k) > -1 {
                limits.set(k, quota.get(k));
            }
        }
        let stats = read_track(c, &stat_node).await?;
        warn_below_usage(&limits, &stats);
        set_data(c, &limit_node, text(&limits), -1)
            .await
            .map_err(|e| wrap(e, &limit_node))?;
    }
    Ok(())
}

async fn read_track(c: &Client, path: &str) -> Result<StatsTrack, CliError> {
    let (data, _) = get_data(c, path, false).await.map_err(|e| wrap(e, path))?;
    Ok(StatsTrack::parse(&String::from_utf8_lossy(
        data.as_deref().unwrap_or_default(),
    )))
}

/// `SetQuotaCommand.checkQuota`: a limit below what is already used is allowed, with a warning.
fn warn_below_usage(limits: &StatsTrack, stats: &StatsTrack) {
    let below =
        |soft: i64, hard: i64, used: i64| (soft > -1 && soft < used) || (hard > -1 && hard < used);
    if below(limits.get(COUNT), limits.get(COUNT_HARD), stats.get(COUNT)) {
        println!(
            "[Warning]: the count quota you create is less than the existing count:{}",
            stats.get(COUNT)
        );
    }
    if below(limits.get(BYTES), limits.get(BYTES_HARD), stats.get(BYTES)) {
        println!(
            "[Warning]: the bytes quota you create is less than the existing bytes:{}",
            stats.get(BYTES)
        );
    }
}

/// No node below `path` may have a quota of its own.
async fn check_no_child_quota(c: &Client, path: &str) -> Res {
    let root = quota_path(path);
    let mut stack = vec![root.clone()];
    while let Some(node) = stack.pop() {
        let children = match get_children(c, &node, false).await {
            Ok(ch) => ch,
            Err(e) if e.is(ErrorCode::NoNode) => continue,
            Err(e) => return Err(wrap(e, &node)),
        };
        for ch in &children {
            if node != root && ch == LIMIT_NODE {
                let trimmed = node.strip_prefix(QUOTA_ROOT).unwrap_or(&node);
                return Err(CliError::new(format!(
                    "{path} has a child {trimmed} which has a quota"
                )));
            }
        }
        for ch in children {
            stack.push(format!("{node}/{ch}"));
        }
    }
    Ok(())
}

/// No ancestor of `path` may have a quota.
async fn check_no_parent_quota(c: &Client, path: &str) -> Res {
    let parts: Vec<&str> = path.split('/').collect();
    let mut qpath = QUOTA_ROOT.to_string();
    for part in parts.iter().take(parts.len().saturating_sub(1)).skip(1) {
        qpath.push('/');
        qpath.push_str(part);
        let children = match get_children(c, &qpath, false).await {
            Ok(ch) => ch,
            Err(e) if e.is(ErrorCode::NoNode) => return Ok(()),
            Err(e) => return Err(wrap(e, &qpath)),
        };
        if children.is_empty() {
            return Ok(());
        }
        if qpath != quota_path(path) && children.iter().any(|c| c == LIMIT_NODE) {
            let trimmed = qpath.strip_prefix(QUOTA_ROOT).unwrap_or(&qpath);
            return Err(CliError::new(format!(
                "{path} has a parent {trimmed} which has a quota"
            )));
        }
    }
    Ok(())
}

pub async fn listquota(c: &Client, args: &[String]) -> Res {
    let p = opts::parse(&[], args).map_err(CliError::new)?;
    if p.args.len() < 2 {
        return Err(CliError::new(super::usage_of("listquota")));
    }
    let path = p.args[1].clone();
    eprintln!("absolute path is {}", limit_path(&path));
    let mut lines = Vec::new();
    for (i, node) in [limit_path(&path), stat_path(&path)].iter().enumerate() {
        match get_data(c, node, false).await {
            Ok((data, _)) => {
                let t = StatsTrack::parse(&String::from_utf8_lossy(
                    data.as_deref().unwrap_or_default(),
                ));
                let what = if i == 0 { "quota" } else { "stat" };
                lines.push(format!("Output {what} for {path} {}", t.text()));
            }
            Err(e) if e.is(ErrorCode::NoNode) => {
                eprintln!("quota for {path} does not exist.");
                return Ok(());
            }
            Err(e) => return Err(wrap(e, node)),
        }
    }
    for l in lines {
        println!("{l}");
    }
    Ok(())
}

pub async fn delquota(c: &Client, args: &[String]) -> Res {
    let specs = [
        flag("n", "num soft quota"),
        flag("b", "bytes soft quota"),
        flag("N", "num hard quota"),
        flag("B", "bytes hard quota"),
    ];
    let p = opts::parse(&specs, args).map_err(CliError::new)?;
    check_group(&specs, args, false)?;
    if p.args.len() < 2 {
        return Err(CliError::new(super::usage_of("delquota")));
    }
    let path = p.args[1].clone();
    let chosen: Vec<&str> = ["n", "b", "N", "B"]
        .into_iter()
        .filter(|o| p.has(o))
        .collect();
    let limit_node = limit_path(&path);
    if exists(c, &limit_node, false)
        .await
        .map_err(|e| wrap(e, &limit_node))?
        .is_none()
    {
        println!("Quota does not exist for {path}");
        return Ok(());
    }
    let mut limits = match get_data(c, &limit_node, false).await {
        Ok((data, _)) => StatsTrack::parse(&String::from_utf8_lossy(
            data.as_deref().unwrap_or_default(),
        )),
        Err(e) if e.is(ErrorCode::NoNode) => {
            eprintln!("quota for {path} does not exist.");
            return Ok(());
        }
        Err(e) => return Err(wrap(e, &limit_node)),
    };
    if chosen.is_empty() {
        let parent = quota_path(&path);
        let children = get_children(c, &parent, false)
            .await
            .map_err(|e| wrap(e, &parent))?;
        for ch in children {
            let p = format!("{parent}/{ch}");
            delete_node(c, &p, -1).await.map_err(|e| wrap(e, &p))?;
        }
        trim_quota_nodes(c, &parent).await?;
    } else {
        for (o, key) in [
            ("n", COUNT),
            ("b", BYTES),
            ("N", COUNT_HARD),
            ("B", BYTES_HARD),
        ] {
            if p.has(o) {
                limits.set(key, -1);
            }
        }
        set_data(
            c,
            &limit_node,
            Some(Bytes::from(limits.text().into_bytes())),
            -1,
        )
        .await
        .map_err(|e| wrap(e, &limit_node))?;
    }
    Ok(())
}

/// `DelQuotaCommand.trimProcQuotas`: removes quota nodes left without children.
async fn trim_quota_nodes(c: &Client, path: &str) -> Res {
    let mut path = path.to_string();
    while path != QUOTA_ROOT {
        let children = get_children(c, &path, false)
            .await
            .map_err(|e| wrap(e, &path))?;
        if !children.is_empty() {
            break;
        }
        delete_node(c, &path, -1)
            .await
            .map_err(|e| wrap(e, &path))?;
        match path.rfind('/') {
            Some(i) => path.truncate(i),
            None => break,
        }
    }
    Ok(())
}
