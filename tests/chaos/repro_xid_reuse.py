#!/usr/bin/env python3
"""Reproduces the answer mix-up found by the chaos runs (docs/reliability.md,
"Answers matched by session and xid"): a write sent on one connection of a
session is committed while a newer request of the same session, sent on
another connection with the same xid, waits on another member; that
member gives the newer request the older one's answer. kazoo numbers the
requests of every new connection from 1, so after a reconnection the
first requests reuse the xids of the last connection's first ones.

1. Client A connects to follower F1 (a new session S). The leader is
   paused (SIGSTOP), and A sends setData(/x, "old") (xid 1), which F1
   forwards to the frozen leader.
2. Client B attaches to session S on follower F2 (a new connection, so
   its first request is xid 1 again) and sends setData(/x, "new",
   version 0).
3. The leader resumes. Whichever of the two requests is applied first,
   the member holding the other one's connection takes it for its own
   (same session, same xid) and answers it with the first one's result;
   the second is then refused (BadVersion, or SessionMoved for a write
   arriving through F1 after the session moved), and nobody hears of it.
   Seen so far: A told "ok, version 1" while /x holds "new" at version 1,
   i.e. an acknowledged write that never took effect.

    python3 tests/chaos/repro_xid_reuse.py [--impl ensemble|zookeeper] [--tries N]

Exit code 1 when the mix-up happened.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import KazooException  # noqa: E402

from clusterlib import Cluster  # noqa: E402


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


def attempt(impl, distinct_xids=False):
    """One try. Returns (mixed_up, text). With `distinct_xids`, B spends
    xid 1 on a read first, so the two writes carry different xids."""
    c = Cluster(impl, 3)
    clients = []
    try:
        c.start_all()
        lead = c.leader()
        f1, f2 = [i for i in c.ids if i != lead]
        admin = c.client([lead])
        admin.create("/x", b"0")
        admin.stop()

        a = KazooClient(hosts=c.host_port(f1), timeout=10.0)
        clients.append(a)
        a.start(timeout=30)
        c.pause(lead)
        old = a.set_async("/x", b"old")
        b = KazooClient(hosts=c.host_port(f2), timeout=10.0, client_id=a.client_id)
        clients.append(b)
        b.start_async()
        wait_for(lambda: b.connected, 5, "B could not attach to the session on F2")
        if distinct_xids:
            b.exists_async("/")
        new = b.set_async("/x", b"new", version=0)
        time.sleep(0.1)
        c.resume(lead)

        def outcome(r):
            try:
                v = r.get(timeout=15).version
                return f"ok, version {v}", v
            except KazooException as e:
                return type(e).__name__, None

        old_result, old_v = outcome(old)
        new_result, new_v = outcome(new)
        # Read once one leader leads again, through a fresh client on it (a
        # ZooKeeper leader that was frozen serves stale reads until it
        # notices it was deposed).
        reader = KazooClient(hosts=c.host_port(c.leader(60)), timeout=10.0)
        clients.append(reader)
        reader.start(timeout=30)
        reader.sync("/x")
        data, st = reader.get("/x")
        final = (data.decode(), st.version)
        text = (
            f"{impl}: A setData(/x, 'old') -> {old_result}; B setData(/x, 'new', version 0) -> {new_result}; "
            f"/x holds {final[0]!r} at version {final[1]}"
        )
        # What a correct server may end with: "old" alone (version 1, "new"
        # refused), "new" then "old" (versions 1 and 2), or "new" alone
        # with "old" lost to its connection (never acknowledged).
        bad = (old_v is not None and final != ("old", old_v)) or (
            new_v is not None and not (new_v == 1 and final in (("new", 1), ("old", 2)))
        )
        return bad, text
    finally:
        for k in clients:
            k.stop()
            k.close()
        c.cleanup()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--impl", default="ensemble", choices=["ensemble", "zookeeper"])
    p.add_argument("--tries", type=int, default=3)
    p.add_argument("--distinct-xids", action="store_true", help="the control: B's write gets xid 2")
    a = p.parse_args()
    for n in range(a.tries):
        mixed, text = attempt(a.impl, a.distinct_xids)
        print(f"try {n + 1}: {text}")
        if mixed:
            print("a write was answered with another request's result: its acknowledgement is false")
            return 1
    print("no mix-up seen")
    return 0


if __name__ == "__main__":
    sys.exit(main())
