"""Quorum behaviour beyond replication, checked against both servers:
`/zookeeper/config` holds the membership, a member without a quorum serves
read-only sessions when `readonlymode.enabled` is set, and a session that
reconnects to another member leaves SessionMoved behind."""

import re
import socket
import struct
import sys
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from clusterlib import four_letter, impls

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "interop"))
from zkwire import Conn, buf, connect_request, ustr  # noqa: E402


def wait_until(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.parametrize("impl", impls())
def test_zookeeper_config_node_holds_the_membership(cluster_factory, impl):
    c = cluster_factory(impl)
    expected = "".join(
        f"server.{i}=127.0.0.1:{c.member(i).peer_port}:{c.member(i).election_port}"
        f":participant;127.0.0.1:{c.client_port(i)}\n"
        for i in c.ids
    ) + "version=0"
    for i in c.ids:
        zk = KazooClient(hosts=c.host_port(i))
        zk.start(timeout=15)
        try:
            data, stat = zk.get("/zookeeper/config")
        finally:
            zk.stop()
            zk.close()
        assert data.decode() == expected, f"member {i}"
        assert (stat.version, stat.aversion, stat.czxid, stat.mzxid) == (-1, -1, 0, 0)


@pytest.mark.parametrize("impl", impls())
def test_member_without_quorum_serves_read_only_sessions(cluster_factory, impl):
    c = cluster_factory(
        impl,
        # ZooKeeper creates new sessions on a read-only member only as local
        # sessions; Ensemble's read-only sessions are always local.
        extra_cfg="readonlymode.enabled=true\nlocalSessionsEnabled=true\n",
        jvm_flags=["-Dreadonlymode.enabled=true"],
    )
    zk = KazooClient(hosts=c.connect_string())
    zk.start(timeout=15)
    zk.create("/ro", b"kept")
    zk.stop()
    zk.close()

    survivor = c.ids[0]
    for i in c.ids[1:]:
        c.kill(i)
    port = c.client_port(survivor)
    wait_until(lambda: (four_letter(port, "isro") or "").strip() == "ro", 30, "isro to answer ro")
    assert "Mode: read-only" in four_letter(port, "srvr")

    # ZooKeeper restarts its read-only server with each election round, so
    # a connect attempt may land between two of them: retry for a while.
    # (A raw client: kazoo cannot read ZooKeeper's read-only answer.)
    deadline = time.time() + 60
    while True:
        try:
            ro = Conn(port)
            answer = ro.handshake(read_only=True)
            if answer["session_id"] != 0:
                break
        except (EOFError, ConnectionError, OSError, struct.error):
            pass
        if time.time() > deadline:
            raise AssertionError("no read-only session within 60 s")
        time.sleep(0.5)
    try:
        assert answer["trailing"] == b"\x01", "the session is marked read-only"
        xid, _, err, body = ro.request(1, 4, ustr("/ro") + b"\x00")
        assert err == 0
        (n,) = struct.unpack(">i", body[:4])
        assert body[4 : 4 + n] == b"kept"
        assert ro.request(2, 1, create_body("/nope"))[2] == NOT_READ_ONLY
    finally:
        ro.close()

    # A client that needs writes is not given a session.
    rw = KazooClient(hosts=c.host_port(survivor))
    with pytest.raises(Exception):
        rw.start(timeout=3)
    rw.stop()
    rw.close()

    # With a quorum again, the member takes writes.
    c.start(c.ids[1])
    wait_until(lambda: (four_letter(port, "isro") or "").strip() == "rw", 60, "isro to answer rw")
    zk = KazooClient(hosts=c.host_port(survivor))
    zk.start(timeout=30)
    zk.create("/back", b"")
    zk.stop()
    zk.close()


NOT_READ_ONLY = -119


def create_body(path):
    acl = struct.pack(">i", 1) + struct.pack(">i", 31) + ustr("world") + ustr("anyone")
    return ustr(path) + buf(b"") + acl + struct.pack(">i", 0)


SESSION_MOVED = -118


@pytest.mark.parametrize("impl", impls())
def test_old_connection_of_a_moved_session_gets_session_moved(cluster_factory, impl):
    c = cluster_factory(impl)
    a_id, b_id = c.ids[0], c.ids[1]
    a = Conn(c.client_port(a_id))
    first = a.handshake(read_only=False)
    assert a.request(1, 1, create_body("/moved-a"))[2] == 0
    b = Conn(c.client_port(b_id))
    second = b.handshake(
        session_id=first["session_id"], passwd=first["passwd"], read_only=False
    )
    assert second["session_id"] == first["session_id"]
    assert b.request(1, 1, create_body("/moved-b"))[2] == 0
    # The first connection is now stale: its write fails (or it was closed).
    try:
        err = a.request(2, 1, create_body("/moved-c"))[2]
    except (EOFError, ConnectionError):
        err = "closed"
    assert err in (SESSION_MOVED, "closed"), err
    a.close()
    b.close()


@pytest.mark.parametrize("impl", impls())
def test_a_connection_request_handled_late_does_not_take_the_session_away(cluster_factory, impl):
    """A client that tried a paused member, gave up and stayed on the leader
    keeps writing: when the member resumes and handles the stale request,
    the connection it answers is already closed and must not leave the
    session owned by that member (every write would fail with SessionMoved).
    ZooKeeper moves the session and closes the live connection instead."""
    c = cluster_factory(impl)
    lead = c.leader()
    follower = [i for i in c.ids if i != lead][0]
    a = Conn(c.client_port(lead))
    first = a.handshake(read_only=False)
    assert a.request(1, 1, create_body("/late-0"))[2] == 0
    sid = f"0x{first['session_id']:x}"

    def handled():
        return Path(c.member(follower).log_path).read_text().count(f"resumed session {sid}")

    for _ in range(5):
        before = handled() if impl == "ensemble" else 0
        c.pause(follower)
        try:
            late = socket.create_connection(("127.0.0.1", c.client_port(follower)), timeout=5)
            late.sendall(connect_request(session_id=first["session_id"], passwd=first["passwd"], read_only=False))
            late.close()
        finally:
            c.resume(follower)
        if impl != "ensemble":
            break
        # A follower that lost its leader meanwhile refuses the request
        # instead of handling it: try again.
        deadline = time.time() + 5
        while time.time() < deadline and handled() == before:
            time.sleep(0.1)
        if handled() > before:
            break
    else:
        raise AssertionError("the follower never handled the late connection request")
    time.sleep(1.0)
    if impl == "zookeeper":
        # ZooKeeper hands the session to the late connection and closes the
        # client's live one; the client has to reconnect.
        try:
            err = a.request(2, 1, create_body("/late-1"))[2]
        except (EOFError, ConnectionError):
            err = "closed"
        assert err in (SESSION_MOVED, "closed"), err
    else:
        errs = [a.request(2 + k, 1, create_body(f"/late-{1 + k}"))[2] for k in range(3)]
        assert errs == [0, 0, 0], errs
    a.close()


SUPER = dict(
    extra_cfg=(
        "reconfigEnabled=true\n"
        "DigestAuthenticationProvider.superDigest=super:lK75jTNcA+U9vtVEw5vB51mj/w4=\n"
    ),
    jvm_flags=["-Dzookeeper.DigestAuthenticationProvider.superDigest=super:lK75jTNcA+U9vtVEw5vB51mj/w4="],
)


def retrying(call, *args, **kwargs):
    """Calls again after ConnectionLoss: removing the leader moves clients."""
    from kazoo.exceptions import ConnectionLoss, SessionExpiredError

    deadline = time.time() + 60
    while True:
        try:
            return call(*args, **kwargs)
        except (ConnectionLoss, SessionExpiredError):
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def config_ids(text):
    return sorted(int(m) for m in re.findall(r"^server\.(\d+)=", text, re.M))


@pytest.mark.parametrize("impl", impls())
def test_reconfig_removes_and_adds_a_member(cluster_factory, impl):
    c = cluster_factory(impl, **SUPER)
    ids = c.ids
    zk = KazooClient(hosts=c.connect_string(ids[:2]), auth_data=[("digest", "super:secret")])
    zk.start(timeout=15)
    try:
        before, stat = zk.get("/zookeeper/config")
        line3 = re.search(r"^server\.3=(.*)$", before.decode(), re.M).group(1)

        # Without the right to write /zookeeper/config, reconfig is refused.
        plain = KazooClient(hosts=c.host_port(ids[0]))
        plain.start(timeout=15)
        from kazoo.exceptions import NoAuthError

        with pytest.raises(NoAuthError):
            plain.reconfig(joining=None, leaving="3", new_members=None)
        plain.stop()
        plain.close()

        data, stat = retrying(zk.reconfig, joining=None, leaving="3", new_members=None)
        text = data.decode()
        assert config_ids(text) == [1, 2]
        assert text.endswith("version=%x" % stat.mzxid), text

        # fromConfig must name the current version.
        from kazoo.exceptions import BadVersionError

        with pytest.raises(BadVersionError):
            retrying(
                zk.reconfig,
                joining="server.3=" + line3,
                leaving=None,
                new_members=None,
                from_config=1,
            )

        data, stat = retrying(
            zk.reconfig,
            joining="server.3=" + line3,
            leaving=None,
            new_members=None,
            from_config=stat.mzxid,
        )
        text = data.decode()
        assert config_ids(text) == [1, 2, 3]
        assert text.endswith("version=%x" % stat.mzxid), text
        retrying(zk.create, "/after-reconfig", b"x")
    finally:
        zk.stop()
        zk.close()

    # Every member serves the new configuration and the write.
    def member_sees(i):
        cl = KazooClient(hosts=c.host_port(i))
        try:
            cl.start(timeout=10)
            cl.sync("/")
            ok = cl.exists("/after-reconfig") is not None and config_ids(
                cl.get("/zookeeper/config")[0].decode()
            ) == [1, 2, 3]
            return ok
        except Exception:
            return False
        finally:
            cl.stop()
            cl.close()

    for i in ids:
        wait_until(lambda: member_sees(i), 60, f"member {i} to serve the new config")
