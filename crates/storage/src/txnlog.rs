//! The transaction log, in the format of ZooKeeper's `FileTxnLog`.
//!
//! # Files
//!
//! `dataLogDir/version-2/log.<zxid>`, the zxid of the file's first txn in
//! lower-case hex without padding (`log.1`, `log.100000001`). Files are
//! ordered by that zxid. A new file starts at the first append after
//! [`TxnLogWriter::open`] and after every [`TxnLogWriter::roll`]; an existing
//! file is never appended to again.
//!
//! # Layout (all integers big-endian, jute encoding)
//!
//! ```text
//! FileHeader   magic "ZKLG" (int) | version 2 (int) | dbid 0 (long)      16 bytes
//! record*      checksum (long) | length (int) | entry (length bytes) | 'B' (0x42)
//! entry        TxnHeader (clientId long, cxid int, zxid long, time long, type int)
//!              txn record of that type (CreateTxn, SetDataTxn, MultiTxn...)
//!              [TxnDigest (version int, treeDigest long)]   ZooKeeper 3.6+
//! padding      zero bytes up to the preallocated size
//! ```
//!
//! The checksum is the Adler-32 of the entry bytes, stored as a long
//! (`Adler32.getValue()`). Whether a digest follows the txn is known only by
//! decoding the txn: exactly 12 bytes left over are a `TxnDigest`.
//!
//! # Preallocation (`FilePadding`)
//!
//! Before each append, when the flushed position is within 4 KB of the
//! preallocated size, the file grows by `pre_alloc_size` (64 MB by default)
//! by writing one zero byte at the new last offset (the file system fills
//! the hole with zeros). So the end of the records is found by a zero length
//! field (or a clean end of file), never by the file size.
//!
//! # Durability
//!
//! [`TxnLogWriter::append`] only buffers. [`TxnLogWriter::commit`] writes
//! the buffer and `fdatasync`s every file written since the last commit (a
//! rolled file too), unless `force_sync` is off (`zookeeper.forceSync=no`).
//! Unlike ZooKeeper, the directory is also fsynced once after a new file is
//! created, so the file's name survives a crash. A caller acknowledges a txn
//! only after the commit that covers it returns.
//!
//! # Reading and recovery
//!
//! [`TxnLogReader`] walks the files in zxid order from the last file starting
//! at or before `from_zxid` (`FileTxnLog.getLogFiles`) and yields records
//! with zxid >= `from_zxid`. A record that is short, runs past the end of the
//! file, lacks its 'B', or fails its checksum ends its file when only zero
//! bytes follow it: in the newest file it is a torn write, reported by
//! [`TxnLogReader::torn_tail`] and removed by
//! [`TxnLogReader::truncate_torn_tail`]; in an older file (ZooKeeper leaves
//! such tails when it restarts into a new file) it is logged and skipped.
//! A damaged record followed by anything but zeros, a record whose checksum
//! holds but which does not decode, and a missing zxid within an epoch are
//! errors naming the file and byte offset: startup must stop there.
//!
//! ```no_run
//! # use ensemble_storage::{TxnLogWriter, TxnLogOptions, TxnLogReader};
//! # fn f(hdr: ensemble_proto::TxnHeader, body: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
//! let mut log = TxnLogWriter::open("/var/lib/zookeeper".as_ref(), TxnLogOptions::default())?;
//! log.append(&hdr, body, None)?; // as many as the batch holds
//! log.commit()?;                 // one fsync for the batch
//! for entry in TxnLogReader::open("/var/lib/zookeeper".as_ref(), 1)? {
//!     let entry = entry?;
//!     println!("{:x}", entry.header.zxid);
//! }
//! # Ok(()) }
//! ```

