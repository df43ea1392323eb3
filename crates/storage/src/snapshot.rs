//! Snapshots, in the format of ZooKeeper's `FileSnap` and `SnapStream`.
//!
//! # Files
//!
//! `dataDir/version-2/snapshot.<zxid>[.gz|.snappy]`, the zxid in lower-case
//! hex without padding: the last txn applied when the snapshot started
//! (ZooKeeper's snapshots are fuzzy; txns after that zxid may be in it too,
//! and replaying them again is harmless). The suffix picks the stream
//! (`zookeeper.snapshot.compression.method`: none, `gz`, or `snappy` in
//! snappy-java's stream format); everything below describes the bytes inside
//! that stream.
//!
//! # Layout (jute, big-endian)
//!
//! ```text
//! FileHeader   magic "ZKSN" (int) | version 2 (int) | dbid -1 (long)
//! sessions     count (int), then per session: id (long) | timeout (int)
//! ACL cache    count (int), then per entry: id (long) | vector<ACL>
//! nodes        per node in pre-order: path (string) | data (buffer) | acl id (long)
//!              | StatPersisted; the root's path is "" and its children are "/a"...
//! end          path "/" (string)
//! seal         Adler-32 of every byte above (long) | "/" (string)
//! ZxidDigest   zxid (long) | digest version (int) | digest (long)   3.6+
//! seal         Adler-32 of every byte above, seals included | "/"
//! lastZxid     last processed zxid (long)                           3.9+
//! seal         as above
//! ```
//!
//! A digest version below 2 stores the digest as a hex string. Readers stop
//! quietly where an older writer stopped (after the first or second seal).
//!
//! # Validity (`SnapStream.isValidSnapshot`)
//!
//! Uncompressed: at least 10 bytes, ending with the int 1 and the byte '/'
//! (the last seal's path). Compressed: the gzip or snappy-java magic.
//! Recovery reads valid snapshots newest first and falls back to the next
//! one when reading fails (a checksum mismatch, a truncated stream).
//!
//! # Durability
//!
//! [`write_snapshot`] writes `snapshot.tmp.<zxid>...`, fsyncs it, renames it
//! into place and fsyncs the directory (ZooKeeper's `AtomicFileOutputStream`
//! with `.tmp`; our temp name is one ZooKeeper never takes for a snapshot).
//! It needs only `&DataTree`: callers pass a captured copy
//! (`DataTree::begin_capture`), or write under a read lock.

use crate::error::{IoContext, StorageError};
use crate::files::{self, SNAPSHOT_PREFIX};
use crate::fs::File;
use crate::snappy;
use bytes::Bytes;
use ensemble_proto::{Acl, FileHeader, Jute, JuteError, Reader, StatPersisted, Writer};
use ensemble_tree::DataTree;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `SnapStream.StreamMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
}

impl Compression {
    /// The file name suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Snappy => ".snappy",
        }
    }

    /// `StreamMode.fromString`: "gz", "snappy", anything else is none.
    pub fn from_config(name: &str) -> Compression {
        if name.eq_ignore_ascii_case("gz") {
            Compression::Gzip
        } else if name.eq_ignore_ascii_case("snappy") {
            Compression::Snappy
        } else {
            Compression::None
        }
    }

    /// `SnapStream.getStreamMode(fileName)`: from the last dot-separated part.
    pub fn of_file_name(name: &str) -> Compression {
        match name.rsplit('.').next() {
            Some(ext) if name.contains('.') => Compression::from_config(ext),
            _ => Compression::None,
        }
    }
}

/// The digest section: the tree digest at `zxid` (`DataTree.ZxidDigest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ZxidDigest {
    pub zxid: i64,
    pub digest_version: i32,
    pub digest: i64,
}

/// How to write a snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    pub compression: Compression,
    /// fsync the file and the directory (`zookeeper.snapshot.sync`-like).
    pub fsync: bool,
    /// Append the 3.9 last-processed-zxid section
    /// (`zookeeper.serializeLastProcessedZxid.enabled`). ZooKeeper 3.8
    /// ignores it.
    pub last_processed_zxid: bool,
    /// The digest section; `None` derives it from the tree (its last zxid
    /// and digest, or an empty digest for a tree at zxid 0, as ZooKeeper).
    pub digest: Option<ZxidDigest>,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            compression: Compression::None,
            fsync: true,
            last_processed_zxid: true,
            digest: None,
        }
    }
}

