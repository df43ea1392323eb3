//! A ZooKeeper client session for the shell, over the project's own jute records:
//! one task owns the socket, sends requests in order and matches replies by xid,
//! pings while idle, moves to the next server after a lost connection (the session
//! and its watches follow, as in ZooKeeper's `ClientCnxn`), and hands watch events
//! to the shell through the watch manager. The shell, like zkCli.sh, has a single
//! watcher, so an event reaches it once however many of its watches it triggers.

use bytes::Bytes;
use ensemble_proto::{
    event_type, keeper_state, op, xid, AuthPacket, ConnectRequest, ConnectResponse, ErrorCode,
    Jute, Reader, ReplyHeader, RequestHeader, SetWatches2, WatcherEvent, Writer,
};
use parking_lot::Mutex;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// The largest reply accepted, as the Java client's default `jute.maxbuffer`.
const MAX_REPLY: usize = 0xfffff + 1024;

/// `ZooKeeper.States`, as zkCli.sh shows them in its prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Connecting,
    Connected,
    ConnectedReadOnly,
    Closed,
    AuthFailed,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Connecting => "CONNECTING",
            State::Connected => "CONNECTED",
            State::ConnectedReadOnly => "CONNECTEDREADONLY",
            State::Closed => "CLOSED",
            State::AuthFailed => "AUTH_FAILED",
        }
    }

    /// `States.isAlive`: the handle may still be used.
    pub fn is_alive(self) -> bool {
        !matches!(self, State::Closed | State::AuthFailed)
    }
}

/// A watch event, or a change of the connection's state (type None).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    pub state: i32,
    pub kind: i32,
    pub path: Option<String>,
}

impl std::fmt::Display for WatchedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WatchedEvent state:{} type:{} path:{}",
            state_name(self.state),
            type_name(self.kind),
            self.path.as_deref().unwrap_or("null")
        )
    }
}

fn state_name(state: i32) -> String {
    match state {
        keeper_state::DISCONNECTED => "Disconnected".into(),
        keeper_state::SYNC_CONNECTED => "SyncConnected".into(),
        keeper_state::AUTH_FAILED => "AuthFailed".into(),
        keeper_state::CONNECTED_READ_ONLY => "ConnectedReadOnly".into(),
        keeper_state::SASL_AUTHENTICATED => "SaslAuthenticated".into(),
        keeper_state::EXPIRED => "Expired".into(),
        keeper_state::CLOSED => "Closed".into(),
        other => format!("Unknown{other}"),
    }
}

fn type_name(kind: i32) -> String {
    match kind {
        event_type::NONE => "None".into(),
        event_type::NODE_CREATED => "NodeCreated".into(),
        event_type::NODE_DELETED => "NodeDeleted".into(),
        event_type::NODE_DATA_CHANGED => "NodeDataChanged".into(),
        event_type::NODE_CHILDREN_CHANGED => "NodeChildrenChanged".into(),
        event_type::DATA_WATCH_REMOVED => "DataWatchRemoved".into(),
        event_type::CHILD_WATCH_REMOVED => "ChildWatchRemoved".into(),
        event_type::PERSISTENT_WATCH_REMOVED => "PersistentWatchRemoved".into(),
        other => format!("Unknown{other}"),
    }
}

/// A failed request: ZooKeeper's error code (ConnectionLoss when the connection
/// went away before the answer came).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeeperError(pub i32);

impl KeeperError {
    pub fn is(self, code: ErrorCode) -> bool {
        self.0 == code.code()
    }
}

/// The watch a request leaves behind when it succeeds (`ZKWatchManager`'s kinds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchReg {
    None,
    /// getData, or exists on a node that is there.
    Data(String),
    /// exists on a node that is not there (yet).
    Exist(String),
    Child(String),
    Persistent(String),
    PersistentRecursive(String),
}

/// The shell's watches: one watcher, so sets of paths.
#[derive(Default)]
pub struct Watches {
    data: BTreeSet<String>,
    exist: BTreeSet<String>,
    child: BTreeSet<String>,
    persistent: BTreeSet<String>,
    recursive: BTreeSet<String>,
}

