//! Access control as ZooKeeper's server does it: `ZooKeeperServer.checkACL`,
//! the `digest` and `ip` authentication providers, the ACL fix-up of create and
//! setACL (`PrepRequestProcessor.fixupACL`), the digest redaction of getACL, and
//! the reference-counted ACL cache that nodes point into (`ReferenceCountedACLCache`).

use base64::Engine;
use ensemble_proto::{perms, Acl, ErrorCode, Id, Jute};
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// The ACL id ZooKeeper gives nodes created with a null ACL list (the initial
/// system nodes): it stands for world:anyone ALL without a cache entry.
pub const OPEN_UNSAFE_ACL_ID: i64 = -1;

/// `ZooDefs.Ids.OPEN_ACL_UNSAFE`.
pub fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: anyone(),
    }]
}

/// [`open_acl_unsafe`], made once: the list of the id that stands for it.
static OPEN_ACL_UNSAFE: LazyLock<Arc<[Acl]>> = LazyLock::new(|| open_acl_unsafe().into());

/// `ZooDefs.Ids.READ_ACL_UNSAFE`, the ACL of `/zookeeper/config`.
pub fn read_acl_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: perms::READ,
        id: anyone(),
    }]
}

fn anyone() -> Id {
    Id {
        scheme: "world".into(),
        id: "anyone".into(),
    }
}

/// ZooKeeper's `checkACL`: true when `auth` may use `perm` on a node with `acl`.
/// An empty ACL is open, a `super` id passes everything, `world:anyone` matches
/// everyone, `digest` ids match exactly and `ip` ids match with an optional
/// `/bits` mask. Schemes without a provider never match.
pub fn check_acl(acl: &[Acl], perm: i32, auth: &[Id]) -> bool {
    if acl.is_empty() || auth.iter().any(|id| id.scheme == "super") {
        return true;
    }
    acl.iter().filter(|a| a.perms & perm != 0).any(|a| {
        let id = &a.id;
        if id.scheme == "world" && id.id == "anyone" {
            return true;
        }
        auth.iter()
            .filter(|cid| cid.scheme == id.scheme)
            .any(|cid| match id.scheme.as_str() {
                "digest" => cid.id == id.id,
                "ip" => ip_matches(&cid.id, &id.id),
                _ => false,
            })
    })
}

/// What getACL returns to a client, as `FinalRequestProcessor`: `None` when it
/// has neither READ nor ADMIN (NoAuth); without ADMIN the hash part of every
/// `digest` id is replaced by `x`, so passwords cannot be brute-forced offline.
pub fn acl_for_reader(acl: &[Acl], auth: &[Id]) -> Option<Vec<Acl>> {
    if !check_acl(acl, perms::READ | perms::ADMIN, auth) {
        return None;
    }
    if check_acl(acl, perms::ADMIN, auth) {
        return Some(acl.to_vec());
    }
    Some(
        acl.iter()
            .map(|a| {
                let mut a = a.clone();
                if a.id.scheme == "digest" {
                    if let Some(colon) = a.id.id.find(':') {
                        a.id.id.truncate(colon);
                        a.id.id.push_str(":x");
                    }
                }
                a
            })
            .collect(),
    )
}

