"""Sessions: negotiation, expiry, ephemerals, reconnect, refusal rules."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import SessionExpiredError

import zkwire


def test_timeout_is_clamped_to_min_and_max(any_server):
    # Defaults: 2 and 20 ticks of 2000 ms.
    for asked, got in [(100, 4000), (10000, 10000), (10**6, 40000)]:
        c = zkwire.Conn(any_server.port)
        r = c.handshake(timeout=asked)
        assert r["timeout"] == got
        assert r["session_id"] != 0 and len(r["passwd"]) == 16
        c.close()


def test_connect_response_keeps_the_clients_form(any_server):
    with_byte = zkwire.Conn(any_server.port).handshake(read_only=False)
    without = zkwire.Conn(any_server.port).handshake(read_only=None)
    assert with_byte["trailing"] == b"\0"
    assert without["trailing"] == b""


def test_reconnect_with_id_and_password_keeps_ephemerals(ensemble):
    c = KazooClient(hosts=ensemble.hosts, timeout=10)
    c.start()
    c.create("/eph", b"x", ephemeral=True)
    sid, pwd = c.client_id
    # A second connection takes over the session.
    c2 = KazooClient(hosts=ensemble.hosts, client_id=(sid, pwd), timeout=10)
    c2.start()
    assert c2.client_id[0] == sid
    assert c2.exists("/eph").ephemeralOwner == sid
    c2.stop()  # closes the session
    c3 = KazooClient(hosts=ensemble.hosts)
    c3.start()
    assert c3.exists("/eph") is None
    c3.stop()
    c.stop()


def test_wrong_password_is_refused_as_expired(any_server):
    c = zkwire.Conn(any_server.port)
    r = c.handshake()
    bad = zkwire.Conn(any_server.port)
    r2 = bad.handshake(session_id=r["session_id"], passwd=b"\1" * 16)
    assert r2["timeout"] == 0 and r2["session_id"] == 0
    assert bad.is_closed()
    good = zkwire.Conn(any_server.port)
    r3 = good.handshake(session_id=r["session_id"], passwd=r["passwd"])
    assert r3["session_id"] == r["session_id"] and r3["timeout"] > 0


def test_client_ahead_of_server_is_refused(any_server):
    c = zkwire.Conn(any_server.port)
    c.send(zkwire.connect_request(last_zxid=1 << 60))
    assert c.is_closed()


def test_ping_is_answered(any_server):
    c = zkwire.Conn(any_server.port)
    c.handshake()
    xid, zxid, err, body = c.request(-2, 11)
    assert (xid, err, body) == (-2, 0, b"")


def test_expired_session_loses_ephemerals_and_is_told(ensemble_fast_ticks):
    s = ensemble_fast_ticks
    c = zkwire.Conn(s.port)
    r = c.handshake(timeout=400)  # min is 2 ticks = 400 ms
    assert r["timeout"] == 400
    path = b"/gone"
    body = zkwire.ustr("/gone") + zkwire.buf(b"") + (1).to_bytes(4, "big") + (31).to_bytes(4, "big") + zkwire.ustr("world") + zkwire.ustr("anyone") + (1).to_bytes(4, "big")
    xid, zxid, err, rbody = c.request(1, 1, body)
    assert err == 0, err
    # Stop pinging: the session must expire within timeout + a tick.
    time.sleep(1.2)
    k = KazooClient(hosts=s.hosts)
    k.start()
    assert k.exists(path.decode()) is None
    k.stop()
    assert c.is_closed()
    again = zkwire.Conn(s.port)
    r2 = again.handshake(session_id=r["session_id"], passwd=r["passwd"])
    assert r2["session_id"] == 0 and r2["timeout"] == 0


def test_killed_client_process_loses_its_ephemerals_within_the_timeout(ensemble):
    script = textwrap.dedent(f"""
        import time
        from kazoo.client import KazooClient
        c = KazooClient(hosts="{ensemble.hosts}", timeout=4)
        c.start()
        c.create("/workers/w1", b"", ephemeral=True, makepath=True)
        print("ready", flush=True)
        time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        k = KazooClient(hosts=ensemble.hosts)
        k.start()
        assert k.exists("/workers/w1") is not None
        killed = time.time()
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        while k.exists("/workers/w1") is not None and time.time() - killed < 15:
            time.sleep(0.1)
        gone_after = time.time() - killed
        assert k.exists("/workers/w1") is None
        # Session timeout 4 s, rounded to the next 2 s tick.
        assert gone_after < 4 + 2 + 1.5, gone_after
        k.stop()
    finally:
        p.kill()
