//! ZooKeeper's client wire protocol: jute encoding, the records of
//! `zookeeper.jute`, multi bodies, opcodes, error codes, watch event constants
//! and framing. Knows nothing of the tree, files or sockets.

pub mod consts;
pub mod frame;
pub mod jute;
pub mod multi;
pub mod records;

pub use consts::*;
pub use frame::{check_frame_len, encode_frame, encode_reply, FrameError, DEFAULT_MAX_BUFFER};
pub use jute::{Jute, JuteError, Reader, Writer};
pub use multi::{MultiOp, MultiRequest, MultiResponse, MultiResult};
pub use records::*;