/// `DigestAuthenticationProvider.generateDigest`: "user:base64(sha1(user:password))".
pub fn generate_digest(user_colon_password: &str) -> String {
    let user = user_colon_password
        .split_once(':')
        .map_or(user_colon_password, |(u, _)| u);
    let hash = Sha1::digest(user_colon_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// The ids an `addauth digest user:password` grants: `super:` first when the
/// digest equals the configured super digest (`super:<hash>`), then
/// `digest:user:hash`. ZooKeeper decodes the bytes leniently (invalid UTF-8
/// becomes U+FFFD) and never refuses digest credentials, so this is always
/// `Some`; the `Option` leaves room for stricter schemes.
pub fn digest_auth_ids(auth_data: &[u8], super_digest: Option<&str>) -> Option<Vec<Id>> {
    let text = String::from_utf8_lossy(auth_data);
    let digest = generate_digest(&text);
    let mut ids = Vec::with_capacity(2);
    if super_digest == Some(digest.as_str()) {
        ids.push(Id {
            scheme: "super".into(),
            id: String::new(),
        });
    }
    ids.push(Id {
        scheme: "digest".into(),
        id: digest,
    });
    Some(ids)
}

/// Java's `String.split(sep)`: trailing empty strings are dropped (but a string
/// that is entirely empty splits into one empty string).
pub(crate) fn java_split(s: &str, sep: char) -> Vec<&str> {
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.len() == 1 && parts[0].is_empty() && !s.is_empty() {
        parts.clear();
    }
    parts
}

/// `DigestAuthenticationProvider.isValid`: exactly "user:hash" after Java's split.
fn digest_id_is_valid(id: &str) -> bool {
    java_split(id, ':').len() == 2
}

/// `IPAuthenticationProvider.isValid`: an address, optionally "/bits" within range.
fn ip_id_is_valid(id: &str) -> bool {
    let (addr, bits) = match id.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (id, None),
    };
    let Some(bytes) = addr_to_bytes(addr) else {
        return false;
    };
    match bits {
        None => true,
        Some(b) => {
            matches!(parse_java_int(b, 10), Some(n) if n >= 0 && n as usize <= bytes.len() * 8)
        }
    }
}

/// `IPAuthenticationProvider.matches`: the client address `id` against an ACL
/// expression "addr[/bits]", both masked to `bits`.
fn ip_matches(id: &str, acl_expr: &str) -> bool {
    let (addr, bits) = match acl_expr.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (acl_expr, None),
    };
    let Some(mut acl_addr) = addr_to_bytes(addr) else {
        return false;
    };
    let bits = match bits {
        None => acl_addr.len() * 8,
        Some(b) => match parse_java_int(b, 10) {
            Some(n) if n >= 0 && n as usize <= acl_addr.len() * 8 => n as usize,
            _ => return false,
        },
    };
    mask(&mut acl_addr, bits);
    let Some(mut remote) = addr_to_bytes(id) else {
        return false;
    };
    mask(&mut remote, bits);
    remote == acl_addr
}

fn mask(b: &mut [u8], bits: usize) {
    let start = bits / 8;
    if start < b.len() {
        let keep = bits % 8;
        // The high `keep` bits of the first partial byte survive.
        b[start] &= !(0xffu16 >> keep) as u8;
        for x in &mut b[start + 1..] {
            *x = 0;
        }
    }
}

/// An address as bytes: IPv6 when it holds ':', IPv4 when it holds '.'.
fn addr_to_bytes(addr: &str) -> Option<Vec<u8>> {
    if addr.contains(':') {
        v6_to_bytes(addr)
    } else if addr.contains('.') {
        v4_to_bytes(addr)
    } else {
        None
    }
}

fn v4_to_bytes(addr: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    parts
        .iter()
        .map(|p| match parse_java_int(p, 10) {
            Some(v) if (0..=255).contains(&v) => Some(v as u8),
            _ => None,
        })
        .collect()
}

fn v6_to_bytes(addr: &str) -> Option<Vec<u8>> {
    let halves: Vec<&str> = addr.split("::").collect();
    let split = |s: &str| -> Vec<String> {
        if s.is_empty() {
            Vec::new()
        } else {
            s.split(':').map(str::to_owned).collect()
        }
    };
    let (front, back) = match halves.as_slice() {
        [whole] => {
            let segs: Vec<String> = whole.split(':').map(str::to_owned).collect();
            if segs.len() != 8 {
                return None;
            }
            (segs, Vec::new())
        }
        [a, b] => {
            let (f, k) = (split(a), split(b));
            if f.len() + k.len() >= 8 {
                return None;
            }
            (f, k)
        }
        _ => return None,
    };
    let mut out = vec![0u8; 16];
    let mut put = |start: usize, segs: &[String]| -> Option<()> {
        for (n, seg) in segs.iter().enumerate() {
            if seg.is_empty() || seg.len() > 4 {
                return None;
            }
            let v = parse_java_int(seg, 16)?;
            out[start + 2 * n] = (v >> 8) as u8;
            out[start + 2 * n + 1] = v as u8;
        }
        Some(())
    };
    put(0, &front)?;
    put(16 - back.len() * 2, &back)?;
    Some(out)
}

/// Java's `Integer.parseInt`: an optional sign then digits of `radix`.
fn parse_java_int(s: &str, radix: u32) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i32::from_str_radix(s, radix).ok()
}

/// Whether an auth id counts for the `auth` ACL scheme: ZooKeeper expands
/// `auth` to the ids of providers that say `isAuthenticated` (digest, sasl,
/// x509), never `ip`, and skips `super`, which has no provider.
fn is_authenticated_scheme(scheme: &str) -> bool {
    !matches!(scheme, "ip" | "super")
}