use crate::error::{IoContext, StorageError};
use crate::files::{self, LOG_PREFIX};
use crate::fs::{File, OpenOptions};
use bytes::Bytes;
use ensemble_proto::{FileHeader, Jute, Reader, TxnDigest, TxnHeader, Writer};
use ensemble_tree::TxnBody;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// 'B', the byte ending every record (`Util.writeTxnBytes`).
pub const END_OF_RECORD: u8 = 0x42;
/// Bytes of a `FileHeader`.
pub const FILE_HEADER_LEN: u64 = 16;
/// Bytes of a `TxnHeader`.
pub const TXN_HEADER_LEN: usize = 32;
/// Bytes of a `TxnDigest`.
pub const TXN_DIGEST_LEN: usize = 12;
/// ZooKeeper's default `preAllocSize`: 64 MB.
pub const DEFAULT_PRE_ALLOC_SIZE: u64 = 64 * 1024 * 1024;

/// How the log is written; ZooKeeper reads these from system properties.
#[derive(Debug, Clone)]
pub struct TxnLogOptions {
    /// `zookeeper.preAllocSize` in bytes (ZooKeeper's setting is in KB); 0
    /// turns preallocation off.
    pub pre_alloc_size: u64,
    /// `zookeeper.forceSync`: fdatasync at each commit.
    pub force_sync: bool,
    /// `fsync.warningthresholdms`: slower fsyncs are logged as warnings.
    pub fsync_warning_threshold: Duration,
    /// `zookeeper.txnLogSizeLimitInKb` in bytes: roll after a commit that
    /// leaves the current file larger than this. `None`: no limit.
    pub size_limit: Option<u64>,
}

impl Default for TxnLogOptions {
    fn default() -> Self {
        TxnLogOptions {
            pre_alloc_size: DEFAULT_PRE_ALLOC_SIZE,
            force_sync: true,
            fsync_warning_threshold: Duration::from_millis(1000),
            size_limit: None,
        }
    }
}

/// `FilePadding.calculateFileSizeWithPadding`: the file size after padding,
/// given the flushed position and the current (padded) size.
pub fn padded_size(position: u64, file_size: u64, pre_alloc_size: u64) -> u64 {
    if pre_alloc_size > 0 && position + 4096 >= file_size {
        if position > file_size {
            let s = position + pre_alloc_size;
            s - s % pre_alloc_size
        } else {
            file_size + pre_alloc_size
        }
    } else {
        file_size
    }
}

/// The entry bytes of one record: header, txn, optional digest
/// (`Util.marshallTxnEntry`).
pub fn marshal_entry(hdr: &TxnHeader, txn: &[u8], digest: Option<&TxnDigest>) -> Vec<u8> {
    let mut w = Writer::with_capacity(TXN_HEADER_LEN + txn.len() + TXN_DIGEST_LEN);
    hdr.write(&mut w);
    w.write_raw(txn);
    if let Some(d) = digest {
        d.write(&mut w);
    }
    w.into_bytes().to_vec()
}

/// One whole record as it sits in the file: checksum, length, entry, 'B'.
pub fn encode_record(entry: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entry.len() + 13);
    out.extend_from_slice(&(adler32(entry) as i64).to_be_bytes());
    out.extend_from_slice(&(entry.len() as i32).to_be_bytes());
    out.extend_from_slice(entry);
    out.push(END_OF_RECORD);
    out
}

pub(crate) fn adler32(b: &[u8]) -> u32 {
    adler2::adler32_slice(b)
}

fn file_header_bytes(magic: i32, dbid: i64) -> Bytes {
    FileHeader {
        magic,
        version: FileHeader::VERSION,
        dbid,
    }
    .to_bytes()
}

struct CurrentLog {
    file: File,
    path: PathBuf,
    /// `FileTxnLog.filePosition`: bytes flushed to the file.
    position: u64,
    /// `FilePadding.currentSize`: the preallocated size.
    padded: u64,
    /// `FileTxnLog.fileSize`: the larger of the two, for size reporting.
    size: u64,
}

/// Appends txns to `version-2/log.<zxid>` files; see the module docs.
pub struct TxnLogWriter {
    dir: PathBuf,
    opts: TxnLogOptions,
    current: Option<CurrentLog>,
    /// Files written since the last commit, oldest first; the last is the
    /// current file when there is one (`streamsToFlush`).
    to_sync: Vec<(PathBuf, File)>,
    dir_needs_sync: bool,
    buf: Vec<u8>,
    last_zxid_seen: i64,
    appended_in_file: u64,
    prev_logs_size: u64,
}

