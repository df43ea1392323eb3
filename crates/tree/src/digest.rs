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

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

/// `java.util.zip.CRC32` (IEEE 802.3), fed in pieces.
struct Crc32(u32);

impl Crc32 {
    fn new() -> Crc32 {
        Crc32(0xffff_ffff)
    }

    fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = CRC_TABLE[((self.0 ^ u32::from(*b)) & 0xff) as usize] ^ (self.0 >> 8);
        }
    }

    fn value(&self) -> u32 {
        !self.0
    }
}

/// `DigestCalculator.calculateDigest` for one node; 0 for excluded paths.
pub fn node_digest(path: &str, data: Option<&[u8]>, stat: &StatPersisted) -> u64 {
    if path.starts_with(EXCLUDED_SUBTREE) {
        return 0;
    }
    let path = if path == "/" { "" } else { path };
    let mut crc = Crc32::new();
    crc.update(path.as_bytes());
    if let Some(d) = data {
        crc.update(d);
    }
    let mut b = Vec::with_capacity(60);
    for v in [stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.mtime] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    for v in [stat.version, stat.cversion, stat.aversion] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(&stat.ephemeral_owner.to_be_bytes());
    crc.update(&b);
    u64::from(crc.value())
}

pub(crate) fn of_node(path: &str, n: &Node) -> u64 {
    node_digest(path, n.data.as_deref(), &n.stat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.value(), 0xcbf4_3926);
    }

    #[test]
    fn zookeeper_subtree_is_excluded_but_not_its_top() {
        let s = StatPersisted::default();
        assert_eq!(node_digest("/zookeeper/quota", None, &s), 0);
        assert_ne!(node_digest("/zookeeper", None, &s), 0);
        assert_eq!(node_digest("/", None, &s), node_digest("", None, &s));
    }
}