/// `PrepRequestProcessor.fixupACL`: drops duplicates, expands `auth`, and
/// refuses (InvalidACL) an empty list, `world` with an id other than
/// `anyone`, an `auth` entry when the connection has no authenticated id,
/// malformed `ip`/`digest` ids and schemes without a provider.
pub(crate) fn fixup_acl(acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for a in unique {
        let id = &a.id;
        if id.scheme == "world" && id.id == "anyone" {
            out.push(a.clone());
        } else if id.scheme == "auth" {
            let mut any = false;
            for cid in auth.iter().filter(|c| is_authenticated_scheme(&c.scheme)) {
                any = true;
                out.push(Acl {
                    perms: a.perms,
                    id: cid.clone(),
                });
            }
            if !any {
                return Err(ErrorCode::InvalidAcl);
            }
        } else {
            let valid = match id.scheme.as_str() {
                "digest" => digest_id_is_valid(&id.id),
                "ip" => ip_id_is_valid(&id.id),
                _ => false,
            };
            if !valid {
                return Err(ErrorCode::InvalidAcl);
            }
            out.push(a.clone());
        }
    }
    Ok(out)
}

/// ZooKeeper's `ReferenceCountedACLCache`: nodes hold a long that names their
/// ACL list, shared by every node with an equal list, so snapshots store each
/// list once. Ids count up from 1 and are never reused; `-1` is the open ACL.
#[derive(Debug, Clone, Default)]
pub struct AclCache {
    /// Shared, so a pending change can hold the list it was checked
    /// against without copying it.
    by_id: HashMap<i64, Arc<[Acl]>>,
    // Acl is not Hash, so lists are keyed by their jute encoding.
    by_list: HashMap<bytes::Bytes, i64>,
    refs: HashMap<i64, i64>,
    last_id: i64,
}

impl AclCache {
    /// The id for `acl`, created when new; counts one more user of it.
    pub fn convert_acls(&mut self, acl: &[Acl]) -> i64 {
        let key = acl.to_vec().to_bytes();
        let id = match self.by_list.get(&key) {
            Some(&id) => id,
            None => {
                self.last_id += 1;
                let id = self.last_id;
                self.by_id.insert(id, acl.into());
                self.by_list.insert(key, id);
                id
            }
        };
        self.add_usage(id);
        id
    }

    /// The list an id stands for. An id missing from the cache (which
    /// ZooKeeper treats as a fatal error) reads as an empty, open list.
    pub fn convert_long(&self, id: i64) -> Vec<Acl> {
        self.shared(id).to_vec()
    }

    /// [`convert_long`](Self::convert_long) without a copy of the list.
    pub fn shared(&self, id: i64) -> Arc<[Acl]> {
        if id == OPEN_UNSAFE_ACL_ID {
            return OPEN_ACL_UNSAFE.clone();
        }
        self.by_id.get(&id).cloned().unwrap_or_else(|| Arc::new([]))
    }

    /// Whether the list `id` stands for grants `perm` to `auth`, without
    /// copying the list (the read path asks this for every request).
    pub fn permits(&self, id: i64, perm: i32, auth: &[Id]) -> bool {
        if id == OPEN_UNSAFE_ACL_ID {
            return check_acl(&open_acl_unsafe(), perm, auth);
        }
        match self.by_id.get(&id) {
            Some(list) => check_acl(list, perm, auth),
            None => check_acl(&[], perm, auth),
        }
    }

    pub fn add_usage(&mut self, id: i64) {
        if id == OPEN_UNSAFE_ACL_ID || !self.by_id.contains_key(&id) {
            return;
        }
        *self.refs.entry(id).or_insert(0) += 1;
    }

    pub fn remove_usage(&mut self, id: i64) {
        if id == OPEN_UNSAFE_ACL_ID || !self.by_id.contains_key(&id) {
            return;
        }
        let count = self.refs.entry(id).or_insert(0);
        *count -= 1;
        if *count <= 0 {
            self.refs.remove(&id);
            if let Some(list) = self.by_id.remove(&id) {
                self.by_list.remove(&list.to_vec().to_bytes());
            }
        }
    }

    /// Number of distinct lists (`aclCacheSize`).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The entries sorted by id, as a snapshot writer needs them.
    pub fn entries(&self) -> Vec<(i64, Vec<Acl>)> {
        let mut v: Vec<_> = self.by_id.iter().map(|(k, a)| (*k, a.to_vec())).collect();
        v.sort_by_key(|e| e.0);
        v
    }

    /// Loads one entry from a snapshot, with no users yet (as `deserialize`).
    pub fn insert_loaded(&mut self, id: i64, acl: Vec<Acl>) {
        self.last_id = self.last_id.max(id);
        self.by_list.insert(acl.to_bytes(), id);
        self.by_id.insert(id, acl.into());
        self.refs.insert(id, 0);
    }

