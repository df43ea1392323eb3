//! Text dumps in the words of ZooKeeper's tools, for `ensemble log dump` and
//! `ensemble snapshot dump`:
//!
//! - [`dump_txn_log`] prints what `TxnLogToolkit <log>` prints (3.9 wording:
//!   multi sub-txns formatted one by one), dates in UTC with Java's
//!   `DateFormat` SHORT date / LONG time for the US locale.
//! - [`dump_snapshot`] prints what `SnapshotFormatter [-d] <snapshot>` prints;
//!   `Date.toString()` dates in UTC. ZooKeeper lists children and sessions in
//!   Java hash order; we list them sorted.
//! - [`verify_txn_log`] checks every record's checksum, as the toolkit's
//!   dump does ("CRC ERROR - " lines), and reports the counts.

use crate::error::{IoContext, StorageError};
use crate::snapshot;
use crate::txnlog::{adler32, decode_entry, LogFileCursor, Slot};
use bytes::Bytes;
use ensemble_proto::jute::to_string_escaped;
use ensemble_proto::{op, Acl, StatPersisted};
use ensemble_tree::TxnBody;
use std::io::Write;
use std::path::Path;

/// `Request.op2String`.
pub fn op_name(t: i32) -> String {
    let s = match t {
        op::NOTIFICATION => "notification",
        op::CREATE => "create",
        op::DELETE => "delete",
        op::EXISTS => "exists",
        op::GET_DATA => "getData",
        op::SET_DATA => "setData",
        op::GET_ACL => "getACL",
        op::SET_ACL => "setACL",
        op::GET_CHILDREN => "getChildren",
        op::SYNC => "sync",
        op::PING => "ping",
        op::GET_CHILDREN2 => "getChildren2",
        op::CHECK => "check",
        op::MULTI => "multi",
        op::CREATE2 => "create2",
        op::RECONFIG => "reconfig",
        op::CHECK_WATCHES => "checkWatches",
        op::REMOVE_WATCHES => "removeWatches",
        op::CREATE_CONTAINER => "createContainer",
        op::DELETE_CONTAINER => "deleteContainer",
        op::CREATE_TTL => "createTTL",
        op::MULTI_READ => "multiRead",
        op::AUTH => "auth",
        op::SET_WATCHES => "setWatches",
        op::SET_WATCHES2 => "setWatches2",
        op::ADD_WATCH => "addWatch",
        op::SASL => "sasl",
        op::GET_EPHEMERALS => "getEphemerals",
        op::GET_ALL_CHILDREN_NUMBER => "getAllChildrenNumber",
        op::CREATE_SESSION => "createSession",
        op::CLOSE_SESSION => "closeSession",
        op::ERROR => "error",
        op::WHO_AM_I => "whoAmI",
        other => return format!("unknown {other}"),
    };
    s.to_owned()
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

struct Utc {
    year: i64,
    month: u32,
    day: u32,
    weekday: usize,
    h: i64,
    m: i64,
    s: i64,
}

fn utc(ms: i64) -> Utc {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (year, month, day) = civil(days);
    Utc {
        year,
        month,
        day,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7) as usize,
        h: sod / 3600,
        m: sod % 3600 / 60,
        s: sod % 60,
    }
}

/// Java's `new Date(ms).toString()` in UTC: `Thu Jan 01 00:00:00 UTC 1970`.
pub fn java_date_string(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = utc(ms);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[t.weekday],
        MONTHS[(t.month - 1) as usize],
        t.day,
        t.h,
        t.m,
        t.s,
        t.year
    )
}

/// Java's US `DateFormat` SHORT date, LONG time in UTC: `11/25/26, 6:49:32 AM UTC`.
pub fn java_short_long_date(ms: i64) -> String {
    let t = utc(ms);
    let (h12, ampm) = match t.h {
        0 => (12, "AM"),
        1..=11 => (t.h, "AM"),
        12 => (12, "PM"),
        _ => (t.h - 12, "PM"),
    };
    format!(
        "{}/{}/{:02}, {}:{:02}:{:02} {} UTC",
        t.month,
        t.day,
        t.year.rem_euclid(100),
        h12,
        t.m,
        t.s,
        ampm
    )
}

/// `ACL.toString()`: `31,s{'world,'anyone}` and a newline.
fn acl_to_string(a: &Acl) -> String {
    format!(
        "{},s{{{},{}}}\n",
        a.perms,
        to_string_escaped(&a.id.scheme),
        to_string_escaped(&a.id.id)
    )
}

