//! zoo.cfg, parsed once into a typed [`Config`] that is passed down; nothing
//! else in Ensemble reads configuration.
//!
//! The file is `java.util.Properties` text (the rules are in `properties.rs`;
//! `server.N` syntax in `servers.rs`) and the keys, defaults and checks are those of ZooKeeper
//! 3.9's `QuorumPeerConfig` plus the `zookeeper.*` system properties that a key
//! in zoo.cfg turns into (`forceSync`, `snapCount`, `admin.serverPort`, …).
//! Where ZooKeeper silently ignores a bad value (its system-property readers
//! fall back to defaults) we reject it with one clear line instead; every key
//! ZooKeeper accepts but Ensemble does not act on yet gives one warning.

mod keys;
mod properties;
mod servers;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

pub use servers::{parse_server_spec, ServerSpec};

/// `tickTime` when zoo.cfg has none: ZooKeeper 3.9's
/// `ZooKeeperServer.DEFAULT_TICK_TIME` (the sample zoo.cfg sets 2000).
pub const DEFAULT_TICK_TIME: u32 = 3000;
/// `initLimit` when unset. ZooKeeper has no default and refuses to start a
/// quorum without it; we use the value of its sample zoo.cfg (and warn).
pub const DEFAULT_INIT_LIMIT: u32 = 10;
/// `syncLimit` when unset; see [`DEFAULT_INIT_LIMIT`].
pub const DEFAULT_SYNC_LIMIT: u32 = 5;
/// The conventional client port, used by [`Config::embedded_default`].
pub const DEFAULT_CLIENT_PORT: u16 = 2181;
/// `jute.maxbuffer` default: 0xfffff bytes, just under 1 MiB.
pub const DEFAULT_JUTE_MAX_BUFFER: usize = 0xfffff;
/// `preAllocSize` default: 64 MiB (zoo.cfg gives it in KiB).
pub const DEFAULT_PRE_ALLOC_SIZE: u64 = 64 * 1024 * 1024;
/// `ensemble.minFreeDiskSpaceMb` default: 64 MiB, one txn log preallocation.
pub const DEFAULT_MIN_FREE_DISK_SPACE: u64 = 64 * 1024 * 1024;
/// Smallest `autopurge.snapRetainCount` ZooKeeper allows; smaller values are raised.
pub const MIN_SNAP_RETAIN_COUNT: u32 = 3;
/// Largest server id allowed when `extendedTypesEnabled` (ZooKeeper's
/// `EphemeralType.MAX_EXTENDED_SERVER_ID`): the id is packed into TTL owners.
pub const MAX_EXTENDED_SERVER_ID: u64 = 254;

/// A config problem, shown to a person as one line naming file, line and key:
/// `zoo.cfg:7: tickTime: invalid value 'abc': expected a positive integer (milliseconds)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line of the offending entry; `None` for a missing key.
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// `peerType`: what this server wants to be. The `server.N` list wins when the
/// two disagree (ZooKeeper's `setupPeerType`), see [`Config::apply_myid`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerType {
    #[default]
    Participant,
    Observer,
}

