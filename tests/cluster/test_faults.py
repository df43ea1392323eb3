"""Fault tests: network partitions through the harness's link proxies, a
lagging member caught up by a snapshot, the Java client through a leader
failover, and the expiry of a silent session held by a follower. Every test
runs against each implementation named in ENSEMBLE_CLUSTER_IMPLS, so the
tests themselves are proven against Apache ZooKeeper. See README.md."""

import os
import re
import socket
import struct
import subprocess
import threading
import time

import pytest
from kazoo.protocol.states import EventType, KazooState

from clusterlib import SequentialWriter, assert_members_agree, impls, tree_snapshot

HERE = os.path.dirname(os.path.abspath(__file__))


def wait_until(predicate, timeout, what):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def connected_port(client):
    """The client port of the member a kazoo client is connected to, or None."""
    sock = getattr(client._connection, "_socket", None)
    try:
        return sock.getpeername()[1] if sock is not None else None
    except OSError:
        return None


def leader_among(cluster, ids):
    """The one leader among `ids` when the others follow it, else None."""
    modes = {i: cluster.mode(i) for i in ids}
    leaders = [i for i, m in modes.items() if m == "leader"]
    if len(leaders) == 1 and all(m in ("leader", "follower") for m in modes.values()):
        return leaders[0]
    return None


def assert_acked_present(snap, acked):
    missing = [p for p in acked if p not in snap]
    assert not missing, f"{len(missing)} acknowledged znodes lost: {missing[:5]}"


def assert_session_order(acked):
    seqs = [int(p.rsplit("-", 1)[1]) for p in acked]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "acknowledgements out of order"


# ---------------------------------------------------------------------------
# Partitions


@pytest.mark.parametrize("how", ["close", "silent"])
@pytest.mark.parametrize("impl", impls())
def test_isolated_leader_is_replaced_and_rejoins(impl, how, cluster_factory):
    c = cluster_factory(impl, 3, proxied=True)
    old = c.leader()
    others = [i for i in c.ids if i != old]
    # The writers' connect strings name every member: one starts on the old
    # leader and must move, one on a follower whose writes the old leader
    # was committing when the link went.
    w = SequentialWriter(c, "/load", [old] + others)
    v = SequentialWriter(c, "/load-f", others + [old])
    pinned = c.client([old])  # knows no other member
    states = []
    pinned.add_listener(states.append)
    assert connected_port(w.client) == c.client_port(old)
    assert connected_port(v.client) == c.client_port(others[0])
    for x in (w, v):
        x.start()
        x.wait_for(50)

    c.isolate(old, how)
    assert not c.direct_links(), "member traffic bypasses the proxies"
    new = wait_until(lambda: leader_among(c, others), 30, "a leader among the majority")
    # Once the majority has a leader, writes resume promptly: the writer's
    # session must not stay stuck behind a request lost with the old leader
    # (the session timeout is 10 s; ZooKeeper resumes within about a second).
    elected = time.time()
    for name, x in (("leader's", w), ("follower's", v)):
        x.wait_for(x.count() + 10, timeout=30)
        resumed = time.time() - elected
        assert resumed < 5.0, (
            f"the writer that started on the {name} member resumed {resumed:.1f}s after the "
            f"majority elected member {new}; its errors meanwhile: {x.errors[-5:]}"
        )
    # The old leader has no quorum: it stops serving and drops its clients.
    wait_until(lambda: c.mode(old) is None, 15, f"isolated member {old} to stop serving")
    wait_until(lambda: KazooState.SUSPENDED in states, 15, "the pinned client to be disconnected")
    assert not pinned.connected
    # Writes go on through the majority: the writer moved there.
    w.wait_for(w.count() + 100, timeout=30)
    assert connected_port(w.client) in [c.client_port(i) for i in others]
    assert c.mode(old) is None
    assert not c.direct_links(), "member traffic bypasses the proxies"

    c.heal()
    c.leader(timeout=30)
    w.wait_for(w.count() + 50, timeout=30)
    acked = [x.stop() for x in (w, v)]
    for a in acked:
        assert_session_order(a)
    snap = assert_members_agree(c)
    assert_acked_present(snap, acked[0] + acked[1])
    assert c.mode(old) in ("leader", "follower") and new in c.ids


