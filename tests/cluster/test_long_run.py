"""Rounds of faults under a write load: each round SIGKILLs the leader, a
follower, or a follower whose data directory is then wiped, or pauses the
leader (SIGSTOP/SIGCONT), while two writers create sequential znodes through
different members. After every round the victims come back, the members must
agree, and no acknowledged write may be missing.

CI runs 2 rounds per implementation; the long run is
`ENSEMBLE_CLUSTER_FAULT_ROUNDS=200 ENSEMBLE_CLUSTER_IMPLS=ensemble python3 -m pytest -q tests/cluster/test_long_run.py`
(the seed of a run is printed; ENSEMBLE_CLUSTER_FAULT_SEED replays it)."""

import os
import random
import signal
import time

import pytest

from clusterlib import SequentialWriter, assert_members_agree, impls

ROUNDS = int(os.environ.get("ENSEMBLE_CLUSTER_FAULT_ROUNDS", "2"))
FAULTS = ["kill-leader", "kill-follower", "wipe-follower", "pause-leader"]


@pytest.mark.parametrize("impl", impls())
def test_rounds_of_faults_lose_no_acknowledged_write(impl, cluster_factory):
    seed = int(os.environ.get("ENSEMBLE_CLUSTER_FAULT_SEED", str(random.randrange(1 << 30))))
    print(f"fault seed {seed} ({ROUNDS} rounds)")
    rng = random.Random(seed)
    c = cluster_factory(impl, 3)
    acked = []
    for rnd in range(ROUNDS):
        lead = c.leader(timeout=60)
        followers = [i for i in c.ids if i != lead]
        writers = [
            SequentialWriter(c, f"/long/r{rnd}a", [followers[0], followers[1], lead]),
            SequentialWriter(c, f"/long/r{rnd}b", [lead] + followers),
        ]
        for w in writers:
            w.start()
        for w in writers:
            w.wait_for(20, timeout=60)
        fault = FAULTS[rng.randrange(len(FAULTS))]
        victim = lead if fault.endswith("leader") else rng.choice(followers)
        if fault == "pause-leader":
            pid = c.member(victim).proc.pid
            os.kill(pid, signal.SIGSTOP)
            time.sleep(rng.uniform(0.5, 3.0))
            os.kill(pid, signal.SIGCONT)
        else:
            c.kill(victim)
            if fault == "wipe-follower":
                c.wipe(victim)
        time.sleep(rng.uniform(0.2, 1.5))
        for w in writers:
            w.wait_for(w.count() + 20, timeout=60)
        for w in writers:
            acked += w.stop()
        if not c.alive(victim):
            c.start(victim)
        c.wait_serving(timeout=60)
        c.leader(timeout=60)
        snap = assert_members_agree(c)
        missing = [p for p in acked if p not in snap]
        assert not missing, f"round {rnd} ({fault} of {victim}): lost {missing[:5]}"
        print(f"round {rnd}: {fault} of member {victim}; {len(acked)} acknowledged writes, all present")