    /// Drops entries no node uses (`purgeUnused`, run after loading a snapshot).
    pub fn purge_unused(&mut self) {
        let unused: Vec<i64> = self
            .by_id
            .keys()
            .filter(|id| self.refs.get(id).copied().unwrap_or(0) <= 0)
            .copied()
            .collect();
        for id in unused {
            self.refs.remove(&id);
            if let Some(list) = self.by_id.remove(&id) {
                self.by_list.remove(&list.to_vec().to_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(scheme: &str, id: &str) -> Id {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    fn acl(perms: i32, scheme: &str, i: &str) -> Acl {
        Acl {
            perms,
            id: id(scheme, i),
        }
    }

    #[test]
    fn digest_matches_zookeeper_generate_digest() {
        // Value from ZooKeeper's documentation and zkCli: super:test.
        assert_eq!(
            generate_digest("super:test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
        // As ZooKeeper 3.8 showed for `addauth digest bob:pw`.
        assert_eq!(
            generate_digest("bob:pw"),
            "bob:ikIaKsbtGweaHnb/jKn7OHqbunM="
        );
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha1::digest(b"nocolon"));
        assert_eq!(generate_digest("nocolon"), format!("nocolon:{hash}"));
    }

    #[test]
    fn super_digest_grants_super_first() {
        let ids = digest_auth_ids(b"super:test", Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="))
            .unwrap_or_default();
        assert_eq!(ids[0], id("super", ""));
        assert_eq!(ids[1], id("digest", "super:D/InIHSb7yEEbrWz8b9l71RjZJU="));
        let ids = digest_auth_ids(b"bob:pw", Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU="))
            .unwrap_or_default();
        assert_eq!(ids, vec![id("digest", &generate_digest("bob:pw"))]);
    }

    #[test]
    fn world_anyone_and_empty_acl_are_open() {
        assert!(check_acl(&open_acl_unsafe(), perms::WRITE, &[]));
        assert!(check_acl(&[], perms::WRITE, &[]));
        assert!(!check_acl(
            &read_acl_unsafe(),
            perms::WRITE,
            &[id("ip", "127.0.0.1")]
        ));
        assert!(check_acl(&read_acl_unsafe(), perms::READ, &[]));
    }

    #[test]
    fn super_bypasses_every_acl() {
        let a = vec![acl(perms::READ, "digest", "bob:hash")];
        assert!(check_acl(&a, perms::ADMIN, &[id("super", "")]));
    }

    #[test]
    fn digest_needs_the_exact_id_and_the_perm() {
        let a = vec![acl(perms::READ | perms::WRITE, "digest", "bob:hash")];
        assert!(check_acl(&a, perms::WRITE, &[id("digest", "bob:hash")]));
        assert!(!check_acl(&a, perms::DELETE, &[id("digest", "bob:hash")]));
        assert!(!check_acl(&a, perms::READ, &[id("digest", "bob:other")]));
        assert!(!check_acl(&a, perms::READ, &[id("ip", "bob:hash")]));
    }

    #[test]
    fn ip_matches_with_and_without_mask() {
        let me = [id("ip", "10.1.2.3")];
        assert!(check_acl(
            &[acl(perms::ALL, "ip", "10.1.2.3")],
            perms::READ,
            &me
        ));
        assert!(!check_acl(
            &[acl(perms::ALL, "ip", "10.1.2.4")],
            perms::READ,
            &me
        ));
        assert!(check_acl(
            &[acl(perms::ALL, "ip", "10.1.0.0/16")],
            perms::READ,
            &me
        ));
        assert!(check_acl(
            &[acl(perms::ALL, "ip", "10.1.2.0/23")],
            perms::READ,
            &me
        ));
        assert!(!check_acl(
            &[acl(perms::ALL, "ip", "10.1.4.0/23")],
            perms::READ,
            &me
        ));
        assert!(check_acl(
            &[acl(perms::ALL, "ip", "0.0.0.0/0")],
            perms::READ,
            &me
        ));
        assert!(!check_acl(
            &[acl(perms::ALL, "ip", "10.1.2.3/33")],
            perms::READ,
            &me
        ));
        assert!(!check_acl(
            &[acl(perms::ALL, "ip", "10.1.2.3/x")],
            perms::READ,
            &me
        ));
        assert!(!check_acl(
            &[acl(perms::ALL, "ip", "::1")],
            perms::READ,
            &me
        ));
    }

    #[test]
    fn ipv6_matches() {
        let me = [id("ip", "0:0:0:0:0:0:0:1")];
        assert!(check_acl(&[acl(perms::ALL, "ip", "::1")], perms::READ, &me));
        assert!(check_acl(
            &[acl(perms::ALL, "ip", "::/64")],
            perms::READ,
            &me
        ));
        assert!(!check_acl(
            &[acl(perms::ALL, "ip", "fe80::1")],
            perms::READ,
            &me
        ));
        assert!(ip_id_is_valid("fe80::1/10"));
        assert!(!ip_id_is_valid("fe80::1/129"));
        assert!(!ip_id_is_valid("1:2:3:4:5:6:7::8"));
        assert!(!ip_id_is_valid("1::2::3"));
    }

    #[test]
    fn ip_validity_follows_the_provider() {
        assert!(ip_id_is_valid("127.0.0.1"));
        assert!(ip_id_is_valid("10.0.0.0/8"));
        assert!(!ip_id_is_valid("10.0.0/8"));
        assert!(!ip_id_is_valid("256.0.0.1"));
        assert!(!ip_id_is_valid("localhost"));
    }

    #[test]
    fn digest_validity_uses_java_split() {
        assert!(digest_id_is_valid("bob:hash"));
        assert!(digest_id_is_valid("bob:hash:"));
        assert!(digest_id_is_valid(":hash"));
        assert!(!digest_id_is_valid("bob:"));
        assert!(!digest_id_is_valid("bob"));
        assert!(!digest_id_is_valid("a:b:c"));
    }

    #[test]
    fn fixup_expands_auth_to_authenticated_ids_only() {
        let auth = [
            id("ip", "127.0.0.1"),
            id("super", ""),
            id("digest", "bob:h"),
        ];
        let got = fixup_acl(&[acl(perms::ALL, "auth", "")], &auth);
        assert_eq!(got, Ok(vec![acl(perms::ALL, "digest", "bob:h")]));
        let only_ip = [id("ip", "127.0.0.1")];
        assert_eq!(
            fixup_acl(&[acl(perms::ALL, "auth", "")], &only_ip),
            Err(ErrorCode::InvalidAcl)
        );
    }

    #[test]
    fn fixup_refuses_bad_lists() {
        let bad = [
            vec![],
            vec![acl(perms::ALL, "world", "someone")],
            vec![acl(perms::ALL, "super", "")],
            vec![acl(perms::ALL, "digest", "nohash")],
            vec![acl(perms::ALL, "ip", "nowhere")],
            vec![acl(perms::ALL, "sasl", "bob")],
        ];
        for b in bad {
            assert_eq!(fixup_acl(&b, &[]), Err(ErrorCode::InvalidAcl), "{b:?}");
        }
    }

    #[test]
    fn fixup_drops_duplicates_keeping_order() {
        let a = acl(perms::ALL, "world", "anyone");
        let b = acl(perms::READ, "ip", "1.2.3.4");
        let got = fixup_acl(&[a.clone(), b.clone(), a.clone()], &[]);
        assert_eq!(got, Ok(vec![a, b]));
    }

    #[test]
    fn get_acl_redacts_digests_without_admin() {
        let a = vec![
            acl(perms::READ, "world", "anyone"),
            acl(perms::ALL, "digest", "bob:secret"),
        ];
        let got = acl_for_reader(&a, &[]).unwrap_or_default();
        assert_eq!(got[1].id.id, "bob:x");
        let got = acl_for_reader(&a, &[id("digest", "bob:secret")]).unwrap_or_default();
        assert_eq!(got[1].id.id, "bob:secret");
        let closed = vec![acl(perms::WRITE, "world", "anyone")];
        assert_eq!(acl_for_reader(&closed, &[]), None);
    }

    #[test]
    fn acl_cache_shares_and_releases_lists() {
        let mut c = AclCache::default();
        let a = open_acl_unsafe();
        let i1 = c.convert_acls(&a);
        let i2 = c.convert_acls(&a);
        assert_eq!((i1, i2), (1, 1));
        let j = c.convert_acls(&read_acl_unsafe());
        assert_eq!(j, 2);
        c.remove_usage(i1);
        assert_eq!(c.len(), 2);
        c.remove_usage(i1);
        assert_eq!(c.len(), 1);
        // Ids are never reused.
        assert_eq!(c.convert_acls(&a), 3);
        assert_eq!(c.convert_long(OPEN_UNSAFE_ACL_ID), open_acl_unsafe());
    }
}