@pytest.mark.parametrize("how", ["close", "silent"])
@pytest.mark.parametrize("impl", impls())
def test_isolated_follower_stops_serving_and_catches_up(impl, how, cluster_factory):
    c = cluster_factory(impl, 3, proxied=True)
    lead = c.leader()
    victim, other = [i for i in c.ids if i != lead]
    # The writer starts on the follower that is cut off, and must move.
    w = SequentialWriter(c, "/load", [victim, other, lead])
    pinned = c.client([victim])
    states = []
    pinned.add_listener(states.append)
    w.start()
    w.wait_for(50)

    c.isolate(victim, how)
    assert not c.direct_links(), "member traffic bypasses the proxies"
    wait_until(lambda: c.mode(victim) is None, 15, f"isolated member {victim} to stop serving")
    wait_until(lambda: KazooState.SUSPENDED in states, 15, "the pinned client to be disconnected")
    w.wait_for(w.count() + 150, timeout=30)
    assert connected_port(w.client) in (c.client_port(lead), c.client_port(other))
    # Losing one follower costs the majority nothing.
    assert leader_among(c, [lead, other]) == lead
    assert c.mode(victim) is None
    assert not c.direct_links(), "member traffic bypasses the proxies"

    c.heal()
    c.leader(timeout=30)
    w.wait_for(w.count() + 50, timeout=30)
    acked = w.stop()
    assert_session_order(acked)
    snap = assert_members_agree(c)
    assert_acked_present(snap, acked)
    # The pinned client is back on its member (its session may have expired).
    wait_until(lambda: pinned.connected, 30, "the pinned client to reconnect")


@pytest.mark.parametrize("impl", impls())
def test_write_held_in_a_cut_link_does_not_outlive_its_session(impl, cluster_factory):
    """A follower forwards an ephemeral create to the leader over a link that
    goes silent; meanwhile the session moves to the leader and closes. When
    the link comes back, the held create must not make an ephemeral that no
    session owns (it would stay for ever): the leader refuses writes of a
    session it has closed, as ZooKeeper's checkSession does."""
    c = cluster_factory(impl, 3, proxied=True)
    lead = c.leader()
    follower = [i for i in c.ids if i != lead][0]
    setup = c.client([lead])
    setup.ensure_path("/held")
    a = c.client([follower])
    session_id, password = a.client_id
    a.sync("/held")
    # Only the follower's own dialled links to the leader go silent: the
    # leader's heartbeats still reach it, so it keeps following.
    for p in c._links(follower, lead):
        p.block("silent")
    pending = a.create_async("/held/e", b"x", ephemeral=True)
    time.sleep(1.0)
    b = c.client([lead], client_id=(session_id, password))
    assert b.client_id[0] == session_id
    b.stop()
    b.close()
    for p in c._links(follower, lead):
        p.heal()
    try:
        pending.get(timeout=30)
    except Exception:
        pass  # the session is gone; only what the members hold matters
    a.stop()
    a.close()
    c.leader(timeout=30)
    # Long enough for the held bytes to reach the leader and be committed.
    time.sleep(3.0)
    for i in c.ids:
        k = c.client([i])
        k.sync("/held")
        st = k.exists("/held/e")
        assert st is None, (
            f"member {i} holds /held/e owned by session 0x{st.ephemeralOwner:x}, "
            f"closed before the create was committed"
        )
        k.stop()
        k.close()


# ---------------------------------------------------------------------------
# Catching up by snapshot


def create_many(client, prefix, count, batch=500, size=None):
    client.ensure_path(prefix)
    for start in range(0, count, batch):
        pending = [
            client.create_async(f"{prefix}/n{j:05}", b"x" * (j % 50 if size is None else size))
            for j in range(start, min(count, start + batch))
        ]
        for r in pending:
            r.get(timeout=30)