impl TxnLogWriter {
    /// Prepares to write into `data_log_dir/version-2`, creating it. No file
    /// is created until the first append.
    pub fn open(data_log_dir: &Path, opts: TxnLogOptions) -> io::Result<TxnLogWriter> {
        let dir = files::version_dir(data_log_dir);
        crate::fs::create_dir_all(&dir)?;
        Ok(TxnLogWriter {
            dir,
            opts,
            current: None,
            to_sync: Vec::new(),
            dir_needs_sync: false,
            buf: Vec::with_capacity(64 * 1024),
            last_zxid_seen: 0,
            appended_in_file: 0,
            prev_logs_size: 0,
        })
    }

    pub fn options(&self) -> &TxnLogOptions {
        &self.opts
    }

    /// Buffers one record; it is durable only after [`commit`](Self::commit).
    /// `txn` is the encoded txn record (`TxnBody::encode`); `digest` is the
    /// tree digest after applying it, as ZooKeeper 3.6+ logs it.
    pub fn append(
        &mut self,
        hdr: &TxnHeader,
        txn: &[u8],
        digest: Option<&TxnDigest>,
    ) -> io::Result<()> {
        if hdr.zxid <= self.last_zxid_seen {
            tracing::warn!(
                "Current zxid 0x{:x} is <= 0x{:x} for txn type {}",
                hdr.zxid,
                self.last_zxid_seen,
                hdr.r#type
            );
        } else {
            self.last_zxid_seen = hdr.zxid;
        }
        if self.current.is_none() {
            self.start_file(hdr.zxid)?;
        }
        let pre_alloc = self.opts.pre_alloc_size;
        let Some(cur) = self.current.as_mut() else {
            return Err(io::Error::other("no current log file"));
        };
        let new_size = padded_size(cur.position, cur.padded, pre_alloc);
        if new_size != cur.padded {
            cur.file.write_all_at(&[0], new_size - 1)?;
            cur.padded = new_size;
        }
        cur.size = cur.size.max(cur.padded);
        let entry = marshal_entry(hdr, txn, digest);
        self.buf.extend_from_slice(&encode_record(&entry));
        self.appended_in_file += 1;
        Ok(())
    }

    fn start_file(&mut self, zxid: i64) -> io::Result<()> {
        let name = files::log_file_name(zxid);
        tracing::info!("Creating new log file: {name}");
        let path = self.dir.join(&name);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        let header = file_header_bytes(FileHeader::TXNLOG_MAGIC, FileHeader::TXNLOG_DBID);
        file.write_all(&header)?;
        self.to_sync.push((path.clone(), file.try_clone()?));
        self.dir_needs_sync = true;
        self.appended_in_file = 0;
        self.current = Some(CurrentLog {
            file,
            path,
            position: FILE_HEADER_LEN,
            padded: FILE_HEADER_LEN,
            size: FILE_HEADER_LEN,
        });
        Ok(())
    }

    fn flush_buffer(&mut self) -> io::Result<()> {
        if let Some(cur) = self.current.as_mut() {
            if !self.buf.is_empty() {
                cur.file.write_all(&self.buf)?;
                cur.position += self.buf.len() as u64;
                cur.size = cur.size.max(cur.position);
                self.buf.clear();
            }
        }
        Ok(())
    }

    /// Writes the buffered records and fdatasyncs every file written since
    /// the last commit. Returns the time spent in fsync; a sync slower than
    /// `fsync_warning_threshold` is logged as a warning.
    pub fn commit(&mut self) -> io::Result<Duration> {
        self.flush_buffer()?;
        let mut total = Duration::ZERO;
        if self.opts.force_sync {
            for (path, file) in &self.to_sync {
                let start = Instant::now();
                file.sync_data()?;
                let took = start.elapsed();
                total += took;
                if took > self.opts.fsync_warning_threshold {
                    tracing::warn!(
                        "fsync-ing the write ahead log {} took {}ms which will adversely effect \
                         operation latency. File size is {} bytes. See the ZooKeeper \
                         troubleshooting guide",
                        path.display(),
                        took.as_millis(),
                        file.metadata().map(|m| m.len()).unwrap_or(0)
                    );
                }
            }
            if self.dir_needs_sync {
                files::sync_dir(&self.dir)?;
            }
        }
        self.dir_needs_sync = false;
        // Keep only the current file (a rolled one is done with).
        let keep = usize::from(self.current.is_some());
        let drop = self.to_sync.len().saturating_sub(keep);
        self.to_sync.drain(..drop);
        if let (Some(limit), Some(cur)) = (self.opts.size_limit, self.current.as_ref()) {
            if cur.size > limit {
                tracing::debug!("Log size limit reached: {}", cur.size);
                self.roll()?;
            }
        }
        Ok(total)
    }