impl Watches {
    fn register(&mut self, reg: &WatchReg) {
        match reg {
            WatchReg::None => {}
            WatchReg::Data(p) => {
                self.data.insert(p.clone());
            }
            WatchReg::Exist(p) => {
                self.exist.insert(p.clone());
            }
            WatchReg::Child(p) => {
                self.child.insert(p.clone());
            }
            WatchReg::Persistent(p) => {
                self.persistent.insert(p.clone());
            }
            WatchReg::PersistentRecursive(p) => {
                self.recursive.insert(p.clone());
            }
        }
    }

    /// Whether the shell's watcher is told of this event (`ZKWatchManager.materialize`);
    /// one-shot watches it fires are gone afterwards.
    fn materialize(&mut self, e: &WatchedEvent) -> bool {
        let Some(path) = e.path.as_deref() else {
            return true;
        };
        let mut hit = false;
        match e.kind {
            event_type::NONE => return true,
            event_type::NODE_DATA_CHANGED | event_type::NODE_CREATED => {
                hit |= self.data.remove(path);
                hit |= self.exist.remove(path);
            }
            event_type::NODE_CHILDREN_CHANGED => {
                hit |= self.child.remove(path);
            }
            event_type::NODE_DELETED => {
                hit |= self.data.remove(path);
                hit |= self.exist.remove(path);
                hit |= self.child.remove(path);
            }
            _ => {}
        }
        hit |= self.persistent.contains(path);
        if e.kind != event_type::NODE_CHILDREN_CHANGED {
            hit |= ancestors(path).any(|p| self.recursive.contains(p));
        }
        hit
    }

    /// Removes the watches of `kind` (a `watcher_type`) on `path` and returns the
    /// events the watcher is then given, or None when it had none of them
    /// (`ZKWatchManager.removeWatcher`).
    pub fn remove(&mut self, path: &str, kind: i32) -> Option<Vec<i32>> {
        use ensemble_proto::watcher_type as wt;
        let mut events = Vec::new();
        let (mut child, mut data, mut persistent) = (false, false, false);
        if kind == wt::CHILDREN || kind == wt::ANY {
            child |= self.child.remove(path);
        }
        if kind == wt::DATA || kind == wt::ANY {
            data |= self.data.remove(path);
            data |= self.exist.remove(path);
        }
        if kind == wt::ANY {
            persistent |= self.persistent.remove(path);
            persistent |= self.recursive.remove(path);
        }
        if child {
            events.push(event_type::CHILD_WATCH_REMOVED);
        }
        if data {
            events.push(event_type::DATA_WATCH_REMOVED);
        }
        if persistent {
            events.push(event_type::PERSISTENT_WATCH_REMOVED);
        }
        (!events.is_empty()).then_some(events)
    }

    /// Whether the watcher has a watch of `kind` on `path` (`containsWatcher`).
    pub fn contains(&self, path: &str, kind: i32) -> bool {
        use ensemble_proto::watcher_type as wt;
        let child = self.child.contains(path);
        let data = self.data.contains(path) || self.exist.contains(path);
        let persistent = self.persistent.contains(path) || self.recursive.contains(path);
        match kind {
            wt::CHILDREN => child,
            wt::DATA => data,
            _ => child || data || persistent,
        }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.recursive.is_empty()
    }

    fn set_watches(&self, relative_zxid: i64) -> SetWatches2 {
        let v = |s: &BTreeSet<String>| s.iter().cloned().collect();
        SetWatches2 {
            relative_zxid,
            data_watches: v(&self.data),
            exist_watches: v(&self.exist),
            child_watches: v(&self.child),
            persistent_watches: v(&self.persistent),
            persistent_recursive_watches: v(&self.recursive),
        }
    }
}

/// `path` and each of its ancestors, up to `/`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let cur = next?;
        next = match cur.rfind('/') {
            _ if cur == "/" => None,
            Some(0) => Some("/"),
            Some(i) => Some(&cur[..i]),
            None => None,
        };
        Some(cur)
    })
}

type ReplyTx = oneshot::Sender<Result<Bytes, KeeperError>>;

struct Call {
    opcode: i32,
    body: Bytes,
    watch: WatchReg,
    reply: ReplyTx,
}

/// What the shell sees of the session: its state and watches, and the auth it added
/// (sent again after each reconnect).
struct Session {
    state: State,
    watches: Watches,
    auth: Vec<(String, Option<Bytes>)>,
    session_id: i64,
}

