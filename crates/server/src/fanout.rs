//! Writing what a txn's watches queued to the connections they notified. One
//! setData on a znode that ten thousand sessions watch is ten thousand writes,
//! each to another socket: this module shares them out between threads and,
//! where the kernel offers io_uring, hands them to it a batch at a time.
//!
//! Why batches: on loopback, and on any link whose receiver is asleep, each
//! write wakes the reader, and the woken reader preempts the writer when the
//! write returns to user space: a context switch, back and forth, per
//! notification. Writes submitted together run in one system call, with no
//! return to user space between them: the readers woken meanwhile run once the
//! batch is done, or on another CPU, and each then finds many notifications
//! waiting instead of one.

use crate::conn::{ConnHandle, Delivery};
use io_uring::{opcode, types, IoUring};
use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tracing::{debug, warn};

/// Connections per thread below which a fan-out is not split.
const DELIVER_SHARE: usize = 256;

/// Writes submitted to the kernel at once: enough that the readers woken by
/// the first find the next ones queued, few enough that the connections
/// locked meanwhile wait no longer than a few hundred microseconds.
const BATCH: usize = 128;

/// Frames of one connection in a batched write; the rest are written by its
/// own task (a notification is one frame, seldom queued behind others).
const BATCH_FRAMES: usize = 8;

/// Fan-outs smaller than this are written one connection at a time: the
/// ring's set-up costs about as much as a few dozen writes.
const BATCH_AT_LEAST: usize = 64;

/// Delivers what was queued on each connection (see [`ConnHandle::deliver`]).
/// A large fan-out (thousands of watchers of one znode) is shared out between
/// up to as many threads as the runtime has workers: this thread and threads
/// of the blocking pool (a task spawned from a worker waits in that worker's
/// own next-task slot, which no other worker takes, until this one is done).
/// Each takes the next batch of connections when it is done with one, so a
/// thread that gets less of the CPUs writes fewer; each connection is written
/// by one of them, so its frames stay in order.
pub fn deliver_all(conns: Vec<ConnHandle>) {
    let fan = FanOut {
        next: AtomicUsize::new(0),
        conns,
    };
    let runtime = tokio::runtime::Handle::try_current();
    match runtime {
        Ok(rt) if fan.conns.len() >= 2 * DELIVER_SHARE => {
            let helpers = rt
                .metrics()
                .num_workers()
                .min(fan.conns.len() / DELIVER_SHARE)
                .saturating_sub(1);
            let fan = Arc::new(fan);
            for _ in 0..helpers {
                let fan = fan.clone();
                rt.spawn_blocking(move || fan.write());
            }
            fan.write();
        }
        // Most txns notify no one or a few: no sharing, no allocation.
        _ => fan.write(),
    }
}

/// The connections of one fan-out, and the first not yet taken by a thread.
struct FanOut {
    conns: Vec<ConnHandle>,
    next: AtomicUsize,
}

impl FanOut {
    /// Takes batches of connections until none is left and writes to them,
    /// through io_uring where it can be had, one write each where not; the
    /// queues other threads held locked are written last.
    fn write(&self) {
        let len = self.conns.len();
        let mut ring = if len >= BATCH_AT_LEAST {
            Batches::new()
        } else {
            None
        };
        let mut contended = Vec::new();
        loop {
            let start = self.next.fetch_add(BATCH, Ordering::Relaxed);
            if start >= len {
                break;
            }
            let batch = &self.conns[start..len.min(start + BATCH)];
            if let Some(r) = ring.as_mut() {
                match r.write_batch(batch, &mut contended) {
                    Ok(()) => continue,
                    Err(e) => {
                        debug!("writing notifications one at a time: io_uring failed: {e}");
                        // Dropped with the entries it did not take.
                        ring = None;
                    }
                }
            }
            batch.iter().for_each(ConnHandle::deliver);
        }
        contended.into_iter().for_each(ConnHandle::deliver);
    }
}

/// An io_uring for batches of non-blocking writes to sockets.
struct Batches {
    ring: IoUring,
}

impl Batches {
    /// None where io_uring is missing, forbidden (a container's seccomp
    /// filter) or older than 5.18: a ring set up with SUBMIT_ALL submits a
    /// whole batch even when one entry fails, and such a kernel also fails a
    /// MSG_DONTWAIT write to a full socket at once instead of waiting for room.
    fn new() -> Option<Batches> {
        let ring = IoUring::builder()
            .setup_submit_all()
            .build(BATCH as u32)
            .ok()?;
        Some(Batches { ring })
    }

