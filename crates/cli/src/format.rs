//! zkCli.sh's texts: the Stat block, Java's `Date.toString`, ACL lines, quota
//! records (`StatsTrack`), path checks (`PathUtils`) and error messages
//! (`KeeperException`, `CliWrapperException`), reproduced from their formats.

use crate::client::KeeperError;
use ensemble_proto::jute::to_string_escaped;
use ensemble_proto::{perms, Acl, ErrorCode, Id, Stat};
use std::collections::BTreeMap;

/// `StatPrinter.print`.
pub fn stat_lines(stat: &Stat) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\ncversion = {}\n\
         dataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\ndataLength = {}\nnumChildren = {}\n",
        stat.czxid,
        java_date(stat.ctime),
        stat.mzxid,
        java_date(stat.mtime),
        stat.pzxid,
        stat.cversion,
        stat.version,
        stat.aversion,
        stat.ephemeral_owner,
        stat.data_length,
        stat.num_children
    )
}

/// `new Date(ms).toString()`: `EEE MMM dd HH:mm:ss zzz yyyy` in the local time zone.
pub fn java_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000) as libc::time_t;
    // SAFETY: localtime_r and strftime write only into the buffers given here.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return ms.to_string();
        }
        let mut buf = [0u8; 64];
        let n = libc::strftime(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            c"%a %b %d %H:%M:%S %Z %Y".as_ptr(),
            &tm,
        );
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// `ZKUtil.getPermString`.
pub fn perm_string(p: i32) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (perms::CREATE, 'c'),
        (perms::DELETE, 'd'),
        (perms::READ, 'r'),
        (perms::WRITE, 'w'),
        (perms::ADMIN, 'a'),
    ] {
        if p & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// One ACL entry as getAcl prints it: `'scheme,'id` then `: perms` on the next line.
pub fn acl_line(a: &Acl) -> String {
    format!(
        "{},{}\n: {}",
        to_string_escaped(&a.id.scheme),
        to_string_escaped(&a.id.id),
        perm_string(a.perms)
    )
}

/// `AclParser.parse`: malformed entries are reported on stderr and skipped.
pub fn parse_acl(s: &str) -> Vec<Acl> {
    let mut out = Vec::new();
    for a in s.split(',') {
        let (Some(first), Some(last)) = (a.find(':'), a.rfind(':')) else {
            eprintln!("{a} does not have the form scheme:id:perm");
            continue;
        };
        if first == last {
            eprintln!("{a} does not have the form scheme:id:perm");
            continue;
        }
        let mut p = 0;
        for c in a[last + 1..].chars() {
            match c {
                'r' => p |= perms::READ,
                'w' => p |= perms::WRITE,
                'c' => p |= perms::CREATE,
                'd' => p |= perms::DELETE,
                'a' => p |= perms::ADMIN,
                other => eprintln!("Unknown perm type: {other}"),
            }
        }
        out.push(Acl {
            perms: p,
            id: Id {
                scheme: a[..first].to_string(),
                id: a[first + 1..last].to_string(),
            },
        });
    }
    out
}

/// `world:anyone:cdrwa`, the ACL of a node created without one.
pub fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// `PathUtils.validatePath`: the IllegalArgumentException text, if the path is bad.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("Path length must be > 0".into());
    }
    if !path.starts_with('/') {
        return Err("Path must start with / character".into());
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("Path must not end with / character".into());
    }
    // Java indexes UTF-16 units; paths are ASCII in practice and counted in chars here.
    let chars: Vec<char> = path.chars().collect();
    let mut reason = None;
    let mut lastc = '/';
    for i in 1..chars.len() {
        let c = chars[i];
        if c == '\0' {
            reason = Some(format!("null character not allowed @{i}"));
        } else if c == '/' && lastc == '/' {
            reason = Some(format!("empty node name specified @{i}"));
        } else if c == '.' && lastc == '.' {
            if chars[i - 2] == '/' && (i + 1 == chars.len() || chars[i + 1] == '/') {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if c == '.' {
            if chars[i - 1] == '/' && (i + 1 == chars.len() || chars[i + 1] == '/') {
                reason = Some(format!("relative paths not allowed @{i}"));
            }
        } else if ('\u{1}'..='\u{1f}').contains(&c)
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || ('\u{fff0}'..='\u{ffff}').contains(&c)
        {
            reason = Some(format!("invalid character @{i}"));
        }
        if reason.is_some() {
            break;
        }
        lastc = c;
    }
    match reason {
        Some(r) => Err(format!("Invalid path string \"{path}\" caused by {r}")),
        None => Ok(()),
    }
}

/// `KeeperException.getCodeMessage`.
pub fn code_message(code: i32) -> String {
    use ErrorCode::*;
    let Some(c) = ErrorCode::from_code(code) else {
        return format!("Unknown error {code}");
    };
    match c {
        Ok => "ok",
        SystemError => "SystemError",
        RuntimeInconsistency => "RuntimeInconsistency",
        DataInconsistency => "DataInconsistency",
        ConnectionLoss => "ConnectionLoss",
        MarshallingError => "MarshallingError",
        NewConfigNoQuorum => "NewConfigNoQuorum",
        ReconfigInProgress => "ReconfigInProgress",
        Unimplemented => "Unimplemented",
        OperationTimeout => "OperationTimeout",
        BadArguments => "BadArguments",
        ApiError => "APIError",
        NoNode => "NoNode",
        NoAuth => "NoAuth",
        BadVersion => "BadVersion",
        NoChildrenForEphemerals => "NoChildrenForEphemerals",
        NodeExists => "NodeExists",
        InvalidAcl => "InvalidACL",
        AuthFailed => "AuthFailed",
        NotEmpty => "Directory not empty",
        SessionExpired => "Session expired",
        InvalidCallback => "Invalid callback",
        SessionMoved => "Session moved",
        NotReadOnly => "Not a read-only call",
        EphemeralOnLocalSession => "Ephemeral node on local session",
        NoWatcher => "No such watcher",
        ReconfigDisabled => "Reconfig is disabled",
        SessionClosedRequireSaslAuth => "Session closed because client failed to authenticate",
        QuotaExceeded => "Quota has exceeded",
        Throttled => "Op throttled due to high load",
        UnknownSession | RequestTimeout => return format!("Unknown error {code}"),
    }
    .to_string()
}

/// `KeeperException.getMessage`.
pub fn keeper_message(e: KeeperError, path: Option<&str>) -> String {
    match path {
        Some(p) if !p.is_empty() => format!("KeeperErrorCode = {} for {p}", code_message(e.0)),
        _ => format!("KeeperErrorCode = {}", code_message(e.0)),
    }
}

/// `CliWrapperException`'s message for a KeeperException about `path`.
pub fn wrapper_message(e: KeeperError, path: Option<&str>) -> String {
    let p = path.unwrap_or("null");
    let Some(code) = ErrorCode::from_code(e.0) else {
        return keeper_message(e, path);
    };
    match code {
        ErrorCode::NoNode => format!("Node does not exist: {p}"),
        ErrorCode::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {p}"),
        ErrorCode::NodeExists => format!("Node already exists: {p}"),
        ErrorCode::NotEmpty => format!("Node not empty: {p}"),
        ErrorCode::NotReadOnly => format!("Not a read-only call: {p}"),
        ErrorCode::InvalidAcl => format!("Acl is not valid : {p}"),
        ErrorCode::NoAuth => format!("Insufficient permission : {p}"),
        ErrorCode::BadArguments => format!("Arguments are not valid : {p}"),
        ErrorCode::BadVersion => format!("version No is not valid : {p}"),
        ErrorCode::ReconfigInProgress => {
            "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)"
                .into()
        }
        ErrorCode::NewConfigNoQuorum => "No quorum of new config is connected and up-to-date \
             with the leader of last commmitted config - try invoking reconfiguration after new \
             servers are connected and synced"
            .into(),
        ErrorCode::QuotaExceeded => format!("Quota has exceeded : {p}"),
        _ => keeper_message(e, path),
    }
}

/// A quota record (`StatsTrack`): `count=N,bytes=N` and optional hard limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    stats: BTreeMap<String, i64>,
}