/// Everything zoo.cfg says, typed. Times are milliseconds unless named otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `tickTime`, ms; default [`DEFAULT_TICK_TIME`]. Must be positive.
    pub tick_time: u32,
    /// `initLimit`, ticks; default [`DEFAULT_INIT_LIMIT`] (ZooKeeper has none).
    pub init_limit: u32,
    /// `syncLimit`, ticks; default [`DEFAULT_SYNC_LIMIT`] (ZooKeeper has none).
    pub sync_limit: u32,
    /// `dataDir`: snapshots, `myid`, and the txn log unless `dataLogDir` is set.
    pub data_dir: PathBuf,
    /// `dataLogDir`: the txn log; `None` means `data_dir` (see [`Config::txn_log_dir`]).
    pub data_log_dir: Option<PathBuf>,
    /// `clientPort`. Always `Some` after [`Config::from_file`]; may be `None`
    /// after [`Config::parse_str`] of a quorum whose `server.N` lines all carry
    /// a client address, until [`Config::apply_myid`].
    pub client_port: Option<u16>,
    /// `clientPortAddress` (an IP or a host name resolved at parse time);
    /// `None` binds the wildcard address.
    pub client_port_address: Option<IpAddr>,
    /// `secureClientPort` (TLS clients). Parsed but not served yet (warned).
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress`.
    pub secure_client_port_address: Option<IpAddr>,
    /// `maxClientCnxns`: concurrent connections per client IP; 0 = unlimited; default 60.
    pub max_client_cnxns: u32,
    /// `maxCnxns` (ZooKeeper's `zookeeper.maxCnxns`): concurrent client connections
    /// in all; 0 = unlimited, the default.
    pub max_cnxns: u32,
    /// `minSessionTimeout`, ms; default (or -1) 2 × tickTime.
    pub min_session_timeout: u32,
    /// `maxSessionTimeout`, ms; default (or -1) 20 × tickTime.
    pub max_session_timeout: u32,
    /// `autopurge.snapRetainCount`; default 3, values below 3 are raised to 3.
    pub autopurge_snap_retain_count: u32,
    /// `autopurge.purgeInterval`, hours; 0 (default, or negative) = no purging.
    pub autopurge_purge_interval: u32,
    /// `admin.enableServer`; default true.
    pub admin_enable_server: bool,
    /// `admin.serverAddress`; default "0.0.0.0".
    pub admin_server_address: String,
    /// `admin.serverPort`; default 8080.
    pub admin_server_port: u16,
    /// `admin.commandURL`: where the AdminServer lists its commands, each
    /// answering at `<url>/<name>`; default "/commands".
    pub admin_command_url: String,
    /// `metricsProvider.className` and the provider's own keys.
    pub metrics_provider: MetricsProvider,
    /// `4lw.commands.whitelist`, trimmed, in file order. `srvr` is always in it
    /// (zkServer.sh needs it); `["*"]` means every command. Default `["srvr"]`.
    /// Use [`Config::four_letter_word_allowed`].
    pub four_letter_word_whitelist: Vec<String>,
    /// `server.N` lines (from `dynamicConfigFile` when that is set), by id.
    pub servers: BTreeMap<u64, ServerSpec>,
    /// `peerType`; default participant.
    pub peer_type: PeerType,
    /// This server's id from `dataDir/myid`: set by [`Config::from_file`] in
    /// quorum mode (or when a `myid` file exists next to `server.N` lines).
    pub my_id: Option<u64>,
    /// `standaloneEnabled`; default true.
    pub standalone_enabled: bool,
    /// `reconfigEnabled`; default false.
    pub reconfig_enabled: bool,
    /// `readonlymode.enabled` (a system property in ZooKeeper): a member
    /// without a quorum serves read-only sessions to clients that allow them.
    pub read_only_mode_enabled: bool,
    /// `quorumListenOnAllIPs`: bind peer/election ports on all interfaces; default false.
    pub quorum_listen_on_all_ips: bool,
    /// `multiAddress.enabled`: allow `a:1:2|b:3:4` in `server.N`; default false.
    /// Only the first address of each server is used so far.
    pub multi_address_enabled: bool,
    /// `localSessionsEnabled`; default false.
    pub local_sessions_enabled: bool,
    /// `localSessionsUpgradingEnabled`; default false.
    pub local_sessions_upgrading_enabled: bool,
    /// `forceSync` (yes/no, also true/false): fsync the txn log on commit; default true.
    pub force_sync: bool,
    /// `preAllocSize`, converted from zoo.cfg's KiB to bytes; 0 = no
    /// preallocation; default [`DEFAULT_PRE_ALLOC_SIZE`].
    pub pre_alloc_size: u64,
    /// `ensemble.minFreeDiskSpaceMb` (Ensemble's own key), converted to bytes: while
    /// dataDir or dataLogDir has less space free than this, or is on a read-only file
    /// system, client writes are refused (NotReadOnly) and reads still served; 0 turns
    /// the space check off. Default [`DEFAULT_MIN_FREE_DISK_SPACE`].
    pub min_free_disk_space: u64,
    /// `snapCount`: txns between snapshots; default 100000, minimum 2.
    pub snap_count: u64,
    /// `jute.maxbuffer`, bytes: the largest request frame (and znode data) a
    /// server accepts; a frame whose length field exceeds it is refused.
    /// Default [`DEFAULT_JUTE_MAX_BUFFER`]. ZooKeeper reads this only as a JVM
    /// system property and ignores it in zoo.cfg; Ensemble honours it.
    pub jute_max_buffer: usize,
    /// `DigestAuthenticationProvider.superDigest`: `super:<base64 sha1>`.
    pub super_digest: Option<String>,
    /// `extendedTypesEnabled` (TTL and container-like extended node types);
    /// default false. When true, server ids must be at most 254.
    pub extended_types_enabled: bool,
    /// `znode.container.checkIntervalMs`: how often empty containers and
    /// expired TTL nodes are looked for; default 60000. ZooKeeper reads it as
    /// a JVM system property only.
    pub container_check_interval_ms: u64,
    /// `znode.container.maxPerMinute`: deletions per minute at most; default 10000.
    pub container_max_per_minute: u64,
    /// `znode.container.maxNeverUsedIntervalMs`: age after which a container
    /// that never had children is deleted; 0 (the default) = never.
    pub container_max_never_used_interval_ms: u64,
    /// `fsync.warningthresholdms`: fsyncs slower than this are logged; default 1000.
    pub fsync_warning_threshold_ms: u64,
    /// `snapshot.compression.method`: "gz", "snappy" or "" (none, the default).
    pub snapshot_compression_method: String,
    /// `snapSizeLimitInKb` in bytes: also snapshot after this much log; 0 = off.
    /// Default 4 GB, as ZooKeeper.
    pub snap_size_limit: u64,
    /// `txnLogSizeLimitInKb` in bytes: roll the log past this size; None = no limit.
    pub txn_log_size_limit: Option<u64>,
    /// `enforceQuota`: hard quotas (`setquota -N`/`-B`) refuse writes with
    /// QuotaExceeded; default false. ZooKeeper reads `zookeeper.enforceQuota`.
    pub enforce_quota: bool,
    /// `globalOutstandingLimit`: queued requests before throttling; default 1000.
    pub global_outstanding_limit: u32,
    /// ZooKeeper's RequestThrottler: requests in process at most before the
    /// next one waits; 0 (the default) = no limit. ZooKeeper reads the system
    /// property `zookeeper.request_throttle_max_requests`, so zoo.cfg's
    /// `request_throttle_max_requests` (and the documented name
    /// `requestThrottleLimit`) set it.
    pub request_throttle_max_requests: u32,
    /// `request_throttle_stall_time` (`requestThrottleStallTime`), ms: how long a
    /// waiting request sleeps before it looks again; default 100.
    pub request_throttle_stall_time_ms: u64,
    /// `request_throttle_drop_stale` (`requestThrottleDropStale`): a request
    /// whose connection closed while it waited is dropped; default true.
    pub request_throttle_drop_stale: bool,
    /// `request_stale_latency_check` (`requestStaleLatencyCheck`): a request that
    /// waited longer than its session timeout is stale too; default false.
    pub request_stale_latency_check: bool,
    /// `throttled_op_wait_time` (`throttledOpWaitTime`), ms: a request that waited
    /// longer than this for the throttler is answered with Throttled (-127)
    /// instead of being run; 0 (the default) = never.
    pub throttled_op_wait_time_ms: u64,
    /// `dynamicConfigFile`: where the `server.N` lines live (already read).
    pub dynamic_config_file: Option<PathBuf>,
    /// The hex version suffix of `dynamicConfigFile` (`zoo.cfg.dynamic.100000000`).
    pub dynamic_config_version: Option<u64>,
    /// One line per thing a person should know: keys accepted but not used
    /// yet, unknown keys, values adjusted as ZooKeeper adjusts them.
    pub warnings: Vec<String>,
    /// Keys nobody knows, with their values. ZooKeeper would turn each into the
    /// system property `zookeeper.<key>`; we keep them here and warn.
    pub unknown: BTreeMap<String, String>,
    /// The file this came from, as named in messages (`<embedded>` for
    /// [`Config::embedded_default`]).
    pub config_file: String,
    /// The text of that file as read (ZooKeeper's "initial configuration",
    /// shown by the AdminServer); empty for the embedded default.
    pub initial_config: String,
    /// The system properties ZooKeeper would set from zoo.cfg: every key its
    /// `QuorumPeerConfig` does not parse itself becomes `zookeeper.<key>`.
    pub system_properties: BTreeMap<String, String>,
}

/// `metricsProvider.className`: ZooKeeper's default provider (counters read
/// through `mntr` and the AdminServer only) or its Prometheus provider, which
/// also serves `/metrics` over HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MetricsProvider {
    #[default]
    Default,
    Prometheus {
        /// `metricsProvider.httpHost`; default "0.0.0.0".
        http_host: String,
        /// `metricsProvider.httpPort`; default 7000.
        http_port: u16,
        /// `metricsProvider.exportJvmInfo`; default true. Ensemble has no JVM:
        /// it exports the `process_*` metrics of its own process instead.
        export_process_info: bool,
    },
}

/// `metricsProvider.className` of ZooKeeper's default provider.
pub const DEFAULT_METRICS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider";
/// `metricsProvider.className` of ZooKeeper's Prometheus provider.
pub const PROMETHEUS_METRICS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";
/// `metricsProvider.httpPort` when unset.
pub const DEFAULT_METRICS_HTTP_PORT: u16 = 7000;

impl Default for Config {
    fn default() -> Self {
        Config {
            tick_time: DEFAULT_TICK_TIME,
            init_limit: DEFAULT_INIT_LIMIT,
            sync_limit: DEFAULT_SYNC_LIMIT,
            data_dir: PathBuf::from("./data"),
            data_log_dir: None,
            client_port: None,
            client_port_address: None,
            secure_client_port: None,
            secure_client_port_address: None,
            max_client_cnxns: 60,
            max_cnxns: 0,
            min_session_timeout: DEFAULT_TICK_TIME * 2,
            max_session_timeout: DEFAULT_TICK_TIME * 20,
            autopurge_snap_retain_count: MIN_SNAP_RETAIN_COUNT,
            autopurge_purge_interval: 0,
            admin_enable_server: true,
            admin_server_address: "0.0.0.0".to_owned(),
            admin_server_port: 8080,
            admin_command_url: "/commands".to_owned(),
            metrics_provider: MetricsProvider::Default,
            four_letter_word_whitelist: vec!["srvr".to_owned()],
            servers: BTreeMap::new(),
            peer_type: PeerType::Participant,
            my_id: None,
            standalone_enabled: true,
            reconfig_enabled: false,
            read_only_mode_enabled: false,
            quorum_listen_on_all_ips: false,
            multi_address_enabled: false,
            local_sessions_enabled: false,
            local_sessions_upgrading_enabled: false,
            force_sync: true,
            pre_alloc_size: DEFAULT_PRE_ALLOC_SIZE,
            min_free_disk_space: DEFAULT_MIN_FREE_DISK_SPACE,
            snap_count: 100_000,
            jute_max_buffer: DEFAULT_JUTE_MAX_BUFFER,
            super_digest: None,
            extended_types_enabled: false,
            enforce_quota: false,
            fsync_warning_threshold_ms: 1000,
            snapshot_compression_method: String::new(),
            snap_size_limit: 4 * 1024 * 1024 * 1024,
            txn_log_size_limit: None,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            container_max_never_used_interval_ms: 0,
            global_outstanding_limit: 1000,
            request_throttle_max_requests: 0,
            request_throttle_stall_time_ms: 100,
            request_throttle_drop_stale: true,
            request_stale_latency_check: false,
            throttled_op_wait_time_ms: 0,
            dynamic_config_file: None,
            dynamic_config_version: None,
            warnings: Vec::new(),
            unknown: BTreeMap::new(),
            config_file: "<embedded>".to_owned(),
            initial_config: String::new(),
            system_properties: BTreeMap::new(),
        }
    }
}

impl Config {
    /// The configuration used without a zoo.cfg: standalone, clientPort 2181,
    /// dataDir `./data`, admin server on 8080, every other key at its default.
    pub fn embedded_default() -> Config {
        Config {
            client_port: Some(DEFAULT_CLIENT_PORT),
            ..Config::default()
        }
    }

    /// Reads and checks zoo.cfg, then (as ZooKeeper's parse does) the
    /// `dynamicConfigFile` if named and, in quorum mode, `dataDir/myid`.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            key: None,
            message: format!("cannot read the configuration file: {e}"),
        })?;
        let mut config = Config::parse_str(&properties::decode(&bytes), &file)?;
        let myid_exists = config.data_dir.join("myid").is_file();
        if config.is_quorum() || (myid_exists && !config.servers.is_empty()) {
            let id = config.read_myid()?;
            config.apply_myid(id)?;
        }
        if config.client_port.is_none() {
            return Err(missing(&file, "clientPort", CLIENT_PORT_MISSING));
        }
        Ok(config)
    }

    /// Parses zoo.cfg text; `file_name` is used in errors and warnings. Reads
    /// no file except a `dynamicConfigFile` the text names (its path is taken
    /// as written, relative to the working directory as ZooKeeper does).
    pub fn parse_str(text: &str, file_name: &str) -> Result<Config, ConfigError> {
        let props = properties::parse(text).map_err(|e| ConfigError {
            file: file_name.to_owned(),
            line: Some(e.line),
            key: None,
            message: e.message,
        })?;
        let mut builder = Builder::new(file_name);
        let props = builder.last_value_wins(props);
        for p in &props {
            builder.apply(p)?;
            if !keys::parsed_by_quorum_peer_config(&p.key) {
                builder
                    .config
                    .system_properties
                    .insert(format!("zookeeper.{}", p.key), p.value.clone());
            }
        }
        builder.load_dynamic_file()?;
        let mut config = builder.finish()?;
        config.initial_config = text.to_owned();
        Ok(config)
    }

    /// ZooKeeper's `isDistributed`: more than one voting member, or
    /// `standaloneEnabled=false` (then even one participant runs the quorum
    /// protocol). Observers do not count.
    pub fn is_quorum(&self) -> bool {
        !self.standalone_enabled || self.participants() > 1
    }

    fn participants(&self) -> usize {
        self.servers.values().filter(|s| !s.observer).count()
    }

    /// The address the client listener binds: `clientPortAddress` (wildcard
    /// when unset) and `clientPort` (2181 if still unknown, which
    /// [`Config::from_file`] never leaves it).
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::new(
            self.client_port_address
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            self.client_port.unwrap_or(DEFAULT_CLIENT_PORT),
        )
    }

    /// Where the transaction log lives: `dataLogDir`, else `dataDir`.
    pub fn txn_log_dir(&self) -> &Path {
        self.data_log_dir.as_deref().unwrap_or(&self.data_dir)
    }

    /// Whether the four-letter word `cmd` is whitelisted.
    pub fn four_letter_word_allowed(&self, cmd: &str) -> bool {
        self.four_letter_word_whitelist
            .iter()
            .any(|c| c == "*" || c == cmd)
    }

    /// The membership's version: the hex suffix of a `dynamicConfigFile`
    /// named `<anything>.dynamic.<hex>`, else 0 (a static membership).
    pub fn config_version(&self) -> i64 {
        self.dynamic_config_file
            .as_ref()
            .and_then(|p| p.file_name()?.to_str().map(str::to_owned))
            .and_then(|name| {
                let (_, hex) = name.rsplit_once(".dynamic.")?;
                i64::from_str_radix(hex, 16).ok()
            })
            .unwrap_or(0)
    }

    /// Reads this server's id from `dataDir/myid` (first line, an integer).
    /// In quorum mode the id must be one of the `server.N` ids.
    pub fn read_myid(&self) -> Result<u64, ConfigError> {
        let path = self.data_dir.join("myid");
        let file = path.display().to_string();
        let fail = |line: Option<usize>, message: String| ConfigError {
            file: file.clone(),
            line,
            key: None,
            message,
        };
        if !path.is_file() {
            return Err(fail(
                None,
                "myid file is missing: in quorum mode each server reads its id \
                 (the N of its server.N line) from dataDir/myid"
                    .to_owned(),
            ));
        }
        let text = std::fs::read(&path)
            .map_err(|e| fail(None, format!("cannot read the myid file: {e}")))?;
        let text = properties::decode(&text);
        let first = text.lines().next().unwrap_or("").trim();
        let id: u64 = first.parse().map_err(|_| {
            fail(
                Some(1),
                format!("server id '{first}' is not a number (myid must hold the N of server.N)"),
            )
        })?;
        if self.is_quorum() && !self.servers.contains_key(&id) {
            let ids: Vec<String> = self.servers.keys().map(u64::to_string).collect();
            return Err(fail(
                Some(1),
                format!(
                    "my id {id} is not in the peer list (server ids: {})",
                    ids.join(", ")
                ),
            ));
        }
        if self.extended_types_enabled && id > MAX_EXTENDED_SERVER_ID {
            return Err(fail(
                Some(1),
                format!(
                    "server id {id} is too large: with extendedTypesEnabled it must be \
                     at most {MAX_EXTENDED_SERVER_ID}"
                ),
            ));
        }
        Ok(id)
    }

    /// The file holding the `server.N` lines.
    fn members_file(&self) -> String {
        self.dynamic_config_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| self.config_file.clone())
    }

    /// Records this server's id and takes what `server.<id>` says about it, as
    /// ZooKeeper's `setupClientPort`/`setupPeerType` do: its client address
    /// (which must agree with a `clientPort`/`clientPortAddress` also given)
    /// and its role.
    pub fn apply_myid(&mut self, id: u64) -> Result<(), ConfigError> {
        self.my_id = Some(id);
        let Some(spec) = self.servers.get(&id).cloned() else {
            return Ok(());
        };
        let role = if spec.observer {
            PeerType::Observer
        } else {
            PeerType::Participant
        };
        if role != self.peer_type {
            self.warnings.push(format!(
                "{}: peerType {:?} does not match the role of server.{id} ({role:?}); using the server list",
                self.config_file, self.peer_type
            ));
            self.peer_type = role;
        }
        let Some((host, port)) = spec.client_addr else {
            return Ok(());
        };
        let key = format!("server.{id}");
        let ip = resolve_host(&host).ok_or_else(|| ConfigError {
            file: self.members_file(),
            line: None,
            key: Some(key.clone()),
            message: format!("cannot resolve client host '{host}'"),
        })?;
        if let Some(static_port) = self.client_port {
            let static_ip = self
                .client_port_address
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            let differs = if static_ip.is_unspecified() {
                static_port != port
            } else {
                static_ip != ip || static_port != port
            };
            if differs {
                return Err(ConfigError {
                    file: self.members_file(),
                    line: None,
                    key: Some(key),
                    message: format!(
                        "client address {} from clientPort/clientPortAddress differs from \
                         the client address of this server: {}",
                        SocketAddr::new(static_ip, static_port),
                        SocketAddr::new(ip, port)
                    ),
                });
            }
        }
        self.client_port = Some(port);
        self.client_port_address = Some(ip);
        Ok(())
    }
}

const CLIENT_PORT_MISSING: &str =
    "missing required key: no clientPort, and no client address in this server's server.N line";

fn missing(file: &str, key: &str, message: &str) -> ConfigError {
    ConfigError {
        file: file.to_owned(),
        line: None,
        key: Some(key.to_owned()),
        message: message.to_owned(),
    }
}

/// An IP literal (brackets allowed) or a host name resolved now, like Java's
/// `InetAddress.getByName`.
fn resolve_host(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse() {
        return Some(ip);
    }
    (bare, 0u16)
        .to_socket_addrs()
        .ok()?
        .next()
        .map(|addr| addr.ip())
}

/// `Integer.parseInt`: optional sign, decimal digits, 32-bit range.
fn java_int(v: &str) -> Option<i64> {
    v.parse::<i32>().ok().map(i64::from)
}

/// `Long.parseLong`.
fn java_long(v: &str) -> Option<i64> {
    v.parse::<i64>().ok()
}

/// `Integer.decode`, used by `Integer.getInteger` for keys ZooKeeper reads as
/// system properties: also `0x`/`#` hex and leading-zero octal.
fn java_decode(v: &str) -> Option<i64> {
    let (negative, rest) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let (radix, digits) = if let Some(h) = rest.strip_prefix("0x").or(rest.strip_prefix("0X")) {
        (16, h)
    } else if let Some(h) = rest.strip_prefix('#') {
        (16, h)
    } else if rest.len() > 1 && rest.starts_with('0') {
        (8, &rest[1..])
    } else {
        (10, rest)
    };
    if digits.is_empty() || digits.starts_with(['-', '+']) {
        return None;
    }
    let magnitude = i64::from_str_radix(digits, radix).ok()?;
    let value = if negative { -magnitude } else { magnitude };
    (i64::from(i32::MIN)..=i64::from(i32::MAX))
        .contains(&value)
        .then_some(value)
}