    /// Ends the current file: the next append starts `log.<its zxid>`. The
    /// ended file is written now and fsynced by the next commit, as
    /// ZooKeeper's `rollLog`.
    pub fn roll(&mut self) -> io::Result<()> {
        self.flush_buffer()?;
        if let Some(cur) = self.current.take() {
            self.prev_logs_size += cur.size;
        }
        self.appended_in_file = 0;
        Ok(())
    }

    /// Commits what is buffered and closes the current file.
    pub fn close(mut self) -> io::Result<()> {
        self.commit()?;
        Ok(())
    }

    /// The file being appended to, if any.
    pub fn current_file(&self) -> Option<&Path> {
        self.current.as_ref().map(|c| c.path.as_path())
    }

    /// Records appended to the current file (counting since the last roll).
    pub fn appended_in_current_file(&self) -> u64 {
        self.appended_in_file
    }

    /// `getCurrentLogSize`: the current file's size, padding included.
    pub fn current_log_size(&self) -> u64 {
        self.current.as_ref().map_or(0, |c| c.size)
    }

    /// `getTotalLogSize`: sizes of the files written by this writer.
    pub fn total_log_size(&self) -> u64 {
        self.prev_logs_size + self.current_log_size()
    }

    /// Records buffered since the last commit, in bytes.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }
}

/// When to snapshot (and roll the log), as `SyncRequestProcessor`: after
/// `snapCount/2 + rand(snapCount/2)` txns, or when the log bytes pass
/// `snapSizeInBytes/2 + rand(snapSizeInBytes/2)`, randomised per server so
/// that the members of an ensemble do not all snapshot at once.
#[derive(Debug, Clone)]
pub struct SnapshotTrigger {
    snap_count: u64,
    snap_size: u64,
    rand_roll: u64,
    rand_size: u64,
    count: u64,
    size: u64,
    rng: u64,
}

impl SnapshotTrigger {
    /// `snap_count` is `zookeeper.snapCount` (at least 2, as ZooKeeper
    /// enforces); `snap_size_bytes` is `zookeeper.snapSizeLimitInKb` in
    /// bytes, 0 for no size trigger. Seeded from the process's random state.
    pub fn new(snap_count: u64, snap_size_bytes: u64) -> SnapshotTrigger {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(snap_count);
        Self::with_seed(snap_count, snap_size_bytes, h.finish())
    }

    /// As [`new`](Self::new) with a fixed seed, for tests and simulations.
    pub fn with_seed(snap_count: u64, snap_size_bytes: u64, seed: u64) -> SnapshotTrigger {
        let mut t = SnapshotTrigger {
            snap_count: snap_count.max(2),
            snap_size: snap_size_bytes,
            rand_roll: 0,
            rand_size: 0,
            count: 0,
            size: 0,
            rng: seed | 1,
        };
        t.reset();
        t
    }