/// A handle to one session. Dropping it does not close the session: `close` does.
#[derive(Clone)]
pub struct Client {
    calls: mpsc::UnboundedSender<Call>,
    session: Arc<Mutex<Session>>,
    events: mpsc::UnboundedSender<WatchedEvent>,
    chroot: Option<String>,
}

/// The servers and the optional chroot of a connect string
/// (`host:port[,host:port...][/chroot]`, as `ConnectStringParser`).
pub fn parse_connect_string(s: &str) -> (Vec<String>, Option<String>) {
    let (hosts, chroot) = match s.find('/') {
        Some(i) => {
            let c = &s[i..];
            (
                &s[..i],
                (c.len() > 1).then(|| c.trim_end_matches('/').to_string()),
            )
        }
        None => (s, None),
    };
    let hosts = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            let has_port = match h.rfind(':') {
                Some(i) => h.starts_with('[') && h[..i].ends_with(']') || !h[..i].contains(':'),
                None => false,
            };
            if has_port {
                h.to_string()
            } else {
                format!("{h}:2181")
            }
        })
        .collect();
    (hosts, chroot.filter(|c| !c.is_empty()))
}

impl Client {
    /// Starts connecting to `connect_string`; requests wait for the session.
    pub fn connect(
        connect_string: &str,
        session_timeout_ms: i32,
        read_only: bool,
        events: mpsc::UnboundedSender<WatchedEvent>,
    ) -> Client {
        let (hosts, chroot) = parse_connect_string(connect_string);
        let (tx, rx) = mpsc::unbounded_channel();
        let session = Arc::new(Mutex::new(Session {
            state: State::Connecting,
            watches: Watches::default(),
            auth: Vec::new(),
            session_id: 0,
        }));
        let conn = Connection {
            hosts,
            timeout_ms: session_timeout_ms,
            read_only,
            session: session.clone(),
            events: events.clone(),
            chroot: chroot.clone(),
            session_id: 0,
            passwd: None,
            last_zxid: 0,
            next_xid: 1,
        };
        tokio::spawn(conn.run(rx));
        Client {
            calls: tx,
            session,
            events,
            chroot,
        }
    }

    pub fn state(&self) -> State {
        self.session.lock().state
    }

    /// The server's view of a client path (the chroot prepended).
    pub fn server_path(&self, path: &str) -> String {
        prepend_chroot(self.chroot.as_deref(), path)
    }

    /// The client's view of a server path (the chroot taken off).
    pub fn client_path(&self, path: &str) -> String {
        strip_chroot(self.chroot.as_deref(), path)
    }

    /// Sends a request and waits for its answer's body; on success `watch` is set.
    pub async fn call(
        &self,
        opcode: i32,
        body: &impl Jute,
        watch: WatchReg,
    ) -> Result<Bytes, KeeperError> {
        let mut w = Writer::with_capacity(64);
        body.write(&mut w);
        self.call_raw(opcode, w.into_bytes(), watch).await
    }

    pub async fn call_raw(
        &self,
        opcode: i32,
        body: Bytes,
        watch: WatchReg,
    ) -> Result<Bytes, KeeperError> {
        let (tx, rx) = oneshot::channel();
        let call = Call {
            opcode,
            body,
            watch,
            reply: tx,
        };
        if self.calls.send(call).is_err() {
            return Err(KeeperError(ErrorCode::ConnectionLoss.code()));
        }
        rx.await
            .unwrap_or(Err(KeeperError(ErrorCode::ConnectionLoss.code())))
    }

    /// addauth: sent now and again after every reconnect; a failure ends the session.
    pub fn add_auth(&self, scheme: &str, auth: Option<Bytes>) {
        self.session
            .lock()
            .auth
            .push((scheme.to_string(), auth.clone()));
        let packet = AuthPacket {
            r#type: 0,
            scheme: scheme.to_string(),
            auth,
        };
        let mut w = Writer::new();
        packet.write(&mut w);
        let (tx, _rx) = oneshot::channel();
        let _ = self.calls.send(Call {
            opcode: op::AUTH,
            body: w.into_bytes(),
            watch: WatchReg::None,
            reply: tx,
        });
    }

