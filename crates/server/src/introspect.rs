//! What the four-letter words (`fourlw`) and the AdminServer (`admin`) report
//! about a running server, gathered in one place so that the text and the
//! JSON forms show the same values: the effective configuration, the
//! connections with their sessions, the session and connection expiry sets,
//! the ephemerals, the environment and the size of the data directories.

use crate::stats::ConnInfo;
use crate::Shared;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// ZooKeeper's `ServerCnxnFactory` expires a connection without a session
/// after this long, and keeps its connection expiry sets in steps of it.
const SESSIONLESS_CNXN_TIMEOUT_MS: u64 = 10_000;

/// The configuration `conf` and `configuration` show (`ZooKeeperServerConf`).
pub struct ServerConf {
    pub client_port: u16,
    /// -1 when unset, as ZooKeeper.
    pub secure_client_port: i32,
    /// The snapshot directory (`dataDir/version-2`), absolute.
    pub data_dir: String,
    /// The txn log directory (`dataLogDir/version-2`), absolute.
    pub data_log_dir: String,
    pub tick_time: u32,
    pub max_client_cnxns: u32,
    pub min_session_timeout: u32,
    pub max_session_timeout: u32,
    /// 0 in standalone mode, as ZooKeeper; `myid` in a quorum.
    pub server_id: u64,
    /// `clientPortListenBacklog`: -1, the system default.
    pub client_port_listen_backlog: i32,
}

pub fn server_conf(shared: &Shared) -> ServerConf {
    let c = &shared.config;
    ServerConf {
        client_port: c
            .client_port
            .unwrap_or(ensemble_config::DEFAULT_CLIENT_PORT),
        secure_client_port: c.secure_client_port.map_or(-1, i32::from),
        data_dir: absolute(&snap_dir(shared)),
        data_log_dir: absolute(&log_dir(shared)),
        tick_time: c.tick_time,
        max_client_cnxns: c.max_client_cnxns,
        min_session_timeout: c.min_session_timeout,
        max_session_timeout: c.max_session_timeout,
        server_id: if shared.quorum {
            c.my_id.unwrap_or(0)
        } else {
            0
        },
        client_port_listen_backlog: -1,
    }
}

fn snap_dir(shared: &Shared) -> PathBuf {
    shared.config.data_dir.join("version-2")
}

fn log_dir(shared: &Shared) -> PathBuf {
    shared.config.txn_log_dir().join("version-2")
}

fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// ZooKeeper's `getDataDirSize` and `getLogDirSize`, in bytes. As in
/// ZooKeeper 3.8 the first measures the txn log directory and the second the
/// snapshot directory (the names are swapped there; the values are kept).
pub fn dir_sizes(shared: &Shared) -> (u64, u64) {
    (dir_size(&log_dir(shared)), dir_size(&snap_dir(shared)))
}

fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| dir_size(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

/// The session (id, negotiated timeout) each connection serves, by
/// connection id.
pub fn sessions_by_conn(shared: &Shared) -> HashMap<u64, (i64, i32)> {
    let sessions = shared.sessions.lock();
    sessions
        .list()
        .into_iter()
        .filter_map(|(id, timeout)| {
            let conn = sessions.get(id)?.conn.as_ref()?.id;
            Some((conn, (id, timeout)))
        })
        .collect()
}

/// One open client connection, with its session if it has one.
pub struct Connection {
    pub info: ConnInfo,
    pub session: Option<(i64, i32)>,
}

/// Every open client connection, oldest first.
pub fn connections(shared: &Shared) -> Vec<Connection> {
    let sessions = sessions_by_conn(shared);
    shared
        .stats
        .connections_by_id()
        .into_iter()
        .map(|(id, c)| Connection {
            info: c.info(),
            session: sessions.get(&id).copied(),
        })
        .collect()
}

/// Sessions by the time (ms of the server's clock) they expire unless
/// touched, in time order: ZooKeeper's session expiry queue.
pub fn session_expiry_sets(shared: &Shared) -> BTreeMap<u64, Vec<i64>> {
    let sessions = shared.sessions.lock();
    let mut sets: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for (id, _) in sessions.list() {
        if let Some(s) = sessions.get(id) {
            sets.entry(s.expires_at).or_default().push(id);
        }
    }
    sets
}

/// Every session with its timeout, by id.
pub fn session_timeouts(shared: &Shared) -> Vec<(i64, i32)> {
    shared.sessions.lock().list()
}

/// Connections by the time they expire, as ZooKeeper's connection expiry
/// queue: a connection with a session when its session does, one without
/// ten seconds after it was opened, both rounded up to ten seconds.
pub fn connection_expiry_sets(shared: &Shared) -> BTreeMap<u64, Vec<(String, i64)>> {
    let expiry: HashMap<i64, u64> = {
        let sessions = shared.sessions.lock();
        sessions
            .list()
            .into_iter()
            .filter_map(|(id, _)| Some((id, sessions.get(id)?.expires_at)))
            .collect()
    };
    let by_conn = sessions_by_conn(shared);
    let round_up = |t: u64| t.div_ceil(SESSIONLESS_CNXN_TIMEOUT_MS) * SESSIONLESS_CNXN_TIMEOUT_MS;
    let mut sets: BTreeMap<u64, Vec<(String, i64)>> = BTreeMap::new();
    for (id, c) in shared.stats.connections_by_id() {
        let session = by_conn.get(&id).map_or(0, |(sid, _)| *sid);
        let at = match expiry.get(&session) {
            Some(t) if session != 0 => round_up(*t),
            _ => round_up(shared.stats.clock_ms(c.opened) + SESSIONLESS_CNXN_TIMEOUT_MS),
        };
        let addr = crate::stats::java_socket_addr(&c.peer);
        sets.entry(at).or_default().push((addr, session));
    }
    sets
}

/// The ephemeral nodes of every session that owns any, by session id.
pub fn ephemerals(shared: &Shared) -> BTreeMap<i64, Vec<String>> {
    let ids: Vec<i64> = shared
        .sessions
        .lock()
        .list()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let tree = shared.tree.read();
    ids.into_iter()
        .filter_map(|id| {
            let paths = tree.ephemerals(id);
            (!paths.is_empty()).then_some((id, paths))
        })
        .collect()
}

/// The data watches by session: (session id, paths), as `wchc` and the
/// AdminServer's `watches` list them. A connection without a session shows
/// as session 0.
pub fn watches_by_session(shared: &Shared) -> Vec<(i64, Vec<String>)> {
    let sessions = sessions_by_conn(shared);
    let by_conn = shared.watches.lock().data_watches_by_conn();
    by_conn
        .into_iter()
        .map(|(conn, paths)| (sessions.get(&conn).map_or(0, |s| s.0), paths))
        .collect()
}

/// The data watches by path: (path, session ids), as `wchp` and
/// `watches_by_path` list them.
pub fn watches_by_path(shared: &Shared) -> Vec<(String, Vec<i64>)> {
    let sessions = sessions_by_conn(shared);
    let by_path = shared.watches.lock().data_watches_by_path();
    by_path
        .into_iter()
        .map(|(path, conns)| {
            let ids = conns
                .into_iter()
                .map(|c| sessions.get(&c).map_or(0, |s| s.0))
                .collect();
            (path, ids)
        })
        .collect()
}

/// A time of the server's clock (ms since it started) as a wall-clock time
/// in ms since the epoch (ZooKeeper's `Time.elapsedTimeToDate`).
pub fn clock_to_wall_ms(shared: &Shared, clock_ms: u64) -> i64 {
    shared.wall_clock_ms() - shared.now_ms() as i64 + clock_ms as i64
}

/// How Java's `Date.toString` prints a time, in UTC:
/// `Wed Nov 25 12:58:14 UTC 2026`.
pub fn java_date(epoch_ms: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = epoch_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {year}",
        DAYS[(days + 4).rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// (year, month 1..=12, day 1..=31) of a count of days since 1970-01-01, in
/// the proleptic Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// ZooKeeper's `Environment.list()`: the same keys in the same order. The
/// JVM's own properties, which Ensemble has no counterpart for, are `<NA>`
/// (ZooKeeper's value for a property that is not set); `os.memory.*` are
/// the machine's and the process's memory rather than the JVM heap's.
pub fn environment() -> Vec<(&'static str, String)> {
    const NA: &str = "<NA>";
    let na = || NA.to_string();
    let (free, max, total) = memory_mb();
    vec![
        ("zookeeper.version", crate::VERSION_STRING.to_string()),
        ("host.name", host_name().unwrap_or_else(na)),
        ("java.version", na()),
        ("java.vendor", na()),
        ("java.home", na()),
        ("java.class.path", na()),
        ("java.library.path", na()),
        ("java.io.tmpdir", std::env::temp_dir().display().to_string()),
        ("java.compiler", na()),
        ("os.name", os_name().to_string()),
        ("os.arch", os_arch().to_string()),
        (
            "os.version",
            read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(na),
        ),
        ("user.name", user_name().unwrap_or_else(na)),
        ("user.home", std::env::var("HOME").unwrap_or_else(|_| na())),
        (
            "user.dir",
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| na()),
        ),
        ("os.memory.free", format!("{free}MB")),
        ("os.memory.max", format!("{max}MB")),
        ("os.memory.total", format!("{total}MB")),
    ]
}

/// Java's `os.name` for the platforms Rust names.
pub fn os_name() -> &'static str {
    match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Mac OS X",
        "windows" => "Windows",
        "freebsd" => "FreeBSD",
        other => other,
    }
}