/// `true`/`false`, any case (QuorumPeerConfig's `parseBoolean`).
fn java_bool(v: &str) -> Option<bool> {
    if v.eq_ignore_ascii_case("true") {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A `server.N`, `group.N` or `weight.N` entry, kept until every key is seen
/// (`multiAddress.enabled` may come after the server lines).
struct MemberLine {
    file: String,
    line: usize,
    key: String,
    value: String,
}

/// Which keys were written, and where, for checks that span keys.
struct Builder {
    file: String,
    config: Config,
    lines: HashMap<&'static str, usize>,
    min_session_timeout: Option<u32>,
    max_session_timeout: Option<u32>,
    client_port_address: Option<String>,
    secure_client_port_address: Option<String>,
    members: Vec<MemberLine>,
    /// `metricsProvider.*` entries by key, read once `className` is known.
    metrics: HashMap<String, (usize, String)>,
}

/// One key's value with its place in the file, for error messages.
struct Entry<'a> {
    file: &'a str,
    line: usize,
    key: &'a str,
    value: &'a str,
}

impl Entry<'_> {
    fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            line: Some(self.line),
            key: Some(self.key.to_owned()),
            message: message.into(),
        }
    }

    fn invalid(&self, expected: &str) -> ConfigError {
        self.error(format!(
            "invalid value '{}': expected {expected}",
            self.value
        ))
    }

    fn int(
        &self,
        parse: fn(&str) -> Option<i64>,
        min: i64,
        expected: &str,
    ) -> Result<i64, ConfigError> {
        parse(self.value)
            .filter(|&n| n >= min)
            .ok_or_else(|| self.invalid(expected))
    }

    fn u32(&self, min: i64, expected: &str) -> Result<u32, ConfigError> {
        let n = self.int(java_int, min, expected)?;
        u32::try_from(n).map_err(|_| self.invalid(expected))
    }

    fn port(&self, parse: fn(&str) -> Option<i64>) -> Result<u16, ConfigError> {
        const EXPECTED: &str = "a port number (0-65535)";
        let n = self.int(parse, 0, EXPECTED)?;
        u16::try_from(n).map_err(|_| self.invalid(EXPECTED))
    }

    fn bool(&self) -> Result<bool, ConfigError> {
        java_bool(self.value).ok_or_else(|| self.invalid("true or false"))
    }

    fn path(&self, warnings: &mut Vec<String>) -> Result<PathBuf, ConfigError> {
        if self.value.is_empty() {
            return Err(self.error("empty value: expected a directory path"));
        }
        let path = PathBuf::from(self.value);
        if path.is_relative() {
            warnings.push(format!(
                "{}:{}: {} '{}' is a relative path; it is resolved against the working directory",
                self.file, self.line, self.key, self.value
            ));
        }
        Ok(path)
    }

    fn ip(&self) -> Result<IpAddr, ConfigError> {
        resolve_host(self.value).ok_or_else(|| {
            self.error(format!(
                "invalid value '{}': expected an IP address or a resolvable host name",
                self.value
            ))
        })
    }
}

