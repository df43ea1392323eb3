//! Keys ZooKeeper 3.9 knows (from `QuorumPeerConfig.parseProperties` and the
//! administrator's guide) that Ensemble accepts without acting on them yet.
//!
//! ZooKeeper turns every key it does not parse itself into the system property
//! `zookeeper.<key>`, so no key is ever an error there. We keep that: a key in
//! these tables gives an "accepted but not used yet" warning, any other
//! unparsed key an "unknown key" warning.

/// Exact keys.
const EXACT: &[&str] = &[
    "observerMasterPort",
    "clientPortListenBacklog",
    "connectToLearnerMasterLimit",
    "syncEnabled",
    "sslQuorum",
    "portUnification",
    "sslQuorumReloadCertFiles",
    "quorum.cnxn.threads.size",
    "oraclePath",
    "secureClientPort",
    "secureClientPortAddress",
    "commitLogCount",
    "maxResponseCacheSize",
    "maxGetChildrenResponseCacheSize",
    "emulate353TTLNodes",
    "watchManagerName",
    "watcherCleanThreadsNum",
    "watcherCleanThreshold",
    "watcherCleanIntervalInSeconds",
    "maxInProcessingDeadWatchers",
    "bitHashCacheSize",
    "connectionMaxTokens",
    "connectionTokenFillTime",
    "connectionTokenFillCount",
    "connectionFreezeTime",
    "connectionDropIncrease",
    "connectionDropDecrease",
    "connectionDecreaseRatio",
    "serverCnxnFactory",
    "flushDelay",
    "maxWriteQueuePollTime",
    "maxBatchSize",
    "requestStaleConnectionCheck",
    "advancedFlowControlEnabled",
    "enableEagerACLCheck",
    "maxConcurrentSnapSyncs",
    "maxConcurrentDiffSyncs",
    "largeRequestMaxBytes",
    "largeRequestThreshold",
    "maxTimeToWaitForEpoch",
    "leaderServes",
    "cnxTimeout",
    "quorumCnxnTimeoutMs",
    "tcpKeepAlive",
    "clientTcpKeepAlive",
    "electionPortBindRetry",
    "skipACL",
    "sessionRequireClientSASLAuth",
    "authProvider",
    "jute.maxbuffer.extrasize",
    "fips-mode",
    "closeSocketAsync",
    "learner.closeSocketAsync",
    "leader.closeSocketAsync",
    "learner.asyncSending",
];

/// Key families, matched by prefix. `group`/`weight` are hierarchical quorums
/// (ZooKeeper also matches them by prefix); Ensemble uses majority quorums.
const PREFIXES: &[&str] = &[
    "ssl.",
    "quorum.auth.",
    "admin.",
    "authProvider.",
    "kerberos.",
    "fastleader.",
    "znode.container.",
    "observer.",
    "audit.",
    "snapshot.",
    "digest.",
    "enforce.auth.",
    "netty.",
    "learner.",
    "leader.",
    "follower.",
    "client.",
    "jvm.pause.",
    "multiAddress.",
    "X509AuthenticationProvider.",
    "IPAuthenticationProvider.",
    "DigestAuthenticationProvider.",
    "zookeeper.",
    "group",
    "weight",
];

/// Whether ZooKeeper documents or parses `key` (and Ensemble ignores it).
pub(crate) fn known_but_unused(key: &str) -> bool {
    EXACT.contains(&key) || PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Hierarchical-quorum keys, which ZooKeeper forbids next to `dynamicConfigFile`.
pub(crate) fn is_membership_key(key: &str) -> bool {
    key.starts_with("server.") || key.starts_with("group") || key.starts_with("weight")
}

/// Keys ZooKeeper's `QuorumPeerConfig.parseProperties` reads itself; it turns
/// every other key into the system property `zookeeper.<key>`.
const QUORUM_PEER_CONFIG: &[&str] = &[
    "dataDir",
    "dataLogDir",
    "clientPort",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "clientPortAddress",
    "secureClientPort",
    "secureClientPortAddress",
    "observerMasterPort",
    "clientPortListenBacklog",
    "tickTime",
    "maxClientCnxns",
    "minSessionTimeout",
    "maxSessionTimeout",
    "initLimit",
    "syncLimit",
    "connectToLearnerMasterLimit",
    "electionAlg",
    "quorumListenOnAllIPs",
    "peerType",
    "syncEnabled",
    "dynamicConfigFile",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "standaloneEnabled",
    "reconfigEnabled",
    "sslQuorum",
    "portUnification",
    "sslQuorumReloadCertFiles",
    "quorum.cnxn.threads.size",
    "oraclePath",
    "multiAddress.enabled",
    "multiAddress.reachabilityCheckEnabled",
    "multiAddress.reachabilityCheckTimeoutMs",
];

/// Whether ZooKeeper parses `key` itself rather than setting a system
/// property from it.
/// `server.N` lines are parsed there and, as ZooKeeper 3.8 shows them, also
/// kept as `zookeeper.server.N` properties.
pub(crate) fn parsed_by_quorum_peer_config(key: &str) -> bool {
    QUORUM_PEER_CONFIG.contains(&key)
        || key.starts_with("metricsProvider.")
        || (is_membership_key(key) && !key.starts_with("server."))
}
