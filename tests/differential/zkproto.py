"""Request records for the operations kazoo 2.11 has no API for (container and
TTL creates, addWatch, removeWatches/checkWatches, multiRead, getEphemerals,
getAllChildrenNumber, whoAmI, paths kazoo would normalise), and a raw session
that speaks them over a bare socket.

Every request class has kazoo's request shape (`type`, `serialize()`,
`deserialize(buf, offset)` returning the reply value), so the same object can
be handed to a kazoo client's connection (`KazooClient._call`) or sent by
`RawSession`. Layouts follow zookeeper.jute."""

import socket
import struct
import threading

from kazoo.exceptions import EXCEPTIONS
from kazoo.protocol.states import ZnodeStat
from kazoo.security import ACL, Id

INT = struct.Struct(">i")
LONG = struct.Struct(">q")
STAT = struct.Struct(">qqqqiiiqiiq")
MULTI_HEADER = struct.Struct(">iBi")

OPCODE_NAMES = {
    1: "create", 2: "delete", 3: "exists", 4: "getData", 5: "setData", 6: "getACL",
    7: "setACL", 8: "getChildren", 9: "sync", 11: "ping", 12: "getChildren2",
    13: "check", 14: "multi", 15: "create2", 16: "reconfig", 17: "checkWatches",
    18: "removeWatches", 19: "createContainer", 20: "deleteContainer",
    21: "createTTL", 22: "multiRead", 100: "auth", 101: "setWatches", 102: "sasl",
    103: "getEphemerals", 104: "getAllChildrenNumber", 105: "setWatches2",
    106: "addWatch", 107: "whoAmI", -11: "closeSession",
}

EVENT_NAMES = {1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged",
               4: "NodeChildrenChanged", 5: "DataWatchRemoved",
               6: "ChildWatchRemoved", 7: "PersistentWatchRemoved", -1: "None"}

# Create flags (CreateMode.toFlag).
MODES = {
    "persistent": 0, "ephemeral": 1, "persistent_sequential": 2,
    "ephemeral_sequential": 3, "container": 4, "persistent_with_ttl": 5,
    "persistent_sequential_with_ttl": 6,
}

# WatcherType for checkWatches/removeWatches; AddWatchMode for addWatch.
WATCHER_TYPES = {"children": 1, "data": 2, "any": 3}
ADD_WATCH_MODES = {"persistent": 0, "persistent_recursive": 1}


def error_name(code):
    """The kazoo exception name for a ZooKeeper error code, or the bare code."""
    try:
        return EXCEPTIONS[code].__name__
    except RuntimeError:
        return f"UnknownError({code})"


class ServerError(Exception):
    """A non-zero error code in a reply to a RawSession request."""

    def __init__(self, code):
        super().__init__(error_name(code))
        self.code = code


class SessionClosed(Exception):
    """The server closed the raw session's socket."""


# --- jute primitives -------------------------------------------------------

def w_int(v):
    return INT.pack(v)


def w_long(v):
    return LONG.pack(v)


def w_bool(v):
    return b"\1" if v else b"\0"


def w_buf(b):
    return INT.pack(-1) if b is None else INT.pack(len(b)) + b


def w_str(s):
    # Unlike kazoo, an empty string is sent as length 0, not as null.
    return INT.pack(-1) if s is None else w_buf(s.encode())


def w_acls(acls):
    out = INT.pack(len(acls))
    for a in acls:
        out += INT.pack(a.perms) + w_str(a.id.scheme) + w_str(a.id.id)
    return out


def w_strs(xs):
    return INT.pack(len(xs)) + b"".join(w_str(x) for x in xs)


def r_int(b, o):
    return INT.unpack_from(b, o)[0], o + 4


def r_long(b, o):
    return LONG.unpack_from(b, o)[0], o + 8


def r_buf(b, o):
    n, o = r_int(b, o)
    if n < 0:
        return None, o
    return bytes(b[o:o + n]), o + n


def r_str(b, o):
    v, o = r_buf(b, o)
    return (None if v is None else v.decode()), o


def r_stat(b, o):
    return ZnodeStat._make(STAT.unpack_from(b, o)), o + STAT.size