/// A snapshot read back.
#[derive(Debug, Clone)]
pub struct SnapshotData {
    pub path: PathBuf,
    /// The zxid of the file name; the tree's `last_zxid` is set to it.
    pub zxid: i64,
    pub tree: DataTree,
    /// Sessions and their timeouts, sorted by id.
    pub sessions: Vec<(i64, i32)>,
    pub digest: Option<ZxidDigest>,
    pub last_processed_zxid: Option<i64>,
}

/// Adler-32 over everything written, then into the compressor.
struct CheckedSink {
    inner: Sink,
    adler: adler2::Adler32,
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(Box<flate2::write::GzEncoder<BufWriter<File>>>),
    Snappy(Box<snappy::SnappyWriter<BufWriter<File>>>),
}

impl CheckedSink {
    fn write(&mut self, b: &[u8]) -> io::Result<()> {
        self.adler.write_slice(b);
        match &mut self.inner {
            Sink::Plain(w) => w.write_all(b),
            Sink::Gzip(w) => w.write_all(b),
            Sink::Snappy(w) => w.write_all(b),
        }
    }

    fn write_jute(&mut self, w: Writer) -> io::Result<()> {
        self.write(&w.into_bytes())
    }

    /// `SnapStream.sealStream`: the checksum so far, then the path "/".
    fn seal(&mut self) -> io::Result<()> {
        let mut w = Writer::new();
        w.write_i64(self.adler.checksum() as i64);
        w.write_string("/");
        self.write_jute(w)
    }

    fn finish(self) -> io::Result<File> {
        let buf = match self.inner {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish()?,
            Sink::Snappy(w) => w.finish()?,
        };
        buf.into_inner().map_err(|e| e.into_error())
    }
}

/// Writes `snapshot.<zxid>` of `tree` and `sessions` into
/// `data_dir/version-2` with default options and the given compression.
pub fn write_snapshot(
    data_dir: &Path,
    tree: &DataTree,
    sessions: &[(i64, i32)],
    zxid: i64,
    compression: Compression,
) -> Result<PathBuf, StorageError> {
    let opts = SnapshotOptions {
        compression,
        ..SnapshotOptions::default()
    };
    write_snapshot_with(data_dir, tree, sessions, zxid, &opts)
}

/// Writes a snapshot; see the module docs for the layout and fsync points.
pub fn write_snapshot_with(
    data_dir: &Path,
    tree: &DataTree,
    sessions: &[(i64, i32)],
    zxid: i64,
    opts: &SnapshotOptions,
) -> Result<PathBuf, StorageError> {
    let dir = files::version_dir(data_dir);
    crate::fs::create_dir_all(&dir).at(&dir)?;
    let suffix = opts.compression.suffix();
    let final_path = dir.join(files::snapshot_file_name(zxid, suffix));
    let tmp_path = dir.join(format!("{SNAPSHOT_PREFIX}.tmp.{zxid:x}{suffix}"));
    let started = Instant::now();
    tracing::info!("Snapshotting: 0x{zxid:x} to {}", final_path.display());
    let result = write_to(&tmp_path, tree, sessions, opts);
    if let Err(e) = result {
        let _ = crate::fs::remove_file(&tmp_path);
        return Err(StorageError::io(&tmp_path, e));
    }
    crate::fs::rename(&tmp_path, &final_path).at(&final_path)?;
    if opts.fsync {
        files::sync_dir(&dir).at(&dir)?;
    }
    tracing::info!(
        "Snapshot 0x{zxid:x} written in {} ms",
        started.elapsed().as_millis()
    );
    Ok(final_path)
}

/// The snapshot file's write buffer.
const FILE_BUFFER: usize = 256 * 1024;

