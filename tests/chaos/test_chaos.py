"""Short chaos runs for CI: each workload against a 3-member Ensemble under
a nemesis that kills, partitions and restarts members, then the checker
(linearizable writes and sync + reads, session order, nothing
acknowledged lost, members agree). One run against Apache ZooKeeper 3.8
checks the harness itself: a history ZooKeeper fails is a bad test.

Two faults stay out of these runs while the violations they expose are
open (docs/reliability.md, test_known_violations.py): pausing members
(SIGSTOP), and kazoo's numbering of requests from 1 on every new
connection (the clients here number them across the session, as the Java
client does). Violation 2 can still follow a restart or a partition of the
leader; a run whose only problems carry its signature is reported as an
expected failure (xfail), with its report.

ENSEMBLE_CHAOS_SECONDS sets the length of each run (default 25);
ENSEMBLE_CHAOS_SEED replays a seed (each run prints its own);
ENSEMBLE_CLUSTER_IMPLS (as for tests/cluster) leaves out an implementation.
"""

import os
import random
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))

import run as chaos  # noqa: E402
from clusterlib import impls  # noqa: E402

SECONDS = float(os.environ.get("ENSEMBLE_CHAOS_SECONDS", "25"))
NEMESIS = ["kill", "partition", "restart"]


def seed():
    s = os.environ.get("ENSEMBLE_CHAOS_SEED")
    return int(s) if s else random.randrange(1 << 31)


def refusals_only(verdict):
    """Whether every problem is a write refused (BadVersion, a rolled-back
    multi) at a moment no order explains: the signature of violation 2 of
    docs/reliability.md, which a leader change in these runs can set off.
    Anything else (a stale read, a lost or doubled write, session order)
    still fails the test."""
    kinds = {k for k, _ in verdict.problems}
    return kinds == {"linearizability"} and all(op.outcome == "fail" for op in verdict.stuck)


def check_run(tmp_path, impl, workload, duration):
    res = chaos.run(
        impl=impl,
        workload=workload,
        nemesis=NEMESIS,
        duration=duration,
        seed=seed(),
        out_dir=str(tmp_path / "run"),
        # Faults come quicker than in a long run: a few of each in 25 s.
        hold=(0.5, 4.0),
        quiet=(0.5, 2.0),
        xids="session",
    )
    replay = (
        f"python3 tests/chaos/run.py --impl {impl} --workload {workload} "
        f"--nemesis {','.join(NEMESIS)} --duration {duration:g} --seed {res.seed} "
        f"--hold 0.5,4 --quiet 0.5,2 --xids session"
    )
    report = f"{res.verdict.report()}\nhistory in {res.out_dir}\nreplay: {replay}"
    if res.valid is not True and refusals_only(res.verdict):
        pytest.xfail(f"known violation 2 of docs/reliability.md (refusals after a leader change):\n{report}")
    assert res.valid is True, report
    assert sum(res.faults.values()) >= 2, f"too few faults injected: {res.faults}"
    assert res.verdict.stats["ok"] > 500, res.verdict.stats


@pytest.mark.skipif("ensemble" not in impls(), reason="Ensemble left out by ENSEMBLE_CLUSTER_IMPLS")
@pytest.mark.parametrize("workload", ["register", "set", "queue", "ids"])
def test_ensemble_under_faults_stays_linearizable_and_loses_nothing(tmp_path, workload):
    check_run(tmp_path, "ensemble", workload, SECONDS)


@pytest.mark.skipif("zookeeper" not in impls(), reason="ZooKeeper left out by ENSEMBLE_CLUSTER_IMPLS")
def test_zookeeper_passes_the_same_checks(tmp_path):
    check_run(tmp_path, "zookeeper", "register", SECONDS)
