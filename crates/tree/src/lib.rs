//! ZooKeeper's data tree with ZooKeeper's exact semantics, and the prep stage
//! that turns client write requests into logged txns. No I/O, no clock: time
//! and zxids come in with the txns.
//!
//! - [`DataTree`]: znodes, Stats, ACL cache, ephemerals; reads and [`DataTree::apply`].
//! - [`Prep`]: validation against the tree plus pending changes (`PrepRequestProcessor`).
//! - [`TxnBody`]: the txn records as ZooKeeper logs them.
//! - [`check_acl`], [`digest_auth_ids`], [`generate_digest`]: access control.
//! - [`validate_path`]: the path rules of `PathUtils.validatePath`.

pub mod acl;
pub mod apply;
pub mod digest;
mod nodemap;
pub mod path;
pub mod prep;
pub mod quota;
pub mod tree;
pub mod txn;

pub use acl::{
    acl_for_reader, check_acl, digest_auth_ids, generate_digest, open_acl_unsafe, read_acl_unsafe,
    AclCache, OPEN_UNSAFE_ACL_ID,
};
pub use apply::{multi_result_has_stat, ApplyOutcome};
pub use digest::DIGEST_VERSION;
pub use nodemap::CaptureLost;
pub use path::{is_special_path, validate_path};
pub use prep::{Prep, PrepOptions, PreparedTxn};
pub use tree::{
    ttl_of_ephemeral_owner, ttl_to_ephemeral_owner, DataTree, EphemeralType, Node, TreeCapture,
    CONTAINER_EPHEMERAL_OWNER, MAX_TTL,
};
pub use txn::TxnBody;

#[cfg(test)]
mod tests;
