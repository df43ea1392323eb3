"""Durability with the real binary and real files: restarts keep every
acknowledged write, SIGKILL at random moments loses nothing acknowledged and
keeps each writer's order, and data directories move between Apache
ZooKeeper 3.8 and Ensemble in both directions."""

import os
import random
import signal
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.security import make_digest_acl

from conftest import Server

STAT_FIELDS = [
    "czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
    "ephemeralOwner", "dataLength", "numChildren", "pzxid",
]


def dump_tree(client, path="/"):
    """Every node below `path` with its data, full Stat and ACL."""
    client.add_auth("digest", "alice:pw")  # to read /app/secret
    out = {}
    stack = [path]
    while stack:
        p = stack.pop()
        data, stat = client.get(p)
        acl, _ = client.get_acls(p)
        out[p] = (data, tuple(getattr(stat, f) for f in STAT_FIELDS),
                  sorted((a.perms, a.id.scheme, a.id.id) for a in acl))
        for c in client.get_children(p):
            stack.append(p.rstrip("/") + "/" + c)
    return out


def restart(server):
    server.kill()
    server.start()


def populate(c):
    c.create("/app/config", b"v1", makepath=True)
    c.set("/app/config", b"v2")
    for _ in range(3):
        c.create("/app/seq-", b"s", sequence=True)
    c.create("/app/secret", b"s", acl=[make_digest_acl("alice", "pw", all=True)])
    c.delete("/app/seq-0000000001")
    t = c.transaction()
    t.create("/app/m1", b"")
    t.set_data("/app/config", b"v3")
    t.commit()
    c.create("/app/eph", b"e", ephemeral=True)


def test_restart_keeps_every_znode_session_and_zxid(ensemble):
    c = KazooClient(hosts=ensemble.hosts, timeout=30)
    c.start()
    populate(c)
    before = dump_tree(c)
    sid, pwd = c.client_id
    restart(ensemble)
    # The session survives the restart: reconnect with it.
    c2 = KazooClient(hosts=ensemble.hosts, client_id=(sid, pwd), timeout=30)
    c2.start()
    assert c2.client_id[0] == sid
    after = dump_tree(c2)
    assert after == before
    # New writes continue above the old zxids.
    st = c2.set("/app/config", b"after")
    assert st.mzxid > max(v[1][1] for v in before.values())
    c2.stop()
    c.stop()


@pytest.mark.parametrize("direction", ["zookeeper_to_ensemble", "ensemble_to_zookeeper"])
def test_data_directory_migrates(direction):
    first, second = direction.split("_to_")
    a = Server(first).start()
    try:
        c = KazooClient(hosts=a.hosts, timeout=30)
        c.start()
        populate(c)
        before = dump_tree(c)
        sid, pwd = c.client_id
        a.kill()
        b = Server(second)
        # Point the second server at the first one's data directory.
        os.rename(b.data_dir, b.data_dir + ".unused")
        os.symlink(a.data_dir, b.data_dir)
        b.start()
        try:
            c2 = KazooClient(hosts=b.hosts, client_id=(sid, pwd), timeout=30)
            c2.start()
            assert c2.client_id[0] == sid, "the session moved with the data"
            after = dump_tree(c2)
            assert after == before
            assert c2.get("/app/eph")[1].ephemeralOwner == sid
            c2.create("/app/written-after", b"")
            c2.stop()
        finally:
            b.close()
        c.stop()
    finally:
        a.close()


ROUNDS = int(os.environ.get("ENSEMBLE_CRASH_ROUNDS", "4"))


@pytest.mark.parametrize("round_no", range(ROUNDS))
def test_sigkill_at_random_moments_loses_no_acknowledged_write(round_no, tmp_path):
    rng = random.Random(round_no)
    s = Server("ensemble", extra_cfg="snapCount=200\npreAllocSize=64\n").start()
    try:
        acked = {}  # writer -> highest acknowledged sequence number
        stop = threading.Event()

        def writer(w):
            c = KazooClient(hosts=s.hosts, timeout=5, connection_retry=None, command_retry=None)
            try:
                c.start(timeout=10)
                c.ensure_path(f"/w{w}")
                i = 0
                while not stop.is_set():
                    c.create(f"/w{w}/n{i:06d}", str(i).encode())
                    acked[w] = i
                    i += 1
            except Exception:
                pass
            finally:
                try:
                    c.stop()
                except Exception:
                    pass

        threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3 + rng.random() * 1.5)
        os.killpg(s.proc.pid, signal.SIGKILL)
        s.proc.wait()
        stop.set()
        for t in threads:
            t.join(10)
        s.start()
        c = KazooClient(hosts=s.hosts, timeout=30)
        c.start()
        for w, last in acked.items():
            names = sorted(c.get_children(f"/w{w}"))
            present = [int(n[1:]) for n in names]
            # Every acknowledged write is there, and what is there is a prefix
            # of the writer's sequence: nothing out of order.
            assert present == list(range(len(present))), f"writer {w}: gaps in {present[:10]}..."
            assert len(present) >= last + 1, f"writer {w}: acked {last}, found {len(present)}"
            for n in names[-3:]:
                assert c.get(f"/w{w}/{n}")[0] == str(int(n[1:])).encode()
        assert sum(acked.values()) > 0, "the writers never got going"
        c.stop()
    finally:
        s.close()


def test_corrupt_log_record_stops_startup_with_file_and_offset():
    s = Server("ensemble", extra_cfg="preAllocSize=64\n").start()
    try:
        c = KazooClient(hosts=s.hosts, timeout=30)
        c.start()
        for i in range(50):
            c.create(f"/n{i}", b"x" * 50)
        c.stop()
        s.kill()
        logs = sorted(
            (os.path.join(s.data_dir, "version-2", f) for f in os.listdir(os.path.join(s.data_dir, "version-2")) if f.startswith("log.")),
            key=os.path.getsize,
        )
        target = logs[-1]
        with open(target, "r+b") as f:
            data = f.read()
            # Flip a byte inside the data of a record in the middle of the file.
            hits, at = [], data.find(b"x" * 50)
            while at != -1:
                hits.append(at)
                at = data.find(b"x" * 50, at + 50)
            at = hits[len(hits) // 2] + 10
            f.seek(at)
            f.write(bytes([data[at] ^ 0xFF]))
        import subprocess

        from conftest import ensemble_bin

        p = subprocess.run([ensemble_bin(), "server", "--config", s.cfg], capture_output=True, text=True, timeout=30)
        assert p.returncode != 0
        err = p.stderr.strip().splitlines()[-1]
        assert os.path.basename(target) in err and "offset" in err, p.stderr
    finally:
        s.close()