    /// Runs `f` on the watch manager (removewatches checks and removes locally).
    pub fn with_watches<T>(&self, f: impl FnOnce(&mut Watches) -> T) -> T {
        f(&mut self.session.lock().watches)
    }

    /// Gives the shell's watcher an event made here (a removed watch).
    pub fn deliver(&self, e: WatchedEvent) {
        let _ = self.events.send(e);
    }

    /// Closes the session (closeSession) and the connection; the watcher is told Closed.
    pub async fn close(&self) {
        if !self.state().is_alive() {
            return;
        }
        let wait = self.call_raw(op::CLOSE_SESSION, Bytes::new(), WatchReg::None);
        let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
        let mut s = self.session.lock();
        if s.state.is_alive() {
            s.state = State::Closed;
            drop(s);
            let _ = self.events.send(WatchedEvent {
                state: keeper_state::CLOSED,
                kind: event_type::NONE,
                path: None,
            });
        }
    }
}

fn prepend_chroot(chroot: Option<&str>, path: &str) -> String {
    match chroot {
        Some(c) if path == "/" => c.to_string(),
        Some(c) => format!("{c}{path}"),
        None => path.to_string(),
    }
}

fn strip_chroot(chroot: Option<&str>, path: &str) -> String {
    match chroot {
        Some(c) if path == c => "/".to_string(),
        Some(c) => path.strip_prefix(c).unwrap_or(path).to_string(),
        None => path.to_string(),
    }
}

/// The connection task's state: the session it holds and where it is in the hosts.
struct Connection {
    hosts: Vec<String>,
    timeout_ms: i32,
    read_only: bool,
    session: Arc<Mutex<Session>>,
    events: mpsc::UnboundedSender<WatchedEvent>,
    chroot: Option<String>,
    session_id: i64,
    passwd: Option<Bytes>,
    last_zxid: i64,
    next_xid: i32,
}

/// Why a connection ended.
enum End {
    /// Lost: try the next server.
    Lost,
    /// The session is over (closed, expired or refused authentication).
    Over,
}

fn connection_loss() -> KeeperError {
    KeeperError(ErrorCode::ConnectionLoss.code())
}

impl Connection {
    async fn run(mut self, mut calls: mpsc::UnboundedReceiver<Call>) {
        if self.hosts.is_empty() {
            self.finish(State::Closed, keeper_state::CLOSED, &mut calls);
            return;
        }
        let mut queued: VecDeque<Call> = VecDeque::new();
        let start = (std::process::id() as usize) % self.hosts.len();
        let mut attempt = 0usize;
        let mut failures_in_row = 0usize;
        loop {
            let host = self.hosts[(start + attempt) % self.hosts.len()].clone();
            attempt += 1;
            self.set_state(State::Connecting);
            let per_host = Duration::from_millis(
                (self.timeout_ms.max(1000) as u64) / self.hosts.len().max(1) as u64,
            );
            let opened = tokio::time::timeout(per_host, self.open(&host)).await;
            let (stream, read_only) = match opened {
                Ok(Ok(Some(x))) => x,
                Ok(Ok(None)) => {
                    // The server says the session is gone.
                    let _ = self.events.send(WatchedEvent {
                        state: keeper_state::EXPIRED,
                        kind: event_type::NONE,
                        path: None,
                    });
                    fail_all(&mut queued, &mut calls, ErrorCode::SessionExpired);
                    self.finish(State::Closed, keeper_state::CLOSED, &mut calls);
                    return;
                }
                Ok(Err(_)) | Err(_) => {
                    // As ClientCnxn: requests waiting for a connection fail with
                    // ConnectionLoss when an attempt fails; a close just ends.
                    let closing = drain_close(&mut queued, &mut calls);
                    fail_all(&mut queued, &mut calls, ErrorCode::ConnectionLoss);
                    if closing {
                        self.finish(State::Closed, keeper_state::CLOSED, &mut calls);
                        return;
                    }
                    failures_in_row += 1;
                    if failures_in_row.is_multiple_of(self.hosts.len()) {
                        tokio::time::sleep(Duration::from_millis(
                            200 + (std::process::id() as u64 % 800),
                        ))
                        .await;
                    }
                    if calls.is_closed() {
                        return;
                    }
                    continue;
                }
            };
            failures_in_row = 0;
            self.set_state(if read_only {
                State::ConnectedReadOnly
            } else {
                State::Connected
            });
            let _ = self.events.send(WatchedEvent {
                state: if read_only {
                    keeper_state::CONNECTED_READ_ONLY
                } else {
                    keeper_state::SYNC_CONNECTED
                },
                kind: event_type::NONE,
                path: None,
            });
            match self.serve(stream, &mut queued, &mut calls).await {
                End::Over => return,
                End::Lost => {
                    let _ = self.events.send(WatchedEvent {
                        state: keeper_state::DISCONNECTED,
                        kind: event_type::NONE,
                        path: None,
                    });
                }
            }
        }
    }

