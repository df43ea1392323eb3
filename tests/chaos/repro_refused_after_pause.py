#!/usr/bin/env python3
"""Reproduces the false BadVersion answers found by the chaos runs
(docs/reliability.md, violation 2): writes that a leader prepped but could
not commit stay among its pending changes when it keeps its leadership, and
every later conditional write on those znodes is refused with BadVersion
until the next leader change.

1. Client K connects to a follower and reads /x (version 0).
2. The leader is paused (SIGSTOP) for about a second, long enough to lose
   its quorum lease but, most of the time, not its term. Meanwhile K sends
   setData(/x, "lost", version 0); the follower forwards it, and it waits
   in the leader's socket.
3. The leader resumes, preps the write, fails it (it has no quorum for the
   moment: K sees ConnectionLoss), then serves again in the same term.
4. A new client reads /x after sync (still version 0: the write was never
   committed) and sends setData(/x, "next", version 0): refused with
   BadVersion, and so is every retry, while every read says version 0.

    python3 tests/chaos/repro_refused_after_pause.py [--impl ensemble|zookeeper] [--tries N]

Exit code 1 when a conditional write on the version every read shows was
refused.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import BadVersionError, KazooException  # noqa: E402

from clusterlib import Cluster  # noqa: E402


def attempt(impl, pause):
    """One try. Returns (refused wrongly, text)."""
    c = Cluster(impl, 3)
    clients = []
    try:
        c.start_all()
        lead = c.leader()
        follower = [i for i in c.ids if i != lead][0]
        k = KazooClient(hosts=c.host_port(follower), timeout=10.0)
        clients.append(k)
        k.start(timeout=30)
        k.create("/x", b"0")
        _, st = k.get("/x")
        c.pause(lead)
        lost = k.set_async("/x", b"lost", version=st.version)
        time.sleep(pause)
        c.resume(lead)
        try:
            lost_result = f"ok, version {lost.get(timeout=15).version}"
        except KazooException as e:
            lost_result = type(e).__name__
        new_lead = c.leader(60)
        k2 = KazooClient(hosts=c.connect_string(), timeout=10.0)
        clients.append(k2)
        k2.start(timeout=30)
        answers = []
        for _ in range(5):
            k2.sync("/x")
            data, st2 = k2.get("/x")
            try:
                k2.set("/x", b"next", version=st2.version)
                answers.append(f"version {st2.version}: ok")
                break
            except BadVersionError:
                answers.append(f"version {st2.version}: BadVersion")
            time.sleep(0.2)
        text = (
            f"{impl}: leader {lead} paused {pause:.2f}s, leader now {new_lead}; "
            f"setData(/x, 'lost', version {st.version}) -> {lost_result}; then sync + getData + "
            f"setData with the version read: {'; '.join(answers)}"
        )
        return not answers[-1].endswith("ok"), text
    finally:
        for cl in clients:
            cl.stop()
            cl.close()
        c.cleanup()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--impl", default="ensemble", choices=["ensemble", "zookeeper"])
    p.add_argument("--tries", type=int, default=4)
    a = p.parse_args()
    for n in range(a.tries):
        pause = (0.9, 1.0, 1.1, 1.3)[n % 4]
        bad, text = attempt(a.impl, pause)
        print(f"try {n + 1}: {text}")
        if bad:
            print("a conditional write on the version every read shows was refused")
            return 1
    print("no false refusal seen")
    return 0


if __name__ == "__main__":
    sys.exit(main())