    fn next_rand(&mut self, bound: u64) -> u64 {
        // splitmix64; quality hardly matters, spreading does.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        if bound == 0 {
            0
        } else {
            z % bound
        }
    }

    /// Counts one appended txn of `bytes` bytes.
    pub fn record_append(&mut self, bytes: u64) {
        self.count += 1;
        self.size += bytes;
    }

    /// True once the randomised point is passed: roll the log, snapshot,
    /// then [`reset`](Self::reset).
    pub fn should_snapshot(&self) -> bool {
        self.past_count_point() || self.past_size_point()
    }

    fn past_count_point(&self) -> bool {
        self.count > self.snap_count / 2 + self.rand_roll
    }

    fn past_size_point(&self) -> bool {
        self.snap_size > 0 && self.size > self.snap_size / 2 + self.rand_size
    }

    /// Whether a snapshot of a tree of `tree_nodes` znodes is due: as
    /// [`should_snapshot`](Self::should_snapshot), but the txn count must
    /// also reach half the tree's size. Writing a snapshot costs in
    /// proportion to the tree, so a large tree is written at most once per
    /// half its size in txns, two znodes written per txn at most, where a
    /// fixed count would write a tree of millions every `snapCount` txns,
    /// back to back under load. The log a restart replays stays within half
    /// the tree; the size limit applies as it is.
    pub fn snapshot_due(&self, tree_nodes: u64) -> bool {
        (self.past_count_point() && self.count >= tree_nodes / 2) || self.past_size_point()
    }

    /// Starts counting again with new random points (`resetSnapshotStats`).
    pub fn reset(&mut self) {
        self.count = 0;
        self.size = 0;
        self.rand_roll = self.next_rand(self.snap_count / 2);
        self.rand_size = self.next_rand(self.snap_size / 2);
    }

    /// The txn count at which the current round snapshots.
    pub fn roll_point(&self) -> u64 {
        self.snap_count / 2 + self.rand_roll + 1
    }
}

/// One record read back from a log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub header: TxnHeader,
    /// The decoded txn.
    pub body: TxnBody,
    /// The txn record bytes exactly as stored (without header or digest).
    pub txn: Bytes,
    pub digest: Option<TxnDigest>,
    pub file: PathBuf,
    /// Byte offset of the record (its checksum field) in `file`.
    pub offset: u64,
}

/// A damaged record at the end of the newest log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub file: PathBuf,
    /// Where the damaged record starts; the file is cut here.
    pub offset: u64,
    pub reason: String,
}