fn write_to(
    path: &Path,
    tree: &DataTree,
    sessions: &[(i64, i32)],
    opts: &SnapshotOptions,
) -> io::Result<()> {
    let file = File::create(path)?;
    let buf = BufWriter::with_capacity(FILE_BUFFER, file);
    let inner = match opts.compression {
        Compression::None => Sink::Plain(buf),
        Compression::Gzip => Sink::Gzip(Box::new(flate2::write::GzEncoder::new(
            buf,
            flate2::Compression::default(),
        ))),
        Compression::Snappy => Sink::Snappy(Box::new(snappy::SnappyWriter::new(buf))),
    };
    let mut out = CheckedSink {
        inner,
        adler: adler2::Adler32::new(),
    };
    let mut w = Writer::new();
    FileHeader {
        magic: FileHeader::SNAP_MAGIC,
        version: FileHeader::VERSION,
        dbid: FileHeader::SNAP_DBID,
    }
    .write(&mut w);
    let mut sessions = sessions.to_vec();
    sessions.sort_by_key(|s| s.0);
    w.write_i32(sessions.len() as i32);
    for (id, timeout) in &sessions {
        w.write_i64(*id);
        w.write_i32(*timeout);
    }
    let acls = tree.acl_cache().entries();
    w.write_i32(acls.len() as i32);
    for (id, list) in &acls {
        w.write_i64(*id);
        list.write(&mut w);
    }
    out.write_jute(w)?;
    let mut err = None;
    // One buffer, handed on whenever it holds a file buffer's worth: the
    // file's buffer passes a write that large straight to the file.
    let mut w = Writer::with_capacity(FILE_BUFFER + 64 * 1024);
    tree.visit_parents_first(|path, node| {
        if err.is_some() {
            return;
        }
        w.write_string(path);
        w.write_buffer(node.data.as_deref());
        w.write_i64(node.acl);
        node.stat.write(&mut w);
        if w.len() >= FILE_BUFFER {
            if let Err(e) = out.write(w.as_slice()) {
                err = Some(e);
            }
            w.clear();
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    w.write_string("/");
    out.write_jute(w)?;
    out.seal()?;
    let digest = opts.digest.unwrap_or_else(|| default_digest(tree));
    let mut w = Writer::new();
    w.write_i64(digest.zxid);
    w.write_i32(digest.digest_version);
    w.write_i64(digest.digest);
    out.write_jute(w)?;
    out.seal()?;
    if opts.last_processed_zxid {
        let mut w = Writer::new();
        w.write_i64(tree.last_zxid());
        out.write_jute(w)?;
        out.seal()?;
    }
    let file = out.finish()?;
    if opts.fsync {
        file.sync_all()?;
    }
    Ok(())
}

/// What ZooKeeper writes when the caller gives no digest: the digest after
/// the tree's last txn, or all zeros for a tree that has seen none.
fn default_digest(tree: &DataTree) -> ZxidDigest {
    if tree.last_zxid() > 0 {
        ZxidDigest {
            zxid: tree.last_zxid(),
            digest_version: ensemble_tree::DIGEST_VERSION,
            digest: tree.digest(),
        }
    } else {
        ZxidDigest {
            zxid: 0,
            digest_version: ensemble_tree::DIGEST_VERSION,
            digest: 0,
        }
    }
}

/// The decompressed bytes of a snapshot file.
pub(crate) fn read_stream(path: &Path) -> Result<Vec<u8>, StorageError> {
    let mut raw = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .at(path)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    match Compression::of_file_name(name) {
        Compression::None => Ok(raw),
        Compression::Gzip => {
            let mut out = Vec::with_capacity(raw.len() * 4);
            flate2::read::MultiGzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .at(path)?;
            Ok(out)
        }
        Compression::Snappy => snappy::decode(&raw).at(path),
    }
}

/// Reads and verifies a snapshot: checksums of every seal, the end marker,
/// the parent of every node. The tree's `last_zxid` is the file name's zxid.
pub fn read_snapshot(path: &Path) -> Result<SnapshotData, StorageError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let zxid =
        files::zxid_from_name(name, SNAPSHOT_PREFIX).ok_or_else(|| StorageError::BadSnapshot {
            file: path.to_owned(),
            reason: "file name is not snapshot.<hex zxid>".into(),
        })?;
    let bytes = read_stream(path)?;
    let parsed = parse(path, Bytes::from(bytes))?;
    let tree = DataTree::from_snapshot(parsed.acls, parsed.nodes, zxid).map_err(|reason| {
        StorageError::BadSnapshot {
            file: path.to_owned(),
            reason,
        }
    })?;
    Ok(SnapshotData {
        path: path.to_owned(),
        zxid,
        tree,
        sessions: parsed.sessions,
        digest: parsed.digest,
        last_processed_zxid: parsed.last_processed_zxid,
    })
}

pub(crate) type SnapNode = (String, Option<Bytes>, i64, StatPersisted);

/// A snapshot's records, before they become a tree.
pub(crate) struct Parsed {
    pub sessions: Vec<(i64, i32)>,
    pub acls: Vec<(i64, Vec<Acl>)>,
    pub nodes: Vec<SnapNode>,
    pub digest: Option<ZxidDigest>,
    pub last_processed_zxid: Option<i64>,
}

struct Progress {
    started: Instant,
    last_log: Instant,
    total: usize,
}

impl Progress {
    fn tick(&mut self, path: &Path, nodes: usize, pos: usize) {
        let now = Instant::now();
        if now.duration_since(self.last_log) < Duration::from_secs(5) {
            return;
        }
        self.last_log = now;
        let elapsed = now.duration_since(self.started).as_secs_f64();
        let left = if pos > 0 {
            elapsed * (self.total - pos) as f64 / pos as f64
        } else {
            0.0
        };
        tracing::info!(
            "loading snapshot {}: {nodes} nodes, {:.1} of {:.1} MB, about {left:.0} s left",
            path.display(),
            pos as f64 / 1e6,
            self.total as f64 / 1e6
        );
    }
}

pub(crate) fn parse(path: &Path, bytes: Bytes) -> Result<Parsed, StorageError> {
    let all = bytes.clone();
    let mut r = Reader::new(bytes);
    let bad = |r: &Reader, reason: String| StorageError::BadSnapshot {
        file: path.to_owned(),
        reason: format!("{reason} (at byte {} of the stream)", r.position()),
    };
    let jute = |r: &Reader, e: JuteError| bad(r, e.to_string());
    let header = FileHeader::read(&mut r).map_err(|e| jute(&r, e))?;
    if header.magic != FileHeader::SNAP_MAGIC {
        return Err(bad(
            &r,
            format!(
                "mismatching magic headers {} != {}",
                header.magic,
                FileHeader::SNAP_MAGIC
            ),
        ));
    }
    let count = r.read_i32().map_err(|e| jute(&r, e))?;
    // A session takes 12 bytes: the count cannot ask for more than are left.
    let mut sessions = Vec::with_capacity((count.max(0) as usize).min(r.remaining() / 12));
    for _ in 0..count.max(0) {
        let id = r.read_i64().map_err(|e| jute(&r, e))?;
        let timeout = r.read_i32().map_err(|e| jute(&r, e))?;
        sessions.push((id, timeout));
    }
    sessions.sort_by_key(|s| s.0);
    let count = r.read_i32().map_err(|e| jute(&r, e))?;
    let mut acls = Vec::new();
    for _ in 0..count.max(0) {
        let id = r.read_i64().map_err(|e| jute(&r, e))?;
        let list = Vec::<Acl>::read(&mut r).map_err(|e| jute(&r, e))?;
        acls.push((id, list));
    }
    let mut nodes = Vec::new();
    let now = Instant::now();
    let mut progress = Progress {
        started: now,
        last_log: now,
        total: all.len(),
    };
    loop {
        let p = r.read_string().map_err(|e| jute(&r, e))?;
        if p == "/" {
            break;
        }
        let data = r.read_buffer().map_err(|e| jute(&r, e))?;
        let acl = r.read_i64().map_err(|e| jute(&r, e))?;
        let stat = StatPersisted::read(&mut r).map_err(|e| jute(&r, e))?;
        nodes.push((p, data, acl, stat));
        if nodes.len() % 65536 == 0 {
            progress.tick(path, nodes.len(), r.position());
        }
    }
    check_seal(path, &all, &mut r)?;
    let mut digest = None;
    let mut last_processed_zxid = None;
    if r.remaining() > 0 {
        let zxid = r.read_i64().map_err(|e| jute(&r, e))?;
        let digest_version = r.read_i32().map_err(|e| jute(&r, e))?;
        let value = if digest_version < 2 {
            let s = r.read_string().map_err(|e| jute(&r, e))?;
            u64::from_str_radix(&s, 16).unwrap_or(0) as i64
        } else {
            r.read_i64().map_err(|e| jute(&r, e))?
        };
        check_seal(path, &all, &mut r)?;
        digest = Some(ZxidDigest {
            zxid,
            digest_version,
            digest: value,
        });
        if r.remaining() > 0 {
            last_processed_zxid = Some(r.read_i64().map_err(|e| jute(&r, e))?);
            check_seal(path, &all, &mut r)?;
        }
    }
    Ok(Parsed {
        sessions,
        acls,
        nodes,
        digest,
        last_processed_zxid,
    })
}

/// `SnapStream.checkSealIntegrity`: the stored checksum must equal the
/// Adler-32 of every byte before it.
fn check_seal(path: &Path, all: &Bytes, r: &mut Reader) -> Result<(), StorageError> {
    let pos = r.position();
    let computed = crate::txnlog::adler32(&all[..pos]) as i64;
    let stored = r.read_i64().map_err(|e| StorageError::BadSnapshot {
        file: path.to_owned(),
        reason: format!("truncated before its checksum at byte {pos}: {e}"),
    })?;
    let _end = r.read_string().map_err(|e| StorageError::BadSnapshot {
        file: path.to_owned(),
        reason: format!("truncated after its checksum at byte {pos}: {e}"),
    })?;
    if stored != computed {
        return Err(StorageError::BadSnapshot {
            file: path.to_owned(),
            reason: format!(
                "CRC corruption: checksum at byte {pos} is {stored:#x}, computed {computed:#x}"
            ),
        });
    }
    Ok(())
}

/// `SnapStream.isValidSnapshot`: the cheap check done before reading.
pub fn is_valid_snapshot(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if files::zxid_from_name(name, SNAPSHOT_PREFIX).is_none() {
        return false;
    }
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    match Compression::of_file_name(name) {
        Compression::Gzip => {
            let mut m = [0u8; 2];
            f.read_exact(&mut m).is_ok() && m == [0x1f, 0x8b]
        }
        Compression::Snappy => {
            let mut m = [0u8; 8];
            f.read_exact(&mut m).is_ok() && m == snappy::MAGIC
        }
        Compression::None => {
            use std::io::{Seek, SeekFrom};
            let Ok(len) = f.metadata().map(|m| m.len()) else {
                return false;
            };
            if len < 10 {
                return false;
            }
            let mut tail = [0u8; 5];
            f.seek(SeekFrom::Start(len - 5)).is_ok()
                && f.read_exact(&mut tail).is_ok()
                && tail == [0, 0, 0, 1, b'/']
        }
    }
}

/// `FileSnap.findNValidSnapshots`: valid snapshots of `data_dir/version-2`,
/// newest first.
pub fn find_valid_snapshots(data_dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
    let dir = files::version_dir(data_dir);
    let mut all = files::list_files(&dir, SNAPSHOT_PREFIX)?;
    all.reverse();
    Ok(all
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| is_valid_snapshot(p))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_with_huge_session_count_is_an_error() {
        // A ZKSN header, then a session count of i32::MAX and no sessions.
        let mut b = b"ZKSN\0\0\0\x02\xff\xff\xff\xff\xff\xff\xff\xff".to_vec();
        b.extend_from_slice(&i32::MAX.to_be_bytes());
        let err = parse(Path::new("snapshot.1"), Bytes::from(b)).err();
        assert!(
            matches!(err, Some(StorageError::BadSnapshot { ref reason, .. })
                if reason.starts_with("unexpected end of record")),
            "{err:?}"
        );
    }
}
