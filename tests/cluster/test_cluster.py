"""Quorum tests: clients through every member, sessions moving between
members, kill -9 of the leader and of a follower under a write load, a wiped
member catching up, and loss of quorum. Every test runs against each
implementation named in ENSEMBLE_CLUSTER_IMPLS (Ensemble and Apache
ZooKeeper 3.8 by default), so the tests themselves are proven against
ZooKeeper. See README.md in this folder."""

import os
import queue
import re
import time

import pytest
from kazoo.exceptions import (
    BadVersionError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
)
from kazoo.protocol.serialization import Create2
from kazoo.protocol.states import EventType, KazooState
from kazoo.security import OPEN_ACL_UNSAFE, Permissions, make_acl

from clusterlib import SequentialWriter, assert_members_agree, impls, tree_snapshot

# Empty containers are removed within a second instead of a minute. Ensemble
# reads the key from zoo.cfg, ZooKeeper from a system property.
FAST_CONTAINERS = dict(
    extra_cfg="znode.container.checkIntervalMs=300\n",
    jvm_flags=["-Dznode.container.checkIntervalMs=300"],
)


class CreateContainer(Create2):
    """createContainer (opcode 19), which kazoo has no method for."""

    type = 19


def create_container(client, path, data=b""):
    result = client.handler.async_result()
    client._call(CreateContainer(path, data, OPEN_ACL_UNSAFE, 4), result)
    return result.get(timeout=10)


def connected_port(client):
    """The client port of the member a kazoo client is connected to, or None."""
    sock = getattr(client._connection, "_socket", None)
    try:
        return sock.getpeername()[1] if sock is not None else None
    except OSError:
        return None


def wait_until(predicate, timeout, what):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def get_event(events, timeout=10.0):
    try:
        return events.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no watch event within {timeout}s") from None


def assert_all_present(cluster, acked):
    """Every acknowledged path is on every running member."""
    for i in cluster.live_ids():
        snap = tree_snapshot(cluster.host_port(i))
        missing = [p for p in acked if p not in snap]
        assert not missing, f"member {i} lacks {len(missing)} acknowledged znodes: {missing[:5]}"


def assert_session_order(acked):
    """One session's sequential creates are acknowledged in order."""
    seqs = [int(p.rsplit("-", 1)[1]) for p in acked]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "acknowledgements out of order"


# ---------------------------------------------------------------------------


@pytest.mark.parametrize("impl", impls())
def test_every_client_operation_through_every_member(impl, cluster_factory):
    c = cluster_factory(impl, 3, **FAST_CONTAINERS)
    clients = {i: c.client([i]) for i in c.ids}
    clients[1].create("/ops")
    for i in c.ids:
        k = clients[i]
        other = clients[i % 3 + 1]
        base = f"/ops/m{i}"

        assert k.create(base, b"p") == base
        with pytest.raises(NodeExistsError):
            k.create(base, b"again")
        k.create(base + "/eph", b"e", ephemeral=True)
        s1 = k.create(base + "/seq-", b"1", sequence=True)
        s2 = k.create(base + "/seq-", b"2", sequence=True)
        assert re.fullmatch(re.escape(base) + r"/seq-\d{10}", s1) and s2 > s1
        path, stat = create_container(k, base + "/box")
        # Clients see ephemeralOwner 0 on a container (ZooKeeper hides the
        # marker it keeps); its removal below shows it is a container.
        assert path == base + "/box" and stat.ephemeralOwner == 0 and stat.czxid > 0
        k.create(base + "/box/item", b"")

        assert k.exists(base).version == 0
        assert k.exists(base + "/none") is None
        data, stat = k.get(base)
        assert data == b"p" and stat.numChildren == 4
        assert k.set(base, b"p2", version=0).version == 1
        with pytest.raises(BadVersionError):
            k.set(base, b"x", version=0)
        assert sorted(k.get_children(base)) == sorted(
            ["eph", "box", s1.rsplit("/", 1)[1], s2.rsplit("/", 1)[1]]
        )
        with pytest.raises(NotEmptyError):
            k.delete(base + "/box")
        with pytest.raises(BadVersionError):
            k.delete(s2, version=3)
        k.delete(s2, version=0)
        with pytest.raises(NoNodeError):
            k.delete(s2)

        t = k.transaction()
        t.create(base + "/m1", b"a")
        t.set_data(base, b"p3", version=1)
        t.check(base + "/m1", 0)
        t.delete(s1)
        results = t.commit()
        assert results[0] == base + "/m1" and results[1].version == 2
        assert results[2] is True and results[3] is True
        t = k.transaction()
        t.create(base + "/m2", b"")
        t.delete(base + "/none")
        results = t.commit()
        assert isinstance(results[0], RolledBackError) and isinstance(results[1], NoNodeError)
        assert k.exists(base + "/m2") is None

        acl, stat = k.get_acls(base)
        assert acl == OPEN_ACL_UNSAFE and stat.aversion == 0
        no_admin = make_acl("world", "anyone", read=True, write=True, create=True, delete=True)
        assert k.set_acls(base, [no_admin], version=0).aversion == 1
        acl, stat = k.get_acls(base)
        assert acl[0].perms == Permissions.ALL & ~Permissions.ADMIN and stat.aversion == 1

        # A read through another member after sync sees every write above.
        other.sync(base)
        data, stat = other.get(base)
        assert data == b"p3" and stat.version == 2 and stat.aversion == 1
        assert sorted(other.get_children(base)) == ["box", "eph", "m1"]
        assert other.exists(base + "/eph").ephemeralOwner == k.client_id[0]

        # The leader removes a container emptied through another member.
        other.delete(base + "/box/item")
        for j in c.ids:
            wait_until(
                lambda: (clients[j].sync(base), clients[j].exists(base + "/box"))[1] is None,
                15,
                f"container {base}/box removed on member {j}",
            )

    # Watches set through member 1 fire for writes through members 2 and 3.
    a, b, d = clients[1], clients[2], clients[3]
    events = queue.Queue()
    a.create("/w", b"0")
    assert a.get("/w", watch=events.put)[0] == b"0"
    a.get_children("/w", watch=events.put)
    assert a.exists("/w/new", watch=events.put) is None
    b.sync("/w")
    b.set("/w", b"1")
    ev = get_event(events)
    assert (ev.type, ev.path) == (EventType.CHANGED, "/w")
    assert a.get("/w")[0] == b"1"  # the event comes before the data it announces
    d.create("/w/new", b"")
    got = {(e.type, e.path) for e in (get_event(events), get_event(events))}
    assert got == {(EventType.CREATED, "/w/new"), (EventType.CHILD, "/w")}
    a.get("/w/new", watch=events.put)
    b.delete("/w/new")
    ev = get_event(events)
    assert (ev.type, ev.path) == (EventType.DELETED, "/w/new")
    assert events.empty()

    # Closing a session through its member removes its ephemeral everywhere.
    clients[2].stop()
    d.sync("/ops")
    assert d.exists("/ops/m2/eph") is None

    assert_members_agree(c)


