"""Watch rules at the wire level, where the order of frames is visible:
an event arrives before any reply that shows the change, and SetWatches on
reconnect fires what was missed. Runs against both servers."""

import struct
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from conftest import Server
import zkwire

OPEN_ACL = struct.pack(">i", 1) + struct.pack(">i", 31) + zkwire.ustr("world") + zkwire.ustr("anyone")


def create(c, xid, path, data=b"", flags=0):
    return c.request(xid, 1, zkwire.ustr(path) + zkwire.buf(data) + OPEN_ACL + struct.pack(">i", flags))


def get_data(path, watch):
    return zkwire.ustr(path) + (b"\1" if watch else b"\0")


def test_event_arrives_before_the_reply_that_shows_the_change(any_server):
    a = zkwire.Conn(any_server.port)
    a.handshake()
    b = zkwire.Conn(any_server.port)
    b.handshake()
    assert create(b, 1, "/w", b"v0")[2] == 0
    for i in range(20):
        xid, _, err, _ = a.request(100 + i, 4, get_data("/w", True))
        assert err == 0
        body = zkwire.ustr("/w") + zkwire.buf(f"v{i + 1}".encode()) + struct.pack(">i", -1)
        assert b.request(200 + i, 5, body)[2] == 0
        # a's next read must be preceded by the notification.
        a.send(zkwire.frame(struct.pack(">ii", 300 + i, 4) + get_data("/w", False)))
        first = a.reply()
        assert first[0] == -1, f"round {i}: got xid {first[0]} before the event"
        etype, state = struct.unpack(">ii", first[3][:8])
        assert (etype, state) == (3, 3)  # NodeDataChanged, SyncConnected
        second = a.reply()
        assert second[0] == 300 + i
        assert f"v{i + 1}".encode() in second[3]


def data_version(body):
    """The version in a getData reply's stat, after the data."""
    (n,) = struct.unpack(">i", body[:4])
    stat = body[4 + max(n, 0):]
    return struct.unpack(">i", stat[32:36])[0]


def test_no_reply_shows_a_change_before_its_event_under_concurrent_writes(any_server):
    """The same rule with the write racing the reads: b sets the data as fast as
    it can while a keeps a watch armed and pipelines reads. Once a has armed its
    watch at version k, no reply may show a version past k before the event."""
    a = zkwire.Conn(any_server.port)
    a.handshake()
    b = zkwire.Conn(any_server.port)
    b.handshake()
    assert create(b, 1, "/race", b"0")[2] == 0
    stop = threading.Event()
    writes = [0]

    def writer():
        for i in range(1, 3001):
            if stop.is_set():
                break
            body = zkwire.ustr("/race") + zkwire.buf(str(i).encode()) + struct.pack(">i", -1)
            assert b.request(1000 + i, 5, body)[2] == 0
            writes[0] = i

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    xid, checked, events = 10, 0, 0
    armed = None  # the version the armed watch was set at, None while none is armed
    deadline = time.time() + 4
    while time.time() < deadline and t.is_alive():
        xid += 1
        arm = xid
        batch = struct.pack(">ii", arm, 4) + get_data("/race", True)
        frames = [zkwire.frame(batch)]
        for _ in range(8):
            xid += 1
            frames.append(zkwire.frame(struct.pack(">ii", xid, 4) + get_data("/race", False)))
        a.send(b"".join(frames))
        while True:
            rxid, _, err, body = a.reply()
            if rxid == -1:
                events += 1
                armed = None
                continue
            assert err == 0
            version = data_version(body)
            if rxid == arm:
                armed = version
            elif armed is not None:
                assert version == armed, (
                    f"reply {rxid} shows version {version} before the event "
                    f"of the watch armed at {armed}"
                )
            checked += 1
            if rxid == xid:
                break
    stop.set()
    t.join(timeout=10)
    # The race was run: reads, writes and events all happened.
    assert checked > 100 and writes[0] > 50 and events > 10, (checked, writes[0], events)


def test_set_watches_on_reconnect_fires_what_was_missed(any_server):
    a = zkwire.Conn(any_server.port)
    hs = a.handshake()
    assert create(a, 1, "/sw", b"x")[2] == 0
    assert create(a, 2, "/sw-quiet", b"x")[2] == 0
    _, zxid, err, _ = a.request(3, 4, get_data("/sw", True))
    assert err == 0
    a.close()  # the session lives on

    b = KazooClient(hosts=any_server.hosts)
    b.start()
    b.set("/sw", b"changed")
    b.create("/sw-missing", b"")
    b.create("/sw/child", b"")

    a2 = zkwire.Conn(any_server.port)
    hs2 = a2.handshake(session_id=hs["session_id"], passwd=hs["passwd"], last_zxid=zxid)
    assert hs2["session_id"] == hs["session_id"]
    strs = lambda xs: struct.pack(">i", len(xs)) + b"".join(zkwire.ustr(x) for x in xs)
    body = struct.pack(">q", zxid) + strs(["/sw", "/sw-quiet", "/sw-gone"]) + strs(["/sw-missing", "/sw-absent"]) + strs(["/sw", "/sw-quiet"])
    a2.send(zkwire.frame(struct.pack(">ii", -8, 101) + body))
    events = set()
    while True:
        xid, _, err, payload = a2.reply()
        if xid == -8:
            assert err == 0
            break
        etype, _ = struct.unpack(">ii", payload[:8])
        (n,) = struct.unpack(">i", payload[8:12])
        events.add((etype, payload[12:12 + n].decode()))
    assert events == {
        (3, "/sw"),           # data changed while away
        (2, "/sw-gone"),      # data watch on a node that is not there
        (1, "/sw-missing"),   # exists watch on a node created while away
        (4, "/sw"),           # children changed while away
    }
    # The watches that did not fire are registered and fire later.
    b.set("/sw-quiet", b"now")
    b.create("/sw-absent", b"")
    later = set()
    for _ in range(2):
        xid, _, _, payload = a2.reply()
        assert xid == -1
        etype, _ = struct.unpack(">ii", payload[:8])
        (n,) = struct.unpack(">i", payload[8:12])
        later.add((etype, payload[12:12 + n].decode()))
    assert later == {(3, "/sw-quiet"), (1, "/sw-absent")}
    b.stop()