/// `List<ACL>.toString()`.
fn acl_list(acl: &[Acl]) -> String {
    let parts: Vec<String> = acl.iter().map(acl_to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// A vector of ACLs inside a record's `toString()`.
fn acl_vector(acl: &[Acl]) -> String {
    let parts: Vec<String> = acl
        .iter()
        .map(|a| {
            format!(
                "s{{{},s{{{},{}}}}}",
                a.perms,
                to_string_escaped(&a.id.scheme),
                to_string_escaped(&a.id.id)
            )
        })
        .collect();
    format!("v{{{}}}", parts.join(","))
}

fn text(data: &Option<Bytes>) -> String {
    data.as_ref()
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .unwrap_or_default()
}

/// `TxnLogToolkit.getFormattedTxnStr`.
pub fn format_txn(body: &TxnBody) -> String {
    match body {
        TxnBody::Create(t) | TxnBody::Create2(t) => format!(
            "{},{},{},{},{}",
            t.path,
            text(&t.data),
            acl_list(&t.acl),
            t.ephemeral,
            t.parent_c_version
        ),
        TxnBody::SetData(t) | TxnBody::Reconfig(t) => {
            format!("{},{},{}", t.path, text(&t.data), t.version)
        }
        TxnBody::CreateContainer(t) => format!(
            "{},{},{},{}",
            t.path,
            text(&t.data),
            acl_list(&t.acl),
            t.parent_c_version
        ),
        TxnBody::CreateTtl(t) => format!(
            "{},{},{},{},{}",
            t.path,
            text(&t.data),
            acl_list(&t.acl),
            t.parent_c_version,
            t.ttl
        ),
        TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => t.path.clone(),
        TxnBody::Check(t) => format!("{},{}", t.path, t.version),
        TxnBody::Multi(subs) => {
            let parts: Vec<String> = subs
                .iter()
                .map(|s| {
                    let inner = match s {
                        TxnBody::Error(e) => e.err.to_string(),
                        other => format_txn(other),
                    };
                    format!("{}:{}", op_name(s.txn_type()), inner)
                })
                .collect();
            parts.join(";")
        }
        // The remaining records print through jute's `toString()`.
        TxnBody::SetAcl(t) => format!(
            "{},{},{}\n",
            to_string_escaped(&t.path),
            acl_vector(&t.acl),
            t.version
        ),
        TxnBody::CreateSession(t) => format!("{}\n", t.time_out),
        TxnBody::CloseSession(t) => {
            let paths: Vec<String> = t
                .paths2_delete
                .iter()
                .map(|p| to_string_escaped(p))
                .collect();
            format!("v{{{}}}\n", paths.join(","))
        }
        TxnBody::Error(t) => format!("{}\n", t.err),
    }
}

fn txn_line(entry: &Bytes) -> String {
    match decode_entry(entry) {
        Ok((h, body, _, _)) => {
            let line = format!(
                "{} session 0x{:x} cxid 0x{:x} zxid 0x{:x} {} {}",
                java_short_long_date(h.time),
                h.client_id,
                i64::from(h.cxid),
                h.zxid,
                op_name(h.r#type),
                format_txn(&body)
            );
            if line.ends_with('\n') {
                line
            } else {
                line + "\n"
            }
        }
        Err(e) => format!("undecodable txn: {e}\n"),
    }
}

/// Counts from a dump or verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogDumpSummary {
    pub txns: u64,
    pub crc_errors: u64,
    /// Set when the file ends in a partial record.
    pub partial_tail: Option<u64>,
}

fn walk_log(path: &Path, mut out: Option<&mut dyn Write>) -> Result<LogDumpSummary, StorageError> {
    let mut summary = LogDumpSummary::default();
    let Some((mut cursor, header)) = LogFileCursor::open(path)? else {
        return Err(StorageError::Corrupt {
            file: path.to_owned(),
            offset: 0,
            reason: "file shorter than its header".into(),
        });
    };
    let emit = |s: &str, out: &mut Option<&mut dyn Write>| -> Result<(), StorageError> {
        if let Some(w) = out.as_mut() {
            w.write_all(s.as_bytes()).at(path)?;
        }
        Ok(())
    };
    emit(
        &format!(
            "ZooKeeper Transactional Log File with dbid {} txnlog format version {}\n",
            header.dbid, header.version
        ),
        &mut out,
    )?;
    loop {
        match cursor.next_slot()? {
            Slot::End => break,
            Slot::Damaged { offset, reason, .. } => {
                summary.partial_tail = Some(offset);
                emit(
                    &format!("Last transaction was partial ({reason}).\n"),
                    &mut out,
                )?;
                break;
            }
            Slot::Record {
                stored_crc, entry, ..
            } => {
                let line = txn_line(&entry);
                if stored_crc != adler32(&entry) as i64 {
                    summary.crc_errors += 1;
                    emit(&format!("CRC ERROR - {line}"), &mut out)?;
                }
                emit(&line, &mut out)?;
                summary.txns += 1;
            }
        }
    }
    emit(
        &format!("EOF reached after {} txns.\n", summary.txns),
        &mut out,
    )?;
    Ok(summary)
}

/// Prints one log file as `TxnLogToolkit` does.
pub fn dump_txn_log(path: &Path, out: &mut dyn Write) -> Result<LogDumpSummary, StorageError> {
    walk_log(path, Some(out))
}

/// Checks every record's checksum of one log file without printing.
pub fn verify_txn_log(path: &Path) -> Result<LogDumpSummary, StorageError> {
    walk_log(path, None)
}

fn hex16(v: i64) -> String {
    // Java's "%#016x": "0x" counts toward the width of 16.
    format!("{:#016x}", v as u64)
}

fn print_stat(out: &mut String, s: &StatPersisted) {
    use std::fmt::Write as _;
    let _ = writeln!(out, "  cZxid = {}", hex16(s.czxid));
    let _ = writeln!(out, "  ctime = {}", java_date_string(s.ctime));
    let _ = writeln!(out, "  mZxid = {}", hex16(s.mzxid));
    let _ = writeln!(out, "  mtime = {}", java_date_string(s.mtime));
    let _ = writeln!(out, "  pZxid = {}", hex16(s.pzxid));
    let _ = writeln!(out, "  cversion = {}", s.cversion);
    let _ = writeln!(out, "  dataVersion = {}", s.version);
    let _ = writeln!(out, "  aclVersion = {}", s.aversion);
    let _ = writeln!(out, "  ephemeralOwner = {}", hex16(s.ephemeral_owner));
}

/// Prints a snapshot as `SnapshotFormatter` does; `dump_data` is its `-d`
/// (data in base64 instead of its length). The checksums are verified.
pub fn dump_snapshot(
    path: &Path,
    dump_data: bool,
    out: &mut dyn Write,
) -> Result<(), StorageError> {
    use std::fmt::Write as _;
    let snap = snapshot::read_snapshot(path)?;
    let tree = &snap.tree;
    let mut s = String::new();
    let _ = writeln!(s, "ZNode Details (count={}):", tree.node_count());
    let mut max_zxid = 0i64;
    tree.visit_preorder(|p, n| {
        let name = if p.is_empty() { "/" } else { p };
        let _ = writeln!(s, "----\n{name}");
        print_stat(&mut s, &n.stat);
        max_zxid = max_zxid.max(n.stat.mzxid).max(n.stat.pzxid);
        if dump_data {
            let _ = writeln!(s, "  data = {}", base64(n.data.as_deref().unwrap_or(&[])));
        } else {
            let _ = writeln!(
                s,
                "  dataLength = {}",
                n.data.as_ref().map_or(0, |d| d.len())
            );
        }
    });
    let _ = writeln!(s, "----");
    let _ = writeln!(s, "Session Details (sid, timeout, ephemeralCount):");
    for (sid, timeout) in &snap.sessions {
        let _ = writeln!(
            s,
            "{}, {}, {}",
            hex16(*sid),
            timeout,
            tree.ephemerals(*sid).len()
        );
    }
    let _ = writeln!(s, "----\nLast zxid: 0x{:x}", snap.zxid.max(max_zxid));
    out.write_all(s.as_bytes()).at(path)
}

fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_as_java_does_in_utc() {
        assert_eq!(java_date_string(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(
            java_date_string(1_795_589_372_044),
            "Wed Nov 25 06:49:32 UTC 2026"
        );
        assert_eq!(
            java_short_long_date(1_795_589_372_044),
            "11/25/26, 6:49:32 AM UTC"
        );
        assert_eq!(java_short_long_date(43_200_000), "1/1/70, 12:00:00 PM UTC");
    }

    #[test]
    fn hex_matches_java_alternate_zero_padded() {
        assert_eq!(hex16(0), "0x00000000000000");
        assert_eq!(hex16(0x19), "0x00000000000019");
        assert_eq!(hex16(0x100001aba700002), "0x100001aba700002");
        assert_eq!(base64(b"hello"), "aGVsbG8=");
        assert_eq!(base64(b""), "");
    }
}
