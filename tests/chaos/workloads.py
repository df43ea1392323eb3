"""The workloads: what each client thread does, and the final reads.

Every workload lives under /chaos/<name>/g<generation>. A run moves to a
new generation of znodes every `rotate` seconds, which keeps each key's
history (and the checker's search) short in long runs.

- register: keys k0..k3 with data and version. read = sync + getData;
  write = setData (version -1); cas = getData, then setData with the
  version it saw.
- set: keys s0..s2 hold comma-separated integers; add(e) = getData, then
  setData(data + e) with the version it saw. read = sync + getData.
- queue: `items` holds sequential znodes e<element>-<seq>, `head` counts
  dequeues in its version. enqueue = sequential create; dequeue =
  getData(head), getChildren(items), then the multi check(oldest item, 0)
  + setData(head, version) + delete(oldest item); read = sync +
  getChildren(items).
- ids: sequential creates id-<tag>-<seq> under one parent; list = a plain
  getChildren (with the parent's Stat).

Each ZooKeeper call made for the history is recorded with its invocation
and completion (history.py); plain reads (get, list) serve the
session-order check only.
"""

import threading
import time

from kazoo.exceptions import (
    BadVersionError,
    KazooException,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.handlers.threading import KazooTimeoutError

import checker

ROOT = "/chaos"

# Answers that say the operation did not take effect: "fail". Anything else
# without an answer (connection loss, timeout, expiry, SessionMoved...) is
# "info".
DEFINITE = (BadVersionError, NoNodeError, NodeExistsError, NotEmptyError)
MULTI_ERRORS = (RolledBackError, RuntimeInconsistency, BadVersionError, NoNodeError)


def keep_xids(zk):
    """Makes a kazoo client number its requests across reconnections, as
    ZooKeeper's Java and C clients do, instead of starting again at 1 on
    every connection of the session (kazoo's own habit). See
    docs/reliability.md: Ensemble mixes up the answers of two requests of
    one session that carry the same xid."""
    conn = zk._connection
    base = type(conn)

    class SessionXids(base):
        @property
        def _xid(self):
            return self.__dict__.get("_session_xid")

        @_xid.setter
        def _xid(self, value):
            if value == 0 and self.__dict__.get("_session_xid"):
                return  # a new connection: carry on from the last xid
            self.__dict__["_session_xid"] = value

    xid = conn._xid
    conn.__class__ = SessionXids
    conn._xid = xid


def _name(exc):
    n = type(exc).__name__
    return n[:-5] if n.endswith("Error") else n


class Worker(threading.Thread):
    """One client thread: one kazoo client (one ZooKeeper session at a
    time), operations one after another until `deadline` (history time)."""

    def __init__(self, wid, zk, workload, history, deadline, rng, op_timeout, delay):
        super().__init__(daemon=True, name=f"worker {wid}")
        self.wid = wid
        self.zk = zk
        self.workload = workload
        self.history = history
        self.deadline = deadline
        self.rng = rng
        self.op_timeout = op_timeout
        self.delay = delay
        self.stop_event = threading.Event()
        self.error = None
        self.final = False  # records the final reads
        self.epoch = 0  # bumped at every connection state change
        self._counter = 0
        zk.add_listener(self._state_changed)

    def _state_changed(self, state):
        self.epoch += 1

    def unique(self):
        """A number no other worker of the run uses."""
        self._counter += 1
        return self._counter * 100 + self.wid

    def session(self):
        return self.zk._session_id  # None while kazoo has no session

    def wait(self, async_result):
        return async_result.get(timeout=self.op_timeout)

    def call(self, f, key, args, fn, read=False):
        """Records one operation around `fn()`, which returns the result to
        record or raises. A read whose connection changed on the way (a
        sync answered by one member, the read by another) counts as
        unknown, since the claim is about a sync and a read on the same
        connection."""
        op = self.history.invoke(self.wid, f, key, args, session=self.session(), final=self.final)
        epoch = self.epoch
        try:
            result = fn()
        except DEFINITE as e:
            self.history.complete(op, "fail", {"error": _name(e)}, self.session())
            return None
        except (KazooException, KazooTimeoutError, OSError) as e:
            self.history.complete(op, "info", {"exception": _name(e)}, self.session())
            return None
        if isinstance(result, Outcome):
            self.history.complete(op, result.outcome, result.result, self.session())
            return None
        if read and self.epoch != epoch:
            self.history.complete(op, "info", {"exception": "Reconnected"}, self.session())
            return None
        self.history.complete(op, "ok", result, self.session())
        return result

    def run(self):
        try:
            while not self.stop_event.is_set() and self.history.now() < self.deadline:
                self.workload.step(self, self.rng)
                if self.delay:
                    self.stop_event.wait(self.rng.uniform(0, 2 * self.delay))
        except Exception as e:  # a bug of the harness: the run fails
            self.error = f"{type(e).__name__}: {e}"
            raise


class Outcome:
    """Returned by an operation that decides its own outcome (a multi
    answers failures inside its results, without raising)."""

    def __init__(self, outcome, result):
        self.outcome = outcome
        self.result = result


class Workload:
    name = ""

    def __init__(self, generations, rotate):
        self.generations = generations
        self.rotate = rotate

    def base(self, gen):
        return f"{ROOT}/{self.name}/g{gen}"

    def generation(self, w):
        return min(int(w.history.now() // self.rotate), self.generations - 1)

    def setup(self, zk):
        for g in range(self.generations):
            self.setup_generation(zk, g)

    def setup_generation(self, zk, gen):
        raise NotImplementedError

    def step(self, w, rng):
        raise NotImplementedError

    def final(self, w):
        """The final reads, through worker `w` (a fresh client), after the
        cluster is healed."""
        raise NotImplementedError


def final_read(w, key, fn, attempts=10):
    """A final read, tried again (each try recorded) until it answers."""
    for _ in range(attempts):
        got = w.call("read", key, {}, fn, read=True)
        if got is not None:
            return got
        time.sleep(1.0)
    return None


def _read_data(w, path):
    """sync + getData on one connection."""
    w.wait(w.zk.sync_async(path))
    return w.wait(w.zk.get_async(path))


class Register(Workload):
    name = "register"
    KEYS = 4

    def keys(self, gen):
        return [f"{self.base(gen)}/k{j}" for j in range(self.KEYS)]

    def setup_generation(self, zk, gen):
        zk.ensure_path(self.base(gen))
        for k in self.keys(gen):
            zk.create(k, b"")

    def step(self, w, rng):
        key = rng.choice(self.keys(self.generation(w)))
        r = rng.random()
        if r < 0.2:
            w.call("read", key, {}, lambda: self._read(w, key), read=True)
        elif r < 0.35:
            value = str(w.unique())
            w.call("write", key, {"value": value}, lambda: self._set(w, key, value, -1))
        else:
            got = w.call("get", key, {}, lambda: self._get(w, key))
            if got is None:
                return
            value = str(w.unique())
            e = got["version"]
            w.call("cas", key, {"value": value, "expect": e}, lambda: self._set(w, key, value, e))

    @staticmethod
    def _read(w, key):
        data, st = _read_data(w, key)
        return {"value": data.decode(), "version": st.version}

    @staticmethod
    def _get(w, key):
        data, st = w.wait(w.zk.get_async(key))
        return {"value": data.decode(), "version": st.version}

    @staticmethod
    def _set(w, key, value, version):
        st = w.wait(w.zk.set_async(key, value.encode(), version))
        return {"version": st.version}

    def final(self, w):
        for g in range(self.generations):
            for key in self.keys(g):
                final_read(w, key, lambda key=key: self._read(w, key))


def _elements(data):
    return [int(x) for x in data.decode().split(",") if x]


class Set(Workload):
    name = "set"
    KEYS = 3

    def keys(self, gen):
        return [f"{self.base(gen)}/s{j}" for j in range(self.KEYS)]

    def setup_generation(self, zk, gen):
        zk.ensure_path(self.base(gen))
        for k in self.keys(gen):
            zk.create(k, b"")

    def step(self, w, rng):
        key = rng.choice(self.keys(self.generation(w)))
        if rng.random() < 0.15:
            w.call("read", key, {}, lambda: self._read(w, key), read=True)
            return
        got = w.call("get", key, {}, lambda: self._get(w, key))
        if got is None:
            return
        e, element = got["version"], w.unique()
        data = ",".join(str(x) for x in got["elements"] + [element]).encode()

        def add():
            st = w.wait(w.zk.set_async(key, data, e))
            return {"version": st.version}

        w.call("add", key, {"element": element, "expect": e}, add)

    @staticmethod
    def _read(w, key):
        data, st = _read_data(w, key)
        return {"elements": _elements(data), "version": st.version}

    @staticmethod
    def _get(w, key):
        data, st = w.wait(w.zk.get_async(key))
        return {"elements": _elements(data), "version": st.version}

    def final(self, w):
        for g in range(self.generations):
            for key in self.keys(g):
                final_read(w, key, lambda key=key: self._read(w, key))


def _items(children):
    """Children e<element>-<seq> as (seqs, elements), oldest first."""
    pairs = sorted((int(c.rsplit("-", 1)[1]), int(c[1:].rsplit("-", 1)[0])) for c in children)
    return [s for s, _ in pairs], [e for _, e in pairs]


class Queue(Workload):
    name = "queue"

    def setup_generation(self, zk, gen):
        q = self.base(gen)
        zk.ensure_path(q + "/items")
        zk.create(q + "/head", b"")

    def step(self, w, rng):
        q = self.base(self.generation(w))
        r = rng.random()
        if r < 0.1:
            w.call("read", q, {}, lambda: self._read(w, q), read=True)
        elif r < 0.5:
            element = w.unique()

            def enqueue():
                path = w.wait(w.zk.create_async(f"{q}/items/e{element}-", b"", sequence=True))
                seqs, elements = _items([path.rsplit("/", 1)[1]])
                return {"seq": seqs[0], "element": elements[0]}

            w.call("enqueue", q, {"element": element}, enqueue)
        else:
            self._dequeue(w, q)

    def _dequeue(self, w, q):
        head = w.call("get", q, {}, lambda: {"version": w.wait(w.zk.get_async(q + "/head"))[1].version})
        if head is None:
            return

        def ls():
            children, st = w.wait(w.zk.get_children_async(q + "/items", include_data=True))
            seqs, elements = _items(children)
            return {"cversion": st.cversion, "items": seqs, "elements": elements}

        listed = w.call("list", q, {}, ls)
        if not listed or not listed["items"]:
            return
        seq, element, hv = listed["items"][0], listed["elements"][0], head["version"]
        item = f"{q}/items/e{element}-{seq:010d}"

        def dequeue():
            t = w.zk.transaction()
            t.check(item, 0)
            t.set_data(q + "/head", str(seq).encode(), version=hv)
            t.delete(item)
            results = w.wait(t.commit_async())
            errors = [r for r in results if isinstance(r, Exception)]
            if not errors:
                return {}
            if all(isinstance(r, MULTI_ERRORS) for r in errors):
                return Outcome("fail", {"error": [_name(r) for r in errors]})
            return Outcome("info", {"exception": [_name(r) for r in errors]})

        w.call("dequeue", q, {"seq": seq, "element": element, "head_version": hv}, dequeue)

    @staticmethod
    def _read(w, q):
        w.wait(w.zk.sync_async(q + "/items"))
        seqs, elements = _items(w.wait(w.zk.get_children_async(q + "/items")))
        return {"items": seqs, "elements": elements}

    def final(self, w):
        for g in range(self.generations):
            q = self.base(g)
            final_read(w, q, lambda q=q: self._read(w, q))


class Ids(Workload):
    name = "ids"

    def setup_generation(self, zk, gen):
        zk.ensure_path(self.base(gen))

    def step(self, w, rng):
        parent = self.base(self.generation(w))
        if rng.random() < 0.05:

            def ls():
                children, st = w.wait(w.zk.get_children_async(parent, include_data=True))
                seqs = [checker.parse_id_name(c)[1] for c in children]
                return {"cversion": st.cversion, "seqs": checker.to_ranges(seqs)}

            w.call("list", parent, {}, ls)
            return
        tag = f"w{w.wid}n{w.unique()}"

        def create():
            path = w.wait(w.zk.create_async(f"{parent}/id-{tag}-", b"", sequence=True))
            name = path.rsplit("/", 1)[1]
            return {"seq": checker.parse_id_name(name)[1], "name": name}

        w.call("create", parent, {"tag": tag}, create)

    def final(self, w):
        for g in range(self.generations):
            parent = self.base(g)

            def names(parent=parent):
                w.wait(w.zk.sync_async(parent))
                return {"names": sorted(w.wait(w.zk.get_children_async(parent)))}

            final_read(w, parent, names)


WORKLOADS = {c.name: c for c in (Register, Set, Queue, Ids)}


def make(name, duration, rotate):
    generations = max(1, int(duration // rotate) + 1)
    return WORKLOADS[name](generations, rotate)


def settle(zk, timeout=30.0):
    """A write through the final client, so that the reads after it come
    after every entry of an older term was either committed or dropped."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            zk.ensure_path(ROOT)
            zk.set(ROOT, str(time.time()).encode())
            return
        except KazooException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
