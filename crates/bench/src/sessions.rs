//! Workloads about sessions rather than requests. `connect` opens many idle
//! sessions and holds them, so that a harness can read the server's memory per
//! session; `watch` arms one data watch in each of many sessions and times the
//! notifications that one setData fans out.

use crate::report::{
    ConnectReport, CpuTime, Details, Summary, WatchReport, WatchRound, WorkerStats,
};
use crate::workload::persistent;
use crate::{close, close_all, connect_one, connector, report, wire, BenchArgs};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use zookeeper_client as zk;

/// The event type of a data change (ZooKeeper's EventType.NodeDataChanged).
const NODE_DATA_CHANGED: i32 = 3;

/// How long a watch round waits for the notifications after the setData.
const NOTIFY_PATIENCE: Duration = Duration::from_secs(30);

/// Sessions opened by [`open_many`], with the time of each handshake.
struct Opened {
    clients: Vec<zk::Client>,
    stats: WorkerStats,
    elapsed: Duration,
}

/// Opens `--sessions` sessions, `--inflight` handshakes at a time. A failed
/// handshake is counted, not retried: refusing sessions is what is measured.
async fn open_many(args: &BenchArgs) -> Opened {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let progress = (!args.quiet).then(|| {
        tokio::spawn(report::progress(
            started,
            done.clone(),
            failed.clone(),
            stop.clone(),
        ))
    });
    let mut tasks = Vec::new();
    for _ in 0..args.inflight.min(args.sessions) {
        let (next, done, failed) = (next.clone(), done.clone(), failed.clone());
        let (connector, hosts, total) = (connector(args), args.hosts.clone(), args.sessions);
        tasks.push(tokio::spawn(async move {
            let mut clients = Vec::new();
            let mut stats = WorkerStats::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let began = Instant::now();
                match connector.clone().connect(&hosts).await {
                    Ok(client) => {
                        stats.record(began.elapsed().as_micros() as u64);
                        done.fetch_add(1, Ordering::Relaxed);
                        clients.push(client);
                    }
                    Err(e) => {
                        stats.error(&e);
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            (clients, stats)
        }));
    }
    let mut opened = Opened {
        clients: Vec::with_capacity(args.sessions),
        stats: WorkerStats::new(),
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        match task.await {
            Ok((clients, stats)) => {
                opened.clients.extend(clients);
                opened.stats.merge(stats);
            }
            Err(_) => opened.stats.error_named("ConnectTaskFailed", 1),
        }
    }
    opened.elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        p.abort();
    }
    opened
}

/// `connect`: open the sessions, hold them idle for `--duration`, close them.
/// The summary's rate and latencies are those of the handshakes.
pub async fn connect(args: &BenchArgs) -> Result<Summary, String> {
    let cpu_before = CpuTime::now();
    let started_unix = SystemTime::now();
    let opened = open_many(args).await;
    let established = opened.clients.len() as u64;
    if established == 0 {
        return Err(format!(
            "no session could be established with {}",
            args.hosts
        ));
    }
    // Said even with --quiet: a harness waits for this line to sample the
    // server while the sessions are held.
    eprintln!(
        "holding {established} sessions for {} s (established in {:.2} s)",
        args.duration,
        opened.elapsed.as_secs_f64()
    );
    let hold = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    let held_s = hold.elapsed().as_secs_f64();
    let lost = opened
        .clients
        .iter()
        .filter(|c| c.state() != zk::SessionState::SyncConnected)
        .count() as u64;
    let cpu = CpuTime::now().since(&cpu_before);
    close(opened.clients).await;
    let details = Details::Connect(ConnectReport {
        requested: args.sessions,
        established,
        connect_s: opened.elapsed.as_secs_f64(),
        held_s,
        lost_during_hold: lost,
    });
    Ok(Summary::new(
        args,
        opened.stats,
        started_unix,
        opened.elapsed,
        0.0,
        cpu,
        details,
    ))
}

/// Opens `--sessions` watchers at the wire, `--inflight` handshakes at a
/// time, spread over the hosts. A failed handshake is counted, not retried.
async fn open_watchers(args: &BenchArgs) -> (Vec<wire::Watcher>, WorkerStats, Duration) {
    let started = Instant::now();
    let hosts: Arc<Vec<String>> = Arc::new(args.hosts.split(',').map(str::to_string).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.inflight.clamp(1, args.sessions.max(1)) {
        let (next, hosts) = (next.clone(), hosts.clone());
        let (total, timeout) = (args.sessions, args.session_timeout_ms);
        tasks.push(tokio::spawn(async move {
            let mut watchers = Vec::new();
            let mut stats = WorkerStats::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let began = Instant::now();
                match wire::Watcher::connect(&hosts[i % hosts.len()], timeout).await {
                    Ok(w) => {
                        stats.record(began.elapsed().as_micros() as u64);
                        watchers.push(w);
                    }
                    Err(e) => stats.error_named(&io_error_name(&e), 1),
                }
            }
            (watchers, stats)
        }));
    }
    let mut watchers = Vec::with_capacity(args.sessions);
    let mut stats = WorkerStats::new();
    for task in tasks {
        match task.await {
            Ok((w, s)) => {
                watchers.extend(w);
                stats.merge(s);
            }
            Err(_) => stats.error_named("ConnectTaskFailed", 1),
        }
    }
    (watchers, stats, started.elapsed())
}

fn io_error_name(e: &std::io::Error) -> String {
    format!("{:?}", e.kind())
}

/// `watch`: every session sets a data watch on one znode, a separate session
/// sets its data once, and each notification is timed from the moment that
/// setData was sent; `--rounds` times, re-arming the watches each round.
/// The watchers speak the protocol themselves (crate::wire), a task each: a
/// notification is timed when its task has read it, so the figures include
/// the bench's own scheduling of thousands of tasks, the same for any server.
pub async fn watch(args: &BenchArgs) -> Result<Summary, String> {
    let cpu_before = CpuTime::now();
    let started_unix = SystemTime::now();
    let writer = connect_one(args).await?;
    writer
        .mkdir(&args.prefix, &persistent())
        .await
        .map_err(|e| format!("cannot create {}: {e}", args.prefix))?;
    let path: Arc<str> = format!("{}/watched", args.prefix).into();
    let data = vec![b'x'; args.value_size];
    match writer.create(&path, &data, &persistent()).await {
        Ok(_) | Err(zk::Error::NodeExists) => {}
        Err(e) => return Err(format!("cannot create {path}: {e}")),
    }
    let (mut watchers, opened, connect_elapsed) = open_watchers(args).await;
    if watchers.is_empty() {
        return Err(format!(
            "no session could be established with {}",
            args.hosts
        ));
    }
    if !args.quiet {
        eprintln!(
            "{} watchers connected in {:.2} s",
            watchers.len(),
            connect_elapsed.as_secs_f64()
        );
    }
    let mut notified = WorkerStats::new();
    notified.merge_errors(&opened);
    let mut rounds = Vec::new();
    let mut elapsed = Duration::ZERO;
    for round in 0..args.rounds {
        let r;
        (watchers, r) = watch_round(watchers, &writer, &path, &data, &mut notified).await?;
        if !args.quiet {
            eprintln!(
                "round {}: {} notified, last after {:.1} ms, {} missed",
                round + 1,
                r.notified,
                r.all_notified_ms,
                r.missed
            );
        }
        elapsed += Duration::from_secs_f64(r.all_notified_ms / 1000.0);
        rounds.push(r);
    }
    let cpu = CpuTime::now().since(&cpu_before);
    close_all(watchers.into_iter().map(|w| w.close())).await;
    close(vec![writer]).await;
    let details = Details::Watch(WatchReport {
        watchers: args.sessions,
        connect_s: connect_elapsed.as_secs_f64(),
        rounds,
    });
    Ok(Summary::new(
        args,
        notified,
        started_unix,
        elapsed,
        connect_elapsed.as_secs_f64(),
        cpu,
        details,
    ))
}

/// One round: arm a watch in every session, wait until all are armed, send one
/// setData and collect the notifications. Notification delays go to `all`.
/// The watchers come back for the next round, but for those that failed.
async fn watch_round(
    watchers: Vec<wire::Watcher>,
    writer: &zk::Client,
    path: &Arc<str>,
    data: &[u8],
    all: &mut WorkerStats,
) -> Result<(Vec<wire::Watcher>, WatchRound), String> {
    let arming = Instant::now();
    let (armed_tx, mut armed_rx) = tokio::sync::mpsc::channel(watchers.len());
    let mut tasks = Vec::with_capacity(watchers.len());
    for mut w in watchers {
        let (path, armed) = (path.clone(), armed_tx.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = w.arm(&path).await {
                let _ = armed.send(Err(e)).await;
                return None;
            }
            let _ = armed.send(Ok(())).await;
            drop(armed);
            match w.notification().await {
                Ok(event) => Some((w, Ok(event))),
                Err(e) => Some((w, Err(e))),
            }
        }));
    }
    drop(armed_tx);
    // Every task sends once and then drops its sender, so this ends.
    while let Some(result) = armed_rx.recv().await {
        if let Err(e) = result {
            all.error_named(&io_error_name(&e), 1);
        }
    }
    let arm_ms = arming.elapsed().as_secs_f64() * 1000.0;

    let sent = Instant::now();
    writer
        .set_data(path, data, None)
        .await
        .map_err(|e| format!("setData {path} failed: {e}"))?;
    let set_data_ms = sent.elapsed().as_secs_f64() * 1000.0;
    let deadline = sent + NOTIFY_PATIENCE;
    let mut round = WorkerStats::new();
    let mut missed = 0;
    let mut kept = Vec::with_capacity(tasks.len());
    for mut task in tasks {
        match tokio::time::timeout_at(deadline.into(), &mut task).await {
            Ok(Ok(Some((w, Ok(event))))) => {
                if event.event_type == NODE_DATA_CHANGED {
                    round.record(event.at.saturating_duration_since(sent).as_micros() as u64);
                } else {
                    all.error_named("UnexpectedEvent", 1);
                }
                kept.push(w);
            }
            Ok(Ok(Some((_, Err(e))))) => all.error_named(&io_error_name(&e), 1),
            // Not armed: already counted with its error.
            Ok(Ok(None)) => {}
            Ok(Err(_)) => all.error_named("WatchTaskFailed", 1),
            Err(_) => {
                task.abort();
                missed += 1;
            }
        }
    }
    all.error_named("NoNotification", missed);
    let result = WatchRound {
        all_notified_ms: round.max_ms(),
        p50_ms: round.quantile_ms(0.5),
        p99_ms: round.quantile_ms(0.99),
        notified: round.count(),
        missed,
        set_data_ms,
        arm_ms,
    };
    all.merge(round);
    Ok((kept, result))
}