    fn set_state(&self, state: State) {
        let mut s = self.session.lock();
        if s.state.is_alive() {
            s.state = state;
        }
    }

    /// Ends the session: the state is final, waiting calls fail.
    fn finish(&self, state: State, event: i32, calls: &mut mpsc::UnboundedReceiver<Call>) {
        {
            let mut s = self.session.lock();
            if !s.state.is_alive() {
                return;
            }
            s.state = state;
        }
        calls.close();
        while let Ok(c) = calls.try_recv() {
            let _ = c.reply.send(Err(connection_loss()));
        }
        let _ = self.events.send(WatchedEvent {
            state: event,
            kind: event_type::NONE,
            path: None,
        });
    }

    /// Connects and opens (or resumes) the session. None: the session expired.
    async fn open(&mut self, host: &str) -> std::io::Result<Option<(TcpStream, bool)>> {
        let mut stream = TcpStream::connect(host).await?;
        let _ = stream.set_nodelay(true);
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            time_out: self.timeout_ms,
            session_id: self.session_id,
            passwd: Some(
                self.passwd
                    .clone()
                    .unwrap_or_else(|| Bytes::from(vec![0u8; 16])),
            ),
            read_only: Some(self.read_only),
        };
        let mut w = Writer::new_frame();
        req.write(&mut w);
        stream.write_all(&w.finish_frame()).await?;
        let body = read_frame(&mut stream).await?;
        let resp = ConnectResponse::read(&mut Reader::new(body))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
        if resp.time_out <= 0 {
            return Ok(None);
        }
        self.session_id = resp.session_id;
        self.passwd = resp.passwd;
        self.timeout_ms = resp.time_out;
        self.session.lock().session_id = resp.session_id;
        Ok(Some((stream, resp.read_only.unwrap_or(false))))
    }

    /// Serves one connection until it is lost or the session ends.
    async fn serve(
        &mut self,
        stream: TcpStream,
        queued: &mut VecDeque<Call>,
        calls: &mut mpsc::UnboundedReceiver<Call>,
    ) -> End {
        let (mut rd, mut wr) = stream.into_split();
        let (frames_tx, mut frames) = mpsc::channel::<std::io::Result<Bytes>>(64);
        let reader = tokio::spawn(async move {
            loop {
                let r = read_frame(&mut rd).await;
                let end = r.is_err();
                if frames_tx.send(r).await.is_err() || end {
                    return;
                }
            }
        });
        let mut pending: VecDeque<(i32, Call)> = VecDeque::new();
        // Watches and auth travel first, as ClientCnxn.primeConnection does.
        let (watches, auth) = {
            let s = self.session.lock();
            let w = (!s.watches.is_empty()).then(|| s.watches.set_watches(self.last_zxid));
            (w, s.auth.clone())
        };
        let mut out = Vec::new();
        if let Some(mut sw) = watches {
            for list in [
                &mut sw.data_watches,
                &mut sw.exist_watches,
                &mut sw.child_watches,
                &mut sw.persistent_watches,
                &mut sw.persistent_recursive_watches,
            ] {
                for p in list.iter_mut() {
                    *p = prepend_chroot(self.chroot.as_deref(), p);
                }
            }
            out.extend_from_slice(&frame(xid::SET_WATCHES, op::SET_WATCHES2, &sw));
        }
        for (scheme, data) in auth {
            let packet = AuthPacket {
                r#type: 0,
                scheme,
                auth: data,
            };
            out.extend_from_slice(&frame(xid::AUTH, op::AUTH, &packet));
        }
        let idle = Duration::from_millis((self.timeout_ms.max(300) / 3) as u64);
        let dead = Duration::from_millis((self.timeout_ms.max(300) * 2 / 3) as u64);
        let mut last_heard = tokio::time::Instant::now();
        let mut ping = tokio::time::interval(idle);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.reset();
        let mut end = End::Lost;
        let mut closing = false;
        'conn: loop {
            // Requests that waited for the connection go first, in order.
            while let Some(c) = queued.pop_front() {
                closing |= c.opcode == op::CLOSE_SESSION;
                self.write_call(c, &mut out, &mut pending);
            }
            if !out.is_empty() {
                if wr.write_all(&out).await.is_err() {
                    break 'conn;
                }
                out.clear();
                ping.reset();
            }
            tokio::select! {
                call = calls.recv(), if !closing => match call {
                    Some(c) => queued.push_back(c),
                    None => {
                        // Every handle is gone: close the session quietly.
                        let (tx, _rx) = oneshot::channel();
                        queued.push_back(Call { opcode: op::CLOSE_SESSION, body: Bytes::new(), watch: WatchReg::None, reply: tx });
                    }
                },
                frame = frames.recv() => {
                    let body = match frame {
                        Some(Ok(b)) => b,
                        _ => break 'conn,
                    };
                    last_heard = tokio::time::Instant::now();
                    if let Some(e) = self.on_frame(body, &mut pending) {
                        end = e;
                        break 'conn;
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() >= dead {
                        break 'conn;
                    }
                    out.extend_from_slice(&frame_raw(xid::PING, op::PING, &[]));
                }
            }
        }
        reader.abort();
        for (_, c) in pending.drain(..) {
            let _ = c.reply.send(Err(connection_loss()));
        }
        if closing && matches!(end, End::Lost) {
            // The connection went away while closing: the session is closed for us.
            self.finish(State::Closed, keeper_state::CLOSED, calls);
            return End::Over;
        }
        end
    }

    fn write_call(&mut self, c: Call, out: &mut Vec<u8>, pending: &mut VecDeque<(i32, Call)>) {
        let xid = match c.opcode {
            op::AUTH => xid::AUTH,
            _ => {
                let x = self.next_xid;
                self.next_xid = self.next_xid.wrapping_add(1).max(1);
                x
            }
        };
        out.extend_from_slice(&frame_raw(xid, c.opcode, &c.body));
        if c.opcode == op::AUTH {
            // Answered (if at all) by an auth reply, without a caller waiting.
            let _ = c.reply.send(Ok(Bytes::new()));
        } else {
            pending.push_back((xid, c));
        }
    }

    /// Handles one frame from the server; Some when the connection or session ends.
    fn on_frame(&mut self, body: Bytes, pending: &mut VecDeque<(i32, Call)>) -> Option<End> {
        let mut r = Reader::new(body);
        let hdr = ReplyHeader::read(&mut r).ok()?;
        if hdr.zxid > 0 {
            self.last_zxid = self.last_zxid.max(hdr.zxid);
        }
        match hdr.xid {
            xid::NOTIFICATION => {
                let Ok(ev) = WatcherEvent::read(&mut r) else {
                    return Some(End::Lost);
                };
                let e = WatchedEvent {
                    state: ev.state,
                    kind: ev.r#type,
                    path: Some(strip_chroot(self.chroot.as_deref(), &ev.path)),
                };
                if self.session.lock().watches.materialize(&e) {
                    let _ = self.events.send(e);
                }
                None
            }
            xid::PING | xid::SET_WATCHES => None,
            xid::AUTH => {
                if hdr.err != 0 {
                    {
                        let mut s = self.session.lock();
                        s.state = State::AuthFailed;
                    }
                    let _ = self.events.send(WatchedEvent {
                        state: keeper_state::AUTH_FAILED,
                        kind: event_type::NONE,
                        path: None,
                    });
                    return Some(End::Over);
                }
                None
            }
            x => {
                let Some(pos) = pending.iter().position(|(px, _)| *px == x) else {
                    return Some(End::Lost);
                };
                let Some((_, call)) = pending.remove(pos) else {
                    return Some(End::Lost);
                };
                let closed = call.opcode == op::CLOSE_SESSION;
                if closed {
                    // The state changes before the caller hears of it, so that one
                    // Closed event is given, whichever side sees the end first.
                    let mut s = self.session.lock();
                    let was_alive = s.state.is_alive();
                    s.state = State::Closed;
                    drop(s);
                    if was_alive {
                        let _ = self.events.send(WatchedEvent {
                            state: keeper_state::CLOSED,
                            kind: event_type::NONE,
                            path: None,
                        });
                    }
                }
                if hdr.err == 0 {
                    self.session.lock().watches.register(&call.watch);
                    let _ = call.reply.send(Ok(r.rest()));
                } else {
                    if hdr.err == ErrorCode::NoNode.code() {
                        // exists on a missing node leaves a watch for its creation.
                        if let WatchReg::Exist(_) = &call.watch {
                            self.session.lock().watches.register(&call.watch);
                        }
                    }
                    let _ = call.reply.send(Err(KeeperError(hdr.err)));
                }
                if closed {
                    return Some(End::Over);
                }
                None
            }
        }
    }
}