/// Splits a checksummed entry into header, txn, digest (the reading side of
/// `SerializeUtils.deserializeTxn`).
pub fn decode_entry(
    entry: &Bytes,
) -> Result<(TxnHeader, TxnBody, Bytes, Option<TxnDigest>), String> {
    let mut r = Reader::new(entry.clone());
    let hdr = TxnHeader::read(&mut r).map_err(|e| format!("bad TxnHeader: {e}"))?;
    let rest = r.rest();
    let body = TxnBody::decode(hdr.r#type, &rest)
        .map_err(|e| format!("bad txn of type {}: {e}", hdr.r#type))?;
    // Jute encodings are canonical in length, so re-encoding tells where the
    // txn ends; exactly a TxnDigest may follow.
    let txn_len = body.encode().len().min(rest.len());
    let tail = rest.len() - txn_len;
    let digest = match tail {
        0 => None,
        TXN_DIGEST_LEN => Some(
            TxnDigest::from_bytes(&rest[txn_len..]).map_err(|e| format!("bad TxnDigest: {e}"))?,
        ),
        n => {
            return Err(format!(
                "{n} unexpected bytes after the txn of type {}",
                hdr.r#type
            ))
        }
    };
    Ok((hdr, body, rest.slice(..txn_len), digest))
}

/// The outcome of reading one record slot of a log file.
pub(crate) enum Slot {
    /// A record whose length and terminator are sound; its checksum is
    /// not checked yet.
    Record {
        offset: u64,
        stored_crc: i64,
        entry: Bytes,
    },
    /// Zero length, or the clean end of the file.
    End,
    /// A record that cannot be a whole one; `clean_after` tells whether only
    /// zeros (or nothing) follow it.
    Damaged {
        offset: u64,
        reason: String,
        clean_after: bool,
    },
}

/// Sequential reader of one log file's records.
pub(crate) struct LogFileCursor {
    pub path: PathBuf,
    reader: BufReader<File>,
    pos: u64,
    len: u64,
}

impl LogFileCursor {
    /// Opens a log file and checks its header. `Ok(None)` for a file too
    /// short to hold a header (a file created just before a crash).
    pub fn open(path: &Path) -> Result<Option<(LogFileCursor, FileHeader)>, StorageError> {
        let file = File::open(path).at(path)?;
        let len = file.metadata().at(path)?.len();
        let mut reader = BufReader::with_capacity(256 * 1024, file);
        if len < FILE_HEADER_LEN {
            return Ok(None);
        }
        let mut h = [0u8; FILE_HEADER_LEN as usize];
        reader.read_exact(&mut h).at(path)?;
        let header = FileHeader::from_bytes(&h).map_err(|e| StorageError::Corrupt {
            file: path.to_owned(),
            offset: 0,
            reason: e.to_string(),
        })?;
        if header.magic != FileHeader::TXNLOG_MAGIC {
            return Err(StorageError::Corrupt {
                file: path.to_owned(),
                offset: 0,
                reason: format!(
                    "invalid magic number {} != {} (not a transaction log)",
                    header.magic,
                    FileHeader::TXNLOG_MAGIC
                ),
            });
        }
        Ok(Some((
            LogFileCursor {
                path: path.to_owned(),
                reader,
                pos: FILE_HEADER_LEN,
                len,
            },
            header,
        )))
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), StorageError> {
        self.reader.read_exact(buf).at(&self.path)?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// Whether only zero bytes remain from the current position on.
    fn rest_is_zero(&mut self) -> Result<bool, StorageError> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = self.reader.read(&mut chunk).at(&self.path)?;
            if n == 0 {
                return Ok(true);
            }
            self.pos += n as u64;
            if chunk[..n].iter().any(|&b| b != 0) {
                return Ok(false);
            }
        }
    }

    pub fn next_slot(&mut self) -> Result<Slot, StorageError> {
        let offset = self.pos;
        let left = self.len.saturating_sub(offset);
        if left == 0 {
            return Ok(Slot::End);
        }
        if left < 12 {
            return Ok(if self.rest_is_zero()? {
                Slot::End
            } else {
                Slot::Damaged {
                    offset,
                    reason: "partial record header".into(),
                    clean_after: true,
                }
            });
        }
        let mut head = [0u8; 12];
        self.read_exact(&mut head)?;
        let stored_crc = i64::from_be_bytes(head[..8].try_into().unwrap_or_default());
        let length = i32::from_be_bytes(head[8..].try_into().unwrap_or_default());
        if length == 0 {
            // Preallocated zeros (ZooKeeper ignores the checksum field here).
            return Ok(Slot::End);
        }
        let left = self.len - self.pos;
        if length < 0 || length as u64 + 1 > left {
            return Ok(Slot::Damaged {
                offset,
                reason: format!(
                    "record length {length} runs past the end of the file ({left} bytes left)"
                ),
                clean_after: true,
            });
        }
        let mut entry = vec![0u8; length as usize];
        self.read_exact(&mut entry)?;
        let mut eor = [0u8; 1];
        self.read_exact(&mut eor)?;
        if eor[0] != END_OF_RECORD {
            // The 'B' itself may be where the zeros start.
            let clean_after = eor[0] == 0 && self.rest_is_zero()?;
            return Ok(Slot::Damaged {
                offset,
                reason: "record not terminated by 'B' (partial write)".into(),
                clean_after,
            });
        }
        Ok(Slot::Record {
            offset,
            stored_crc,
            entry: Bytes::from(entry),
        })
    }

    /// After a checksum failure: whether only zeros follow the record.
    pub fn clean_after_current(&mut self) -> Result<bool, StorageError> {
        self.rest_is_zero()
    }
}

/// Iterates the records of `dataLogDir/version-2` in zxid order; see the
/// module docs for what ends a file and what is an error.
pub struct TxnLogReader {
    files: Vec<(i64, PathBuf)>,
    newest: Option<PathBuf>,
    next_file: usize,
    cursor: Option<LogFileCursor>,
    from_zxid: i64,
    prev_zxid: Option<i64>,
    emitted_any: bool,
    torn: Option<TornTail>,
    failed: bool,
}

fn epoch(zxid: i64) -> i64 {
    zxid >> 32
}

impl TxnLogReader {
    /// Reads `data_log_dir/version-2` from the first record with zxid >=
    /// `from_zxid`.
    pub fn open(data_log_dir: &Path, from_zxid: i64) -> Result<TxnLogReader, StorageError> {
        let dir = files::version_dir(data_log_dir);
        let all = files::list_files(&dir, LOG_PREFIX)?;
        let newest = all.last().map(|f| f.1.clone());
        let files = files::logs_covering(&all, from_zxid);
        Ok(TxnLogReader {
            files,
            newest,
            next_file: 0,
            cursor: None,
            from_zxid,
            prev_zxid: None,
            emitted_any: false,
            torn: None,
            failed: false,
        })
    }

    /// The files this reader walks, oldest first.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|f| f.1.as_path())
    }

    /// The torn record found at the end of the newest file, once iteration
    /// has reached it.
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn.as_ref()
    }

    /// Cuts the newest file at the torn record (removing a file that has not
    /// even a whole header) and fsyncs it. Returns whether anything was cut.
    pub fn truncate_torn_tail(&mut self) -> Result<bool, StorageError> {
        let Some(t) = self.torn.take() else {
            return Ok(false);
        };
        truncate_log_at(&t.file, t.offset)?;
        Ok(true)
    }

    fn is_newest(&self, path: &Path) -> bool {
        self.newest.as_deref() == Some(path)
    }

    fn open_next_file(&mut self) -> Result<bool, StorageError> {
        let Some((_, path)) = self.files.get(self.next_file).cloned() else {
            return Ok(false);
        };
        self.next_file += 1;
        match LogFileCursor::open(&path)? {
            Some((c, _)) => {
                self.cursor = Some(c);
                Ok(true)
            }
            None if self.is_newest(&path) => {
                tracing::warn!("{}: empty tail log file, no header", path.display());
                self.torn = Some(TornTail {
                    file: path,
                    offset: 0,
                    reason: "file shorter than its header".into(),
                });
                Ok(false)
            }
            None => Err(StorageError::Corrupt {
                file: path,
                offset: 0,
                reason: "file shorter than its header".into(),
            }),
        }
    }

    fn damaged(
        &mut self,
        offset: u64,
        reason: String,
        clean_after: bool,
    ) -> Result<(), StorageError> {
        let Some(c) = self.cursor.take() else {
            return Ok(());
        };
        if !clean_after {
            return Err(StorageError::Corrupt {
                file: c.path,
                offset,
                reason,
            });
        }
        if self.is_newest(&c.path) {
            tracing::warn!(
                "{}: torn record at byte offset {offset}: {reason}",
                c.path.display()
            );
            self.torn = Some(TornTail {
                file: c.path,
                offset,
                reason,
            });
        } else {
            tracing::warn!(
                "{}: ignoring a partial record at byte offset {offset} at the end of an older \
                 log file: {reason}",
                c.path.display()
            );
        }
        Ok(())
    }

    fn next_entry(&mut self) -> Result<Option<LogEntry>, StorageError> {
        loop {
            if self.cursor.is_none() && !self.open_next_file()? {
                return Ok(None);
            }
            let Some(cursor) = self.cursor.as_mut() else {
                return Ok(None);
            };
            match cursor.next_slot()? {
                Slot::End => {
                    self.cursor = None;
                }
                Slot::Damaged {
                    offset,
                    reason,
                    clean_after,
                } => self.damaged(offset, reason, clean_after)?,
                Slot::Record {
                    offset,
                    stored_crc,
                    entry,
                } => {
                    let computed = adler32(&entry) as i64;
                    if stored_crc != computed {
                        let clean = cursor.clean_after_current()?;
                        self.damaged(
                            offset,
                            format!(
                                "checksum mismatch (stored {stored_crc:#x}, computed {computed:#x})"
                            ),
                            clean,
                        )?;
                        continue;
                    }
                    let path = cursor.path.clone();
                    let (header, body, txn, digest) =
                        decode_entry(&entry).map_err(|reason| StorageError::Corrupt {
                            file: path.clone(),
                            offset,
                            reason,
                        })?;
                    let zxid = header.zxid;
                    let prev = self.prev_zxid.replace(zxid);
                    if zxid < self.from_zxid {
                        continue;
                    }
                    let expected = if self.emitted_any {
                        prev.map(|p| p + 1)
                    } else if self.from_zxid > 0 {
                        Some(self.from_zxid)
                    } else {
                        None
                    };
                    if let Some(exp) = expected {
                        if zxid > exp && epoch(zxid) == epoch(exp) {
                            return Err(StorageError::Gap {
                                file: path,
                                offset,
                                expected: exp,
                                found: zxid,
                            });
                        }
                    }
                    self.emitted_any = true;
                    return Ok(Some(LogEntry {
                        header,
                        body,
                        txn,
                        digest,
                        file: path,
                        offset,
                    }));
                }
            }
        }
    }
}