def r_strs(b, o):
    n, o = r_int(b, o)
    out = []
    for _ in range(max(n, 0)):
        s, o = r_str(b, o)
        out.append(s)
    return out, o


def r_acls(b, o):
    n, o = r_int(b, o)
    out = []
    for _ in range(max(n, 0)):
        perms, o = r_int(b, o)
        scheme, o = r_str(b, o)
        ident, o = r_str(b, o)
        out.append(ACL(perms, Id(scheme, ident)))
    return out, o


# --- requests ----------------------------------------------------------------

class Request:
    type = None
    path = None

    def serialize(self):
        raise NotImplementedError

    def decode(self, b, o):
        """Returns (value, offset) for the reply body."""
        return None, o

    def deserialize(self, b, o):
        return self.decode(b, o)[0]


class Create(Request):
    """create (1), create2 (15), createContainer (19), createTTL (21)."""

    def __init__(self, opcode, path, data, acl, flags, ttl=None):
        self.type, self.path, self.data, self.acl, self.flags = opcode, path, data, acl, flags
        self.ttl = ttl

    def serialize(self):
        b = w_str(self.path) + w_buf(self.data) + w_acls(self.acl) + w_int(self.flags)
        if self.type == 21:
            b += w_long(self.ttl if self.ttl is not None else -1)
        return b

    def decode(self, b, o):
        path, o = r_str(b, o)
        if self.type == 1:
            return path, o
        stat, o = r_stat(b, o)
        return (path, stat), o


class PathVersion(Request):
    """delete (2), check (13)."""

    def __init__(self, opcode, path, version=-1):
        self.type, self.path, self.version = opcode, path, version

    def serialize(self):
        return w_str(self.path) + w_int(self.version)


class PathWatch(Request):
    """exists (3), getData (4), getChildren (8), getChildren2 (12)."""

    def __init__(self, opcode, path, watch=False):
        self.type, self.path, self.watch = opcode, path, watch

    def serialize(self):
        return w_str(self.path) + w_bool(self.watch)

    def decode(self, b, o):
        if self.type == 3:
            return r_stat(b, o)
        if self.type == 4:
            data, o = r_buf(b, o)
            stat, o = r_stat(b, o)
            return (data, stat), o
        children, o = r_strs(b, o)
        if self.type == 8:
            return children, o
        stat, o = r_stat(b, o)
        return (children, stat), o


class SetData(Request):
    type = 5

    def __init__(self, path, data, version=-1):
        self.path, self.data, self.version = path, data, version

    def serialize(self):
        return w_str(self.path) + w_buf(self.data) + w_int(self.version)

    def decode(self, b, o):
        return r_stat(b, o)


class GetACL(Request):
    type = 6

    def __init__(self, path):
        self.path = path

    def serialize(self):
        return w_str(self.path)

    def decode(self, b, o):
        acls, o = r_acls(b, o)
        stat, o = r_stat(b, o)
        return (acls, stat), o


class SetACL(Request):
    type = 7

    def __init__(self, path, acl, version=-1):
        self.path, self.acl, self.version = path, acl, version

    def serialize(self):
        return w_str(self.path) + w_acls(self.acl) + w_int(self.version)

    def decode(self, b, o):
        return r_stat(b, o)


class PathOnly(Request):
    """sync (9), getEphemerals (103), getAllChildrenNumber (104)."""

    def __init__(self, opcode, path):
        self.type, self.path = opcode, path

    def serialize(self):
        return w_str(self.path)

    def decode(self, b, o):
        if self.type == 9:
            return r_str(b, o)
        if self.type == 103:
            return r_strs(b, o)
        return r_int(b, o)


class Barrier(PathOnly):
    """A sync on "/" that the harness sends to flush events; never logged."""

    def __init__(self):
        super().__init__(9, "/")


class WatchOp(Request):
    """checkWatches (17), removeWatches (18): path and WatcherType;
    addWatch (106): path and AddWatchMode. Replies have no body."""

    def __init__(self, opcode, path, kind):
        self.type, self.path, self.kind = opcode, path, kind

    def serialize(self):
        return w_str(self.path) + w_int(self.kind)