pub const COUNT: &str = "count";
pub const BYTES: &str = "bytes";
pub const COUNT_HARD: &str = "countHardLimit";
pub const BYTES_HARD: &str = "byteHardLimit";

impl StatsTrack {
    pub fn parse(s: &str) -> StatsTrack {
        let mut stats = BTreeMap::new();
        for pair in s.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut kv = pair.split('=').filter(|p| !p.is_empty());
            if let Some(k) = kv.next() {
                let v = kv.next().and_then(|v| v.trim().parse().ok()).unwrap_or(-1);
                stats.insert(k.to_string(), v);
            }
        }
        StatsTrack { stats }
    }

    pub fn get(&self, key: &str) -> i64 {
        self.stats.get(key).copied().unwrap_or(-1)
    }

    pub fn set(&mut self, key: &str, v: i64) {
        self.stats.insert(key.to_string(), v);
    }

    /// `StatsTrack.toString`, including its stray `=` before the hard limits.
    pub fn text(&self) -> String {
        let mut s = format!("count={},bytes={}", self.get(COUNT), self.get(BYTES));
        let rest: Vec<_> = self
            .stats
            .iter()
            .filter(|(k, _)| *k != COUNT && *k != BYTES)
            .collect();
        if !rest.is_empty() {
            s.push('=');
            for (k, v) in rest {
                s.push_str(&format!(";{k}={v}"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_lines_are_jute_csv_as_in_zkcli() {
        let a = &open_acl()[0];
        assert_eq!(acl_line(a), "'world,'anyone\n: cdrwa");
        let parsed = parse_acl("ip:127.0.0.1:r,digest:u:h=:cd");
        assert_eq!(acl_line(&parsed[0]), "'ip,'127.0.0.1\n: r");
        assert_eq!(parsed[1].id.id, "u:h=");
        assert_eq!(perm_string(parsed[1].perms), "cd");
    }

    #[test]
    fn quota_records_print_like_statstrack() {
        let mut q = StatsTrack::default();
        for k in [COUNT, BYTES, COUNT_HARD, BYTES_HARD] {
            q.set(k, -1);
        }
        q.set(COUNT, 10);
        assert_eq!(
            q.text(),
            "count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=-1"
        );
        assert_eq!(StatsTrack::parse(&q.text()), q);
        assert_eq!(
            StatsTrack::parse("count=6,bytes=6").text(),
            "count=6,bytes=6"
        );
    }

    #[test]
    fn bad_paths_are_refused_with_pathutils_texts() {
        assert_eq!(
            validate_path("a").unwrap_err(),
            "Path must start with / character"
        );
        assert_eq!(
            validate_path("/a/").unwrap_err(),
            "Path must not end with / character"
        );
        assert_eq!(
            validate_path("/a//b").unwrap_err(),
            "Invalid path string \"/a//b\" caused by empty node name specified @3"
        );
        assert_eq!(
            validate_path("/a/./b").unwrap_err(),
            "Invalid path string \"/a/./b\" caused by relative paths not allowed @3"
        );
        assert!(validate_path("/").is_ok());
        assert!(validate_path("/a.b/..c").is_ok());
    }

    #[test]
    fn the_epoch_prints_as_java_prints_it_in_utc() {
        if std::env::var_os("TZ").is_none() || std::env::var("TZ").as_deref() == Ok("UTC") {
            let d = java_date(0);
            assert!(d.starts_with("Thu Jan 01 00:00:00 "), "{d}");
            assert!(d.ends_with(" 1970"), "{d}");
        }
    }
}
