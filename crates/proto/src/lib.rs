//! ZooKeeper's client wire protocol: jute encoding, the records of
//! `zookeeper.jute`, opcodes, error codes, watch event constants and framing.
//! Knows nothing of the tree, files or sockets.

pub mod consts;
pub mod jute;
pub mod records;

pub use consts::*;
pub use jute::{Jute, JuteError, Reader, Writer};
pub use records::*;