impl Builder {
    fn new(file: &str) -> Builder {
        Builder {
            file: file.to_owned(),
            config: Config {
                config_file: file.to_owned(),
                ..Config::default()
            },
            lines: HashMap::new(),
            min_session_timeout: None,
            max_session_timeout: None,
            client_port_address: None,
            secure_client_port_address: None,
            members: Vec::new(),
            metrics: HashMap::new(),
        }
    }

    fn warn(&mut self, line: usize, message: String) {
        self.config
            .warnings
            .push(format!("{}:{line}: {message}", self.file));
    }

    /// Trims keys and values as ZooKeeper does and keeps only the last entry of
    /// a repeated key (`Properties` is a hash table), warning about the others.
    fn last_value_wins(&mut self, props: Vec<properties::Property>) -> Vec<properties::Property> {
        let props: Vec<properties::Property> = props
            .into_iter()
            .map(|p| properties::Property {
                key: properties::java_trim(&p.key).to_owned(),
                value: properties::java_trim(&p.value).to_owned(),
                line: p.line,
            })
            .collect();
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (i, p) in props.iter().enumerate() {
            last.insert(&p.key, i);
        }
        let mut overridden = Vec::new();
        for (i, p) in props.iter().enumerate() {
            let winner = last[p.key.as_str()];
            if winner != i {
                overridden.push((p.line, p.key.clone(), props[winner].line));
            }
        }
        for (line, key, winner_line) in overridden {
            self.warn(
                line,
                format!("key '{key}' is set again on line {winner_line}; the last value wins"),
            );
        }
        let keep: Vec<bool> = (0..props.len())
            .map(|i| last[props[i].key.as_str()] == i)
            .collect();
        props
            .into_iter()
            .zip(keep)
            .filter_map(|(p, k)| k.then_some(p))
            .collect()
    }

