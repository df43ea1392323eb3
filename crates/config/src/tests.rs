use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

fn parse(text: &str) -> Config {
    Config::parse_str(text, "zoo.cfg").unwrap_or_else(|e| panic!("{e}"))
}

fn error(text: &str) -> String {
    match Config::parse_str(text, "zoo.cfg") {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

/// A minimal valid standalone file, with `extra` appended.
fn with(extra: &str) -> Config {
    parse(&format!("dataDir=/var/zk\nclientPort=2181\n{extra}\n"))
}

fn error_with(extra: &str) -> String {
    error(&format!("dataDir=/var/zk\nclientPort=2181\n{extra}\n"))
}

/// A fresh directory under the system temp dir, for tests touching files.
fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ensemble-config-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The zoo.cfg block of the seed article (Chinese comments and all), verbatim
/// apart from the line numbers the article prints in front of each line.
const SEED_ZOO_CFG: &str = "# The number of milliseconds of each tick
# tickTime:CS通信心跳数
# Zookeeper 服务器之间或客户端与服务器之间维持心跳的时间间隔,也就是每个 tickTime 时间就会发送一个心跳。tickTime以毫秒为单位。
tickTime=2000

# The number of ticks that the initial 
# synchronization phase can take
# initLimit:LF初始通信时限
# 集群中的follower服务器(F)与leader服务器(L)之间初始连接时能容忍的最多心跳数(tickTime的数量)。
initLimit=5

# The number of ticks that can pass between 
# sending a request and getting an acknowledgement
# syncLimit:LF同步通信时限
# 集群中的follower服务器与leader服务器之间请求和应答之间能容忍的最多心跳数(tickTime的数量)。
syncLimit=2

# the directory where the snapshot is stored.
# do not use /tmp for storage, /tmp here is just 
# example sakes.
# dataDir:数据文件目录
# Zookeeper保存数据的目录,默认情况下,Zookeeper将写数据的日志文件也保存在这个目录里。
dataDir=/data/soft/zookeeper-3.4.12/data


# dataLogDir:日志文件目录
# Zookeeper保存日志文件的目录。
dataLogDir=/data/soft/zookeeper-3.4.12/logs

# the port at which the clients will connect
# clientPort:客户端连接端口
# 客户端连接 Zookeeper 服务器的端口,Zookeeper 会监听这个端口,接受客户端的访问请求。
clientPort=2181

# the maximum number of client connections.
# increase this if you need to handle more clients
#maxClientCnxns=60
#
# Be sure to read the maintenance section of the 
# administrator guide before turning on autopurge.
#
# http://zookeeper.apache.org/doc/current/zookeeperAdmin.html#sc_maintenance
#
# The number of snapshots to retain in dataDir
#autopurge.snapRetainCount=3
# Purge task interval in hours
# Set to \"0\" to disable auto purge feature
#autopurge.purgeInterval=1


# 服务器名称与地址:集群信息(服务器编号,服务器地址,LF通信端口,选举端口)
# 这个配置项的书写格式比较特殊,规则如下:

# server.N=YYY:A:B  

# 其中N表示服务器编号,YYY表示服务器的IP地址,A为LF通信端口,表示该服务器与集群中的leader交换的信息的端口。B为选举端口,表示选举新leader时服务器间相互通信的端口(当leader挂掉时,其余服务器会相互通信,选择出新的leader)。一般来说,集群中每个服务器的A端口都是一样,每个服务器的B端口也是一样。但是当所采用的为伪集群时,IP地址都一样,只能时A端口和B端口不一样。
";

/// ZooKeeper 3.8's conf/zoo_sample.cfg, verbatim.
const ZK38_SAMPLE: &str = "# The number of milliseconds of each tick
tickTime=2000
# The number of ticks that the initial 
# synchronization phase can take
initLimit=10
# The number of ticks that can pass between 
# sending a request and getting an acknowledgement
syncLimit=5
# the directory where the snapshot is stored.
# do not use /tmp for storage, /tmp here is just 
# example sakes.
dataDir=/tmp/zookeeper
# the port at which the clients will connect
clientPort=2181
# the maximum number of client connections.
# increase this if you need to handle more clients
#maxClientCnxns=60
#
# Be sure to read the maintenance section of the 
# administrator guide before turning on autopurge.
#
# https://zookeeper.apache.org/doc/current/zookeeperAdmin.html#sc_maintenance
#
# The number of snapshots to retain in dataDir
#autopurge.snapRetainCount=3
# Purge task interval in hours
# Set to \"0\" to disable auto purge feature
#autopurge.purgeInterval=1

## Metrics Providers
#
# https://prometheus.io Metrics Exporter
#metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider
#metricsProvider.httpHost=0.0.0.0
#metricsProvider.httpPort=7000
#metricsProvider.exportJvmInfo=true
";

// ---- whole files ----

#[test]
fn seed_article_zoo_cfg_parses_verbatim() {
    let c = parse(SEED_ZOO_CFG);
    assert_eq!(c.tick_time, 2000);
    assert_eq!(c.init_limit, 5);
    assert_eq!(c.sync_limit, 2);
    assert_eq!(
        c.data_dir,
        PathBuf::from("/data/soft/zookeeper-3.4.12/data")
    );
    assert_eq!(
        c.data_log_dir,
        Some(PathBuf::from("/data/soft/zookeeper-3.4.12/logs"))
    );
    assert_eq!(c.client_port, Some(2181));
    assert_eq!(c.max_client_cnxns, 60);
    assert!(c.servers.is_empty());
    assert!(!c.is_quorum());
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn zookeeper_38_sample_parses() {
    let c = parse(ZK38_SAMPLE);
    assert_eq!((c.tick_time, c.init_limit, c.sync_limit), (2000, 10, 5));
    assert_eq!(c.data_dir, PathBuf::from("/tmp/zookeeper"));
    assert_eq!(c.client_addr(), "0.0.0.0:2181".parse().unwrap());
    assert_eq!(
        (c.min_session_timeout, c.max_session_timeout),
        (4000, 40000)
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn zookeeper_38_sample_with_metrics_lines_uncommented_turns_prometheus_on() {
    let text = ZK38_SAMPLE.replace("#metricsProvider", "metricsProvider");
    let c = parse(&text);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(
        c.metrics_provider,
        MetricsProvider::Prometheus {
            http_host: "0.0.0.0".to_owned(),
            http_port: 7000,
            export_process_info: true,
        }
    );
}

#[test]
fn metrics_provider_keys_may_come_before_the_class_name() {
    let c = with(
        "metricsProvider.httpPort=7001\nmetricsProvider.httpHost=127.0.0.1\n\
         metricsProvider.exportJvmInfo=false\nmetricsProvider.numWorkerThreads=2\n\
         metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
    );
    assert_eq!(
        c.metrics_provider,
        MetricsProvider::Prometheus {
            http_host: "127.0.0.1".to_owned(),
            http_port: 7001,
            export_process_info: false,
        }
    );
    assert_eq!(
        c.warnings,
        ["zoo.cfg:6: key 'metricsProvider.numWorkerThreads' is accepted but not used yet"]
    );
}

#[test]
fn default_metrics_provider_serves_no_http() {
    assert_eq!(with("").metrics_provider, MetricsProvider::Default);
    let c =
        with("metricsProvider.className=org.apache.zookeeper.metrics.impl.DefaultMetricsProvider");
    assert_eq!(c.metrics_provider, MetricsProvider::Default);
}

#[test]
fn bad_metrics_provider_values_name_file_line_and_key() {
    assert_eq!(
        error_with("metricsProvider.className=com.example.Metrics"),
        "zoo.cfg:3: metricsProvider.className: unknown metrics provider 'com.example.Metrics': \
         expected org.apache.zookeeper.metrics.impl.DefaultMetricsProvider or \
         org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"
    );
    assert_eq!(
        error_with(
            "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
             metricsProvider.httpPort=70000"
        ),
        "zoo.cfg:4: metricsProvider.httpPort: invalid value '70000': expected a port number (0-65535)"
    );
    assert_eq!(
        error_with(
            "metricsProvider.exportJvmInfo=yes\n\
             metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"
        ),
        "zoo.cfg:3: metricsProvider.exportJvmInfo: invalid value 'yes': expected true or false"
    );
}

#[test]
fn admin_command_url_defaults_to_commands_and_must_be_a_path() {
    assert_eq!(with("").admin_command_url, "/commands");
    assert_eq!(with("admin.commandURL=/admin/").admin_command_url, "/admin");
    assert_eq!(
        error_with("admin.commandURL=commands"),
        "zoo.cfg:3: admin.commandURL: invalid value 'commands': expected a URL path starting with '/'"
    );
}

#[test]
fn initial_configuration_and_system_properties_are_kept_as_zookeeper_keeps_them() {
    let text =
        "dataDir=/var/zk\nclientPort=2181\nadmin.serverPort=9090\n4lw.commands.whitelist=*\n";
    let c = parse(text);
    assert_eq!(c.initial_config, text);
    let props: Vec<(&str, &str)> = c
        .system_properties
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        props,
        [
            ("zookeeper.4lw.commands.whitelist", "*"),
            ("zookeeper.admin.serverPort", "9090")
        ]
    );
}

#[test]
fn every_key_the_brief_lists_parses() {
    let c = parse(
        "tickTime=2000
initLimit=10
syncLimit=5
dataDir=/var/zk/data
dataLogDir=/var/zk/log
clientPort=2181
clientPortAddress=127.0.0.1
secureClientPort=2281
maxClientCnxns=100
minSessionTimeout=3000
maxSessionTimeout=60000
autopurge.snapRetainCount=5
autopurge.purgeInterval=24
admin.serverPort=9090
admin.enableServer=false
admin.serverAddress=127.0.0.1
4lw.commands.whitelist=stat, ruok, conf, isro
server.1=zoo1:2888:3888
server.2=zoo2:2888:3888
server.3=zoo3:2888:3888:observer;2182
standaloneEnabled=true
reconfigEnabled=true
forceSync=no
preAllocSize=16384
snapCount=50000
jute.maxbuffer=0x3fffff
metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider
metricsProvider.httpPort=7000
quorumListenOnAllIPs=true
electionAlg=3
peerType=participant
syncEnabled=true
ssl.keyStore.location=/etc/zk/keystore.jks
DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=
extendedTypesEnabled=true
globalOutstandingLimit=2000
localSessionsEnabled=true
localSessionsUpgradingEnabled=true
",
    );
    assert_eq!(c.client_addr(), "127.0.0.1:2181".parse().unwrap());
    assert_eq!(c.secure_client_port, Some(2281));
    assert_eq!(c.max_client_cnxns, 100);
    assert_eq!(
        (c.min_session_timeout, c.max_session_timeout),
        (3000, 60000)
    );
    assert_eq!(
        (c.autopurge_snap_retain_count, c.autopurge_purge_interval),
        (5, 24)
    );
    assert!(!c.admin_enable_server);
    assert_eq!(
        (c.admin_server_address.as_str(), c.admin_server_port),
        ("127.0.0.1", 9090)
    );
    assert_eq!(
        c.four_letter_word_whitelist,
        ["stat", "ruok", "conf", "isro", "srvr"]
    );
    assert_eq!(c.servers.len(), 3);
    assert!(c.servers[&3].observer);
    assert!(c.is_quorum());
    assert!(c.reconfig_enabled);
    assert!(!c.force_sync);
    assert_eq!(c.pre_alloc_size, 16 * 1024 * 1024);
    assert_eq!(c.snap_count, 50000);
    assert_eq!(c.jute_max_buffer, 0x3fffff);
    assert!(c.quorum_listen_on_all_ips);
    assert_eq!(
        c.super_digest.as_deref(),
        Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=")
    );
    assert!(c.extended_types_enabled);
    assert_eq!(c.global_outstanding_limit, 2000);
    assert!(c.local_sessions_enabled && c.local_sessions_upgrading_enabled);
    let unused: Vec<&str> = c
        .warnings
        .iter()
        .filter(|w| w.contains("accepted but not used yet"))
        .map(|w| w.split('\'').nth(1).unwrap())
        .collect();
    assert_eq!(
        unused,
        ["secureClientPort", "syncEnabled", "ssl.keyStore.location"]
    );
}

// ---- defaults ----

#[test]
fn defaults_follow_zookeeper() {
    let c = parse("dataDir=/var/zk\nclientPort=2181");
    assert_eq!(c.tick_time, 3000);
    assert_eq!((c.init_limit, c.sync_limit), (10, 5));
    assert_eq!(c.data_log_dir, None);
    assert_eq!(c.txn_log_dir(), Path::new("/var/zk"));
    assert_eq!(c.client_port_address, None);
    assert_eq!(c.secure_client_port, None);
    assert_eq!(c.max_client_cnxns, 60);
    assert_eq!(
        (c.min_session_timeout, c.max_session_timeout),
        (6000, 60000)
    );
    assert_eq!(
        (c.autopurge_snap_retain_count, c.autopurge_purge_interval),
        (3, 0)
    );
    assert!(c.admin_enable_server);
    assert_eq!(
        (c.admin_server_address.as_str(), c.admin_server_port),
        ("0.0.0.0", 8080)
    );
    assert_eq!(c.four_letter_word_whitelist, ["srvr"]);
    assert!(c.standalone_enabled && !c.reconfig_enabled);
    assert!(c.force_sync);
    assert_eq!(c.pre_alloc_size, 64 * 1024 * 1024);
    assert_eq!(c.snap_count, 100_000);
    assert_eq!(c.jute_max_buffer, 1_048_575);
    assert_eq!(c.super_digest, None);
    assert!(!c.extended_types_enabled);
    assert_eq!(c.global_outstanding_limit, 1000);
    assert_eq!(c.peer_type, PeerType::Participant);
    assert!(!c.local_sessions_enabled);
    assert!(c.warnings.is_empty() && c.unknown.is_empty());
}

#[test]
fn embedded_default_listens_on_2181_with_data_in_dot_data() {
    let c = Config::embedded_default();
    assert_eq!(c.client_addr(), "0.0.0.0:2181".parse().unwrap());
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert!(c.admin_enable_server);
    assert_eq!(c.admin_server_port, 8080);
    assert!(!c.is_quorum());
}

#[test]
fn session_timeouts_default_to_2_and_20_ticks_of_the_configured_tick() {
    let c = with("tickTime=1000");
    assert_eq!(
        (c.min_session_timeout, c.max_session_timeout),
        (2000, 20000)
    );
}

#[test]
fn minus_one_session_timeout_means_default() {
    let c = with("tickTime=1000\nminSessionTimeout=-1\nmaxSessionTimeout=-1");
    assert_eq!(
        (c.min_session_timeout, c.max_session_timeout),
        (2000, 20000)
    );
}

// ---- individual keys ----

#[test]
fn data_log_dir_separates_the_txn_log() {
    let c = with("dataLogDir=/fast/log");
    assert_eq!(c.txn_log_dir(), Path::new("/fast/log"));
}

#[test]
fn relative_data_dir_is_accepted_with_a_warning() {
    let c = parse("dataDir=data\nclientPort=2181");
    assert_eq!(c.data_dir, PathBuf::from("data"));
    assert_eq!(
        c.warnings,
        ["zoo.cfg:1: dataDir 'data' is a relative path; it is resolved against the working directory"]
    );
}

#[test]
fn client_port_address_takes_ipv4_ipv6_and_host_names() {
    assert_eq!(
        with("clientPortAddress=10.1.2.3").client_addr(),
        "10.1.2.3:2181".parse().unwrap()
    );
    assert_eq!(
        with("clientPortAddress=::1").client_addr(),
        "[::1]:2181".parse().unwrap()
    );
    assert!(with("clientPortAddress=localhost")
        .client_port_address
        .unwrap()
        .is_loopback());
}

#[test]
fn snap_retain_count_below_three_is_raised_with_a_warning() {
    let c = with("autopurge.snapRetainCount=1");
    assert_eq!(c.autopurge_snap_retain_count, 3);
    assert_eq!(c.warnings.len(), 1);
}

#[test]
fn negative_purge_interval_disables_purging() {
    assert_eq!(
        with("autopurge.purgeInterval=-1").autopurge_purge_interval,
        0
    );
}

#[test]
fn four_letter_word_star_allows_everything() {
    let c = with("4lw.commands.whitelist=*");
    assert_eq!(c.four_letter_word_whitelist, ["*"]);
    assert!(c.four_letter_word_allowed("mntr"));
}

#[test]
fn srvr_is_always_whitelisted_and_others_only_when_listed() {
    let c = with("4lw.commands.whitelist=ruok,,  mntr ");
    assert_eq!(c.four_letter_word_whitelist, ["ruok", "mntr", "srvr"]);
    assert!(c.four_letter_word_allowed("srvr"));
    assert!(!c.four_letter_word_allowed("stat"));
    assert!(!Config::embedded_default().four_letter_word_allowed("ruok"));
}

#[test]
fn booleans_are_true_or_false_in_any_case() {
    let c = with("standaloneEnabled=FALSE\nreconfigEnabled=True\nserver.1=a:1:2");
    assert!(!c.standalone_enabled);
    assert!(c.reconfig_enabled);
}

#[test]
fn force_sync_takes_yes_and_no() {
    assert!(with("forceSync=yes").force_sync);
    assert!(!with("forceSync=no").force_sync);
    assert!(!with("forceSync=false").force_sync);
}

#[test]
fn pre_alloc_size_is_kilobytes_in_the_file_and_bytes_in_config() {
    assert_eq!(with("preAllocSize=1").pre_alloc_size, 1024);
    assert_eq!(with("preAllocSize=0").pre_alloc_size, 0);
}

#[test]
fn min_free_disk_space_is_megabytes_in_the_file_and_bytes_in_config() {
    assert_eq!(with("").min_free_disk_space, 64 << 20);
    assert_eq!(
        with("ensemble.minFreeDiskSpaceMb=5").min_free_disk_space,
        5 << 20
    );
    assert_eq!(with("ensemble.minFreeDiskSpaceMb=0").min_free_disk_space, 0);
    let e = error_with("ensemble.minFreeDiskSpaceMb=-1");
    assert!(e.contains("ensemble.minFreeDiskSpaceMb"), "{e}");
}

#[test]
fn snap_count_below_two_is_raised_to_two() {
    let c = with("snapCount=1");
    assert_eq!(c.snap_count, 2);
    assert_eq!(c.warnings.len(), 1);
}

#[test]
fn system_property_keys_take_hex_and_octal_like_integer_decode() {
    assert_eq!(with("jute.maxbuffer=0xfffff").jute_max_buffer, 0xfffff);
    assert_eq!(with("jute.maxbuffer=#10").jute_max_buffer, 16);
    assert_eq!(with("jute.maxbuffer=010").jute_max_buffer, 8);
    assert_eq!(with("jute.maxbuffer=4194304").jute_max_buffer, 4_194_304);
    assert_eq!(with("snapCount=0x10").snap_count, 16);
    assert_eq!(with("admin.serverPort=0x1F90").admin_server_port, 8080);
}

#[test]
fn parse_int_keys_take_a_plus_sign_but_not_hex() {
    assert_eq!(with("tickTime=+500").tick_time, 500);
    assert!(error_with("tickTime=0x10").contains("invalid value '0x10'"));
}

#[test]
fn peer_type_observer() {
    assert_eq!(with("peerType=Observer").peer_type, PeerType::Observer);
}

#[test]
fn unknown_key_warns_and_is_kept() {
    let c = with("fooBar = baz");
    assert_eq!(c.unknown.get("fooBar").map(String::as_str), Some("baz"));
    assert_eq!(
        c.warnings,
        ["zoo.cfg:3: unknown key 'fooBar' is ignored (ZooKeeper would only set the system property zookeeper.fooBar)"]
    );
}

#[test]
fn keys_are_case_sensitive_like_zookeeper() {
    let c = with("ticktime=100");
    assert_eq!(c.tick_time, DEFAULT_TICK_TIME);
    assert!(c.unknown.contains_key("ticktime"));
}

#[test]
fn known_but_unused_key_warns_with_its_line() {
    let c = with("syncEnabled=true");
    assert_eq!(
        c.warnings,
        ["zoo.cfg:3: key 'syncEnabled' is accepted but not used yet"]
    );
}

#[test]
fn repeated_key_last_value_wins_with_a_warning() {
    let c = with("tickTime=abc\ntickTime=1000");
    assert_eq!(c.tick_time, 1000);
    assert_eq!(
        c.warnings,
        ["zoo.cfg:3: key 'tickTime' is set again on line 4; the last value wins"]
    );
}

// ---- file syntax ----

#[test]
fn colon_and_blank_separators_and_surrounding_blanks() {
    let c = parse("  dataDir : /var/zk  \nclientPort 2182\ntickTime\t=\t1500\t\n");
    assert_eq!(c.data_dir, PathBuf::from("/var/zk"));
    assert_eq!(c.client_port, Some(2182));
    assert_eq!(c.tick_time, 1500);
}

#[test]
fn continuation_lines_join_a_value() {
    let c = with("4lw.commands.whitelist=ruok, \\\n    mntr, \\\n    stat");
    assert_eq!(
        c.four_letter_word_whitelist,
        ["ruok", "mntr", "stat", "srvr"]
    );
}

#[test]
fn comments_with_hash_and_bang_are_ignored() {
    let c = with("# tickTime=1\n! tickTime=2\n   # tickTime=3");
    assert_eq!(c.tick_time, DEFAULT_TICK_TIME);
}

#[test]
fn windows_line_endings() {
    let c = parse("dataDir=/var/zk\r\nclientPort=2181\r\ntickTime=100\r\n");
    assert_eq!(c.tick_time, 100);
}

#[test]
fn error_lines_count_physical_lines_including_comments_and_continuations() {
    assert_eq!(
        error("# c\ndataDir=/a\\\n  b\n\nclientPort=2181\ntickTime=x"),
        "zoo.cfg:6: tickTime: invalid value 'x': expected a positive integer (milliseconds)"
    );
}

// ---- error shapes ----

#[test]
fn bad_integer_names_file_line_and_key() {
    assert_eq!(
        error_with("tickTime=abc"),
        "zoo.cfg:3: tickTime: invalid value 'abc': expected a positive integer (milliseconds)"
    );
}

#[test]
fn zero_tick_time_is_rejected() {
    assert!(error_with("tickTime=0").starts_with("zoo.cfg:3: tickTime: invalid value '0'"));
}

#[test]
fn integer_overflow_is_rejected() {
    assert!(error_with("maxClientCnxns=99999999999").starts_with("zoo.cfg:3: maxClientCnxns:"));
}

#[test]
fn negative_max_client_cnxns_is_rejected() {
    assert!(error_with("maxClientCnxns=-5")
        .starts_with("zoo.cfg:3: maxClientCnxns: invalid value '-5'"));
}

#[test]
fn bad_boolean_is_rejected() {
    assert_eq!(
        error_with("standaloneEnabled=yes"),
        "zoo.cfg:3: standaloneEnabled: invalid value 'yes': expected true or false"
    );
}

#[test]
fn bad_force_sync_is_rejected() {
    assert_eq!(
        error_with("forceSync=maybe"),
        "zoo.cfg:3: forceSync: invalid value 'maybe': expected yes or no"
    );
}

#[test]
fn port_out_of_range_is_rejected() {
    assert_eq!(
        error("dataDir=/d\nclientPort=65536"),
        "zoo.cfg:2: clientPort: invalid value '65536': expected a port number (0-65535)"
    );
}

#[test]
fn min_session_timeout_above_max_is_rejected() {
    assert_eq!(
        error_with("minSessionTimeout=5000\nmaxSessionTimeout=4000"),
        "zoo.cfg:3: minSessionTimeout: minSessionTimeout (5000 ms) must not be larger than maxSessionTimeout (4000 ms)"
    );
}

#[test]
fn max_session_timeout_below_default_min_names_max() {
    assert!(error_with("tickTime=2000\nmaxSessionTimeout=1000")
        .starts_with("zoo.cfg:4: maxSessionTimeout: minSessionTimeout (4000 ms)"));
}

#[test]
fn session_timeout_below_minus_one_is_rejected() {
    assert!(error_with("minSessionTimeout=-2").starts_with("zoo.cfg:3: minSessionTimeout:"));
}

#[test]
fn election_alg_other_than_3_is_rejected() {
    assert_eq!(
        error_with("electionAlg=1"),
        "zoo.cfg:3: electionAlg: invalid value '1': only 3 (fast leader election) is supported"
    );
}

#[test]
fn bad_peer_type_is_rejected() {
    assert!(
        error_with("peerType=leader").starts_with("zoo.cfg:3: peerType: invalid value 'leader'")
    );
}

#[test]
fn missing_data_dir_names_file_and_key_without_line() {
    assert_eq!(
        error("clientPort=2181"),
        "zoo.cfg: dataDir: missing required key: the directory for snapshots (and for the transaction log unless dataLogDir is set)"
    );
}

#[test]
fn empty_data_dir_is_rejected() {
    assert_eq!(
        error("dataDir=\nclientPort=2181"),
        "zoo.cfg:1: dataDir: empty value: expected a directory path"
    );
}

#[test]
fn missing_client_port_names_file_and_key_without_line() {
    assert_eq!(
        error("dataDir=/d"),
        "zoo.cfg: clientPort: missing required key: no clientPort, and no client address in this server's server.N line"
    );
}

#[test]
fn client_port_address_without_client_port_is_rejected() {
    assert_eq!(
        error("dataDir=/d\nclientPortAddress=127.0.0.1"),
        "zoo.cfg:2: clientPortAddress: clientPortAddress is set but clientPort is not set"
    );
}

#[test]
fn unresolvable_client_port_address_is_rejected() {
    assert!(error_with("clientPortAddress=no-such-host.invalid")
        .starts_with("zoo.cfg:3: clientPortAddress: invalid value 'no-such-host.invalid'"));
}

#[test]
fn malformed_unicode_escape_names_file_and_line() {
    assert_eq!(
        error("dataDir=/d\\u00zz"),
        "zoo.cfg:1: malformed \\uxxxx escape '\\u00zz'"
    );
}

#[test]
fn jute_maxbuffer_must_be_positive() {
    assert!(
        error_with("jute.maxbuffer=0").starts_with("zoo.cfg:3: jute.maxbuffer: invalid value '0'")
    );
}

#[test]
fn negative_pre_alloc_size_is_rejected() {
    assert!(error_with("preAllocSize=-1").starts_with("zoo.cfg:3: preAllocSize:"));
}

// ---- server.N ----

const THREE: &str = "dataDir=/d\nclientPort=2181\ninitLimit=10\nsyncLimit=5\n\
server.1=zoo1:2888:3888\nserver.2=zoo2:2888:3888\nserver.3=zoo3:2888:3888\n";

#[test]
fn three_servers_make_a_quorum() {
    let c = parse(THREE);
    assert!(c.is_quorum());
    assert_eq!(
        c.servers[&2],
        ServerSpec {
            host: "zoo2".to_owned(),
            peer_port: 2888,
            election_port: 3888,
            observer: false,
            client_addr: None,
        }
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn one_server_with_standalone_enabled_is_standalone() {
    let c = with("server.1=zoo1:2888:3888");
    assert!(!c.is_quorum());
    assert_eq!(c.warnings.len(), 1);
}

#[test]
fn one_server_with_standalone_disabled_is_a_quorum() {
    assert!(with("standaloneEnabled=false\nserver.1=zoo1:2888:3888").is_quorum());
}

#[test]
fn observers_do_not_count_toward_a_quorum() {
    let c = with("standaloneEnabled=false\nserver.1=a:1:2\nserver.2=b:1:2:observer");
    assert!(c.is_quorum());
    assert_eq!(
        error_with("server.1=a:1:2\nserver.2=b:1:2:observer"),
        "zoo.cfg: server.N: observers without a quorum is an invalid configuration"
    );
}

#[test]
fn standalone_disabled_without_servers_is_rejected() {
    assert!(error_with("standaloneEnabled=false").contains("needs at least one participant"));
}

#[test]
fn two_or_an_even_number_of_servers_warn() {
    let two = with("server.1=a:1:2\nserver.2=b:1:2");
    assert!(two
        .warnings
        .iter()
        .any(|w| w.contains("no server failure will be tolerated")));
    let four = with("server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\nserver.4=d:1:2");
    assert!(four.warnings.iter().any(|w| w.contains("odd number")));
}

#[test]
fn quorum_without_init_limit_warns_and_uses_the_default() {
    let c = parse(
        "dataDir=/d\nclientPort=2181\nsyncLimit=5\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2",
    );
    assert_eq!(c.init_limit, DEFAULT_INIT_LIMIT);
    assert!(c
        .warnings
        .iter()
        .any(|w| w.contains("initLimit is not set")));
}

#[test]
fn quorum_with_zero_sync_limit_is_rejected() {
    assert_eq!(
        error(&THREE.replace("syncLimit=5", "syncLimit=0")),
        "zoo.cfg:4: syncLimit: syncLimit must be at least 1 tick in a quorum"
    );
}

#[test]
fn bad_server_line_names_file_line_and_key() {
    assert_eq!(
        error_with("server.1=zoo1:2888"),
        "zoo.cfg:3: server.1: invalid value 'zoo1:2888': expected host:peerPort:electionPort[:participant|observer][;[clientHost:]clientPort]"
    );
}

#[test]
fn bad_server_id_is_rejected() {
    assert_eq!(
        error_with("server.x=zoo1:2888:3888"),
        "zoo.cfg:3: server.x: invalid server id 'x': expected a non-negative integer"
    );
}

#[test]
fn server_line_trailing_blanks_are_trimmed() {
    let c = with("server.1 = zoo1:2888:3888   ");
    assert_eq!(c.servers[&1].election_port, 3888);
}

#[test]
fn quorum_may_take_client_ports_from_server_lines() {
    let c = parse(
        "dataDir=/d\nserver.1=a:1:2;2181\nserver.2=b:1:2;2182\nserver.3=c:1:2;127.0.0.1:2183",
    );
    assert_eq!(c.client_port, None);
    assert_eq!(
        c.servers[&3].client_addr,
        Some(("127.0.0.1".to_owned(), 2183))
    );
}

#[test]
fn quorum_without_any_client_port_is_rejected() {
    assert!(
        error("dataDir=/d\nserver.1=a:1:2;2181\nserver.2=b:1:2\nserver.3=c:1:2")
            .starts_with("zoo.cfg: clientPort: missing required key")
    );
}

#[test]
fn multi_address_servers_keep_the_first_address() {
    let c = with("multiAddress.enabled=true\nserver.1=a:1:2|b:3:4");
    assert_eq!(c.servers[&1].host, "a");
    assert!(c
        .warnings
        .iter()
        .any(|w| w.contains("only the first address")));
    assert!(error_with("server.1=a:1:2|b:3:4").contains("multiAddress.enabled"));
}

#[test]
fn group_and_weight_keys_are_accepted_with_a_warning() {
    let c = parse(&format!("{THREE}group.1=1:2:3\nweight.1=1\n"));
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
}

// ---- myid and files ----

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn from_file_reads_myid_in_quorum_mode() {
    let dir = temp_dir("myid");
    write(&dir, "myid", "2\n");
    let cfg = write(
        &dir,
        "zoo.cfg",
        &THREE.replace("dataDir=/d", &format!("dataDir={}", dir.display())),
    );
    let c = Config::from_file(&cfg).unwrap();
    assert_eq!(c.my_id, Some(2));
    assert_eq!(c.read_myid().unwrap(), 2);
    assert_eq!(c.config_file, cfg.display().to_string());
}

#[test]
fn from_file_without_myid_in_quorum_mode_fails_naming_the_myid_file() {
    let dir = temp_dir("nomyid");
    let cfg = write(
        &dir,
        "zoo.cfg",
        &THREE.replace("dataDir=/d", &format!("dataDir={}", dir.display())),
    );
    let e = Config::from_file(&cfg).unwrap_err();
    assert_eq!(e.file, dir.join("myid").display().to_string());
    assert!(e.to_string().contains("myid file is missing"), "{e}");
}

#[test]
fn myid_that_is_not_a_number_is_rejected() {
    let dir = temp_dir("badmyid");
    write(&dir, "myid", "replace this text with the id\n");
    let c = Config {
        data_dir: dir.clone(),
        ..parse(THREE)
    };
    let e = c.read_myid().unwrap_err();
    assert_eq!(e.line, Some(1));
    assert!(e.message.contains("is not a number"), "{e}");
}

#[test]
fn myid_not_in_the_server_list_is_rejected() {
    let dir = temp_dir("strangemyid");
    write(&dir, "myid", "7");
    let c = Config {
        data_dir: dir.clone(),
        ..parse(THREE)
    };
    assert!(c
        .read_myid()
        .unwrap_err()
        .message
        .contains("my id 7 is not in the peer list"));
}

#[test]
fn extended_types_limit_server_ids_to_254() {
    let dir = temp_dir("bigid");
    write(&dir, "myid", "300");
    let c = Config {
        data_dir: dir.clone(),
        extended_types_enabled: true,
        ..parse("dataDir=/d\nclientPort=1")
    };
    assert!(c.read_myid().unwrap_err().message.contains("at most 254"));
}

#[test]
fn apply_myid_takes_the_client_address_of_this_server() {
    let mut c = parse(
        "dataDir=/d\nserver.1=a:1:2;2181\nserver.2=b:1:2:observer;127.0.0.1:2182\nserver.3=c:1:2;2183",
    );
    c.apply_myid(2).unwrap();
    assert_eq!(c.client_addr(), "127.0.0.1:2182".parse().unwrap());
    assert_eq!(c.peer_type, PeerType::Observer);
    assert_eq!(
        c.warnings.last().map(String::as_str),
        Some("zoo.cfg: peerType Participant does not match the role of server.2 (Observer); using the server list")
    );
}

#[test]
fn apply_myid_rejects_a_client_port_that_disagrees_with_the_server_line() {
    let mut c = parse(&THREE.replace("server.1=zoo1:2888:3888", "server.1=zoo1:2888:3888;2999"));
    let e = c.apply_myid(1).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("server.1"));
    assert!(e.message.contains("differs"), "{e}");
}

#[test]
fn from_file_names_a_missing_file() {
    let e = Config::from_file(Path::new("/nonexistent/zoo.cfg")).unwrap_err();
    assert!(e
        .to_string()
        .starts_with("/nonexistent/zoo.cfg: cannot read the configuration file"));
}

#[test]
fn dynamic_config_file_supplies_the_servers() {
    let dir = temp_dir("dynamic");
    let dynamic = write(
        &dir,
        "zoo.cfg.dynamic.100000000",
        "server.1=a:2888:3888:participant;2181\nserver.2=b:2888:3888:participant;2181\nserver.3=c:2888:3888:participant;2181\n",
    );
    let c = parse(&format!(
        "dataDir=/d\ninitLimit=5\nsyncLimit=2\ndynamicConfigFile={}\n",
        dynamic.display()
    ));
    assert_eq!(c.servers.len(), 3);
    assert_eq!(c.dynamic_config_version, Some(0x1_0000_0000));
    assert!(c.is_quorum());
}

#[test]
fn server_lines_next_to_dynamic_config_file_are_rejected() {
    let dir = temp_dir("dynamic2");
    let dynamic = write(&dir, "zoo.cfg.dynamic", "server.1=a:1:2\n");
    assert_eq!(
        error(&format!(
            "dataDir=/d\nclientPort=1\ndynamicConfigFile={}\nserver.1=a:1:2\n",
            dynamic.display()
        )),
        "zoo.cfg:4: server.1: must be in the dynamic config file, since dynamicConfigFile is set"
    );
}

#[test]
fn dynamic_config_file_with_other_keys_is_rejected() {
    let dir = temp_dir("dynamic3");
    let dynamic = write(&dir, "zoo.cfg.dynamic", "server.1=a:1:2\ntickTime=5\n");
    let e = Config::parse_str(
        &format!(
            "dataDir=/d\nclientPort=1\ndynamicConfigFile={}\n",
            dynamic.display()
        ),
        "zoo.cfg",
    )
    .unwrap_err();
    assert_eq!(e.file, dynamic.display().to_string());
    assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("tickTime")));
}

#[test]
fn error_display_without_key_or_line() {
    let e = ConfigError {
        file: "zoo.cfg".to_owned(),
        line: None,
        key: None,
        message: "boom".to_owned(),
    };
    assert_eq!(e.to_string(), "zoo.cfg: boom");
}

#[test]
fn server_lines_are_also_zookeeper_system_properties() {
    let c = with("server.1=127.0.0.1:2888:3888;127.0.0.1:2181");
    assert_eq!(
        c.system_properties
            .get("zookeeper.server.1")
            .map(String::as_str),
        Some("127.0.0.1:2888:3888;127.0.0.1:2181")
    );
}

#[test]
fn max_cnxns_is_the_total_connection_limit() {
    assert_eq!(with("").max_cnxns, 0);
    let c = with("maxCnxns=500");
    assert_eq!(c.max_cnxns, 500);
    // ZooKeeper reads it as the system property zookeeper.maxCnxns.
    assert_eq!(
        c.system_properties
            .get("zookeeper.maxCnxns")
            .map(String::as_str),
        Some("500")
    );
    assert!(error_with("maxCnxns=-1").starts_with("zoo.cfg:3: maxCnxns: invalid value '-1'"));
}

#[test]
fn request_throttler_keys_take_the_system_property_names_and_the_documented_ones() {
    let c = with("");
    assert_eq!(c.request_throttle_max_requests, 0);
    assert_eq!(c.request_throttle_stall_time_ms, 100);
    assert!(c.request_throttle_drop_stale);
    assert!(!c.request_stale_latency_check);
    assert_eq!(c.throttled_op_wait_time_ms, 0);
    let c = with(
        "request_throttle_max_requests=20\nrequest_throttle_stall_time=5\n\
         request_throttle_drop_stale=false\nthrottled_op_wait_time=300\n\
         request_stale_latency_check=true",
    );
    assert_eq!(c.request_throttle_max_requests, 20);
    assert_eq!(c.request_throttle_stall_time_ms, 5);
    assert!(!c.request_throttle_drop_stale);
    assert!(c.request_stale_latency_check);
    assert_eq!(c.throttled_op_wait_time_ms, 300);
    // ZooKeeper reads zookeeper.request_throttle_max_requests.
    assert_eq!(
        c.system_properties
            .get("zookeeper.request_throttle_max_requests")
            .map(String::as_str),
        Some("20")
    );
    let c = with("requestThrottleLimit=7\nthrottledOpWaitTime=9");
    assert_eq!(c.request_throttle_max_requests, 7);
    assert_eq!(c.throttled_op_wait_time_ms, 9);
    assert!(c
        .warnings
        .iter()
        .all(|w| !w.contains("requestThrottleLimit")));
    assert!(error_with("request_throttle_stall_time=0")
        .starts_with("zoo.cfg:3: request_throttle_stall_time: invalid value '0'"));
}
