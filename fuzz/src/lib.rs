//! Helpers shared by the fuzz targets: decoding a request body by opcode as
//! the server does, a scratch data directory reused across runs, and the
//! framing the harness adds itself (log records with valid checksums,
//! compressed snapshot streams) so that mutations reach deeper code.

use bytes::Bytes;
use ensemble_proto::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Decodes `body` as the request record of `opcode` (what follows the
/// `RequestHeader` in a request frame), round-tripping whatever decodes.
/// Returns whether it decoded.
pub fn decode_request(opcode: i32, body: &[u8]) -> bool {
    match opcode {
        op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => round_trip::<CreateRequest>(body),
        op::CREATE_TTL => round_trip::<CreateTtlRequest>(body),
        op::DELETE | op::DELETE_CONTAINER => round_trip::<DeleteRequest>(body),
        op::EXISTS => round_trip::<ExistsRequest>(body),
        op::GET_DATA => round_trip::<GetDataRequest>(body),
        op::SET_DATA => round_trip::<SetDataRequest>(body),
        op::GET_ACL => round_trip::<GetAclRequest>(body),
        op::SET_ACL => round_trip::<SetAclRequest>(body),
        op::GET_CHILDREN => round_trip::<GetChildrenRequest>(body),
        op::GET_CHILDREN2 => round_trip::<GetChildren2Request>(body),
        op::SYNC => round_trip::<SyncRequest>(body),
        op::CHECK => round_trip::<CheckVersionRequest>(body),
        op::MULTI | op::MULTI_READ => round_trip::<MultiRequest>(body),
        op::RECONFIG => round_trip::<ReconfigRequest>(body),
        op::CHECK_WATCHES => round_trip::<CheckWatchesRequest>(body),
        op::REMOVE_WATCHES => round_trip::<RemoveWatchesRequest>(body),
        op::AUTH => round_trip::<AuthPacket>(body),
        op::SET_WATCHES => round_trip::<SetWatches>(body),
        op::SET_WATCHES2 => round_trip::<SetWatches2>(body),
        op::SASL => round_trip::<GetSaslRequest>(body),
        op::GET_EPHEMERALS => round_trip::<GetEphemeralsRequest>(body),
        op::GET_ALL_CHILDREN_NUMBER => round_trip::<GetAllChildrenNumberRequest>(body),
        op::ADD_WATCH => round_trip::<AddWatchRequest>(body),
        // ping, closeSession, whoAmI and unknown opcodes carry no record.
        _ => false,
    }
}

/// Decodes a `T`; when that works, encodes it and decodes the encoding,
/// which must give the same value. Returns whether the first decode worked.
pub fn round_trip<T: Jute + PartialEq + std::fmt::Debug>(b: &[u8]) -> bool {
    let Ok(v) = T::from_bytes(b) else {
        return false;
    };
    let again = T::from_bytes(&v.to_bytes());
    assert_eq!(again.as_ref(), Ok(&v), "re-encoding changed the value");
    true
}

/// A directory in tmpfs (when there is one) that lives as long as the
/// process; targets clear what they wrote in it before each run.
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let builder = tempfile::Builder::new()
            .prefix("ensemble-fuzz-")
            .tempdir_in(shm);
        builder
            .or_else(|_| tempfile::tempdir())
            .expect("cannot create a scratch directory")
    })
    .path()
}

/// Empties `dir/version-2` (creating it) and returns its path.
pub fn fresh_version_dir(dir: &Path) -> PathBuf {
    let v = dir.join("version-2");
    let _ = std::fs::remove_dir_all(&v);
    std::fs::create_dir_all(&v).expect("cannot create version-2");
    v
}

/// A txn log file built from `data`: a valid `FileHeader`, then records
/// `u16 length | entry` taken from `data` and written with a correct checksum
/// and terminator; what is left when a length runs past the end is appended
/// raw (a torn write).
pub fn log_file_from_entries(data: &[u8]) -> Vec<u8> {
    let mut out = FileHeader {
        magic: FileHeader::TXNLOG_MAGIC,
        version: FileHeader::VERSION,
        dbid: FileHeader::TXNLOG_DBID,
    }
    .to_bytes()
    .to_vec();
    let mut rest = data;
    while rest.len() >= 2 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        if rest.len() - 2 < len {
            break;
        }
        out.extend_from_slice(&ensemble_storage::txnlog::encode_record(&rest[2..2 + len]));
        rest = &rest[2 + len..];
    }
    out.extend_from_slice(rest);
    out
}

/// The inverse of [`log_file_from_entries`] for well-formed records: the
/// harness input that rebuilds `entries`. Used to write seeds.
pub fn entries_to_input(entries: &[Bytes]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&(e.len() as u16).to_be_bytes());
        out.extend_from_slice(e);
    }
    out
}

/// `data` gzip-compressed, as `snapshot.<zxid>.gz` holds it.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("write to a Vec");
    e.finish().expect("write to a Vec")
}

/// `data` in snappy-java's stream format, as `snapshot.<zxid>.snappy` holds it:
/// a 16-byte header, then length-prefixed raw snappy blocks of 32 KB input.
pub fn snappy_java(data: &[u8]) -> Vec<u8> {
    let mut out = vec![
        0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
    ];
    let mut enc = snap::raw::Encoder::new();
    for block in data.chunks(32 * 1024) {
        let c = enc.compress_vec(block).expect("snappy compress");
        out.extend_from_slice(&(c.len() as i32).to_be_bytes());
        out.extend_from_slice(&c);
    }
    out
}

/// `stream` followed by a snapshot seal: the Adler-32 of `stream` (long) and
/// the string "/" (`SnapStream.sealStream`).
pub fn sealed(stream: &[u8]) -> Vec<u8> {
    let mut out = stream.to_vec();
    let checksum = adler2::adler32_slice(stream) as i64;
    out.extend_from_slice(&checksum.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 1, b'/']);
    out
}