@pytest.mark.parametrize("impl", impls())
def test_lagging_member_catches_up_by_snapshot(impl, cluster_factory):
    c = cluster_factory(impl, 3, extra_cfg="snapCount=1000\n")
    lead = c.leader()
    victim, other = [i for i in c.ids if i != lead]
    c.stop(victim)
    k = c.client([lead, other])
    create_many(k, "/snap/a", 2000)
    k.set("/snap", b"half")
    # Restart the other two one at a time: what they hold in memory of the
    # log is gone, they come back from their snapshots and logs on disk.
    for i in (other, lead):
        c.restart(i)
        c.wait_serving(indices=[i])
        c.leader(timeout=30)
    k = c.client([lead, other])
    # 6 MB of values: the snapshot travels in more than one part.
    create_many(k, "/snap/b", 2000, size=3000)
    k.set("/snap", b"full")

    c.start(victim)
    c.wait_serving()
    c.leader(timeout=30)
    snap = assert_members_agree(c)
    assert len([p for p in snap if p.startswith("/snap/")]) == 4002
    assert snap["/snap"][0] == b"full"
    if impl == "ensemble":
        with open(c.member(victim).log_path, errors="replace") as f:
            log = f.read()
        assert "installed the leader's snapshot" in log, (
            f"member {victim} did not catch up through a snapshot"
        )
        # The received file is linked into version-2 and kept in staging only as
        # the member's current snapshot: one file at most, nothing half-received.
        staging = os.path.join(c.member(victim).data_dir, "ensemble-transfer")
        assert len([f for f in os.listdir(staging) if f.startswith("in.")]) <= 1


# ---------------------------------------------------------------------------
# The Java client through a leader failover

JAVA_CP = "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/*"
_java_classes = {}


def java_classes(tmp_path_factory):
    if "dir" not in _java_classes:
        out = str(tmp_path_factory.mktemp("java-failover"))
        src = os.path.join(HERE, "java", "FailoverClient.java")
        subprocess.run(["javac", "-cp", JAVA_CP, "-d", out, src], check=True, timeout=120)
        _java_classes["dir"] = out
    return _java_classes["dir"]


