"""Opcodes the client libraries here reach only through raw frames, against
both servers: reconfig with reconfig disabled, and setWatches2 re-registering
persistent watches after a reconnect."""

import struct

import zkwire
from test_watches_wire import create


def strs(xs):
    return struct.pack(">i", len(xs)) + b"".join(zkwire.ustr(x) for x in xs)


def test_reconfig_answers_reconfig_disabled(any_server):
    c = zkwire.Conn(any_server.port)
    c.handshake()
    # ReconfigRequest: joining, leaving, newMembers (null strings), curConfigId.
    body = struct.pack(">i", -1) + struct.pack(">i", -1) + zkwire.ustr("server.1=127.0.0.1:2888:3888") + struct.pack(">q", -1)
    xid, _, err, _ = c.request(3, 16, body)
    assert (xid, err) == (3, -123)
    assert not c.is_closed(0.3)


def test_set_watches2_restores_persistent_and_recursive_watches(any_server):
    a = zkwire.Conn(any_server.port)
    hs = a.handshake()
    assert create(a, 1, "/pw")[2] == 0
    assert create(a, 2, "/rw")[2] == 0
    _, zxid, err, _ = a.request(3, 4, zkwire.ustr("/pw") + b"\0")
    assert err == 0
    a.close()
    a2 = zkwire.Conn(any_server.port)
    a2.handshake(session_id=hs["session_id"], passwd=hs["passwd"], last_zxid=zxid)
    body = struct.pack(">q", zxid) + strs([]) + strs([]) + strs([]) + strs(["/pw"]) + strs(["/rw"])
    xid, _, err, _ = a2.request(-8, 105, body)
    assert (xid, err) == (-8, 0)
    b = zkwire.Conn(any_server.port)
    b.handshake()
    assert create(b, 1, "/pw/child")[2] == 0   # persistent: NodeChildrenChanged /pw
    assert create(b, 2, "/rw/a")[2] == 0       # recursive: NodeCreated /rw/a
    assert create(b, 3, "/rw/a/b")[2] == 0     # recursive: NodeCreated /rw/a/b
    got = []
    for _ in range(3):
        xid, _, _, payload = a2.reply()
        assert xid == -1
        etype, _ = struct.unpack(">ii", payload[:8])
        (n,) = struct.unpack(">i", payload[8:12])
        got.append((etype, payload[12:12 + n].decode()))
    assert got == [(4, "/pw"), (1, "/rw/a"), (1, "/rw/a/b")]
    # Persistent watches stay after firing.
    assert create(b, 4, "/pw/child2")[2] == 0
    assert a2.reply()[0] == -1
