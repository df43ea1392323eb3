#!/usr/bin/env python3
"""A chaos run: a cluster of Ensemble (or Apache ZooKeeper 3.8) members,
client threads running one workload, a nemesis injecting faults, then a
final check once everything is healed. Prints the seed, the counts, the
faults injected and the verdict; writes the history to a directory it
prints; exits 1 on a violation (or an inconclusive check), 2 on a harness
error.

    python3 tests/chaos/run.py --impl ensemble --workload register \\
        --nemesis kill,pause,partition --duration 60 --seed 7

See tests/chaos/README.md.
"""

import argparse
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))

import checker  # noqa: E402
import nemesis as nemesis_mod  # noqa: E402
import workloads  # noqa: E402
from clusterlib import Cluster, assert_members_agree  # noqa: E402
from history import History, write_jsonl  # noqa: E402


@dataclass
class RunResult:
    verdict: object
    out_dir: str
    seed: int
    faults: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)

    @property
    def valid(self):
        return self.verdict.valid


def default_reads(impl):
    """What sync + read is checked as: linearizable for Ensemble, whose
    sync is a quorum-confirmed read index; only ordered per session for
    ZooKeeper (ZOOKEEPER-1675)."""
    return "linearizable" if impl == "ensemble" else "session"


def run(
    impl="ensemble",
    workload="register",
    nemesis=("kill", "pause", "partition"),
    duration=60.0,
    seed=None,
    members=3,
    clients=5,
    delay=0.01,
    op_timeout=4.0,
    rotate=60.0,
    reads=None,
    out_dir=None,
    hold=(1.0, 6.0),
    quiet=(1.0, 4.0),
    xids="connection",
    log=print,
):
    seed = random.randrange(1 << 31) if seed is None else seed
    reads = reads or default_reads(impl)
    nemesis = [k for k in nemesis if k]
    out_dir = out_dir or tempfile.mkdtemp(prefix=f"chaos-{impl}-{workload}-{seed}-")
    os.makedirs(out_dir, exist_ok=True)
    log(
        f"chaos: impl={impl} workload={workload} nemesis={','.join(nemesis) or 'none'} "
        f"duration={duration:g}s members={members} clients={clients} seed={seed} reads={reads} xids={xids}"
    )
    log(f"chaos: history in {out_dir}")
    # kazoo logs every lost connection; those go to a file of the run.
    kazoo_log = logging.getLogger("kazoo")
    kazoo_log.propagate = False
    handler = logging.FileHandler(os.path.join(out_dir, "clients.log"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(levelname)s %(message)s"))
    kazoo_log.addHandler(handler)
    # A kazoo connection thread that dies (say, on an answer whose xid is
    # not the one it waits for) leaves its client dead: worth a line.
    client_errors = []
    previous_hook = threading.excepthook

    def hook(args):
        client_errors.append(f"{args.thread.name if args.thread else '?'}: {args.exc_type.__name__}: {args.exc_value}")
        previous_hook(args)

    threading.excepthook = hook
    rng = random.Random(seed)
    wl = workloads.make(workload, duration, rotate)
    cluster = Cluster(impl, members, proxied="partition" in nemesis, base_dir=out_dir)
    nem = None
    workers = []
    agree = None
    started = time.monotonic()
    try:
        cluster.start_all()
        cluster.leader()
        setup = cluster.client()
        wl.setup(setup)
        setup.stop()
        setup.close()

        history = History()
        for wid in range(clients):
            # Each client starts on a different member and fails over in order.
            order = [cluster.ids[(wid + k) % members] for k in range(members)]
            zk = cluster.client(order)
            if xids == "session":
                workloads.keep_xids(zk)
            wrng = random.Random(rng.randrange(1 << 62))
            workers.append(workloads.Worker(wid, zk, wl, history, duration, wrng, op_timeout, delay))
        nem = nemesis_mod.Nemesis(cluster, nemesis, random.Random(rng.randrange(1 << 62)), history.now, hold, quiet)
        for w in workers:
            w.start()
        nem.start()
        while history.now() < duration and all(w.is_alive() for w in workers):
            time.sleep(0.2)
        nem.stop()
        for w in workers:
            w.stop_event.set()
        for w in workers:
            w.join(timeout=op_timeout + 30)
        for w in workers:
            w.zk.stop()
            w.zk.close()
        errors = [f"worker {w.wid}: {w.error}" for w in workers if w.error]
        if nem.error:
            errors.append(f"nemesis: {nem.error}")
        if errors:
            raise RuntimeError("; ".join(errors))

        # Everything back: every member running and connected, one leader.
        cluster.wait_serving(timeout=120)
        cluster.leader(timeout=120)
        zk = cluster.client()
        workloads.settle(zk)
        final = workloads.Worker(clients, zk, wl, history, float("inf"), rng, 30.0, 0)
        final.final = True
        wl.final(final)
        zk.stop()
        zk.close()
        try:
            assert_members_agree(cluster)
            agree = True
        except AssertionError as e:
            agree = str(e)
    except BaseException:
        log("chaos: the run failed; last lines of each member's log:")
        log(cluster.log_tails(20))
        raise
    finally:
        if nem is not None and nem.is_alive():
            nem.stop()
        cluster.cleanup(remove=False)
        kazoo_log.removeHandler(handler)
        handler.close()
        threading.excepthook = previous_hook

    ops = history.snapshot()
    write_jsonl(os.path.join(out_dir, "history.jsonl"), ops)
    write_jsonl(os.path.join(out_dir, "nemesis.jsonl"), nem.events)
    verdict = checker.check(workload, ops, reads)
    if agree is not True:
        verdict.add("members disagree", agree)
    for e in client_errors:
        verdict.warnings.append(f"a client's connection thread died: {e}")
    if verdict.valid is True:
        # Keep the member logs, not their data directories.
        for m in cluster.members.values():
            shutil.rmtree(m.data_dir, ignore_errors=True)
    summary = {
        "impl": impl,
        "workload": workload,
        "nemesis": nemesis,
        "duration": duration,
        "seed": seed,
        "members": members,
        "clients": clients,
        "reads": reads,
        "xids": xids,
        "hold": list(hold),
        "quiet": list(quiet),
        "faults": nem.counts,
        "stats": verdict.stats,
        "valid": verdict.valid,
        "problems": [k for k, _ in verdict.problems],
        "warnings": verdict.warnings,
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    with open(os.path.join(out_dir, "run.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
    with open(os.path.join(out_dir, "report.txt"), "w") as f:
        f.write(verdict.report() + "\n")
    faults = ", ".join(f"{k} {v}" for k, v in sorted(nem.counts.items())) or "none"
    log(f"chaos: faults injected: {faults}")
    log(verdict.report())
    log(f"chaos: seed {seed}; history, nemesis log and member logs in {out_dir}")
    return RunResult(verdict, out_dir, seed, nem.counts, summary)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--impl", default="ensemble", choices=["ensemble", "zookeeper"])
    p.add_argument("--workload", default="register", choices=sorted(workloads.WORKLOADS))
    p.add_argument(
        "--nemesis",
        default="kill,pause,partition",
        help=f"comma list of {', '.join(nemesis_mod.KINDS)}, or 'none'",
    )
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load and faults")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--clients", type=int, default=5)
    p.add_argument("--delay", type=float, default=0.01, help="mean pause of a client between ops (s)")
    p.add_argument("--op-timeout", type=float, default=4.0)
    p.add_argument("--rotate", type=float, default=60.0, help="seconds per generation of znodes")
    p.add_argument("--reads", choices=checker.READ_MODES, default=None, help="default: by implementation")
    p.add_argument("--out", default=None, help="directory for the history (default: a new temporary one)")
    p.add_argument("--hold", default="1,6", help="a fault lasts between A and B seconds (A,B)")
    p.add_argument("--quiet", default="1,4", help="A to B seconds without faults between two (A,B)")
    p.add_argument(
        "--xids",
        choices=["connection", "session"],
        default="connection",
        help="kazoo numbers requests per connection (its own way) or per session (as the Java client)",
    )
    a = p.parse_args(argv)
    kinds = [] if a.nemesis == "none" else a.nemesis.split(",")
    try:
        res = run(
            a.impl,
            a.workload,
            kinds,
            a.duration,
            a.seed,
            a.members,
            a.clients,
            a.delay,
            a.op_timeout,
            a.rotate,
            a.reads,
            a.out,
            tuple(float(x) for x in a.hold.split(",")),
            tuple(float(x) for x in a.quiet.split(",")),
            a.xids,
        )
    except Exception as e:
        print(f"chaos: harness error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    return 0 if res.valid is True else 1


if __name__ == "__main__":
    sys.exit(main())