/// Java's `os.arch`: `amd64` for x86_64, as OpenJDK on Linux reports it.
pub fn os_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "i386",
        other => other,
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn host_name() -> Option<String> {
    read_trimmed("/proc/sys/kernel/hostname").or_else(|| std::env::var("HOSTNAME").ok())
}

/// The name of the user the process runs as: `$USER`, else the passwd
/// entry of its uid.
fn user_name() -> Option<String> {
    if let Ok(user) = std::env::var("USER") {
        if !user.is_empty() {
            return Some(user);
        }
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut fields = l.split(':');
        let name = fields.next()?;
        (fields.nth(1)? == uid).then(|| name.to_string())
    })
}

/// (free, max, total) in MB: the memory available on the machine, the
/// machine's memory, and the resident memory of this process (0 where
/// /proc does not tell).
fn memory_mb() -> (u64, u64, u64) {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb = |text: &str, key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    (
        kb(&meminfo, "MemAvailable:") / 1024,
        kb(&meminfo, "MemTotal:") / 1024,
        kb(&status, "VmRSS:") / 1024,
    )
}

/// The newest snapshot in the data directory: (zxid, modification time in
/// seconds), as ZooKeeper's `last_snapshot` reports it.
pub fn last_snapshot(shared: &Shared) -> Option<(i64, i64)> {
    let dir = snap_dir(shared);
    std::fs::read_dir(&dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let hex = name.strip_prefix("snapshot.")?;
            let hex = hex.split('.').next()?;
            let zxid = i64::from_str_radix(hex, 16).ok()?;
            let modified = e
                .metadata()
                .ok()?
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_secs() as i64;
            Some((zxid, modified))
        })
        .max_by_key(|(zxid, _)| *zxid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_dates_are_printed_in_utc_as_date_to_string_does() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_795_611_494_000), "Wed Nov 25 12:58:14 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }

    #[test]
    fn the_environment_has_zookeepers_keys_in_its_order() {
        let keys: Vec<&str> = environment().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "zookeeper.version",
                "host.name",
                "java.version",
                "java.vendor",
                "java.home",
                "java.class.path",
                "java.library.path",
                "java.io.tmpdir",
                "java.compiler",
                "os.name",
                "os.arch",
                "os.version",
                "user.name",
                "user.home",
                "user.dir",
                "os.memory.free",
                "os.memory.max",
                "os.memory.total"
            ]
        );
    }
}