/// Takes a queued or waiting closeSession out of the way; true if there was one.
fn drain_close(queued: &mut VecDeque<Call>, calls: &mut mpsc::UnboundedReceiver<Call>) -> bool {
    while let Ok(c) = calls.try_recv() {
        queued.push_back(c);
    }
    let mut closing = false;
    queued.retain(|c| {
        if c.opcode == op::CLOSE_SESSION {
            closing = true;
            false
        } else {
            true
        }
    });
    closing
}

fn fail_all(
    queued: &mut VecDeque<Call>,
    calls: &mut mpsc::UnboundedReceiver<Call>,
    code: ErrorCode,
) {
    while let Ok(c) = calls.try_recv() {
        queued.push_back(c);
    }
    for c in queued.drain(..) {
        let _ = c.reply.send(Err(KeeperError(code.code())));
    }
}

fn frame(xid: i32, opcode: i32, body: &impl Jute) -> Bytes {
    let mut w = Writer::new_frame();
    RequestHeader {
        xid,
        r#type: opcode,
    }
    .write(&mut w);
    body.write(&mut w);
    w.finish_frame()
}

fn frame_raw(xid: i32, opcode: i32, body: &[u8]) -> Bytes {
    let mut w = Writer::new_frame();
    RequestHeader {
        xid,
        r#type: opcode,
    }
    .write(&mut w);
    w.write_raw(body);
    w.finish_frame()
}