class WhoAmI(Request):
    type = 107

    def serialize(self):
        return b""

    def decode(self, b, o):
        n, o = r_int(b, o)
        out = []
        for _ in range(max(n, 0)):
            scheme, o = r_str(b, o)
            user, o = r_str(b, o)
            out.append((scheme, user))
        return out, o


class Multi(Request):
    """multi (14) of Create/PathVersion/SetData sub-requests, or multiRead (22)
    of getData/getChildren (PathWatch without watch). The reply is a list of
    values, with ServerError instances where a sub-result is an error."""

    def __init__(self, ops, read=False):
        self.ops, self.type = ops, 22 if read else 14

    def serialize(self):
        b = b""
        for op in self.ops:
            b += MULTI_HEADER.pack(op.type, 0, -1) + op.serialize()
        return b + MULTI_HEADER.pack(-1, 1, -1)

    def decode(self, b, o):
        out = []
        while True:
            t, done, err = MULTI_HEADER.unpack_from(b, o)
            o += MULTI_HEADER.size
            if done:
                return out, o
            if t == -1:
                code, o = r_int(b, o)
                out.append(ServerError(code))
            elif t == 1:
                v, o = r_str(b, o)
                out.append(v)
            elif t in (15, 19, 21):
                p, o = r_str(b, o)
                s, o = r_stat(b, o)
                out.append((p, s))
            elif t in (2, 13):
                out.append(True)
            elif t == 5:
                s, o = r_stat(b, o)
                out.append(s)
            elif t == 4:
                d, o = r_buf(b, o)
                s, o = r_stat(b, o)
                out.append((d, s))
            elif t == 8:
                c, o = r_strs(b, o)
                out.append(c)
            else:
                raise ValueError(f"unknown multi result type {t}")


class Raw(Request):
    """Any opcode with a hand-built body; the reply body is returned as bytes."""

    def __init__(self, opcode, body):
        self.type, self.body = opcode, body

    def serialize(self):
        return self.body

    def decode(self, b, o):
        return bytes(b[o:]), len(b)


# --- a raw session -----------------------------------------------------------

class RawSession:
    """One ZooKeeper session over a plain socket, with no pinging of its own:
    used for sessions the test lets expire. Watch events that arrive while it
    waits for a reply are appended to `events` in wire order."""

    def __init__(self, port, timeout_ms=30000, session_id=0, passwd=b"\0" * 16):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.xid = 0
        self.events = []
        self.lock = threading.Lock()
        body = struct.pack(">iqiq", 0, 0, timeout_ms, session_id) + w_buf(passwd) + b"\0"
        self.s.sendall(INT.pack(len(body)) + body)
        reply = self._frame()
        _, self.timeout, self.session_id = struct.unpack_from(">iiq", reply, 0)
        self.passwd, _ = r_buf(reply, 16)

    def _exact(self, n):
        out = b""
        while len(out) < n:
            try:
                chunk = self.s.recv(n - len(out))
            except (ConnectionResetError, socket.timeout, OSError):
                chunk = b""
            if not chunk:
                raise SessionClosed()
            out += chunk
        return out

    def _frame(self):
        (n,) = INT.unpack(self._exact(4))
        return self._exact(n)

    def call(self, req):
        """Sends one request and returns its decoded reply, raising
        ServerError for an error code and SessionClosed for a closed socket."""
        with self.lock:
            self.xid += 1
            xid = self.xid
            body = INT.pack(xid) + INT.pack(req.type) + req.serialize()
            try:
                self.s.sendall(INT.pack(len(body)) + body)
            except OSError:
                raise SessionClosed()
            while True:
                b = self._frame()
                rxid, _zxid, err = struct.unpack_from(">iqi", b, 0)
                if rxid == -1:
                    etype, state = struct.unpack_from(">ii", b, 16)
                    path, _ = r_str(b, 24)
                    self.events.append((EVENT_NAMES.get(etype, etype), state, path))
                    continue
                if rxid == -2:
                    continue
                if rxid != xid:
                    raise ValueError(f"reply xid {rxid}, expected {xid}")
                if err:
                    raise ServerError(err)
                return req.decode(b, 16)[0]

    def close_session(self):
        try:
            self.call(Raw(-11, b""))
        except (SessionClosed, ServerError):
            pass
        self.s.close()

    def drop(self):
        """Closes the socket without ending the session."""
        self.s.close()