impl Iterator for TxnLogReader {
    type Item = Result<LogEntry, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Cuts a log file at `offset` (removing it when the offset is within its
/// header) and fsyncs the result (`FileTxnLog.truncate`'s `setLength`).
pub fn truncate_log_at(file: &Path, offset: u64) -> Result<(), StorageError> {
    if offset < FILE_HEADER_LEN {
        crate::fs::remove_file(file).at(file)?;
        if let Some(dir) = file.parent() {
            files::sync_dir(dir).at(dir)?;
        }
        tracing::warn!("removed log file {} with no whole header", file.display());
        return Ok(());
    }
    let f = OpenOptions::new().write(true).open(file).at(file)?;
    f.set_len(offset).at(file)?;
    f.sync_all().at(file)?;
    tracing::warn!(
        "truncated log file {} at byte offset {offset}",
        file.display()
    );
    Ok(())
}

/// The zxid of the last readable record of the logs (`getLastLoggedZxid`),
/// or `None` when there is none.
pub fn last_logged_zxid(data_log_dir: &Path) -> Result<Option<i64>, StorageError> {
    let dir = files::version_dir(data_log_dir);
    let all = files::list_files(&dir, LOG_PREFIX)?;
    let Some((start, _)) = all.last() else {
        return Ok(None);
    };
    let mut last = None;
    for e in TxnLogReader::open(data_log_dir, *start)? {
        last = Some(e?.header.zxid);
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_follows_file_padding() {
        let p = 64 * 1024;
        assert_eq!(padded_size(16, 16, p), 16 + p);
        assert_eq!(padded_size(100, 16 + p, p), 16 + p);
        assert_eq!(padded_size(p - 4000, 16 + p, p), 16 + 2 * p);
        assert_eq!(padded_size(3 * p + 5, 2 * p, p), 4 * p);
        assert_eq!(padded_size(5000, 16, 0), 16);
    }

    #[test]
    fn snapshot_trigger_fires_between_half_and_full_snap_count() {
        for seed in 0..50 {
            let mut t = SnapshotTrigger::with_seed(100, 0, seed);
            let mut n = 0;
            while !t.should_snapshot() {
                t.record_append(10);
                n += 1;
            }
            assert!((51..=100).contains(&n), "fired after {n}");
            assert_eq!(n, t.roll_point());
        }
    }

    #[test]
    fn a_snapshot_of_a_large_tree_waits_for_half_its_size_in_txns() {
        let mut t = SnapshotTrigger::with_seed(100, 0, 7);
        while !t.should_snapshot() {
            t.record_append(10);
        }
        // A tree within the count: ZooKeeper's point.
        assert!(t.snapshot_due(150));
        // A larger one: half its size in txns.
        assert!(!t.snapshot_due(1000));
        while t.count < 499 {
            t.record_append(10);
        }
        assert!(!t.snapshot_due(1000));
        t.record_append(10);
        assert!(t.snapshot_due(1000));
    }

    #[test]
    fn the_size_limit_snapshots_a_large_tree_all_the_same() {
        let mut t = SnapshotTrigger::with_seed(100, 1000, 7);
        let mut n = 0;
        while !t.snapshot_due(1_000_000) {
            t.record_append(100);
            n += 1;
        }
        assert!((6..=11).contains(&n), "fired after {n}");
    }
}