@pytest.mark.parametrize("victim", ["follower", "leader"])
@pytest.mark.parametrize("impl", impls())
def test_session_moves_to_another_member_when_its_member_dies(impl, victim, cluster_factory):
    c = cluster_factory(impl, 3)
    lead = c.leader()
    first = lead if victim == "leader" else next(i for i in c.ids if i != lead)
    order = [first] + [i for i in c.ids if i != first]
    states = []
    k = c.client(order, timeout=10.0)
    k.add_listener(states.append)
    assert connected_port(k) == c.client_port(first)
    session_id = k.client_id[0]
    k.create("/s/eph", b"e", ephemeral=True, makepath=True)

    c.kill(first)
    wait_until(
        lambda: k.connected and connected_port(k) not in (None, c.client_port(first)),
        30,
        "the client to reconnect to another member",
    )
    assert k.client_id[0] == session_id
    assert k.get("/s/eph")[1].ephemeralOwner == session_id
    k.create("/s/eph2", b"", ephemeral=True)
    assert KazooState.LOST not in states
    watcher = c.client([order[2]])
    watcher.sync("/s")
    assert watcher.exists("/s/eph").ephemeralOwner == session_id
    assert watcher.exists("/s/eph2").ephemeralOwner == session_id

    c.start(first)
    c.wait_serving()
    c.leader()
    assert_members_agree(c)
    assert KazooState.LOST not in states and k.client_id[0] == session_id


@pytest.mark.parametrize("n", [3, 5])
@pytest.mark.parametrize("impl", impls())
def test_leader_killed_during_writes(impl, n, cluster_factory):
    """kill -9 of the leader (and, of five, a follower too) under load."""
    c = cluster_factory(impl, n)
    old = c.leader()
    follower = next(i for i in c.ids if i != old)
    # One writer starts on the leader and must move; one stays on a follower.
    movers = SequentialWriter(c, "/load/a", [old] + [i for i in c.ids if i != old])
    stayer = SequentialWriter(c, "/load/b", [follower])
    writers = [movers, stayer]
    for w in writers:
        w.start()
    for w in writers:
        w.wait_for(100)
    victims = [old] + ([i for i in c.ids if i not in (old, follower)][:1] if n == 5 else [])
    for v in victims:
        c.kill(v)
    new = c.leader(timeout=30)
    assert new not in victims
    for w in writers:
        w.wait_for(w.count() + 100, timeout=30)
    acked = [w.stop() for w in writers]
    for a in acked:
        assert_session_order(a)
    assert_all_present(c, acked[0] + acked[1])

    for v in victims:
        c.start(v)
    c.wait_serving()
    c.leader()
    snap = assert_members_agree(c)
    missing = [p for p in acked[0] + acked[1] if p not in snap]
    assert not missing, f"acknowledged znodes lost: {missing[:5]}"