    fn apply(&mut self, p: &properties::Property) -> Result<(), ConfigError> {
        let file = self.file.clone();
        let e = Entry {
            file: &file,
            line: p.line,
            key: &p.key,
            value: &p.value,
        };
        let c = &mut self.config;
        let remember = |lines: &mut HashMap<&'static str, usize>, key: &'static str| {
            lines.insert(key, p.line);
        };
        match e.key {
            "tickTime" => {
                c.tick_time = e.u32(1, "a positive integer (milliseconds)")?;
            }
            "initLimit" => {
                c.init_limit = e.u32(0, "a non-negative integer (ticks)")?;
                remember(&mut self.lines, "initLimit");
            }
            "syncLimit" => {
                c.sync_limit = e.u32(0, "a non-negative integer (ticks)")?;
                remember(&mut self.lines, "syncLimit");
            }
            "dataDir" => {
                c.data_dir = e.path(&mut c.warnings)?;
                remember(&mut self.lines, "dataDir");
            }
            "dataLogDir" => c.data_log_dir = Some(e.path(&mut c.warnings)?),
            "clientPort" => {
                c.client_port = Some(e.port(java_int)?);
                remember(&mut self.lines, "clientPort");
            }
            "clientPortAddress" => {
                c.client_port_address = Some(e.ip()?);
                self.client_port_address = Some(e.value.to_owned());
                remember(&mut self.lines, "clientPortAddress");
            }
            "secureClientPort" => {
                c.secure_client_port = Some(e.port(java_int)?);
                self.warn(p.line, unused(e.key));
            }
            "secureClientPortAddress" => {
                c.secure_client_port_address = Some(e.ip()?);
                self.secure_client_port_address = Some(e.value.to_owned());
                remember(&mut self.lines, "secureClientPortAddress");
                self.warn(p.line, unused(e.key));
            }
            "maxClientCnxns" => {
                c.max_client_cnxns = e.u32(
                    0,
                    "a non-negative integer (connections per client IP, 0 = unlimited)",
                )?;
            }
            "maxCnxns" => {
                c.max_cnxns = e.u32(
                    0,
                    "a non-negative integer (client connections in all, 0 = unlimited)",
                )?;
            }
            "minSessionTimeout" | "maxSessionTimeout" => {
                let n = e.int(
                    java_int,
                    -1,
                    "a non-negative integer (milliseconds), or -1 for the default",
                )?;
                let value = u32::try_from(n).ok();
                if e.key == "minSessionTimeout" {
                    self.min_session_timeout = value;
                    remember(&mut self.lines, "minSessionTimeout");
                } else {
                    self.max_session_timeout = value;
                    remember(&mut self.lines, "maxSessionTimeout");
                }
            }
            "electionAlg" => {
                let n = java_int(e.value).ok_or_else(|| e.invalid("3"))?;
                if n != 3 {
                    return Err(e.error(format!(
                        "invalid value '{}': only 3 (fast leader election) is supported",
                        e.value
                    )));
                }
            }
            "peerType" => {
                c.peer_type = match e.value.to_ascii_lowercase().as_str() {
                    "observer" => PeerType::Observer,
                    "participant" => PeerType::Participant,
                    _ => return Err(e.invalid("participant or observer")),
                };
            }
            "standaloneEnabled" => c.standalone_enabled = e.bool()?,
            "reconfigEnabled" => c.reconfig_enabled = e.bool()?,
            "readonlymode.enabled" => c.read_only_mode_enabled = e.bool()?,
            "quorumListenOnAllIPs" => c.quorum_listen_on_all_ips = e.bool()?,
            "multiAddress.enabled" => c.multi_address_enabled = e.bool()?,
            "localSessionsEnabled" => c.local_sessions_enabled = e.bool()?,
            "localSessionsUpgradingEnabled" => c.local_sessions_upgrading_enabled = e.bool()?,
            "extendedTypesEnabled" => c.extended_types_enabled = e.bool()?,
            "enforceQuota" => c.enforce_quota = e.bool()?,
            "fsync.warningthresholdms" => {
                c.fsync_warning_threshold_ms =
                    e.int(java_int, 0, "a non-negative integer (milliseconds)")? as u64;
            }
            "snapshot.compression.method" => {
                let v = e.value.to_ascii_lowercase();
                if !matches!(v.as_str(), "" | "gz" | "snappy") {
                    return Err(e.invalid("gz, snappy or empty"));
                }
                c.snapshot_compression_method = v;
            }
            "snapSizeLimitInKb" => {
                let kb = e.int(java_long, -1, "an integer (kilobytes, <= 0 = no limit)")?;
                c.snap_size_limit = if kb <= 0 { 0 } else { kb as u64 * 1024 };
            }
            "txnLogSizeLimitInKb" => {
                let kb = e.int(java_long, -1, "an integer (kilobytes, <= 0 = no limit)")?;
                c.txn_log_size_limit = if kb <= 0 {
                    None
                } else {
                    Some(kb as u64 * 1024)
                };
            }
            "znode.container.checkIntervalMs" => {
                c.container_check_interval_ms =
                    e.int(java_int, 1, "a positive integer (milliseconds)")? as u64;
            }
            "znode.container.maxPerMinute" => {
                c.container_max_per_minute =
                    e.int(java_int, 1, "a positive integer (deletions per minute)")? as u64;
            }
            "znode.container.maxNeverUsedIntervalMs" => {
                c.container_max_never_used_interval_ms = e.int(
                    java_int,
                    0,
                    "a non-negative integer (milliseconds, 0 = never)",
                )? as u64;
            }
            "dynamicConfigFile" => {
                if e.value.is_empty() {
                    return Err(e.error("empty value: expected a file path"));
                }
                c.dynamic_config_file = Some(PathBuf::from(e.value));
                c.dynamic_config_version = dynamic_version(e.value);
                remember(&mut self.lines, "dynamicConfigFile");
            }
            "autopurge.snapRetainCount" => {
                let n = e.int(
                    java_int,
                    i64::from(i32::MIN),
                    "an integer (snapshots to keep)",
                )?;
                if n < i64::from(MIN_SNAP_RETAIN_COUNT) {
                    self.warn(
                        p.line,
                        format!(
                            "autopurge.snapRetainCount {n} is below the minimum; using {MIN_SNAP_RETAIN_COUNT}"
                        ),
                    );
                }
                self.config.autopurge_snap_retain_count =
                    u32::try_from(n).unwrap_or(0).max(MIN_SNAP_RETAIN_COUNT);
            }
            "autopurge.purgeInterval" => {
                let n = e.int(
                    java_int,
                    i64::from(i32::MIN),
                    "an integer (hours, 0 = no purging)",
                )?;
                c.autopurge_purge_interval = u32::try_from(n).unwrap_or(0);
            }
            "admin.enableServer" => c.admin_enable_server = e.bool()?,
            "admin.serverAddress" => {
                if e.value.is_empty() {
                    return Err(e.error("empty value: expected an address to bind"));
                }
                c.admin_server_address = e.value.to_owned();
            }
            "admin.serverPort" => c.admin_server_port = e.port(java_decode)?,
            "admin.commandURL" => {
                if !e.value.starts_with('/') {
                    return Err(e.invalid("a URL path starting with '/'"));
                }
                c.admin_command_url = e.value.trim_end_matches('/').to_owned();
                if c.admin_command_url.is_empty() {
                    return Err(e.invalid("a URL path below '/', such as /commands"));
                }
            }
            key if key.starts_with("metricsProvider.") => {
                self.metrics
                    .insert(key.to_owned(), (p.line, e.value.to_owned()));
            }
            "4lw.commands.whitelist" => c.four_letter_word_whitelist = whitelist(e.value),
            "forceSync" => {
                c.force_sync = match e.value.to_ascii_lowercase().as_str() {
                    "yes" | "true" => true,
                    "no" | "false" => false,
                    _ => return Err(e.invalid("yes or no")),
                };
            }
            "preAllocSize" => {
                const EXPECTED: &str = "a non-negative integer (kilobytes)";
                let kb = e.int(java_long, 0, EXPECTED)?;
                c.pre_alloc_size = u64::try_from(kb)
                    .ok()
                    .and_then(|kb| kb.checked_mul(1024))
                    .ok_or_else(|| e.invalid(EXPECTED))?;
            }
            "ensemble.minFreeDiskSpaceMb" => {
                const EXPECTED: &str = "a non-negative integer (megabytes, 0 = no check)";
                let mb = e.int(java_long, 0, EXPECTED)?;
                c.min_free_disk_space = u64::try_from(mb)
                    .ok()
                    .and_then(|mb| mb.checked_mul(1024 * 1024))
                    .ok_or_else(|| e.invalid(EXPECTED))?;
            }
            "snapCount" => {
                let n = e.int(
                    java_decode,
                    i64::from(i32::MIN),
                    "an integer (transactions)",
                )?;
                if n < 2 {
                    self.warn(p.line, format!("snapCount {n} is below 2; using 2"));
                }
                self.config.snap_count = u64::try_from(n.max(2)).unwrap_or(2);
            }
            "jute.maxbuffer" => {
                let n = e.int(java_decode, 1, "a positive integer (bytes)")?;
                c.jute_max_buffer =
                    usize::try_from(n).map_err(|_| e.invalid("a positive integer (bytes)"))?;
            }
            "globalOutstandingLimit" => {
                let n = e.int(java_decode, 1, "a positive integer (requests)")?;
                c.global_outstanding_limit =
                    u32::try_from(n).map_err(|_| e.invalid("a positive integer (requests)"))?;
            }
            "request_throttle_max_requests" | "requestThrottleLimit" => {
                c.request_throttle_max_requests =
                    e.u32(0, "a non-negative integer (requests, 0 = no limit)")?;
            }
            "request_throttle_stall_time" | "requestThrottleStallTime" => {
                c.request_throttle_stall_time_ms =
                    e.int(java_int, 1, "a positive integer (milliseconds)")? as u64;
            }
            "request_throttle_drop_stale" | "requestThrottleDropStale" => {
                c.request_throttle_drop_stale = e.bool()?;
            }
            "request_stale_latency_check" | "requestStaleLatencyCheck" => {
                c.request_stale_latency_check = e.bool()?;
            }
            "throttled_op_wait_time" | "throttledOpWaitTime" => {
                c.throttled_op_wait_time_ms = e.int(
                    java_int,
                    0,
                    "a non-negative integer (milliseconds, 0 = never)",
                )? as u64;
            }
            "DigestAuthenticationProvider.superDigest" => {
                if !e.value.contains(':') {
                    self.warn(
                        p.line,
                        "DigestAuthenticationProvider.superDigest has no ':'; it should be \
                         super:<base64 sha1 digest> and will never match as written"
                            .to_owned(),
                    );
                }
                self.config.super_digest = Some(e.value.to_owned());
            }
            key if keys::is_membership_key(key) => {
                if !key.starts_with("server.") {
                    self.warn(p.line, unused(key));
                }
                self.members.push(MemberLine {
                    file: file.clone(),
                    line: p.line,
                    key: key.to_owned(),
                    value: e.value.to_owned(),
                });
            }
            key if keys::known_but_unused(key) => self.warn(p.line, unused(key)),
            key => {
                self.warn(
                    p.line,
                    format!(
                        "unknown key '{key}' is ignored (ZooKeeper would only set the \
                         system property zookeeper.{key})"
                    ),
                );
                self.config
                    .unknown
                    .insert(key.to_owned(), e.value.to_owned());
            }
        }
        Ok(())
    }