async fn read_frame(rd: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Bytes> {
    let mut len = [0u8; 4];
    rd.read_exact(&mut len).await?;
    let n = i32::from_be_bytes(len);
    if n < 0 || n as usize > MAX_REPLY {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("reply length {n} is out of range"),
        ));
    }
    let mut body = vec![0u8; n as usize];
    rd.read_exact(&mut body).await?;
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_strings_name_servers_and_a_chroot() {
        assert_eq!(
            parse_connect_string("127.0.0.1:2181,h2:2182/app/x"),
            (
                vec!["127.0.0.1:2181".to_string(), "h2:2182".to_string()],
                Some("/app/x".to_string())
            )
        );
        assert_eq!(
            parse_connect_string("localhost"),
            (vec!["localhost:2181".to_string()], None)
        );
    }

    #[test]
    fn one_event_reaches_the_watcher_however_many_watches_it_fires() {
        let mut w = Watches::default();
        w.register(&WatchReg::Data("/a".into()));
        w.register(&WatchReg::Child("/a".into()));
        let deleted = WatchedEvent {
            state: keeper_state::SYNC_CONNECTED,
            kind: event_type::NODE_DELETED,
            path: Some("/a".into()),
        };
        assert!(w.materialize(&deleted));
        assert!(!w.materialize(&deleted), "one-shot watches are gone");
        w.register(&WatchReg::PersistentRecursive("/a".into()));
        let child = WatchedEvent {
            kind: event_type::NODE_CHILDREN_CHANGED,
            ..deleted.clone()
        };
        assert!(
            !w.materialize(&child),
            "recursive watches see no child events"
        );
        let created = WatchedEvent {
            kind: event_type::NODE_CREATED,
            path: Some("/a/b/c".into()),
            ..deleted
        };
        assert!(w.materialize(&created));
    }
}