    /// One batch: each connection's queue is locked (skipping those another
    /// thread holds: waiting for one while holding others could deadlock
    /// with a second fan-out), its frames handed to one sendmsg, and all the
    /// sendmsgs submitted together; the locks are let go once all are done,
    /// so frames leave in queue order as with [`ConnHandle::deliver`].
    /// Err when the ring failed; the batch's queues are then as they were.
    fn write_batch<'a>(
        &mut self,
        batch: &'a [ConnHandle],
        contended: &mut Vec<&'a ConnHandle>,
    ) -> std::io::Result<()> {
        let mut held: Vec<Delivery<'a>> = Vec::with_capacity(batch.len());
        for c in batch {
            match c.try_delivery() {
                Ok(Some(d)) => held.push(d),
                Ok(None) => {}
                Err(()) => contended.push(c),
            }
        }
        if held.is_empty() {
            return Ok(());
        }
        let mut iovecs: Vec<libc::iovec> = Vec::with_capacity(held.len() * BATCH_FRAMES);
        let mut ranges = Vec::with_capacity(held.len());
        for d in &held {
            let start = iovecs.len();
            iovecs.extend(d.frames().take(BATCH_FRAMES).map(|b| libc::iovec {
                iov_base: b.as_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            }));
            ranges.push(start..iovecs.len());
        }
        let msgs: Vec<libc::msghdr> = ranges
            .iter()
            .map(|r| {
                // SAFETY: an all-zero msghdr is valid (no name, no control data).
                let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
                m.msg_iov = iovecs[r.clone()].as_ptr() as *mut libc::iovec;
                m.msg_iovlen = r.len() as _;
                m
            })
            .collect();
        let flags = (libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) as u32;
        let entries: Vec<_> = held
            .iter()
            .zip(&msgs)
            .enumerate()
            .map(|(i, (d, m))| {
                opcode::SendMsg::new(types::Fd(d.fd()), m)
                    .flags(flags)
                    .build()
                    .user_data(i as u64)
            })
            .collect();
        // SAFETY: the messages, their iovecs and the frames those point at
        // (locked in `held`) outlive the writes: this function returns only
        // once every entry submitted has completed, or with none submitted.
        unsafe { self.ring.submission().push_multiple(&entries) }
            .map_err(|_| std::io::Error::other("a batch larger than the ring"))?;
        let mut written: Vec<Option<std::io::Result<usize>>> = Vec::new();
        written.resize_with(held.len(), || None);
        let mut done = 0;
        while done < held.len() {
            match self.ring.submit_and_wait(held.len() - done) {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) if done == 0 && self.ring.submission().len() == held.len() => {
                    // Nothing was taken: the entries are dropped with the
                    // ring, which the caller gives up.
                    return Err(e);
                }
                Err(e) => {
                    // Some writes are under way: the frames must stay put
                    // until they are done, however long that takes.
                    warn!("io_uring wait failed with writes under way: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            for cqe in self.ring.completion() {
                let Some(slot) = written.get_mut(cqe.user_data() as usize) else {
                    continue;
                };
                let res = cqe.result();
                *slot = Some(if res >= 0 {
                    Ok(res as usize)
                } else {
                    Err(std::io::Error::from_raw_os_error(-res))
                });
                done += 1;
            }
        }
        for (d, w) in held.into_iter().zip(written) {
            d.finish(w.unwrap_or_else(|| Err(ErrorKind::Other.into())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ServerStats;
    use bytes::Bytes;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    /// `n` connections with a peer each; connection i has `frames(i)` frames
    /// queued, "i:f;" for the f-th.
    async fn queued_conns(
        n: usize,
        frames: impl Fn(usize) -> usize,
    ) -> Vec<(ConnHandle, TcpStream, usize)> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stats = Arc::new(ServerStats::new());
        let mut out = Vec::new();
        for i in 0..n {
            let peer = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (server, _) = listener.accept().await.unwrap();
            let conn = ConnHandle::serving(i as u64, stats.clone(), server);
            for f in 0..frames(i) {
                conn.queue(Bytes::from(format!("{i}:{f};")));
            }
            out.push((conn, peer, frames(i)));
        }
        out
    }

    /// Reads what connection `i` was sent: its first `frames` frames.
    async fn expect_frames(i: usize, peer: &mut TcpStream, frames: usize) {
        let expected: String = (0..frames).map(|f| format!("{i}:{f};")).collect();
        let mut got = vec![0; expected.len()];
        tokio::time::timeout(Duration::from_secs(10), peer.read_exact(&mut got))
            .await
            .expect("the frames in time")
            .unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), expected, "connection {i}");
    }

    #[tokio::test]
    async fn batches_write_each_queue_in_order_and_leave_the_rest_to_the_task() {
        // Two batches and a bit; every tenth connection has more frames than
        // a batched write takes.
        let share = |i: usize| {
            if i.is_multiple_of(10) {
                BATCH_FRAMES + 3
            } else {
                2
            }
        };
        let mut conns = queued_conns(BATCH + 50, share).await;
        let handles: Vec<ConnHandle> = conns.iter().map(|(c, _, _)| c.clone()).collect();
        let mut ring = Batches::new().expect("io_uring (Linux 5.18 or later)");
        let mut contended = Vec::new();
        for batch in handles.chunks(BATCH) {
            ring.write_batch(batch, &mut contended).unwrap();
        }
        assert!(contended.is_empty());
        for (i, (conn, peer, frames)) in conns.iter_mut().enumerate() {
            let written = (*frames).min(BATCH_FRAMES);
            expect_frames(i, peer, written).await;
            assert_eq!(conn.queued(), *frames - written, "connection {i}");
        }
    }

    #[test]
    fn a_queue_locked_elsewhere_is_written_after_the_batch_without_a_deadlock() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut conns = rt.block_on(queued_conns(3 * BATCH_AT_LEAST, |_| 2));
        let handles: Vec<ConnHandle> = conns.iter().map(|(c, _, _)| c.clone()).collect();
        // Another thread holds the first connection's queue for a while, as
        // a second fan-out or the connection's own task would.
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let first = handles[0].clone();
        let holder = std::thread::spawn(move || {
            let d = first.try_delivery().unwrap().expect("frames to write");
            locked_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            d.finish(Ok(0));
        });
        locked_rx.recv().unwrap();
        FanOut {
            conns: handles,
            next: AtomicUsize::new(0),
        }
        .write();
        holder.join().unwrap();
        rt.block_on(async {
            for (i, (conn, peer, frames)) in conns.iter_mut().enumerate() {
                expect_frames(i, peer, *frames).await;
                assert_eq!(conn.queued(), 0);
            }
        });
    }
}