@pytest.mark.parametrize("impl", impls())
def test_java_client_rides_out_a_leader_failover(impl, cluster_factory, tmp_path_factory):
    classes = java_classes(tmp_path_factory)
    c = cluster_factory(impl, 3)
    lead = c.leader()
    order = [lead] + [i for i in c.ids if i != lead]
    p = subprocess.Popen(
        ["java", "-Xmx128m", "-cp", classes + ":" + JAVA_CP, "FailoverClient",
         c.connect_string(order), "10000"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = []
    try:
        reader = threading.Thread(target=lambda: lines.extend(iter(p.stdout.readline, "")), daemon=True)
        reader.start()
        wait_until(
            lambda: any(l.startswith(("READY", "FAIL")) for l in lines),
            30,
            "the Java client to connect and write",
        )
        ready = next(l for l in lines if l.startswith(("READY", "FAIL")))
        assert ready.startswith("READY"), "".join(lines)
        # It is on the leader (the first host; the program does not shuffle).
        assert f":{c.client_port(lead)}" in ready, ready
        c.kill(lead)
        wait_until(
            lambda: any(l.startswith("SUMMARY") for l in lines) or p.poll() is not None,
            80,
            "the Java client's summary",
        )
        out = "".join(lines)
        summary = [l for l in lines if l.startswith("SUMMARY")]
        assert summary, out
        fields = dict(kv.split("=", 1) for kv in summary[-1].split()[1:])
        assert fields["expired"] == "0", out
        assert int(fields["connloss"]) + int(fields["disconnected"]) >= 1, out
        assert int(fields["ok_after_loss"]) >= 50, out
        assert fields["ephemeral"] == "own", out
        assert fields["lost"] == "0", out
        assert fields["session"] == "same", out
        session_id = int(fields["id"], 16)
        # The session, its ephemeral and its writes are on every member,
        # the killed leader too once it is back.
        c.start(lead)
        snap = assert_members_agree(c)
        assert snap["/java/eph"][4] == session_id
        # A create answered ConnectionLoss may have committed all the same.
        made = len([x for x in snap if x.startswith("/java/seq-")])
        acked = int(fields["acked"])
        assert acked <= made <= acked + int(fields["connloss"]), out
        p.stdin.write("close\n")
        p.stdin.flush()
        p.wait(timeout=30)
        reader.join(timeout=5)
        assert p.returncode == 0 and lines[-1].startswith("CLOSED"), "".join(lines)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, 9)
            p.wait()
    watcher = c.client([order[1]])
    watcher.sync("/java")
    assert watcher.exists("/java/eph") is None


# ---------------------------------------------------------------------------
# Session expiry across members


def _ustr(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def _frame(body):
    return struct.pack(">i", len(body)) + body


def _open_acl():
    """world:anyone with every permission, as a jute vector of one ACL."""
    return struct.pack(">i", 1) + struct.pack(">i", 31) + _ustr("world") + _ustr("anyone")


class RawSession:
    """A bare-socket ZooKeeper session: it says only what it is told to,
    so it sends no pings."""

    def __init__(self, port, timeout_ms):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        body = struct.pack(">iqiq", 0, 0, timeout_ms, 0) + struct.pack(">i", 16) + b"\0" * 16
        self.s.sendall(_frame(body + b"\0"))
        reply = self._recv_frame()
        _, self.timeout_ms, self.session_id = struct.unpack(">iiq", reply[:16])

    def _recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.s.recv(n - len(out))
            if not chunk:
                raise EOFError("connection closed")
            out += chunk
        return out

    def _recv_frame(self):
        (n,) = struct.unpack(">i", self._recv_exact(4))
        return self._recv_exact(n)

    def create_ephemeral(self, path):
        body = _ustr(path) + struct.pack(">i", 1) + b"e" + _open_acl() + struct.pack(">i", 1)
        self.s.sendall(_frame(struct.pack(">ii", 1, 1) + body))
        xid, _zxid, err = struct.unpack(">iqi", self._recv_frame()[:16])
        assert (xid, err) == (1, 0), f"create {path}: xid {xid} err {err}"

    def closed_by_server(self, wait):
        self.s.settimeout(wait)
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


def _buf(b):
    return struct.pack(">i", len(b)) + b


@pytest.mark.parametrize("impl", impls())
def test_answers_keep_the_order_of_requests_across_syncs_and_writes(impl, cluster_factory):
    """A session's requests are answered in the order they were sent, when
    syncs (answered once the leader confirms a read point) and writes
    (answered from the log) are pipelined together, on a follower and on
    the leader: ZooKeeper holds a session's later requests behind a pending
    one. Kazoo drops a connection whose answer comes out of order."""
    c = cluster_factory(impl, 3)
    lead = c.leader()
    follower = [i for i in c.ids if i != lead][0]
    setup = c.client([lead])
    setup.ensure_path("/order")
    setup.create("/order/v", b"0")
    acl = _open_acl()

    def sync(xid):
        return _frame(struct.pack(">ii", xid, 9) + _ustr("/order"))

    def set_data(xid):
        return _frame(struct.pack(">ii", xid, 5) + _ustr("/order/v") + _buf(b"%d" % xid) + struct.pack(">i", -1))

    def get_data(xid):
        return _frame(struct.pack(">ii", xid, 4) + _ustr("/order/v") + b"\0")

    def create(xid):
        return _frame(struct.pack(">ii", xid, 1) + _ustr("/order/c-") + _buf(b"x") + acl + struct.pack(">i", 2))

    for member in (follower, lead):
        raw = RawSession(c.client_port(member), 10000)
        try:
            xid = 0
            for _ in range(40):
                batch = b""
                sent = []
                for make in (sync, set_data, sync, create, get_data, set_data):
                    xid += 1
                    batch += make(xid)
                    sent.append(xid)
                raw.s.sendall(batch)
                got = []
                for _ in sent:
                    rxid, _zxid, err = struct.unpack(">iqi", raw._recv_frame()[:16])
                    assert err == 0, f"xid {rxid}: error {err}"
                    got.append(rxid)
                assert got == sent, f"member {member} ({c.mode(member)}) answered {got} to {sent}"
        finally:
            raw.close()


@pytest.mark.parametrize("impl", impls())
def test_silent_session_on_a_follower_expires_everywhere(impl, cluster_factory):
    c = cluster_factory(impl, 3)
    lead = c.leader()
    follower, other = [i for i in c.ids if i != lead]
    raw = RawSession(c.client_port(follower), 4000)
    try:
        assert raw.timeout_ms == 4000
        raw.create_ephemeral("/silent")
        silent_since = time.time()
        watcher = c.client([other])
        watcher.sync("/")
        gone = threading.Event()
        gone_at = []

        def on_event(ev):
            if ev.type == EventType.DELETED:
                gone_at.append(time.time())
                gone.set()

        st = watcher.exists("/silent", watch=on_event)
        assert st is not None and st.ephemeralOwner == raw.session_id
        # Not before its timeout: the session is alive for 4 s without a word.
        time.sleep(max(0.0, silent_since + 3.0 - time.time()))
        assert watcher.exists("/silent") is not None, "the session expired early"
        # Then gone within the timeout and a few ticks (ticks are 200 ms).
        assert gone.wait(timeout=max(0.0, silent_since + 4.0 + 2.5 - time.time())), (
            f"/silent still there {time.time() - silent_since:.1f}s after its session went silent"
        )
        took = gone_at[0] - silent_since
        assert 3.5 <= took <= 6.5, took
        for i in c.ids:
            assert "/silent" not in tree_snapshot(c.host_port(i))
        # The follower that held the connection closes it.
        assert raw.closed_by_server(5.0), "the expired session's connection is still open"
    finally:
        raw.close()


# ---------------------------------------------------------------------------
# A leader's full disk


def _mount_tmpfs(path, size):
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not allowed here: {r.stderr.strip()}")


def _created(client, path):
    """True when the create was accepted, False when refused NotReadOnly."""
    from kazoo.exceptions import NotReadOnlyCallError

    try:
        client.create(path, b"x")
        return True
    except NotReadOnlyCallError:
        return False


def test_leader_with_a_full_disk_refuses_every_members_writes(cluster_factory):
    """Every member's dataDir on its own 48 MB tmpfs, 8 MB kept free
    (`ensemble.minFreeDiskSpaceMb`). When the leader's fills up, the writes
    of clients on a follower, which the leader preps, are refused with
    NotReadOnly through the log, like the leader's own clients'; reads and
    new sessions go on everywhere; writes come back once space does, and
    every member holds the same tree with every acknowledged write. Ensemble
    only: ZooKeeper has no free-space check (its log writer fails and the
    member exits)."""
    c = cluster_factory(
        "ensemble", 3, start=False, extra_cfg="preAllocSize=1024\nensemble.minFreeDiskSpaceMb=8\n"
    )
    mounted = []
    try:
        for i in c.ids:
            m = c.member(i)
            _mount_tmpfs(m.data_dir, "48m")
            mounted.append(m.data_dir)
            c._write_myid(m)
        c.start_all()
        lead = c.leader()
        follower = [i for i in c.ids if i != lead][0]
        on_lead, on_follower = c.client([lead]), c.client([follower])
        acked = []
        for k, (name, cl) in enumerate((("l", on_lead), ("f", on_follower)) * 10):
            path = f"/disk-{name}{k}"
            cl.create(path, b"x")
            acked.append(path)

        fill = os.path.join(c.member(lead).data_dir, "fill")
        st = os.statvfs(c.member(lead).data_dir)
        free = st.f_bavail * st.f_frsize
        with open(fill, "wb") as f:
            f.write(b"\0" * (free - 4 * 1024 * 1024))
            f.flush()
            os.fsync(f.fileno())
        probes = iter(range(1000))
        wait_until(
            lambda: not _created(on_follower, f"/before-refusal-{next(probes)}"), 10, "the follower's client to be refused"
        )
        for k in range(1, 6):
            for name, cl in (("f", on_follower), ("l", on_lead)):
                assert not _created(cl, f"/refused-{name}{k}"), f"a write of the {name} client went through"
        # Reads and new sessions go on, on both members.
        for i, cl in ((lead, on_lead), (follower, on_follower)):
            assert cl.get(acked[-1])[0] == b"x"
            fresh = c.client([i])
            assert fresh.exists(acked[0]) is not None
            fresh.stop()
            fresh.close()

        os.remove(fill)
        wait_until(lambda: _created(on_follower, "/back-f"), 10, "writes to come back")
        assert _created(on_lead, "/back-l")
        acked += ["/back-f", "/back-l"]
        snap = assert_members_agree(c)
        assert_acked_present(snap, acked)
        refused = [p for p in snap if p.startswith("/refused-")]
        assert not refused, f"refused writes took effect: {refused}"
    finally:
        c.cleanup(remove=False)
        for d in mounted:
            subprocess.run(["umount", "-l", d], capture_output=True)