    /// Takes the membership from `dynamicConfigFile`, which may then hold only
    /// `server.N`, `group*` and `weight*` keys; zoo.cfg itself must hold none.
    fn load_dynamic_file(&mut self) -> Result<(), ConfigError> {
        let Some(path) = self.config.dynamic_config_file.clone() else {
            return Ok(());
        };
        if let Some(m) = self.members.first() {
            return Err(ConfigError {
                file: m.file.clone(),
                line: Some(m.line),
                key: Some(m.key.clone()),
                message: "must be in the dynamic config file, since dynamicConfigFile is set"
                    .to_owned(),
            });
        }
        let file = path.display().to_string();
        let bytes = std::fs::read(&path).map_err(|err| ConfigError {
            file: self.file.clone(),
            line: self.lines.get("dynamicConfigFile").copied(),
            key: Some("dynamicConfigFile".to_owned()),
            message: format!("cannot read '{file}': {err}"),
        })?;
        let props = properties::parse(&properties::decode(&bytes)).map_err(|e| ConfigError {
            file: file.clone(),
            line: Some(e.line),
            key: None,
            message: e.message,
        })?;
        for p in props {
            let key = properties::java_trim(&p.key).to_owned();
            let fail = |message: &str| ConfigError {
                file: file.clone(),
                line: Some(p.line),
                key: Some(key.clone()),
                message: message.to_owned(),
            };
            if key == "version" {
                return Err(fail(
                    "a dynamic config file must not contain 'version' (it comes from the file name)",
                ));
            }
            if !keys::is_membership_key(&key) {
                return Err(fail(
                    "unrecognised parameter: a dynamic config file holds only server.N, group and weight",
                ));
            }
            if !key.starts_with("server.") {
                self.config
                    .warnings
                    .push(format!("{file}:{}: {}", p.line, unused(&key)));
            }
            self.members.push(MemberLine {
                file: file.clone(),
                line: p.line,
                key,
                value: properties::java_trim(&p.value).to_owned(),
            });
        }
        Ok(())
    }

