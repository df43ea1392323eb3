"""The differential engine: runs one operation script against Apache ZooKeeper
and against Ensemble and diffs the two normalised transcripts.

A script is a list of steps `(client, op, *args[, kwargs])`. Clients 0..n-1
are kazoo clients opened before the first step; further clients (raw sessions
that do not ping, kazoo clients opened later) come from `open` steps. After
every step each live client runs a sync barrier, and the watch events it
received since the previous barrier (plus, for the client that acted, the
reply marker of its own request, so the event-before-reply order is visible)
are recorded with the step. Stats are normalised: zxids become their rank
among all zxids of the run, session ids become s0, s1, ... in the order the
sessions were created, times become "set"/0 and how mtime relates to ctime."""

import importlib.util
import os
import threading
import time
from collections import namedtuple

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.protocol.states import KazooState, ZnodeStat
from kazoo.security import ACL, OPEN_ACL_UNSAFE, make_digest_acl_credential

import zkproto as P

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "interop_conftest", os.path.join(HERE, "..", "interop", "conftest.py"))
interop = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(interop)

CALL_TIMEOUT = float(os.environ.get("ENSEMBLE_DIFF_CALL_TIMEOUT", "5"))
KINDS = ("zookeeper", "ensemble")


# --- servers -------------------------------------------------------------------