@pytest.mark.parametrize("impl", impls())
def test_follower_killed_during_writes_catches_up(impl, cluster_factory):
    c = cluster_factory(impl, 3)
    lead = c.leader()
    victim, other = [i for i in c.ids if i != lead]
    movers = SequentialWriter(c, "/load/a", [victim, other, lead])
    stayer = SequentialWriter(c, "/load/b", [lead])
    writers = [movers, stayer]
    for w in writers:
        w.start()
    for w in writers:
        w.wait_for(100)
    c.kill(victim)
    for w in writers:
        w.wait_for(w.count() + 200, timeout=30)
    assert c.leader(timeout=10) == lead  # losing a follower does not cost the leader
    c.start(victim)
    # The victim catches up while the writes go on.
    c.wait_serving()
    for w in writers:
        w.wait_for(w.count() + 100, timeout=30)
    acked = [w.stop() for w in writers]
    for a in acked:
        assert_session_order(a)
    snap = assert_members_agree(c)
    missing = [p for p in acked[0] + acked[1] if p not in snap]
    assert not missing, f"acknowledged znodes lost: {missing[:5]}"

    # A graceful restart (SIGTERM) of the leader loses nothing either.
    c.restart(lead)
    c.wait_serving()
    c.leader()
    assert assert_members_agree(c) == snap


def populate(client, count, prefix):
    """`count` znodes in 20 folders, with data, some updated, some deleted,
    some with a changed ACL (so versions, cversions, aversions and pzxids
    vary), written with pipelined async calls."""
    for d in range(20):
        client.ensure_path(f"{prefix}/d{d:02}")
    paths = [f"{prefix}/d{j % 20:02}/n{j:05}" for j in range(count)]
    for r in [client.create_async(p, b"v" * (j % 97)) for j, p in enumerate(paths)]:
        r.get(timeout=30)
    for r in [client.set_async(p, b"updated") for p in paths[::7]]:
        r.get(timeout=30)
    for r in [client.delete_async(p) for p in paths[::11]]:
        r.get(timeout=30)
    no_admin = [make_acl("world", "anyone", read=True, write=True, create=True, delete=True)]
    for r in [client.set_acls_async(p, no_admin) for p in paths[::13] if p not in paths[::11]]:
        r.get(timeout=30)


@pytest.mark.parametrize("impl", impls())
def test_wiped_follower_catches_up_from_the_others(impl, cluster_factory):
    c = cluster_factory(impl, 3)
    lead = c.leader()
    victim, other = [i for i in c.ids if i != lead]
    k = c.client([lead])
    populate(k, 2000, "/big")
    c.kill(victim)
    populate(k, 300, "/late")  # written while the victim is down
    c.wipe(victim)
    assert sorted(os.listdir(c.member(victim).data_dir)) == ["myid"]
    c.start(victim)
    c.wait_serving()
    assert c.leader() == lead
    snap = assert_members_agree(c)
    assert len([p for p in snap if p.startswith("/big/")]) > 1800

    # The wiped member is a full voter again: with the other follower gone,
    # the leader and it still make a quorum, and a write through it works.
    c.kill(other)
    w = c.client([victim])
    wait_until(lambda: _try_create(w, "/after-wipe"), 30, "a write through the wiped member")
    assert_members_agree(c, [lead, victim])


def _try_create(client, path, timeout=3.0):
    try:
        client.create_async(path, b"").get(timeout=timeout)
        return True
    except NodeExistsError:
        return True  # an earlier, timed-out attempt went through
    except Exception:
        return False


@pytest.mark.parametrize("impl", impls())
def test_loss_of_quorum_stops_writes_until_a_member_returns(impl, cluster_factory):
    c = cluster_factory(impl, 3)
    lead = c.leader()
    survivor = next(i for i in c.ids if i != lead)
    gone = [i for i in c.ids if i != survivor]
    k = c.client([survivor], timeout=10.0)
    k.create("/q/before", b"", makepath=True)

    for i in gone:
        c.kill(i)
    # For 6 seconds every write through the survivor fails or stays
    # unanswered (its outcome is unknown; it may commit once a quorum is back).
    deadline = time.time() + 6
    pending = []
    while time.time() < deadline:
        pending.append(k.create_async(f"/q/during-{len(pending) + 1}", b""))
        try:
            pending[-1].get(timeout=1.5)
        except Exception:
            continue
        raise AssertionError(f"a write succeeded on member {survivor} without a quorum")
    assert len(pending) >= 3
    assert c.mode(survivor) not in ("leader", "standalone")
    if impl == "zookeeper":
        assert c.mode(survivor) is None  # "not currently serving requests"

    c.start(gone[0])
    c.wait_serving()
    c.leader()
    fresh = c.client([survivor])
    wait_until(lambda: _try_create(fresh, "/q/after"), 30, "a write once a quorum is back")
    back = c.client([gone[0]])
    assert _try_create(back, "/q/after-2")
    # The old session's unanswered creates may commit now that a quorum is
    # back: let them finish and close the session (a close is ordered after
    # the session's earlier requests), so the members are compared at rest.
    deadline = time.time() + 30
    for r in pending:
        try:
            r.get(timeout=max(0.1, deadline - time.time()))
        except Exception:
            pass
    k.stop()
    snap = assert_members_agree(c)
    assert "/q/before" in snap and "/q/after" in snap and "/q/after-2" in snap