    fn at(&self, key: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: self.lines.get(key).copied(),
            key: Some(key.to_owned()),
            message,
        }
    }

    fn finish(mut self) -> Result<Config, ConfigError> {
        if !self.lines.contains_key("dataDir") {
            return Err(missing(
                &self.file,
                "dataDir",
                "missing required key: the directory for snapshots (and for the \
                 transaction log unless dataLogDir is set)",
            ));
        }
        if self.client_port_address.is_some() && self.config.client_port.is_none() {
            return Err(self.at(
                "clientPortAddress",
                "clientPortAddress is set but clientPort is not set".to_owned(),
            ));
        }
        if self.secure_client_port_address.is_some() && self.config.secure_client_port.is_none() {
            return Err(self.at(
                "secureClientPortAddress",
                "secureClientPortAddress is set but secureClientPort is not set".to_owned(),
            ));
        }
        self.session_timeouts()?;
        self.servers()?;
        self.quorum_checks()?;
        self.metrics_provider()?;
        Ok(self.config)
    }

    /// `metricsProvider.className` and, for the Prometheus provider, its
    /// `httpHost`, `httpPort` and `exportJvmInfo`. ZooKeeper fails to start
    /// with a class it cannot load; so does Ensemble with a provider it does
    /// not have.
    fn metrics_provider(&mut self) -> Result<(), ConfigError> {
        let mut entries = std::mem::take(&mut self.metrics);
        let entry = |entries: &mut HashMap<String, (usize, String)>, key: &str| {
            entries.remove(&format!("metricsProvider.{key}"))
        };
        let file = self.file.clone();
        let class = entry(&mut entries, "className");
        let class_name = class
            .as_ref()
            .map(|(_, v)| v.as_str())
            .unwrap_or(DEFAULT_METRICS_PROVIDER);
        if class_name == PROMETHEUS_METRICS_PROVIDER {
            let mut http_host = "0.0.0.0".to_owned();
            let mut http_port = DEFAULT_METRICS_HTTP_PORT;
            let mut export_process_info = true;
            if let Some((line, value)) = entry(&mut entries, "httpHost") {
                if value.is_empty() {
                    return Err(ConfigError {
                        file,
                        line: Some(line),
                        key: Some("metricsProvider.httpHost".to_owned()),
                        message: "empty value: expected an address to bind".to_owned(),
                    });
                }
                http_host = value;
            }
            if let Some((line, value)) = entry(&mut entries, "httpPort") {
                let e = Entry {
                    file: &file,
                    line,
                    key: "metricsProvider.httpPort",
                    value: &value,
                };
                http_port = e.port(java_int)?;
            }
            if let Some((line, value)) = entry(&mut entries, "exportJvmInfo") {
                let e = Entry {
                    file: &file,
                    line,
                    key: "metricsProvider.exportJvmInfo",
                    value: &value,
                };
                export_process_info = e.bool()?;
            }
            self.config.metrics_provider = MetricsProvider::Prometheus {
                http_host,
                http_port,
                export_process_info,
            };
        } else if class_name != DEFAULT_METRICS_PROVIDER {
            let (line, value) = class.unwrap_or_default();
            return Err(ConfigError {
                file,
                line: Some(line),
                key: Some("metricsProvider.className".to_owned()),
                message: format!(
                    "unknown metrics provider '{value}': expected {DEFAULT_METRICS_PROVIDER} \
                     or {PROMETHEUS_METRICS_PROVIDER}"
                ),
            });
        }
        let mut rest: Vec<(String, usize)> = entries
            .into_iter()
            .map(|(k, (line, _))| (k, line))
            .collect();
        rest.sort_by_key(|(_, line)| *line);
        for (key, line) in rest {
            self.warn(line, unused(&key));
        }
        Ok(())
    }

    fn session_timeouts(&mut self) -> Result<(), ConfigError> {
        let tick = self.config.tick_time;
        let min = self.min_session_timeout.unwrap_or(tick.saturating_mul(2));
        let max = self.max_session_timeout.unwrap_or(tick.saturating_mul(20));
        if min > max {
            let key = if self.min_session_timeout.is_some() {
                "minSessionTimeout"
            } else {
                "maxSessionTimeout"
            };
            return Err(self.at(
                key,
                format!(
                    "minSessionTimeout ({min} ms) must not be larger than maxSessionTimeout ({max} ms)"
                ),
            ));
        }
        self.config.min_session_timeout = min;
        self.config.max_session_timeout = max;
        Ok(())
    }

    fn servers(&mut self) -> Result<(), ConfigError> {
        for m in std::mem::take(&mut self.members) {
            let Some(id_text) = m.key.strip_prefix("server.") else {
                continue;
            };
            let fail = |message: String| ConfigError {
                file: m.file.clone(),
                line: Some(m.line),
                key: Some(m.key.clone()),
                message,
            };
            let id: u64 = id_text.parse().map_err(|_| {
                fail(format!(
                    "invalid server id '{id_text}': expected a non-negative integer"
                ))
            })?;
            let (spec, dropped) =
                servers::parse_server(id, &m.value, self.config.multi_address_enabled)
                    .map_err(fail)?;
            if dropped > 0 {
                self.config.warnings.push(format!(
                    "{}:{}: {}: only the first address is used; {dropped} more ignored for now",
                    m.file, m.line, m.key
                ));
            }
            self.config.servers.insert(id, spec);
        }
        let participants = self.config.participants();
        let observers = self.config.servers.len() - participants;
        let where_ = self
            .config
            .dynamic_config_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| self.file.clone());
        let invalid = |message: &str| ConfigError {
            file: where_.clone(),
            line: None,
            key: Some("server.N".to_owned()),
            message: message.to_owned(),
        };
        if participants == 0 {
            if !self.config.standalone_enabled {
                return Err(invalid(
                    "standaloneEnabled=false needs at least one participant server.N line",
                ));
            }
            if observers > 0 {
                return Err(invalid(
                    "observers without participants is an invalid configuration",
                ));
            }
        } else if participants == 1 && self.config.standalone_enabled {
            if observers > 0 {
                return Err(invalid(
                    "observers without a quorum is an invalid configuration",
                ));
            }
            self.config.warnings.push(format!(
                "{where_}: only one server is listed; running standalone (set \
                 standaloneEnabled=false to run it as a one-member quorum)"
            ));
        } else if participants <= 2 {
            self.config.warnings.push(format!(
                "{where_}: no server failure will be tolerated; you need at least 3 servers"
            ));
        } else if participants.is_multiple_of(2) {
            self.config.warnings.push(format!(
                "{where_}: non-optimal configuration, consider an odd number of servers"
            ));
        }
        Ok(())
    }

    fn quorum_checks(&mut self) -> Result<(), ConfigError> {
        if !self.config.is_quorum() {
            if self.config.client_port.is_none() {
                return Err(missing(&self.file, "clientPort", CLIENT_PORT_MISSING));
            }
            return Ok(());
        }
        for (key, value, default) in [
            ("initLimit", self.config.init_limit, DEFAULT_INIT_LIMIT),
            ("syncLimit", self.config.sync_limit, DEFAULT_SYNC_LIMIT),
        ] {
            match self.lines.get(key) {
                None => self.config.warnings.push(format!(
                    "{}: {key} is not set; ZooKeeper would refuse to start a quorum, Ensemble uses {default}",
                    self.file
                )),
                Some(_) if value == 0 => {
                    return Err(self.at(key, format!("{key} must be at least 1 tick in a quorum")))
                }
                Some(_) => {}
            }
        }
        let every_server_has_client = self
            .config
            .servers
            .values()
            .all(|s| s.client_addr.is_some());
        if self.config.client_port.is_none() && !every_server_has_client {
            return Err(missing(&self.file, "clientPort", CLIENT_PORT_MISSING));
        }
        Ok(())
    }
}

fn unused(key: &str) -> String {
    format!("key '{key}' is accepted but not used yet")
}

/// `4lw.commands.whitelist`: comma-separated, trimmed; `*` anywhere means all;
/// `srvr` is always enabled.
fn whitelist(value: &str) -> Vec<String> {
    let mut list: Vec<String> = Vec::new();
    for cmd in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        if cmd == "*" {
            return vec!["*".to_owned()];
        }
        if !list.iter().any(|c| c == cmd) {
            list.push(cmd.to_owned());
        }
    }
    if !list.iter().any(|c| c == "srvr") {
        list.push("srvr".to_owned());
    }
    list
}

/// The version ZooKeeper reads from a dynamic file's name: the hex digits
/// after its last dot (`zoo.cfg.dynamic.100000000`), if they are hex.
fn dynamic_version(path: &str) -> Option<u64> {
    let (_, suffix) = path.rsplit_once('.')?;
    u64::from_str_radix(suffix, 16).ok()
}

#[cfg(test)]
mod tests;