class DiffServer(interop.Server):
    """conftest's Server, plus JVM system properties for ZooKeeper (settings
    it does not read from zoo.cfg, such as the container check interval)."""

    def __init__(self, kind, extra_cfg="", tick_time=2000, jvm_flags=""):
        super().__init__(kind, extra_cfg=extra_cfg, tick_time=tick_time)
        self.jvm_flags = jvm_flags

    def start(self):
        if self.kind == "ensemble":
            return super().start()
        # zkServer.sh passes SERVER_JVMFLAGS to the JVM; Server.start copies os.environ.
        env = dict(os.environ, ZOO_LOG_DIR=self.dir,
                   SERVER_JVMFLAGS=(os.environ.get("SERVER_JVMFLAGS", "") + " " + self.jvm_flags).strip())
        import subprocess
        self.proc = subprocess.Popen(
            [os.path.join(interop.ZK_HOME, "bin", "zkServer.sh"), "start-foreground", self.cfg],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        interop.wait_port(self.port, self.proc)
        return self


def wait_for_binary(timeout=120):
    """The lead may be rebuilding: wait for the binary to reappear."""
    deadline = time.time() + timeout
    while True:
        try:
            path = interop.ensemble_bin()
            if os.path.exists(path):
                return path
        except RuntimeError:
            pass
        if time.time() > deadline:
            raise RuntimeError("no ensemble binary: cargo build --release")
        time.sleep(1)


def start_servers(cfg="", tick_time=2000, jvm_flags=""):
    """Starts ZooKeeper and Ensemble at the same time; returns {kind: server}."""
    wait_for_binary()
    servers = {k: DiffServer(k, cfg, tick_time, jvm_flags) for k in KINDS}
    errors = []

    def go(s):
        try:
            s.start()
        except Exception as e:  # reported below, with the server's log
            errors.append((s, e))

    threads = [threading.Thread(target=go, args=(s,)) for s in servers.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        s, e = errors[0]
        text = s.log_text()[-3000:]
        for x in servers.values():
            x.close()
        raise RuntimeError(f"{s.kind} did not start: {e}\n{text}")
    return servers


# --- scripts -----------------------------------------------------------------------

class Script:
    """Steps plus the server settings they need. `xfail` names the
    not-yet-implemented Ensemble feature the script depends on, if any."""

    def __init__(self, name, steps, clients=3, cfg="", tick_time=2000, jvm_flags="", xfail=None):
        self.name, self.steps, self.clients = name, steps, clients
        self.cfg, self.tick_time, self.jvm_flags, self.xfail = cfg, tick_time, jvm_flags, xfail


def split_step(step):
    client, op, *args = step
    kwargs = dict(args.pop()) if args and isinstance(args[-1], dict) else {}
    return client, op, args, kwargs


def describe(step):
    client, op, args, kwargs = split_step(step)
    parts = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
    who = "-" if client is None else f"c{client}"
    return f"{who} {op}({', '.join(parts)})"


def _short(v):
    if isinstance(v, ACL):
        return f"{v.id.scheme}:{v.id.id}:{v.perms}"
    if isinstance(v, (list, tuple)):
        inner = ", ".join(_short(x) for x in v)
        return f"[{inner}]" if isinstance(v, list) else f"({inner})"
    return repr(v)


# --- clients -------------------------------------------------------------------------

class KazooHandle:
    """A kazoo client whose connection reports every watch event and reply
    in wire order, read on kazoo's connection thread."""

    kind = "kazoo"

    def __init__(self, hosts, timeout=10.0):
        self.log = []
        self.seen = 0
        self.closed = False
        self.kz = KazooClient(hosts=hosts, timeout=timeout)
        conn = self.kz._connection
        orig_event, orig_reply = conn._read_watch_event, conn._read_response
        kz = self.kz

        def on_event(buffer, offset):
            etype, state = P.struct.unpack_from(">ii", buffer, offset)
            path, _ = P.r_str(buffer, offset + 8)
            self.log.append(("event", P.EVENT_NAMES.get(etype, etype), path, state, str(kz._state)))
            return orig_event(buffer, offset)

        def on_reply(header, buffer, offset):
            req = kz._pending[0][0] if kz._pending else None
            if req is not None and not isinstance(req, P.Barrier):
                res = P.error_name(header.err) if header.err else "ok"
                self.log.append(("reply", P.OPCODE_NAMES.get(req.type, req.type), res))
            return orig_reply(header, buffer, offset)

        conn._read_watch_event, conn._read_response = on_event, on_reply
        # kazoo's start() returns when the session is live, which can be just
        # before its connection thread reports CONNECTED to listeners: wait for
        # that report and leave it out, so no transcript depends on the race.
        connected = threading.Event()

        def on_state(state):
            self.log.append(("session", str(state)))
            if state == KazooState.CONNECTED:
                connected.set()

        self.kz.add_listener(on_state)
        self.kz.start(timeout=15)
        connected.wait(15)
        self.seen = len(self.log)
        self.session_id = self.kz.client_id[0]

    def call(self, req):
        ar = self.kz.handler.async_result()
        self.kz._call(req, ar)
        return ar.get(timeout=CALL_TIMEOUT)

    def barrier(self):
        if self.closed:
            return
        try:
            self.call(P.Barrier())
        except Exception as e:
            self.log.append(("barrier-failed", type(e).__name__))

    def take_events(self):
        out = self.log[self.seen:]
        self.seen += len(out)
        return out

    def close(self):
        if not self.closed:
            self.closed = True
            self.kz.stop()
            self.kz.close()


class RawHandle:
    """A session on a bare socket that never pings (so it expires)."""

    kind = "raw"

    def __init__(self, port, timeout_ms, session_id=0, passwd=b"\0" * 16):
        self.port = port
        self.sess = P.RawSession(port, timeout_ms, session_id, passwd)
        self.session_id = self.sess.session_id
        self.negotiated = self.sess.timeout
        self.seen = 0
        self.closed = False
        self.reported_closed = False

    @property
    def log(self):
        return self.sess.events

    def call(self, req):
        return self.sess.call(req)

    def barrier(self):
        if self.closed:
            return
        try:
            self.call(P.Barrier())
        except P.SessionClosed:
            self.closed = True
            self.sess.events.append(("connection-closed",))
        except P.ServerError as e:
            self.sess.events.append(("barrier-failed", str(e)))

    def take_events(self):
        out = [e if e[0] == "connection-closed" else ("event",) + e
               for e in self.sess.events[self.seen:]]
        self.seen = len(self.sess.events)
        return out

    def close(self):
        if not self.closed:
            self.closed = True
            self.sess.close_session()


# --- operations ---------------------------------------------------------------------

OPS = {}


def op(name):
    def reg(fn):
        OPS[name] = fn
        return fn
    return reg


def _noop_watch(_event):
    pass


def _kazoo(h, kw):
    """The kazoo client to use, or None when the request must go raw."""
    return h.kz if h.kind == "kazoo" and not kw.get("raw") else None


BASIC_MODES = {"persistent": (False, False), "ephemeral": (True, False),
               "persistent_sequential": (False, True), "ephemeral_sequential": (True, True)}


def _create_request(path, data, acl, mode, stat, opcode=None, ttl=None, flags=None):
    if opcode is None:
        if mode == "container":
            opcode = 19
        elif mode.endswith("_with_ttl"):
            opcode = 21
        else:
            opcode = 15 if stat else 1
    flags = P.MODES[mode] if flags is None else flags
    return P.Create(opcode, path, data, acl, flags, ttl)


def _do_create(r, h, path, data=b"", acl=None, mode="persistent", stat=False, **kw):
    acl = OPEN_ACL_UNSAFE if acl is None else acl
    kz = _kazoo(h, kw)
    if kz and mode in BASIC_MODES and "opcode" not in kw and "flags" not in kw:
        eph, seq = BASIC_MODES[mode]
        return kz.create(path, data, acl=acl, ephemeral=eph, sequence=seq, include_data=stat)
    return h.call(_create_request(path, data, acl, mode, stat, kw.get("opcode"), kw.get("ttl"),
                                  kw.get("flags")))


@op("create")
def op_create(r, h, path, data=b"", acl=None, mode="persistent", **kw):
    """create (1); container and TTL modes use createContainer (19) and
    createTTL (21) as the Java client does. kw: ttl, opcode, flags, raw."""
    return _do_create(r, h, path, data, acl, mode, stat=False, **kw)


@op("create2")
def op_create2(r, h, path, data=b"", acl=None, mode="persistent", **kw):
    return _do_create(r, h, path, data, acl, mode, stat=True, **kw)


@op("delete")
def op_delete(r, h, path, version=-1, **kw):
    kz = _kazoo(h, kw)
    return kz.delete(path, version) if kz else h.call(P.PathVersion(2, path, version))


@op("exists")
def op_exists(r, h, path, watch=False, **kw):
    kz = _kazoo(h, kw)
    if kz:
        return kz.exists(path, watch=_noop_watch if watch else None)
    try:
        return h.call(P.PathWatch(3, path, watch))
    except P.ServerError as e:
        if e.code == -101:
            return None
        raise


@op("get")
def op_get(r, h, path, watch=False, **kw):
    kz = _kazoo(h, kw)
    return kz.get(path, watch=_noop_watch if watch else None) if kz else h.call(P.PathWatch(4, path, watch))


@op("set")
def op_set(r, h, path, data, version=-1, **kw):
    kz = _kazoo(h, kw)
    return kz.set(path, data, version) if kz else h.call(P.SetData(path, data, version))


@op("children")
def op_children(r, h, path, watch=False, **kw):
    kz = _kazoo(h, kw)
    v = kz.get_children(path, watch=_noop_watch if watch else None) if kz else h.call(P.PathWatch(8, path, watch))
    return sorted(v)


@op("children2")
def op_children2(r, h, path, watch=False, **kw):
    kz = _kazoo(h, kw)
    if kz:
        c, s = kz.get_children(path, watch=_noop_watch if watch else None, include_data=True)
    else:
        c, s = h.call(P.PathWatch(12, path, watch))
    return sorted(c), s


@op("get_acls")
def op_get_acls(r, h, path, **kw):
    kz = _kazoo(h, kw)
    return kz.get_acls(path) if kz else h.call(P.GetACL(path))


@op("set_acls")
def op_set_acls(r, h, path, acls, version=-1, **kw):
    kz = _kazoo(h, kw)
    return kz.set_acls(path, acls, version) if kz else h.call(P.SetACL(path, acls, version))


@op("sync")
def op_sync(r, h, path, **kw):
    kz = _kazoo(h, kw)
    return kz.sync(path) if kz else h.call(P.PathOnly(9, path))


def _sub_request(sub):
    name, args, kw = sub[0], list(sub[1:]), {}
    if args and isinstance(args[-1], dict):
        kw = args.pop()
    if name in ("create", "create2"):
        path, data = args[0], (args[1] if len(args) > 1 else kw.get("data", b""))
        return _create_request(path, data, kw.get("acl") or OPEN_ACL_UNSAFE, kw.get("mode", "persistent"),
                               name == "create2", kw.get("opcode"), kw.get("ttl"), kw.get("flags"))
    if name == "delete":
        return P.PathVersion(2, args[0], args[1] if len(args) > 1 else -1)
    if name == "check":
        return P.PathVersion(13, args[0], args[1] if len(args) > 1 else -1)
    if name == "set":
        return P.SetData(args[0], args[1], args[2] if len(args) > 2 else -1)
    if name == "get":
        return P.PathWatch(4, args[0], False)
    if name == "children":
        return P.PathWatch(8, args[0], False)
    raise ValueError(f"unknown multi sub-op {name}")


def _kazoo_txn_ok(subs):
    for s in subs:
        kw = s[-1] if isinstance(s[-1], dict) else {}
        if s[0] not in ("create", "delete", "set", "check"):
            return False
        if s[0] == "create" and (kw.get("mode", "persistent") not in BASIC_MODES
                                 or "opcode" in kw or "flags" in kw):
            return False
    return True


@op("multi")
def op_multi(r, h, subs, **kw):
    """multi (14). Sub-ops: ("create"|"create2", path, data, {mode, acl, ttl}),
    ("delete", path, version), ("set", path, data, version), ("check", path, version).
    Goes through kazoo's transaction when kazoo can express every sub-op."""
    kz = _kazoo(h, kw)
    if kz and _kazoo_txn_ok(subs):
        t = kz.transaction()
        for s in subs:
            skw = s[-1] if isinstance(s[-1], dict) else {}
            a = [x for x in s[1:] if not isinstance(x, dict)]
            if s[0] == "create":
                eph, seq = BASIC_MODES[skw.get("mode", "persistent")]
                t.create(a[0], a[1] if len(a) > 1 else skw.get("data", b""), acl=skw.get("acl"),
                         ephemeral=eph, sequence=seq)
            elif s[0] == "delete":
                t.delete(*a)
            elif s[0] == "set":
                t.set_data(*a)
            else:
                t.check(*a)
        return t.commit()
    return h.call(P.Multi([_sub_request(s) for s in subs]))


@op("multi_read")
def op_multi_read(r, h, subs, **kw):
    """multiRead (22) of ("get", path) and ("children", path); children
    lists are sorted (ZooKeeper returns them in hash order)."""
    out = h.call(P.Multi([_sub_request(s) for s in subs], read=True))
    return [sorted(v) if isinstance(v, list) else v for v in out]


@op("get_ephemerals")
def op_get_ephemerals(r, h, prefix="/", **kw):
    return sorted(h.call(P.PathOnly(103, prefix)))


@op("all_children_number")
def op_all_children_number(r, h, path, **kw):
    return h.call(P.PathOnly(104, path))


@op("who_am_i")
def op_who_am_i(r, h, **kw):
    return sorted(h.call(P.WhoAmI()))


@op("add_watch")
def op_add_watch(r, h, path, mode="persistent", **kw):
    return h.call(P.WatchOp(106, path, P.ADD_WATCH_MODES[mode]))


@op("remove_watches")
def op_remove_watches(r, h, path, kind="any", **kw):
    return h.call(P.WatchOp(18, path, P.WATCHER_TYPES[kind]))


@op("check_watches")
def op_check_watches(r, h, path, kind="any", **kw):
    return h.call(P.WatchOp(17, path, P.WATCHER_TYPES[kind]))


@op("raw")
def op_raw(r, h, opcode, body, **kw):
    """Any opcode with a hand-built body; the reply body bytes are returned."""
    return h.call(P.Raw(opcode, body))


@op("add_auth")
def op_add_auth(r, h, scheme, credential, **kw):
    if scheme == "digest" and ":" in credential:
        r.auth_ids.add(("digest", make_digest_acl_credential(*credential.split(":", 1))))
    else:
        r.auth_ids.add((scheme, credential))
    return h.kz.add_auth(scheme, credential)


@op("close")
def op_close(r, h, **kw):
    h.close()
    return "closed"


@op("drop")
def op_drop(r, h, **kw):
    """A raw session's socket is closed without ending the session."""
    h.sess.drop()
    h.closed = True
    return "dropped"


@op("sleep")
def op_sleep(r, h, seconds, **kw):
    time.sleep(seconds)
    return None


@op("open")
def op_open(r, h, kind="kazoo", timeout_ms=30000, resume=None, **kw):
    """Opens client `index` (kazoo, or raw with timeout_ms). resume=k reuses
    client k's session id and password (raw only); the reply is then
    "expired" when the server refuses the session."""
    raise AssertionError("handled by Runner")


def _is_connected(h):
    return not h.closed


# --- running ------------------------------------------------------------------------

Stat = namedtuple("Stat", ZnodeStat._fields)


class Runner:
    """Runs one script against one server and keeps the raw transcript."""

    def __init__(self, server, n_clients=3, barrier=True):
        self.server = server
        self.handles = {}
        self.sessions = []  # session ids in creation order
        self.entries = []
        self.barrier = barrier
        self.auth_ids = set()  # (scheme, id) of every add_auth in the run
        for i in range(n_clients):
            self._add(i, KazooHandle(server.hosts))

    def _add(self, index, handle):
        self.handles[index] = handle
        if handle.session_id and handle.session_id not in self.sessions:
            self.sessions.append(handle.session_id)

    def _open(self, index, kind="kazoo", timeout_ms=30000, resume=None, **kw):
        if kind == "kazoo":
            self._add(index, KazooHandle(self.server.hosts, timeout=timeout_ms / 1000.0))
            return "opened"
        sid, pw = 0, b"\0" * 16
        if resume is not None:
            old = self.handles[resume]
            sid, pw = old.session_id, old.sess.passwd
        h = RawHandle(self.server.port, timeout_ms, sid, pw)
        if resume is not None and h.session_id == 0:
            h.closed = True
            self.handles[index] = h
            return ("expired", h.negotiated)
        self._add(index, h)
        return ("opened", h.negotiated if resume is None else "resumed")

    def step(self, step):
        client, op_name, args, kwargs = split_step(step)
        # hold_events: leave this step's events to the next step (for
        # asynchronous server actions whose timing differs, e.g. reaping).
        hold = kwargs.pop("hold_events", False)
        try:
            if op_name == "open":
                result = self._open(client, *args, **kwargs)
            else:
                h = self.handles.get(client) if client is not None else None
                result = OPS[op_name](self, h, *args, **kwargs)
        except (KazooException, P.ServerError) as e:
            result = ("error", type(e).__name__ if isinstance(e, KazooException) else str(e))
        except P.SessionClosed:
            result = ("error", "ConnectionClosed")
            self.handles[client].closed = True
        except Exception as e:  # timeouts, client-side checks: recorded, compared
            result = ("error", type(e).__name__)
        events = {}
        if hold:
            self.entries.append({"step": describe(step), "result": result, "events": {}})
            return
        for i, h in sorted(self.handles.items()):
            if self.barrier:
                h.barrier()
            got = h.take_events()
            if got:
                events[i] = got
        self.entries.append({"step": describe(step), "result": result, "events": events})

    def run(self, steps):
        for s in steps:
            self.step(s)
        return self.entries

    def close(self):
        for h in self.handles.values():
            try:
                if h.kind == "kazoo":
                    h.close()
                elif not h.closed:
                    h.sess.drop()
            except Exception:
                pass


# --- normalisation --------------------------------------------------------------------

def _plain(v):
    """kazoo/zkproto values -> lists, tuples, Stats, strings, numbers."""
    if isinstance(v, ZnodeStat):
        return Stat(*v)
    if isinstance(v, ACL):
        return ("acl", v.id.scheme, v.id.id, v.perms)
    if isinstance(v, Exception):
        name = type(v).__name__ if isinstance(v, KazooException) else str(v)
        return ("error", name)
    if isinstance(v, tuple):
        return tuple(_plain(x) for x in v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, bytes):
        return v
    return v


def _stats(v, out):
    if isinstance(v, Stat):
        out.append(v)
    elif isinstance(v, (list, tuple)):
        for x in v:
            _stats(x, out)


def sort_auth_expansions(acls, auth_ids):
    """An ACL entry with the `auth` scheme is replaced by one entry per id the
    creating session authenticated, in the iteration order of ZooKeeper's
    per-connection authInfo set (a ConcurrentHashMap key set: hash order, not
    the order of addAuth; see PrepRequestProcessor.fixupACL). Ensemble keeps
    addAuth order. So each maximal run of adjacent entries that share their
    perms and whose ids were all authenticated by some add_auth of the run is
    sorted; every other entry keeps its place. (An explicit list naming such
    ids side by side with equal perms is sorted too; no script relies on its
    order.)"""
    out, i = [], 0
    while i < len(acls):
        j = i
        while (j < len(acls) and _is_acl(acls[j]) and acls[j][1:3] in auth_ids
               and acls[j][3] == acls[i][3]):
            j += 1
        if j - i > 1:
            out.extend(sorted(acls[i:j]))
            i = j
        else:
            out.append(acls[i])
            i += 1
    return out


def _is_acl(v):
    return isinstance(v, tuple) and len(v) == 4 and v[0] == "acl"


def normalise(entries, sessions, auth_ids=()):
    """Returns a list of (step description, result, events) with zxids ranked,
    sessions numbered and times reduced to what must match."""
    plain = [(e["step"], _plain(e["result"]), e["events"]) for e in entries]
    stats = []
    for _, r, _ in plain:
        _stats(r, stats)
    zxids = sorted({z for s in stats for z in (s.czxid, s.mzxid, s.pzxid)})
    rank = {z: i for i, z in enumerate(zxids)}
    sess = {sid: f"s{i}" for i, sid in enumerate(sessions)}

    def fix(v):
        if isinstance(v, Stat):
            return stat_text(v, rank, sess)
        if isinstance(v, tuple):
            return tuple(fix(x) for x in v)
        if isinstance(v, list):
            if v and all(_is_acl(x) for x in v):
                return sort_auth_expansions(v, auth_ids)
            return [fix(x) for x in v]
        return v

    return [(d, fix(r), ev) for d, r, ev in plain]


def stat_text(s, rank, sess):
    if s.mzxid == s.czxid:
        mtime = "=ctime" if s.mtime == s.ctime else "!=ctime"
    else:
        mtime = ">=ctime" if s.mtime >= s.ctime else "<ctime"
    owner = s.ephemeralOwner
    owner = sess.get(owner, 0 if owner == 0 else f"{owner & 0xFFFFFFFFFFFFFFFF:#x}")
    return (f"Stat(czxid=#{rank[s.czxid]} mzxid=#{rank[s.mzxid]} pzxid=#{rank[s.pzxid]} "
            f"ctime={'set' if s.ctime else 0} mtime={'set' if s.mtime else 0}{mtime} "
            f"version={s.version} cversion={s.cversion} aversion={s.aversion} "
            f"owner={owner} dataLength={s.dataLength} numChildren={s.numChildren})")


def run_on(server, steps, clients=3):
    r = Runner(server, clients)
    try:
        r.run(steps)
    finally:
        r.close()
    return normalise(r.entries, r.sessions, r.auth_ids)


# --- comparing -----------------------------------------------------------------------

# When a session closes, ZooKeeper deletes its ephemerals in the iteration
# order of a Java HashSet (DataTree's per-session ephemerals set), so the
# NodeDeleted/NodeChildrenChanged events of a close come in hash order, which
# Ensemble does not imitate. For these ops, each run of consecutive watch
# events a client receives is compared as a multiset; replies, session states
# and the position of the events relative to them stay ordered.
UNORDERED_EVENT_OPS = ("close",)


def _unordered(events):
    out = {}
    for c, evs in (events or {}).items():
        runs, run = [], []
        for e in evs:
            if e and e[0] == "event":
                run.append(e)
                continue
            runs.extend(sorted(run, key=repr))
            run = []
            runs.append(e)
        out[c] = runs + sorted(run, key=repr)
    return out


class Comparison:
    """Step-by-step comparison of two normalised transcripts. For steps whose
    op is in `unordered_event_ops`, each run of consecutive watch events of a
    client is compared as a multiset instead of a sequence."""

    def __init__(self, name, zk, ens, unordered_event_ops=UNORDERED_EVENT_OPS):
        self.name, self.zk, self.ens = name, zk, ens
        self.diffs = []  # (index, description, zk (result, events), ens (result, events))
        for i in range(max(len(zk), len(ens))):
            a = zk[i] if i < len(zk) else ("<missing>", None, None)
            b = ens[i] if i < len(ens) else ("<missing>", None, None)
            op_name = a[0].split(" ", 1)[-1].split("(", 1)[0]
            if op_name in unordered_event_ops and a[1] == b[1] and _unordered(a[2]) == _unordered(b[2]):
                continue
            if a[1:] != b[1:]:
                self.diffs.append((i, a[0], a[1:], b[1:]))

    def report(self, limit=20, context_steps=None):
        lines = [f"{self.name}: {len(self.diffs)} differing step(s)"]
        for i, desc, (zr, zev), (er, eev) in self.diffs[:limit]:
            lines.append(f"step {i}: {desc}")
            if zr != er:
                lines.append(f"    zookeeper: {zr!r}")
                lines.append(f"    ensemble:  {er!r}")
            if zev != eev:
                for c in sorted(set(zev or {}) | set(eev or {})):
                    x, y = (zev or {}).get(c, []), (eev or {}).get(c, [])
                    if x != y:
                        lines.append(f"    events c{c} zookeeper: {x}")
                        lines.append(f"    events c{c} ensemble:  {y}")
        if len(self.diffs) > limit:
            lines.append(f"... and {len(self.diffs) - limit} more")
        return "\n".join(lines)


def run_pair(servers, steps, clients=3):
    """Runs the steps on both servers at once; returns {kind: transcript}."""
    out, errors = {}, []

    def go(kind):
        try:
            out[kind] = run_on(servers[kind], steps, clients)
        except Exception as e:
            errors.append((kind, e))

    threads = [threading.Thread(target=go, args=(k,)) for k in KINDS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        kind, e = errors[0]
        raise RuntimeError(f"running on {kind} failed: {e!r}") from e
    return out


def compare(script):
    """Starts both servers with the script's settings, runs it on each and
    returns a Comparison."""
    servers = start_servers(script.cfg, script.tick_time, script.jvm_flags)
    try:
        out = run_pair(servers, script.steps, script.clients)
    finally:
        for s in servers.values():
            s.close()
    return Comparison(script.name, out["zookeeper"], out["ensemble"])
