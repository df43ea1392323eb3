"""Wall-clock jumps, as when NTP steps the clock: the server runs under
libfaketime with its real-time clock moved two hours forward and then two
hours back while clients work, its monotonic clock left alone. Sessions
neither expire early nor live on (expiry runs on the monotonic clock, as
ZooKeeper's), znode times follow the wall clock, zxids keep growing, and a
SIGKILL and restart with the clock still wrong lose nothing."""

import os
import subprocess
import sys
import time

import pytest
from kazoo.client import KazooClient, KazooState

from conftest import Server

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
HOUR_MS = 3600 * 1000


class FakeClockServer(Server):
    """Ensemble whose real-time clock is offset by what `clock_file` says."""

    def __init__(self):
        super().__init__("ensemble", tick_time=500)
        self.clock_file = os.path.join(self.dir, "faketime")
        self.set_offset("+0")
        self.extra_env = {
            "LD_PRELOAD": LIBFAKETIME,
            "FAKETIME_TIMESTAMP_FILE": self.clock_file,
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }

    def set_offset(self, offset):
        with open(self.clock_file + ".tmp", "w") as f:
            f.write(offset + "\n")
        os.replace(self.clock_file + ".tmp", self.clock_file)


def near(ms, expected_ms, slack_ms=120_000):
    return abs(ms - expected_ms) < slack_ms


def now_ms():
    return int(time.time() * 1000)


def ephemeral_of_a_killed_client(hosts, path):
    """A client in its own process creates an ephemeral node with a 4 s
    session and dies by SIGKILL, leaving its session to expire."""
    code = (
        "import os, signal\n"
        "from kazoo.client import KazooClient\n"
        f"c = KazooClient(hosts={hosts!r}, timeout=4)\n"
        "c.start()\n"
        f"c.create({path!r}, b'', ephemeral=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)


@pytest.fixture
def fake_clock_server():
    if not os.path.exists(LIBFAKETIME):
        pytest.skip("libfaketime is not installed")
    s = FakeClockServer().start()
    yield s
    s.close()


def test_wall_clock_jumps_do_not_expire_sessions_or_break_ordering(fake_clock_server):
    s = fake_clock_server
    c = KazooClient(hosts=s.hosts, timeout=4)
    c.start()
    states = []
    c.add_listener(states.append)
    session = c.client_id[0]
    c.create("/eph", b"", ephemeral=True)
    c.create("/t/before", b"", makepath=True)
    zxids = [c.exists("/t/before").czxid]
    assert near(c.exists("/t/before").ctime, now_ms())

    for name, offset, shift in (("forward", "+2h", 2 * HOUR_MS), ("back", "-2h", -2 * HOUR_MS)):
        s.set_offset(offset)
        time.sleep(0.5)
        c.create(f"/t/{name}", b"")
        stat = c.exists(f"/t/{name}")
        assert near(stat.ctime, now_ms() + shift), (name, stat.ctime - now_ms())
        zxids.append(stat.czxid)
        c.set("/t/before", name.encode())
        assert near(c.exists("/t/before").mtime, now_ms() + shift)
        # Longer than the 4 s session: pings keep it alive through the jump.
        time.sleep(6)
        assert c.exists("/eph") is not None, name
        assert c.client_id[0] == session

        # A session nobody pings still expires on time.
        path = f"/dead-{name}"
        ephemeral_of_a_killed_client(s.hosts, path)
        assert c.exists(path) is not None
        started = time.time()
        while c.exists(path) is not None:
            assert time.time() - started < 15, f"{path}: session not expired after 15 s"
            time.sleep(0.2)
        assert time.time() - started > 2, f"{path}: expired too early"

    assert zxids == sorted(zxids) and len(set(zxids)) == 3, zxids
    assert KazooState.LOST not in states and KazooState.SUSPENDED not in states, states
    c.stop()
    c.close()

    # The clock still two hours behind: a SIGKILL and restart keep every
    # node, and new zxids go on above the old ones.
    s.kill()
    s.start()
    c = KazooClient(hosts=s.hosts, timeout=10)
    c.start()
    try:
        assert c.get("/t/before")[0] == b"back"
        assert sorted(c.get_children("/t")) == ["back", "before", "forward"]
        c.create("/t/after-restart", b"")
        assert c.exists("/t/after-restart").czxid > zxids[-1]
    finally:
        c.stop()
        c.close()
    assert "panicked" not in s.log_text()
