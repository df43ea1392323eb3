"""Short chaos runs for CI: each workload against a 3-member Ensemble under
a nemesis that kills, partitions and restarts members, then the checker
(linearizable writes and sync + reads, session order, nothing
acknowledged lost, members agree). One run against Apache ZooKeeper 3.8
checks the harness itself: a history ZooKeeper fails is a bad test, unless
ZooKeeper is at fault, as 3.8.0 sometimes is (docs/reliability.md): its run
is made again on another seed before a failure counts.

Ensemble's runs pause members (SIGSTOP) too, and leave kazoo to number
the requests of each new connection from 1, as it does: the two faults
behind the violations of docs/reliability.md, fixed since and pinned by
test_fixed_violations.py. The ZooKeeper run keeps to kills, partitions and
restarts, with requests numbered across the session as the Java client
does.

ENSEMBLE_CHAOS_SECONDS sets the length of each run (default 25);
ENSEMBLE_CHAOS_SEED replays a seed (each run prints its own);
ENSEMBLE_CLUSTER_IMPLS (as for tests/cluster) leaves out an implementation.
"""

import os
import random
import sys
import warnings

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))

import run as chaos  # noqa: E402
from clusterlib import impls  # noqa: E402

SECONDS = float(os.environ.get("ENSEMBLE_CHAOS_SECONDS", "25"))
NEMESIS = ["kill", "pause", "partition", "restart"]
# The control: ZooKeeper 3.8 under the faults its own clients are known to survive.
ZOOKEEPER_NEMESIS = ["kill", "partition", "restart"]


def seed():
    s = os.environ.get("ENSEMBLE_CHAOS_SEED")
    return int(s) if s else random.randrange(1 << 31)


def check_run(tmp_path, impl, workload, duration, nemesis, xids, attempts=1):
    """One run and its checks. With `attempts` > 1 an invalid history is
    reported as a warning and the run is made again with another seed; the
    test fails only if every attempt fails."""
    for attempt in range(1, attempts + 1):
        res = chaos.run(
            impl=impl,
            workload=workload,
            nemesis=nemesis,
            duration=duration,
            seed=seed() if attempt == 1 else random.randrange(1 << 31),
            out_dir=str(tmp_path / ("run" if attempt == 1 else f"run{attempt}")),
            # Faults come quicker than in a long run: a few of each in 25 s.
            hold=(0.5, 4.0),
            quiet=(0.5, 2.0),
            xids=xids,
        )
        replay = (
            f"python3 tests/chaos/run.py --impl {impl} --workload {workload} "
            f"--nemesis {','.join(nemesis)} --duration {duration:g} --seed {res.seed} "
            f"--hold 0.5,4 --quiet 0.5,2 --xids {xids}"
        )
        report = f"{res.verdict.report()}\nhistory in {res.out_dir}\nreplay: {replay}"
        if res.valid is True or attempt == attempts:
            break
        warnings.warn(f"{impl} run {attempt} of {attempts} is invalid, running again:\n{report}")
    assert res.valid is True, report
    assert sum(res.faults.values()) >= 2, f"too few faults injected: {res.faults}"
    assert res.verdict.stats["ok"] > 500, res.verdict.stats


@pytest.mark.skipif("ensemble" not in impls(), reason="Ensemble left out by ENSEMBLE_CLUSTER_IMPLS")
@pytest.mark.parametrize("workload", ["register", "set", "queue", "ids"])
def test_ensemble_under_faults_stays_linearizable_and_loses_nothing(tmp_path, workload):
    check_run(tmp_path, "ensemble", workload, SECONDS, NEMESIS, "connection")


@pytest.mark.skipif("zookeeper" not in impls(), reason="ZooKeeper left out by ENSEMBLE_CLUSTER_IMPLS")
def test_zookeeper_passes_the_same_checks(tmp_path):
    # ZooKeeper 3.8.0 itself loses committed txns under some sequences of
    # these faults (docs/reliability.md): a check is taken for a bad one only
    # when a second run, on another seed, fails too.
    check_run(tmp_path, "zookeeper", "register", SECONDS, ZOOKEEPER_NEMESIS, "session", attempts=2)
