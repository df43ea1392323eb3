"""kazoo's recipes against the server: the daily work of a ZooKeeper user.
Each test runs against Ensemble and against Apache ZooKeeper, which proves
the test itself is right."""

import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock
from kazoo.recipe.queue import Queue
from kazoo.recipe.watchers import ChildrenWatch, DataWatch


def client(server, **kw):
    c = KazooClient(hosts=server.hosts, timeout=10, **kw)
    c.start(timeout=15)
    return c


def test_lock_is_exclusive_and_passes_on(any_server):
    a, b = client(any_server), client(any_server)
    try:
        la, lb = Lock(a, "/locks/res", "a"), Lock(b, "/locks/res", "b")
        assert la.acquire(timeout=5)
        assert not lb.acquire(blocking=False)
        assert lb.contenders() == ["a"]
        got = threading.Event()

        def take():
            if lb.acquire(timeout=10):
                got.set()

        t = threading.Thread(target=take)
        t.start()
        time.sleep(0.3)
        assert not got.is_set()
        la.release()
        t.join(10)
        assert got.is_set()
        lb.release()
    finally:
        a.stop()
        b.stop()


def test_election_elects_one_leader_and_fails_over(any_server):
    clients = [client(any_server) for _ in range(3)]
    leader_log = []
    stop = [threading.Event() for _ in clients]

    def run(i):
        e = Election(clients[i], "/election", identifier=f"c{i}")

        def lead():
            leader_log.append(i)
            stop[i].wait(10)

        try:
            e.run(lead)
        except Exception:
            pass  # the client was stopped while still a contender

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    try:
        deadline = time.time() + 10
        while not leader_log and time.time() < deadline:
            time.sleep(0.05)
        assert len(leader_log) == 1
        first = leader_log[0]
        contenders = Election(clients[0], "/election").contenders()
        assert len(contenders) == 3
        # The leader's session ends: another takes over.
        clients[first].stop()
        stop[first].set()
        deadline = time.time() + 10
        while len(leader_log) < 2 and time.time() < deadline:
            time.sleep(0.05)
        assert len(leader_log) == 2 and leader_log[1] != first
    finally:
        for s in stop:
            s.set()
        for c in clients:
            c.stop()


def test_counter_counts_under_contention(any_server):
    clients = [client(any_server) for _ in range(4)]
    try:

        def bump(c):
            counter = Counter(c, "/counter")
            for _ in range(25):
                counter += 1

        threads = [threading.Thread(target=bump, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert Counter(clients[0], "/counter").value == 100
        c = Counter(clients[0], "/fcounter", default=0.0)
        c += 2.5
        c -= 1.0
        assert c.value == 1.5
    finally:
        for c in clients:
            c.stop()


def test_queue_is_fifo_with_priorities(any_server):
    a, b = client(any_server), client(any_server)
    try:
        q = Queue(a, "/queue")
        for i in range(10):
            q.put(f"item-{i}".encode())
        q.put(b"urgent", priority=1)
        assert len(q) == 11
        qb = Queue(b, "/queue")
        got = [qb.get() for _ in range(11)]
        assert got[0] == b"urgent"
        assert got[1:] == [f"item-{i}".encode() for i in range(10)]
        assert qb.get() is None
    finally:
        a.stop()
        b.stop()


def test_children_watch_sees_every_membership_change(any_server):
    a, b = client(any_server), client(any_server)
    try:
        a.ensure_path("/members")
        seen = []
        cond = threading.Condition()

        @ChildrenWatch(a, "/members")
        def watch(children):
            with cond:
                seen.append(sorted(children))
                cond.notify_all()

        def wait_for(expected):
            with cond:
                assert cond.wait_for(lambda: seen and seen[-1] == expected, timeout=10), seen

        wait_for([])
        b.create("/members/m1", b"", ephemeral=True)
        wait_for(["m1"])
        b.create("/members/m2", b"")
        wait_for(["m1", "m2"])
        b.delete("/members/m2")
        wait_for(["m1"])
        b.stop()  # the ephemeral member leaves with its session
        wait_for([])
    finally:
        a.stop()
        b.stop()


def test_data_watch_sees_create_change_and_delete(any_server):
    a, b = client(any_server), client(any_server)
    try:
        seen = []
        cond = threading.Condition()

        @DataWatch(a, "/config/x")
        def watch(data, stat):
            with cond:
                seen.append((data, stat.version if stat else None))
                cond.notify_all()

        def wait_for(expected):
            with cond:
                assert cond.wait_for(lambda: seen and seen[-1] == expected, timeout=10), seen

        wait_for((None, None))
        b.create("/config/x", b"v0", makepath=True)
        wait_for((b"v0", 0))
        b.set("/config/x", b"v1")
        wait_for((b"v1", 1))
        b.delete("/config/x")
        wait_for((None, None))
    finally:
        a.stop()
        b.stop()
