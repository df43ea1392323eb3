//! ZooKeeper's tree digest (`DigestCalculator` version 2 + `AdHash`): the
//! wrapping 64-bit sum of one CRC32 per node over its path, data and
//! persisted Stat. Logged after each txn (`TxnDigest`) and in snapshots, so
//! members and ZooKeeper itself can spot a diverged tree. Nodes under
//! "/zookeeper/" are left out (their quota stats change outside txns), but
//! "/zookeeper" itself counts, and the root hashes with the path "".

use crate::tree::Node;
use ensemble_proto::StatPersisted;

/// `DigestCalculator.DIGEST_VERSION`, the `TxnDigest.version` we write.
pub const DIGEST_VERSION: i32 = 2;

const EXCLUDED_SUBTREE: &str = "/zookeeper/";

/// `DigestCalculator.calculateDigest` for one node; 0 for excluded paths.
pub fn node_digest(path: &str, data: Option<&[u8]>, stat: &StatPersisted) -> u64 {
    if path.starts_with(EXCLUDED_SUBTREE) {
        return 0;
    }
    let path = if path == "/" { "" } else { path };
    // `java.util.zip.CRC32` is the IEEE CRC-32 that crc32fast computes (with SIMD).
    let mut crc = crc32fast::Hasher::new();
    crc.update(path.as_bytes());
    if let Some(d) = data {
        crc.update(d);
    }
    let mut b = [0u8; 60];
    let longs = [stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.mtime];
    for (i, v) in longs.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&v.to_be_bytes());
    }
    for (i, v) in [stat.version, stat.cversion, stat.aversion]
        .iter()
        .enumerate()
    {
        b[40 + i * 4..44 + i * 4].copy_from_slice(&v.to_be_bytes());
    }
    b[52..60].copy_from_slice(&stat.ephemeral_owner.to_be_bytes());
    crc.update(&b);
    u64::from(crc.finalize())
}

pub(crate) fn of_node(path: &str, n: &Node) -> u64 {
    node_digest(path, n.data.as_deref(), &n.stat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn zookeeper_subtree_is_excluded_but_not_its_top() {
        let s = StatPersisted::default();
        assert_eq!(node_digest("/zookeeper/quota", None, &s), 0);
        assert_ne!(node_digest("/zookeeper", None, &s), 0);
        assert_eq!(node_digest("/", None, &s), node_digest("", None, &s));
    }
}
