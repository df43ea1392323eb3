"""The data directory out of room or read-only, on real file systems: a small
tmpfs filled up with a real file, and a read-only bind mount. A full disk makes
Ensemble refuse client writes with NotReadOnly while reads, new sessions and
session closes go on; writes come back when space does, and nothing
acknowledged is lost across a SIGKILL. (ZooKeeper 3.8 has no such check: its
log writer fails and the server exits.) A data directory that cannot be
written stops both servers at start with exit code 3."""

import os
import subprocess
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NotReadOnlyCallError

from conftest import Server

MB = 1024 * 1024


def mount(*args):
    """Runs mount(8); skips the test where this machine does not allow it."""
    r = subprocess.run(["mount", *args], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"mount {' '.join(args)} not allowed here: {r.stderr.strip()}")


def umount(path):
    subprocess.run(["umount", "-l", path], capture_output=True)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def wait_until(what, check, timeout=10.0):
    deadline = time.time() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


def write_refused(client, acked, refused):
    """Creates a new probe znode: True when the server refuses it. One it
    accepts was acknowledged and must survive like any other write (the server
    may start refusing between two probes, so an accepted probe is kept rather
    than deleted)."""
    path = f"/probe{len(acked) + len(refused):04}"
    try:
        client.create(path, b"x")
    except NotReadOnlyCallError:
        refused.append(path)
        return True
    acked[path] = b"x"
    return False


def write_accepted(client, path):
    try:
        client.create(path, b"x")
    except NotReadOnlyCallError:
        return False
    return True


@pytest.fixture
def small_disk_server():
    """Ensemble with its dataDir on a 48 MB tmpfs, 1 MB log preallocation
    and 8 MB kept free."""
    s = Server(
        "ensemble",
        extra_cfg="preAllocSize=1024\nensemble.minFreeDiskSpaceMb=8\n",
    )
    mount("-t", "tmpfs", "-o", "size=48m", "tmpfs", s.data_dir)
    try:
        s.start()
        yield s
    finally:
        s.kill()
        umount(s.data_dir)
        s.close()


def test_a_full_disk_refuses_writes_serves_reads_and_recovers(small_disk_server):
    s = small_disk_server
    c = KazooClient(hosts=s.hosts, timeout=10)
    c.start()
    acked = {}
    for i in range(50):
        path = f"/before/n{i:03}"
        c.create(path, b"v%d" % i, makepath=True)
        acked[path] = b"v%d" % i
    c.set("/before/n000", b"changed")
    acked["/before/n000"] = b"changed"
    holder = KazooClient(hosts=s.hosts, timeout=10)
    holder.start()
    holder.create("/eph", b"e", ephemeral=True)

    # Fill the file system with a real file until 4 MB are left.
    filler = os.path.join(s.data_dir, "filler")
    fd = os.open(filler, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        os.posix_fallocate(fd, 0, free_bytes(s.data_dir) - 4 * MB)
    finally:
        os.close(fd)
    assert free_bytes(s.data_dir) < 8 * MB

    refused = []
    wait_until("a write is refused", lambda: write_refused(c, acked, refused))
    with pytest.raises(NotReadOnlyCallError):
        c.set("/before/n001", b"no")
    with pytest.raises(NotReadOnlyCallError):
        c.delete("/before/n002")
    t = c.transaction()
    t.create("/refused-multi", b"")
    t.set_data("/before/n003", b"no")
    with pytest.raises(NotReadOnlyCallError):
        t.commit()
    with pytest.raises(NotReadOnlyCallError):
        c.set_acls("/before/n004", [])

    # Reads and watches go on; new sessions open, and a closed session takes
    # its ephemeral with it (session txns still go to the log).
    assert c.get("/before/n000")[0] == b"changed"
    assert len(c.get_children("/before")) == 50
    reader = KazooClient(hosts=s.hosts, timeout=10)
    reader.start()
    assert reader.get("/before/n049")[0] == b"v49"
    assert reader.exists("/eph") is not None
    holder.stop()
    holder.close()
    wait_until("the ephemeral goes", lambda: reader.exists("/eph") is None)
    reader.stop()
    reader.close()
    assert "refusing client writes: dataDir" in s.log_text()
    assert "less than ensemble.minFreeDiskSpaceMb" in s.log_text()

    # Space comes back: so do writes.
    os.unlink(filler)
    wait_until("writes are accepted again", lambda: write_accepted(c, "/after"))
    acked["/after"] = b"x"
    for i in range(20):
        path = f"/after/n{i:03}"
        c.create(path, b"a%d" % i)
        acked[path] = b"a%d" % i
    assert "accepting client writes again" in s.log_text()
    c.stop()
    c.close()

    # Everything acknowledged survives a SIGKILL; nothing refused exists.
    s.kill()
    s.start()
    c = KazooClient(hosts=s.hosts, timeout=10)
    c.start()
    try:
        for path, data in acked.items():
            assert c.get(path)[0] == data, path
        for path in refused + ["/refused-multi", "/eph"]:
            assert c.exists(path) is None, path
        assert c.get("/before/n001")[0] == b"v1"
        assert c.exists("/before/n002") is not None
    finally:
        c.stop()
        c.close()


@pytest.mark.parametrize("kind", ["ensemble", "zookeeper"])
def test_a_read_only_data_directory_stops_the_server_with_exit_code_3(kind):
    s = Server(kind)
    target = s.data_dir
    mount("--bind", target, target)
    try:
        mount("-o", "remount,bind,ro", target)
        with pytest.raises(RuntimeError, match="exited early with code 3"):
            s.start()
        text = s.log_text()
        if kind == "ensemble":
            assert f"cannot write to dataDir {target}: Read-only file system" in text, text
        else:
            assert "Unable to access datadir" in text, text
    finally:
        s.kill()
        umount(target)
        s.close()


def test_a_disk_filled_to_the_last_byte_stops_the_server_and_loses_nothing():
    """With the free-space check off, a txn log write fails: as ZooKeeper, the
    server exits (code 1, the reason in its log). It cannot start while the
    disk is full (its first write as leader fails too), and once space
    returns it starts with every acknowledged write."""
    s = Server(
        "ensemble",
        extra_cfg="preAllocSize=1024\nensemble.minFreeDiskSpaceMb=0\n",
    )
    mount("-t", "tmpfs", "-o", "size=16m", "tmpfs", s.data_dir)
    try:
        s.start()
        c = KazooClient(hosts=s.hosts, timeout=5)
        c.start()
        c.create("/first", b"x")
        filler = os.path.join(s.data_dir, "filler")
        fd = os.open(filler, os.O_CREAT | os.O_WRONLY, 0o600)
        try:
            os.posix_fallocate(fd, 0, free_bytes(s.data_dir) - 4096)
        finally:
            os.close(fd)
        acked = []
        with pytest.raises(Exception):
            for i in range(100_000):
                c.create(f"/n{i}", b"y" * 200)
                acked.append(f"/n{i}")
        c.stop()
        c.close()
        assert s.proc.wait(timeout=10) == 1
        text = s.log_text()
        assert "cannot go on, exiting" in text and "No space left on device" in text, text

        with pytest.raises(RuntimeError, match="exited early with code 1"):
            s.start()

        os.unlink(filler)
        s.start()
        c = KazooClient(hosts=s.hosts, timeout=10)
        c.start()
        try:
            missing = [p for p in ["/first"] + acked if c.exists(p) is None]
            assert missing == [], f"{len(missing)} of {len(acked) + 1} lost"
            c.create("/later", b"z")
        finally:
            c.stop()
            c.close()
    finally:
        s.kill()
        umount(s.data_dir)
        s.close()