def test_super_digest_bypasses_acls():
    # zoo.cfg works for both: ZooKeeper turns unknown keys into zookeeper.* properties.
    from kazoo.security import make_digest_acl_credential

    super_digest = make_digest_acl_credential("super", "letmein")
    for kind in ("ensemble", "zookeeper"):
        s = Server(kind, extra_cfg=f"DigestAuthenticationProvider.superDigest={super_digest}\n").start()
        try:
            owner = KazooClient(hosts=s.hosts)
            owner.start()
            owner.create("/private", b"secret", acl=[make_digest_acl("alice", "pw", all=True)])
            plain = KazooClient(hosts=s.hosts)
            plain.start()
            from kazoo.exceptions import NoAuthError

            try:
                plain.get("/private")
                raise AssertionError(f"{kind}: read without auth succeeded")
            except NoAuthError:
                pass
            admin = KazooClient(hosts=s.hosts, auth_data=[("digest", "super:letmein")])
            admin.start()
            assert admin.get("/private")[0] == b"secret", kind
            admin.set("/private", b"overridden")
            admin.delete("/private")
            wrong = KazooClient(hosts=s.hosts, auth_data=[("digest", "super:wrong")])
            wrong.start()
            try:
                wrong.create("/p2", b"", acl=[make_digest_acl("alice", "pw", read=True)])
                wrong.get("/p2")
                raise AssertionError(f"{kind}: wrong super password was accepted")
            except NoAuthError:
                pass
            for c in (owner, plain, admin, wrong):
                c.stop()
        finally:
            s.close()


FAN_OUT = 600


@pytest.mark.parametrize("kind", ["ensemble", "zookeeper"])
def test_a_fan_out_to_many_sessions_keeps_each_event_before_the_replies_after_it(kind):
    """One setData notifies 600 sessions (enough for Ensemble to share the
    writes between threads and batch them) while each of them has reads in
    flight, sent before the setData and after its answer. Every session gets its event
    once, and no reply that shows the new version comes before it."""
    s = Server(kind, extra_cfg="maxClientCnxns=0\n").start()
    conns = []
    try:
        b = zkwire.Conn(s.port)
        b.handshake()
        assert create(b, 1, "/fan", b"v0")[2] == 0
        for _ in range(FAN_OUT):
            c = zkwire.Conn(s.port, timeout=30)
            c.handshake()
            conns.append(c)
        reads = 10
        for version in range(1, 4):
            for c in conns:
                rxid, _, err, _ = c.request(1, 4, get_data("/fan", True))
                assert (rxid, err) == (1, 0)
            burst = b"".join(
                zkwire.frame(struct.pack(">ii", 10 + i, 4) + get_data("/fan", False))
                for i in range(reads)
            )
            set_data = zkwire.ustr("/fan") + zkwire.buf(f"v{version}".encode()) + struct.pack(">i", -1)
            for i, c in enumerate(conns):
                if i == FAN_OUT // 2:
                    # The later half reads once the change is applied.
                    assert b.request(100 + version, 5, set_data)[2] == 0
                c.send(burst)
            old_before, new_after = 0, 0
            for n, c in enumerate(conns):
                seen_event, answered = False, 0
                while answered < reads or not seen_event:
                    rxid, _, err, body = c.reply()
                    if rxid == -1:
                        assert not seen_event, f"session {n}: a second event"
                        etype, path = struct.unpack(">i", body[:4])[0], body[12:].decode()
                        assert (etype, path) == (3, "/fan")
                        seen_event = True
                        continue
                    assert err == 0 and rxid == 10 + answered
                    answered += 1
                    seen = data_version(body)
                    if seen_event:
                        new_after += seen == version
                    else:
                        assert seen == version - 1, (
                            f"session {n}: reply {rxid} shows version {seen} before the event"
                        )
                        old_before += 1
            # Reads were answered on both sides of the event.
            assert old_before > 0 and new_after > 0, (old_before, new_after)
    finally:
        for c in conns:
            c.close()
        s.close()
